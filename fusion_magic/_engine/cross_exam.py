"""Cross-examination: each member marks the judge's consensus and the items about the others.

A judge's consensus is its assertion. Here each member that answered is shown, without names, the
consensus points and the analysis items about the other members (their stances, insights and the
points only others covered), and marks each ``agree`` / ``disagree`` / ``not addressed`` with a
short quote from its own answer (structured output, negotiated like the judge's). Consensus
support is then counted from the members' own marks (k/n); a point a member disputes is a false
consensus, flagged in the views, ``analysis.to_frame()``, ``result.to_frame()`` and ``to_dict()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from .._base.config import Member
from .._judge.evidence import locate
from .._values.result import FusionResult, Quote, Response
from .context import RunContext
from .structured import ask_json, defang, objects_in

__all__ = ["MARKS", "examine", "items_for", "read_marks"]

MARKS = ("agree", "disagree", "not addressed")
_SYNONYMS = {
    "agree": "agree", "agrees": "agree", "yes": "agree", "support": "agree", "supports": "agree", "true": "agree",
    "disagree": "disagree", "disagrees": "disagree", "no": "disagree", "dispute": "disagree",
    "disputes": "disagree", "contradicts": "disagree", "false": "disagree",
    "not addressed": "not addressed", "unaddressed": "not addressed", "n/a": "not addressed", "na": "not addressed",
    "not mentioned": "not addressed", "neutral": "not addressed", "none": "not addressed", "unclear": "not addressed",
}  # fmt: skip
SYSTEM = """\
You answered the question below; your answer is shown. A judge then summarised a panel of answers, \
yours among them. For each numbered statement, say whether YOUR answer agrees with it, disagrees \
with it, or does not address it, and copy a short quote (5 to 25 words) from YOUR answer that shows \
it (an empty quote when not addressed). Judge only by what your answer says. Reply with ONE JSON \
object and nothing else: {"marks": [{"id": "1", "mark": "agree" | "disagree" | "not addressed", \
"quote": "..."}]}, one entry per statement."""


def items_for(result: FusionResult, member: str) -> list[dict[str, Any]]:
    "What ``member`` is asked to mark: every consensus point, and the items about the other members."
    analysis = result.analysis
    items: list[dict[str, Any]] = [
        {"section": "consensus", "index": i, "text": text, "about": []} for i, text in enumerate(analysis.consensus)
    ]
    for i, c in enumerate(analysis.contradictions):
        items += [
            {"section": "contradictions", "index": i, "text": f"On {c.topic}: {s.stance}", "about": [s.model]}
            for s in c.stances
            if s.model != member
        ]
    for i, p in enumerate(analysis.partial_coverage):
        if member not in p.models:
            items.append({"section": "partial_coverage", "index": i, "text": p.point, "about": list(p.models)})
    for i, u in enumerate(analysis.unique_insights):
        if u.model != member:
            items.append({"section": "unique_insights", "index": i, "text": u.insight, "about": [u.model]})
    for n, item in enumerate(items, 1):
        item["id"] = str(n)
    return items


def _schema(ids: list[str]) -> dict[str, Any]:
    mark = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "enum": ids},
            "mark": {"type": "string", "enum": list(MARKS)},
            "quote": {"type": "string"},
        },
        "required": ["id", "mark", "quote"],
        "additionalProperties": False,
    }
    marks = {"type": "array", "items": mark}
    return {"type": "object", "properties": {"marks": marks}, "required": ["marks"], "additionalProperties": False}


def _mark_word(value: Any) -> str | None:
    word = re.sub(r"[\s_-]+", " ", str(value or "")).strip().lower().rstrip(".")
    return _SYNONYMS.get(word)


def read_marks(text: str, ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """``{id: (mark, quote)}`` from a reply (list of marks, or ``{id: mark}``); None when no mark is readable."""
    for found in objects_in(text):
        entries = found.get("marks", found)
        if isinstance(entries, dict):  # {"1": "agree", ...} or {"1": {"mark": ..., "quote": ...}}
            entries = [{"id": k, **(v if isinstance(v, dict) else {"mark": v})} for k, v in entries.items()]
        if not isinstance(entries, list):
            continue
        marks: dict[str, tuple[str, str]] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            ident = str(entry.get("id", "")).strip().strip("#.")
            mark = _mark_word(entry.get("mark") or entry.get("verdict") or entry.get("status"))
            if ident in ids and mark is not None and ident not in marks:
                quote = entry.get("quote")
                marks[ident] = (mark, quote.strip() if isinstance(quote, str) else "")
        if marks:
            return marks
    return None


def _messages(question: str, answer: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    listed = "\n".join(f"{i['id']}. {defang(' '.join(str(i['text']).split()))}" for i in items)
    body = (
        f"<question>\n{defang(question)}\n</question>\n\n<your_answer>\n{defang(answer)}\n</your_answer>\n\n"
        f"<statements>\n{listed}\n</statements>"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]


async def _examine_one(
    ctx: RunContext, seat: Member, result: FusionResult, answer: Response, timeout: float | None
) -> tuple[list[dict[str, Any]], list[Response]]:
    items = items_for(result, answer.model)
    if not items:
        return [], []
    ids = [i["id"] for i in items]
    marks, calls = await ask_json(
        ctx,
        seat,
        _messages(result.prompt, answer.content, items),
        name="fusion_marks",
        schema=_schema(ids),
        read=lambda text: read_marks(text, ids),
        key=f"{answer.model} (marks)",
        timeout=timeout,
        params={"temperature": 0.0},
    )
    rows = []
    for item in items:
        mark, quote = (marks or {}).get(item["id"], (None, ""))
        verified = bool(quote) and locate(quote, answer.content) is not None
        rows.append({"member": answer.model, **{k: v for k, v in item.items() if k != "id"}, "mark": mark,
                     "quote": quote, "verified": verified})  # fmt: skip
    return rows, [dataclasses.replace(c, model=f"{c.model} (marks)") for c in calls]


async def examine(
    ctx: RunContext, panel: dict[str, Member], result: FusionResult, timeout: float | None
) -> FusionResult:
    "``result`` with each answered member's marks, consensus counted from them, and the calls made."
    answered = [r for r in result.responses if r.ok]
    done = await asyncio.gather(
        *(
            _examine_one(ctx, panel.get(r.model) or Member(r.served_by or r.model, name=r.model), result, r, timeout)
            for r in answered
        )  # fmt: skip
    )
    rows = [row for member_rows, _ in done for row in member_rows]
    calls = [call for _, member_calls in done for call in member_calls]
    points = []
    for i in range(len(result.analysis.consensus)):
        marked = [r for r in rows if r["section"] == "consensus" and r["index"] == i]
        agree = [
            Quote(model=r["member"], quote=r["quote"], verified=r["verified"]) for r in marked if r["mark"] == "agree"
        ]
        against = [
            Quote(model=r["member"], quote=r["quote"], verified=r["verified"])
            for r in marked
            if r["mark"] == "disagree"
        ]
        old = result.analysis.items("consensus")[i]
        points.append(
            old.model_copy(update={"members": agree, "of": len(answered), "marked": True, "disputed_by": against})
        )
    analysis = result.analysis.model_copy(update={"consensus_support": points})
    silent = sorted({r["member"] for r in rows if r["mark"] is None})
    notes = [f"cross-examined: {len(answered)} members marked {len(rows)} items; consensus support is their own marks"]
    notes += [
        f"false consensus: “{p.point}” disputed by {', '.join(q.model for q in p.disputed_by)}"
        for p in points
        if p.false_consensus
    ]
    if silent:
        notes.append(f"cross-examination: no readable marks from {', '.join(silent)}")
    return dataclasses.replace(
        result,
        analysis=analysis,
        marks=rows,
        method_calls=[*result.method_calls, *calls],
        notes=[*result.notes, *notes],
    )
