"""`judge="vote"`: the members' majority over short answers, with no judge call.

Each answer is reduced to a short final answer: a ``\\boxed{X}``, else the last line reading
``Answer: X`` (or ``Final answer: X``), else the whole answer when it is short (at most
`SHORT_WORDS` words). Long answers without such a line cannot be counted: the vote says so and
counts only the others (ask for a final line, e.g. "end with 'Answer: <choice>'", or use a judge).

Answers are grouped by a meaning-preserving normalisation (case, spacing, Markdown emphasis,
trailing punctuation, articles; numbers by value, so ``1,000`` = ``1000.0``; choices by letter, so
``(B)`` = ``b`` = ``Option B``; yes/true, no/false) and then by similarity (rapidfuzz) for text.
The largest group is the answer, with its agreement k/n; the groups become the analysis:
consensus when every counted member agrees, else one contradiction with each member's stance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from .._values.result import Analysis, Contradiction, PartialCoverage, Point, Quote, Response, Stance
from .outcomes import Judgement

__all__ = ["SHORT_WORDS", "Group", "group_answers", "normalise", "short_answer", "vote"]

SHORT_WORDS = 12  # an answer this short is its own final answer
SIMILAR = 90  # rapidfuzz token_sort_ratio at or above which two text answers are one answer
_BOXED = re.compile(r"\\boxed\{([^{}]{1,200})\}")
_FINAL = re.compile(
    r"^[\s>*_#-]*(?:the\s+)?(?:final\s+answer|answer)(?:\s+is)?[*_\s]*[:：=][*_\s]*(?P<a>\S.{0,200}?)\s*$", re.I | re.M
)
_MARKUP = re.compile(r"[*_`~$\"“”‘’]|\\[()\[\]]")
_NUMBER = re.compile(
    r"^(?P<sign>[-+−]?)\s*[$€£]?\s*(?P<n>\d[\d,\u00a0\u202f]*(?:\.\d+)?|\.\d+)(?:e(?P<e>[-+]?\d+))?"
    r"\s*(?P<unit>%|[a-zµ°]+\.?)?$",
    re.I,
)
_CHOICE = re.compile(r"^(?:option|choice|answer)?\s*[(\[]?(?P<c>[a-h])[)\].:]?(?:\s+.*)?$", re.I)
_LEAD = re.compile(r"^(?:so,?\s+)?(?:the\s+)?(?:final\s+|correct\s+)?answer(?:\s+is|\s*[:=])\s*|^(?:it\s+is|it's)\s+")
_YES_NO = {"yes": "yes", "true": "yes", "correct": "yes", "no": "no", "false": "no", "incorrect": "no"}


def short_answer(text: str) -> str | None:
    "The short final answer ``text`` gives, or None for a long answer without one."
    if boxed := _BOXED.findall(text):
        return boxed[-1].strip()
    if finals := list(_FINAL.finditer(text)):
        return finals[-1]["a"].strip()
    stripped = text.strip()
    if stripped and len(stripped.split()) <= SHORT_WORDS and stripped.count("\n") <= 1:
        return stripped
    return None


def normalise(answer: str) -> tuple[str, Any]:
    """(kind, key): ("number", (1000.0, unit)), ("choice", "B"), ("yes_no", "yes") or ("text", words)."""
    text = " ".join(_MARKUP.sub("", answer).split()).strip().rstrip(".!;,").strip().lower()
    text = _LEAD.sub("", text).strip() or text  # "The answer is 42" says 42
    if found := _NUMBER.match(text):
        digits = re.sub(r"[,\u00a0\u202f]", "", found["n"])
        value = float(digits) * (10 ** int(found["e"]) if found["e"] else 1)
        value = -value if found["sign"] in ("-", "−") else value
        return "number", (value, (found["unit"] or "").rstrip("."))
    first = re.split(r"[\s,.;:!]", text, maxsplit=1)[0]
    if first in _YES_NO:
        return "yes_no", _YES_NO[first]
    lettered = len(text) <= 2 or re.match(r"^(option|choice|answer|[(\[])", text) or text[1] in ").:]"
    if (found := _CHOICE.match(text)) and lettered:
        return "choice", found["c"].upper()
    words = [w for w in re.findall(r"\w+", text) if w not in ("a", "an", "the")]
    return "text", " ".join(words)


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "number":
        return a[1][1] == b[1][1] and math.isclose(a[1][0], b[1][0], rel_tol=1e-9, abs_tol=1e-12)
    if a[0] == "text":
        return a[1] == b[1] or (bool(a[1]) and fuzz.token_sort_ratio(a[1], b[1]) >= SIMILAR)
    return bool(a[1] == b[1])


@dataclass
class Group:
    """Members giving one answer: its first wording, and each member's own wording."""

    answer: str
    key: tuple[str, Any]
    members: list[str] = field(default_factory=list)
    said: dict[str, str] = field(default_factory=dict)


