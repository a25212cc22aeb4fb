"""Scripted tool-calling members: which calls a member makes for a request, and its answer from the results.

A `Reply` with ``tool_rounds`` is a member that uses tools: it asks for the next round's calls while
the conversation (after the last user message) has fewer tool rounds than its script, and answers
once every round has its results, or at once when the request offers no tools or says
``tool_choice: "none"`` (the caller's bound). Stateless: the request alone decides, so concurrent
members and cached replays behave the same.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["tool_results", "tool_round", "with_results"]

_FIGURE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _after_question(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=-1)
    return [m for m in messages[last_user + 1 :] if isinstance(m, dict)]


def tool_results(messages: list[dict[str, Any]]) -> list[str]:
    "The tool results after the last user message, in order."
    return [_text(m.get("content")) for m in _after_question(messages) if m.get("role") == "tool"]


def tool_round(
    rounds: list[list[dict[str, Any]]] | None, body: dict[str, Any], calls: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    "The calls a member makes for this request: ``calls`` always, else the next of ``rounds`` ([]: it answers)."
    if calls:
        return list(calls)
    if not rounds or not body.get("tools") or body.get("tool_choice") == "none":
        return []
    done = sum(1 for m in _after_question(body.get("messages") or []) if m.get("tool_calls"))
    return list(rounds[done]) if done < len(rounds) else []


def with_results(content: str, body: dict[str, Any]) -> str:
    "``content`` with {result} (the last tool result, one line) and {number} (its first number) filled in."
    results = tool_results(body.get("messages") or [])
    last = " ".join(results[-1].split()) if results else ""
    last = last if len(last) <= 300 else last[:299] + "…"
    figure = _FIGURE.search(last)
    return content.replace("{result}", last).replace("{number}", figure.group(0) if figure else "?")
