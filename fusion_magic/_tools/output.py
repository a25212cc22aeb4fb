"""Text a tool hands back to the model: cut to a size the model (and the record) can afford, with a note."""

from __future__ import annotations

from .base import MAX_OUTPUT_CHARS

__all__ = ["clip", "one_line"]


def clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    "``text`` cut to at most about ``limit`` characters, saying how much was left out."
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit:,} more characters not shown]"


def one_line(error: BaseException, limit: int = 500) -> str:
    "An exception as one line: its type and the first line of its message."
    lines = str(error).strip().splitlines()
    message = lines[0].strip() if lines else ""
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
