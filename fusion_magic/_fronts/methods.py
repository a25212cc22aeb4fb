"""`FusionResult.cross_examine()`, `resolve()` and `ablate()`: blocking calls over a finished result.

Each reaches the `Fusion` that made the result (or one rebuilt from a saved result, see
`fusion_magic._fronts.origin`), opens a run context (cache, prices for ``max_cost``), refuses before
sending when the estimate exceeds ``max_cost``, and records what it spent in the session ledger.
Cross-examination and the round return a new result (the original is left as it was).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._base.errors import BudgetError, ConfigError
from .._engine.budget import check_unknown, load_prices
from .._engine.context import RunContext, open_context
from .._engine.deliberation import judge_answers
from .._engine.method_costs import calls_cost
from .._engine.method_steps import examine_step, guard_method, resolve_step
from .._engine.nesting import nested, refuse_nesting, sync_caller
from .._engine.pricing import count_tokens
from .._engine.runner import on_background, run_sync
from .._studies.ablation import ablation_frame, ablations
from .._values.result import FusionResult, Response
from .origin import fusion_for

if TYPE_CHECKING:
    import pandas as pd

    from .._fusion import Fusion

__all__ = ["ablate", "cross_examine", "resolve"]

T = TypeVar("T")


def _blocking(fusion: Fusion, step: Callable[[RunContext], Awaitable[T]]) -> T:
    async def go() -> T:
        ctx = await open_context(fusion.run_settings(), None, prices=fusion.max_cost is not None)
        try:
            return await step(ctx)
        finally:
            ctx.close()

    async def guarded() -> T:
        refuse_nesting()
        return await on_background(nested(go()))

    with sync_caller():
        return run_sync(guarded())


def _recorded(fusion: Fusion, result: FusionResult) -> FusionResult:
    result._fusion = fusion  # type: ignore[attr-defined]  # for follow_up() and further methods
    fusion.ledger.record_fusion(result)  # only the calls not counted yet: the method's
    return result


def cross_examine(result: FusionResult, **settings: Any) -> FusionResult:
    """A new result: each member marked the consensus points and the items about the others
    (agree / disagree / not addressed, with a quote from its own answer); consensus support is
    counted from those marks and a disputed point is flagged as a false consensus."""
    fusion = fusion_for(result, **settings)

    async def step(ctx: RunContext) -> FusionResult:
        settings = fusion.run_settings()
        guard_method(settings, ctx, result, examine=True, resolve=False)
        return await examine_step(ctx, settings, result)

    return _recorded(fusion, _blocking(fusion, step))


def resolve(result: FusionResult, **settings: Any) -> FusionResult:
    """A new result after one targeted round: the members of each contradiction concede (with a
    reason) or rebut, and the judge updates the analysis; ``rounds`` says who moved."""
    fusion = fusion_for(result, **settings)

    async def step(ctx: RunContext) -> FusionResult:
        settings = fusion.run_settings()
        guard_method(settings, ctx, result, examine=False, resolve=True)
        return await resolve_step(ctx, settings, result)

    return _recorded(fusion, _blocking(fusion, step))


def ablate(result: FusionResult, judges: Sequence[str] | None = None, **settings: Any) -> pd.DataFrame:
    """One row per ablation: each member left out, and each judge of ``judges``; items lost and
    gained, answer similarity, influence (``frame.attrs["influence"]``: one line). Judge calls only."""
    if isinstance(judges, str):
        judges = [j.strip() for j in judges.split(",") if j.strip()]
    judges = list(judges or [])
    if result.status not in ("ok", "partial"):
        raise ConfigError(f"ablate() needs the judge's analysis; this result is {result.status!r}")
    fusion = fusion_for(result, **settings)
    seats = {name: fusion.derive(judge=name, judges=None).run_settings() for name in judges}  # a bad id fails here
    own = fusion.run_settings()

    async def step(ctx: RunContext) -> list[dict[str, Any]]:
        _guard(fusion, ctx, result, [(s.judge.model if not s.vote else None) for s in seats.values()])

        async def judge(responses: Sequence[Response], name: str | None) -> Any:
            return await judge_answers(
                ctx, seats[name] if name else own, responses, result.prompt, history=result.history
            )

        return await ablations(result, judge, judges)

    rows = _blocking(fusion, step)
    for row in rows:
        for call in row["calls"]:
            fusion.ledger.record_response(call, purpose="ablation", label=row["ablation"])
    return ablation_frame(rows)


def _guard(fusion: Fusion, ctx: RunContext, result: FusionResult, swaps: list[str | None]) -> None:
    if fusion.max_cost is None or not load_prices(ctx, budget=fusion.max_cost, flag="--max-cost"):
        return
    reading = count_tokens(result.prompt) + sum(count_tokens(r.content) for r in result.responses) + 700
    answered = sum(r.ok for r in result.responses)
    own = None if fusion.vote else fusion.judge.model
    calls = [(own, reading, 1200)] * answered + [(j, reading, 1200) for j in swaps]
    total, unknown = calls_cost([c for c in calls if c[0] is not None], ctx.price_list)  # type: ignore[misc]
    check_unknown(ctx, unknown, "--max-cost")
    if total > fusion.max_cost:
        raise BudgetError(f"estimated cost ${total:.4f} exceeds --max-cost ${fusion.max_cost:g}; nothing was sent")
