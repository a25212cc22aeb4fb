"""What a model thought before answering, wherever the server put it, kept apart from the answer.

- Fields: ``reasoning`` (OpenRouter, Ollama, vLLM, Groq parsed), ``reasoning_content`` (llama.cpp,
  DeepSeek, LM Studio, LiteLLM, older vLLM) and ``reasoning_details[]`` (OpenRouter: ``reasoning.text``
  and ``reasoning.summary`` items; ``reasoning.encrypted`` carries no readable text), on a message
  or on a stream delta.
- Inline: ``<think>…</think>`` at the start of ``content`` (llama.cpp ``--reasoning-format none``,
  Groq ``raw``, vLLM without a parser), or only the closing ``</think>`` (DeepSeek-R1 templates end
  the prompt with ``<think>``). The thoughts move to the reasoning; an unclosed ``<think>`` at the
  start means the model never reached its answer.
- The request side: a member's ``reasoning`` setting, an effort word or a token budget, in the
  form the endpoint speaks (OpenRouter's ``reasoning`` object, or OpenAI's ``reasoning_effort``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

__all__ = ["EFFORTS", "ThinkFilter", "check_reasoning", "reasoning_of", "reasoning_params", "split_think"]

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
_OPEN = re.compile(r"\A\s*<(think|thinking)>", re.IGNORECASE)
_CLOSE = re.compile(r"</(think|thinking)>", re.IGNORECASE)


def reasoning_of(part: Any) -> str:
    """The reasoning text of a message or delta (``""`` when none).

    ``reasoning`` / ``reasoning_content`` win; ``reasoning_details`` is read only when neither is
    there (OpenRouter sends the same text in both, and it must not be counted twice).
    """
    if not isinstance(part, dict):
        return ""
    for name in ("reasoning", "reasoning_content"):
        text = part.get(name)
        if isinstance(text, str) and text:
            return text
    out = []
    for item in part.get("reasoning_details") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        text = item.get("summary") if kind == "reasoning.summary" else item.get("text")
        if kind != "reasoning.encrypted" and isinstance(text, str):
            out.append(text)
    return "".join(out)


def split_think(content: str) -> tuple[str, str, bool]:
    """``(answer, thoughts, finished)`` for content that may carry inline ``<think>`` blocks.

    ``finished`` is False when a ``<think>`` block is still open at the end (no answer yet).
    Content without the tags comes back unchanged; a ``</think>`` inside an answer that did not
    start with thoughts is left alone unless no ``<think>`` precedes it (the closing-tag-only form).
    """
    opened = _OPEN.match(content)
    closes = list(_CLOSE.finditer(content))
    if opened is None:
        if not closes or "<think" in content[: closes[0].start()].lower():
            return content, "", True
        end = closes[0]  # the template opened the block in the prompt: everything before is thought
        return content[end.end() :].lstrip(), content[: end.start()].strip(), True
    thoughts: list[str] = []
    rest = content
    while (opened := _OPEN.match(rest)) is not None:
        close = _CLOSE.search(rest, opened.end())
        if close is None:
            thoughts.append(rest[opened.end() :].strip())
            return "", "\n\n".join(t for t in thoughts if t), False
        thoughts.append(rest[opened.end() : close.start()].strip())
        rest = rest[close.end() :]
    return rest.lstrip(), "\n\n".join(t for t in thoughts if t), True


class ThinkFilter:
    """Passes streamed answer text on, holding back a leading ``<think>`` block (the live view shows
    the answer as it comes, not the thoughts). Text that does not start with the tag passes at once."""

    def __init__(self, on_delta: Callable[[str], None]) -> None:
        self.on_delta, self.mode, self.held = on_delta, "undecided", ""

    def feed(self, text: str) -> None:
        if self.mode == "plain":
            self.on_delta(text)
            return
        self.held += text
        if self.mode == "undecided":
            head = self.held.lstrip().lower()
            if head.startswith("<think>") or head.startswith("<thinking>"):
                self.mode = "thinking"
            elif not ("<think>".startswith(head) or "<thinking>".startswith(head)):
                self._release(self.held)
                return
        if self.mode == "thinking" and (close := _CLOSE.search(self.held)) is not None:
            self._release(self.held[close.end() :].lstrip())

    def _release(self, text: str) -> None:
        self.mode, self.held = "plain", ""
        if text:
            self.on_delta(text)


def check_reasoning(value: Any, what: str = "reasoning") -> str | int | None:
    "A valid reasoning setting (an effort word or a positive token budget), or `ConfigError`."
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"{what} must be an effort ({', '.join(EFFORTS)}) or a token budget, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{what} token budget must be a positive whole number, got {value}")
        return value
    word = value.strip().lower()
    if word not in EFFORTS:
        raise ConfigError(f"{what} must be an effort ({', '.join(EFFORTS)}) or a token budget, got {value!r}")
    return word


def reasoning_params(value: str | int | None, *, openrouter: bool) -> dict[str, Any]:
    """The request fields for a reasoning setting.

    OpenRouter: ``reasoning: {effort}`` or ``reasoning: {max_tokens}``. Other OpenAI-style servers
    know only ``reasoning_effort``; a token budget is sent as the nearest effort (Gemini's
    documented mapping: up to 1,024 tokens low, up to 8,192 medium, more high).
    """
    if value is None:
        return {}
    if openrouter:
        return {"reasoning": {"max_tokens": value} if isinstance(value, int) else {"effort": value}}
    if isinstance(value, int):
        value = "low" if value <= 1024 else "medium" if value <= 8192 else "high"
    return {"reasoning_effort": value}
