"""The emulator as a pairwise grader: which of two answers (A, B) is better, scripted per test.

A grading request is one whose last user message holds ``<response id="A">`` and
``<response id="B">``. ``Reply.grade`` decides the verdict: "A", "B", "tie", "longer" (the
default: the longer answer wins, equal lengths tie), "shorter", or a function
``(question, answer_a, answer_b)`` returning one of "A", "B", "tie", or ``(verdict, reason)``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["grade_answer", "is_grade_request"]

_RESPONSE = re.compile(r'<response id="([AB])">\n?(.*?)\n?</response>', re.S)
_QUESTION = re.compile(r"<question>\n?(.*?)\n?</question>", re.S)


def _user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return ""


def is_grade_request(body: dict[str, Any]) -> bool:
    "True when the request asks which of two responses, A or B, is better."
    found = {m.group(1) for m in _RESPONSE.finditer(_user_text(body))}
    return found == {"A", "B"}


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<")


def grade_answer(policy: Any, body: dict[str, Any], json_valid: bool = True) -> str:
    "The grader's reply text for this request under ``policy`` (see the module docstring)."
    text = _user_text(body)
    answers = {m.group(1): _unescape(m.group(2)) for m in _RESPONSE.finditer(text)}
    question = _unescape(m.group(1)) if (m := _QUESTION.search(text)) else ""
    a, b = answers.get("A", ""), answers.get("B", "")
    policy = "longer" if policy is None else policy
    if callable(policy):
        decided = policy(question, a, b)
    elif policy in ("longer", "shorter"):
        longer = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"
        decided = longer if policy == "longer" or longer == "tie" else ("B" if longer == "A" else "A")
    else:
        decided = policy
    winner, reason = decided if isinstance(decided, tuple) else (decided, "")
    if winner not in ("A", "B", "tie"):
        raise ValueError(f"a scripted grade must be 'A', 'B' or 'tie', got {winner!r}")
    reason = reason or ("Neither answer is clearly better." if winner == "tie" else f"Answer {winner} is better.")
    if not json_valid:
        return f"I think it is a matter of taste; {reason}"
    return json.dumps({"reason": reason, "winner": winner})