def group_answers(answers: Sequence[tuple[str, str]]) -> tuple[list[Group], list[str]]:
    """Group ``(member, answer text)`` pairs: the groups, largest first (ties: first seen first),
    and the members whose answer has no short final answer."""
    groups: list[Group] = []
    unreadable: list[str] = []
    for member, text in answers:
        short = short_answer(text)
        if short is None:
            unreadable.append(member)
            continue
        key = normalise(short)
        group = next((g for g in groups if _same(g.key, key)), None)
        if group is None:
            group = Group(short, key)
            groups.append(group)
        group.members.append(member)
        group.said[member] = short
    return sorted(groups, key=lambda g: -len(g.members)), unreadable


def vote(answered: Sequence[Response]) -> Judgement:
    "The vote of the ``answered`` members as a `Judgement` (no call: no judge `Response`)."
    groups, unreadable = group_answers([(r.model, r.content) for r in answered])
    n = len(answered)
    if not groups:
        why = (
            f"vote needs short answers: none of the {n} answers is short or ends with a line 'Answer: X'; "
            "ask for one (e.g. 'end with Answer: <choice>') or use a judge"
        )
        return Judgement(error=why, vote={"answer": None, "agree": 0, "of": n, "groups": [], "unreadable": unreadable})
    top = groups[0]
    k = len(top.members)
    tie = len(groups) > 1 and len(groups[1].members) == k
    # The quote is the member's own final answer, copied from it: verified when found verbatim
    # (the quote checker wants 5+ words; a final answer is often one).
    content = {r.model: r.content for r in answered}
    said = {m: g.said[m] for g in groups for m in g.members}
    quotes = {m: Quote(model=m, quote=text, verified=text in content[m]) for m, text in said.items()}
    if len(groups) == 1 and not unreadable:
        point = f"Every member answers {top.answer}."
        support = Point(point=point, members=list(quotes.values()), of=n)
        analysis = Analysis(consensus=[point], consensus_support=[support])
    else:
        stances = [
            Stance(**quotes[m].model_dump(), stance=f"The answer is {g.answer}.") for g in groups for m in g.members
        ]
        point = f"The most common answer is {top.answer} ({k}/{n})."
        majority = PartialCoverage(models=top.members, point=point, quotes=[quotes[m] for m in top.members])
        analysis = Analysis(
            contradictions=[Contradiction(topic="The answer", stances=stances)] if len(groups) > 1 else [],
            partial_coverage=[majority],
        )
    notes = [f"vote: {k}/{n} members answered {top.answer} (no judge call)"]
    if tie:
        notes.append(f"vote: a tie between {top.answer} and {groups[1].answer}; the first given is taken")
    if unreadable:
        notes.append(
            f"vote: {len(unreadable)} answer(s) have no short final answer and were not counted "
            f"({', '.join(unreadable)}); ask members to end with 'Answer: X'"
        )
    record = {
        "answer": top.answer,
        "agree": k,
        "of": n,
        "support": f"{k}/{n}",
        "agreement": f"{k}/{n}",
        "tie": tie,
        "groups": [{"answer": g.answer, "members": g.members} for g in groups],
        "unreadable": unreadable,
    }
    return Judgement(answer=top.answer, analysis=analysis, notes=tuple(notes), vote=record)
