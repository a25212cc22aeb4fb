"""The emulator as a member asked again: cross-examination marks and a targeted round's turn.

A marks request lists numbered ``<statements>`` after the member's ``<your_answer>``; ``Reply.marks``
decides each mark: None (every statement "agree"), one mark for all (``"disagree"``), a dict from a
statement's number or a piece of its text to a mark (the rest "agree"), or a function
``(statement) -> mark``. Quotes are copied from the member's own answer ("" when not addressed).

A round request names a ``Disputed point:``; ``Reply.turn`` decides the reply: None or "rebut"
(a new argument), "concede" (with a reason), "concede_no_reason" (a concession without one), or
a dict written as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["is_marks_request", "is_round_request", "marks_answer", "round_answer"]


def _user(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            return m["content"]
    return ""


def _between(text: str, tag: str) -> str:
    found = re.search(rf"<{tag}>\n?(.*?)\n?</{tag}>", text, re.S)
    return found.group(1) if found else ""


def is_marks_request(body: dict[str, Any]) -> bool:
    text = _user(body)
    return "<statements>" in text and "<your_answer>" in text


def is_round_request(body: dict[str, Any]) -> bool:
    text = _user(body)
    return "Disputed point:" in text and "<your_answer>" in text


def _mark(policy: Any, number: str, statement: str) -> str:
    if policy is None:
        return "agree"
    if callable(policy):
        return str(policy(statement))
    if isinstance(policy, dict):
        for key, mark in policy.items():
            if str(key) == number or (len(str(key)) > 2 and str(key).lower() in statement.lower()):
                return str(mark)
        return "agree"
    return str(policy)


def marks_answer(policy: Any, body: dict[str, Any], quote_from: Callable[[str, int], str]) -> str:
    "The member's marks as JSON, one per numbered statement (``quote_from`` copies from its answer)."
    text = _user(body)
    answer = _between(text, "your_answer")
    statements = re.findall(r"^(\d+)\. (.*)$", _between(text, "statements"), re.M)
    marks = []
    for number, statement in statements:
        mark = _mark(policy, number, statement)
        quote = quote_from(answer, 10) if mark in ("agree", "disagree") else ""
        marks.append({"id": number, "mark": mark, "quote": quote})
    return json.dumps({"marks": marks}, ensure_ascii=False)


def round_answer(turn: Any, body: dict[str, Any]) -> str:
    "The member's turn in a targeted round, as JSON."
    text = _user(body)
    own = re.search(r"^Your position: (.*)$", text, re.M)
    position = own.group(1) if own else ""
    turn = turn or "rebut"
    if isinstance(turn, dict):
        return json.dumps(turn, ensure_ascii=False)
    if turn == "concede":
        other = re.search(r"^Other members' positions:\n- (.*)$", text, re.M)
        now = other.group(1) if other else "the other position"
        return json.dumps({"decision": "concede", "reason": "The other position handles the cases mine misses.",
                           "position": now})  # fmt: skip
    if turn == "concede_no_reason":
        return json.dumps({"decision": "concede", "reason": "", "position": position})
    return json.dumps({"decision": "rebut", "reason": "New evidence: in practice the measured costs favour it.",
                       "position": position})  # fmt: skip
