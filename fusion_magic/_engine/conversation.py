"""A conversation in OpenAI's message shape, as a deliberation sees it.

The last user message is the question. The turns before it are context: every panel member
sees them (plain text turns only: tool calls and tool results belong to the client that made
them), and the judge reads them as a preface to the question.
"""

from __future__ import annotations

from typing import Any

from .._base.errors import ConfigError

__all__ = ["judge_question", "panel_context", "question_index", "text_of"]

_PLAIN_ROLES = ("system", "developer", "user", "assistant")
_PREFACE_LIMIT = 4000  # characters of earlier turns shown to the judge (the newest are kept)


def text_of(content: Any) -> str:
    "The text of a message content: a string, or a list of parts whose text parts are joined."
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def question_index(messages: list[Any]) -> int:
    "The index of the last user message with text; `ConfigError` when there is none or a message is malformed."
    if not isinstance(messages, list) or not messages:
        raise ConfigError("messages must be a non-empty list of {role, content} objects")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ConfigError(f"messages[{i}] must be an object with a role")
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user" and text_of(messages[i].get("content")).strip():
            return i
    raise ConfigError("no user message with text: the last user message is the question")


def panel_context(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    "The plain text turns of ``messages`` (system, user, assistant text), safe to send to any model."
    turns = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role in _PLAIN_ROLES and text_of(content).strip():
            turns.append({"role": role, "content": content})
    return turns


def judge_question(question: str, context: list[dict[str, Any]]) -> str:
    "The question as the judge reads it: the earlier turns (newest kept when long), then the question."
    lines = [f"{m['role']}: {' '.join(text_of(m['content']).split())}" for m in context]
    if not lines:
        return question
    preface = "\n".join(lines)
    if len(preface) > _PREFACE_LIMIT:
        preface = "…" + preface[-_PREFACE_LIMIT:]
    return f"Conversation so far:\n{preface}\n\nQuestion:\n{question}"
