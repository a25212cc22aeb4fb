"""The deliberation methods as steps over a result, on an open run context: cross-examination and
a targeted round (used by ``%%fusion --cross-examine / --rounds 2`` inside a run, and by
`FusionResult.cross_examine` / `resolve` after one).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .._base.errors import BudgetError, ConfigError
from .._values.result import FusionResult
from .budget import check_unknown, load_prices
from .context import RunContext
from .cross_exam import examine
from .deliberation import judge_answers
from .method_costs import methods_estimate
from .rounds import run_round, turns_needed

if TYPE_CHECKING:
    from .run_settings import RunSettings

__all__ = ["after_run", "examine_step", "guard_method", "resolve_step"]


def guard_method(fusion: RunSettings, ctx: RunContext, result: FusionResult, *, examine: bool, resolve: bool) -> None:
    "Refuse (`BudgetError`, nothing sent) when the method's estimate exceeds the `Fusion`'s ``max_cost``."
    if fusion.max_cost is None or not load_prices(ctx, budget=fusion.max_cost, flag="--max-cost"):
        return
    total, unknown = methods_estimate(fusion, result.prompt, ctx.price_list, examine=examine, resolve=resolve)
    check_unknown(ctx, unknown, "--max-cost")
    if total > fusion.max_cost:
        raise BudgetError(f"estimated cost ${total:.4f} exceeds --max-cost ${fusion.max_cost:g}; nothing was sent")


def _usable(result: FusionResult, what: str) -> None:
    if not any(r.ok for r in result.responses):
        raise ConfigError(f"{what} needs panel answers; this result has none")
    if result.status not in ("ok", "partial"):
        raise ConfigError(f"{what} needs the judge's analysis; this result is {result.status!r} (rejudge it first)")


async def examine_step(ctx: RunContext, fusion: RunSettings, result: FusionResult) -> FusionResult:
    "``result`` cross-examined by its members."
    _usable(result, "cross_examine()")
    panel = {m.name: m for m in fusion.panel}
    return await examine(ctx, panel, result, fusion.timeout)


async def resolve_step(ctx: RunContext, fusion: RunSettings, result: FusionResult) -> FusionResult:
    "``result`` after one targeted round on its contradictions and the judge's update."
    _usable(result, "resolve()")
    if not turns_needed(result):
        return dataclasses.replace(result, notes=[*result.notes, "round 2: no contradiction to resolve"])
    panel = {m.name: m for m in fusion.panel}
    rounds, calls, revised = await run_round(ctx, panel, result, fusion.timeout)
    judgement = await judge_answers(ctx, fusion, revised, result.prompt, history=result.history)
    judge_calls = [
        dataclasses.replace(c, model=f"{c.model} (round 2)") for c in (judgement.judge, *judgement.jury) if c
    ]
    moved = sum(len(r["moved"]) for r in rounds)
    notes = [f"round 2: {len(calls)} turns on {len(rounds)} contradiction(s); {moved} member(s) moved"]
    changes: dict = {"rounds": rounds, "method_calls": [*result.method_calls, *calls, *judge_calls]}
    if judgement.ok:
        changes |= {"analysis": judgement.analysis, "answer": judgement.answer, "judge_order": list(judgement.order)}
        changes["vote"] = judgement.vote if result.vote is not None else None
    else:
        notes.append(f"round 2: the judge could not update the analysis ({judgement.error}); the first one is kept")
    return dataclasses.replace(result, notes=[*result.notes, *notes], **changes)


async def after_run(ctx: RunContext, fusion: RunSettings, result: FusionResult) -> FusionResult:
    "The methods a `Fusion` asks for in the run itself (``rounds=2``, ``cross_examine=True``), in that order."
    if result.status not in ("ok", "partial"):
        return result
    if fusion.rounds > 1:
        result = await resolve_step(ctx, fusion, result)
    if fusion.cross_examine:
        result = await examine_step(ctx, fusion, result)
    return result
