"""Ablation: what each member, and each judge, contributes to a result's analysis and answer.

One row per ablation: each answered member left out (the judge reads the others' answers), and
each judge of ``judges=[...]`` reading them all. Only judge calls are paid (cached like any call):
the panel's answers come from the result. Each row says which analysis items are lost (found
with everyone, not without) or gained, and how similar the answer stays (rapidfuzz, 0 to 1).
A member's influence is how much the answer and the analysis change without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz

from .._engine.outcomes import Judgement
from .._judge.diff import compare_analyses
from .._values.result import FusionResult, Response

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMNS", "ablation_frame", "ablations", "influence_line", "row_of"]

COLUMNS = [
    "ablation",
    "kind",
    "member",
    "judge",
    "lost",
    "gained",
    "items_lost",
    "items_gained",
    "answer_similarity",
    "influence",
    "cost_usd",
    "cached",
    "error",
]
Judge = Callable[[Sequence[Response], str | None], Awaitable[Judgement]]


def _text(section: str, item: Any) -> str:
    for name in ("topic", "point", "insight"):
        if isinstance(value := getattr(item, name, None), str):
            return f"{section}: {value}"
    return f"{section}: {item}"


def row_of(
    result: FusionResult, judged: Judgement, *, kind: str, member: str | None, judge: str | None
) -> dict[str, Any]:
    "One ablation's row: items lost and gained against ``result``, the answer's similarity, the cost."
    calls = [c for c in (judged.judge, *judged.jury) if c is not None]
    row: dict[str, Any] = {
        "ablation": f"without {member}" if kind == "leave-one-out" else f"judge {judge}",
        "kind": kind,
        "member": member,
        "judge": judge,
        "cost_usd": sum(c.cost_usd or 0.0 for c in calls),
        "cached": bool(calls) and all(c.cached for c in calls),
        "error": judged.error,
        "calls": calls,  # for the ledger; not a column
    }
    if not judged.ok:
        return row | {"lost": None, "gained": None, "items_lost": [], "items_gained": [], "answer_similarity": None}
    diff = compare_analyses(result.analysis, judged.analysis)  # type: ignore[arg-type]
    lost = [_text(s, i) for s, items in diff.only_a.items() for i in items]
    gained = [_text(s, i) for s, items in diff.only_b.items() for i in items]
    similarity = round(fuzz.ratio(result.answer or "", judged.answer or "") / 100, 3)
    total = max(1, sum(map(len, diff.only_a.values())) + sum(len(p) for p in diff.both.values()))
    row |= {"lost": len(lost), "gained": len(gained), "items_lost": lost, "items_gained": gained}
    row["answer_similarity"] = similarity
    if kind == "leave-one-out":  # half the answer's change, half the share of the analysis lost
        row["influence"] = round((1 - similarity) / 2 + len(lost) / total / 2, 3)
    return row


async def ablations(result: FusionResult, judge: Judge, judges: Sequence[str]) -> list[dict[str, Any]]:
    "Every ablation's row, concurrently: each member left out, then each of ``judges``."
    answered = [r for r in result.responses if r.ok]
    jobs: list[tuple[str, str | None, str | None, Awaitable[Judgement]]] = []
    if len(answered) > 1:
        for r in answered:
            rest = [x for x in answered if x is not r]
            jobs.append(("leave-one-out", r.model, None, judge(rest, None)))
    for name in judges:
        jobs.append(("judge", None, name, judge(answered, name)))
    done = await asyncio.gather(*(job for *_, job in jobs))
    return [row_of(result, j, kind=k, member=m, judge=n) for (k, m, n, _), j in zip(jobs, done, strict=True)]


def influence_line(rows: list[dict[str, Any]]) -> str:
    "Per-member influence in one line, most influential first."
    members = sorted((r for r in rows if r.get("influence") is not None), key=lambda r: -r["influence"])
    if not members:
        return "influence: nothing to compare (fewer than two members answered, or the judge failed)"
    return "influence (0 = none, 1 = everything changes without it): " + " · ".join(
        f"{r['member']} {r['influence']:.2f}" for r in members
    )


def ablation_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    "The rows as a DataFrame; the one-line influence summary in ``frame.attrs['influence']``."
    import pandas as pd

    frame = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], columns=COLUMNS)
    frame.attrs["influence"] = influence_line(rows)
    return frame
