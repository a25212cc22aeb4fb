"""Grading for `Fusion.compare`: reference scorers, the pairwise LLM grader, and the Wilson interval.

With references, a scorer ``(answer, reference) -> float in [0, 1]`` grades every answer;
`exact_match` and `contains` ship built in (both compare normalised text: case, punctuation,
articles and spacing do not count).

Without references, an LLM grader compares the fused answer with each baseline's answer, twice:
once with the fused answer first (as "A") and once with it second, so a grader that favours a
position cancels out. Ties are allowed. The two verdicts give one outcome per prompt: a win when
fusion wins both or wins one and ties the other, a loss likewise, a tie otherwise (an
inconsistent pair is a tie).
"""

from __future__ import annotations

import json
import math
import re
import string
import unicodedata
from collections.abc import Callable
from typing import Any

from .._values.interval import wilson

__all__ = [
    "SCORERS",
    "contains",
    "exact_match",
    "grade_format",
    "grade_messages",
    "normalize",
    "outcome",
    "parse_grade",
    "wilson",
]

Scorer = Callable[[str, Any], float]


# -- reference scorers -------------------------------------------------------------------------------
def normalize(text: Any) -> str:
    "Lower case, no accents' combining marks, no punctuation, no articles (a, an, the), single spaces."
    text = unicodedata.normalize("NFKD", str(text)).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = "".join(" " if c in string.punctuation or unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def exact_match(answer: str, reference: Any) -> float:
    "1.0 when the normalised answer equals the normalised reference, else 0.0."
    return float(normalize(answer) == normalize(reference))


def contains(answer: str, reference: Any) -> float:
    "1.0 when the normalised reference appears in the normalised answer as whole words, else 0.0."
    ref = normalize(reference)
    return float(bool(ref) and f" {ref} " in f" {normalize(answer)} ")


SCORERS: dict[str, Scorer] = {"exact": exact_match, "exact_match": exact_match, "contains": contains}


def check_score(value: Any) -> float:
    "The score as a float in [0, 1]; `ValueError` for anything else (bool counts as 0 or 1)."
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"a score must be a number between 0 and 1, got {value!r}") from None
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"a score must be a number between 0 and 1, got {value!r}")
    return score


# -- the pairwise grader -----------------------------------------------------------------------------
INSTRUCTIONS = """\
You compare two answers to the same question. The question is inside the question tag; the two \
answers are inside response tags with the ids A and B.
Decide which answer is better for the person who asked: correct first, then complete, clear and \
useful. Ignore which answer comes first and how long each is. Say "tie" when neither is clearly \
better.
Reply with ONE JSON object and nothing else: {"reason": "<one or two sentences>", "winner": "A" | "B" | "tie"}."""

SCHEMA_NAME = "fusion_pairwise_grade"


def grade_format() -> dict[str, Any]:
    "The structured-output request for one pairwise verdict (reason first, so it is thought out)."
    schema = {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "description": "why, in one or two sentences"},
            "winner": {"type": "string", "enum": ["A", "B", "tie"]},
        },
        "required": ["reason", "winner"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema}}


def _defang(text: str) -> str:
    # An answer must not close its own tag and pose as the other answer.
    return re.sub(r"</?\s*(response|question)\b", lambda m: m.group(0).replace("<", "&lt;"), text, flags=re.I)


def grade_messages(question: str, first: str, second: str) -> list[dict[str, str]]:
    "The grader's messages: ``first`` is shown as answer A, ``second`` as answer B."
    user = (
        f"<question>\n{_defang(question)}\n</question>\n\n"
        f'<response id="A">\n{_defang(first)}\n</response>\n\n'
        f'<response id="B">\n{_defang(second)}\n</response>'
    )
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": user}]


_WINNER = re.compile(r"""["']?winner["']?\s*[:=]\s*["']?\s*(?:response\s+|answer\s+)?(A|B|tie|draw)\b""", re.I)
_TIE = {"tie", "draw", "equal", "neither", "both"}


def parse_grade(text: str) -> tuple[str, str]:
    """``("A" | "B" | "tie", reason)`` from the grader's reply; `ValueError` when no verdict is readable."""
    body = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", body, re.S)
    if fence:
        body = fence.group(1).strip()
    start, end = body.find("{"), body.rfind("}")
    data: Any = None
    if start != -1 and end > start:
        try:
            data = json.loads(body[start : end + 1], strict=False)
        except ValueError:
            data = None
    if isinstance(data, dict):
        winner = _label(data.get("winner"))
        if winner:
            return winner, str(data.get("reason") or "").strip()
    match = _WINNER.search(text)
    if match:
        return _label(match.group(1)) or "tie", ""
    raise ValueError("no verdict in the grader's reply (expected JSON with winner A, B or tie)")


def _label(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    word = re.sub(r"^(response|answer)\s+", "", value.strip().strip("\"'[]()."), flags=re.I)
    if word.upper() in ("A", "B"):
        return word.upper()
    return "tie" if word.lower() in _TIE else None


def outcome(points: list[float]) -> str | None:
    """One prompt's outcome from fusion's points per order (1 win, 0.5 tie, 0 loss): win, tie or loss.

    Both orders agree, or one wins and the other ties: that side wins. A win and a loss (the
    grader followed the position, not the answers) is a tie. No verdict at all: None.
    """
    if not points:
        return None
    mean = sum(points) / len(points)
    return "win" if mean > 0.5 else "loss" if mean < 0.5 else "tie"
