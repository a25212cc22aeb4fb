"""What `Fusion.compare` settles before anything is sent: checked inputs and the batch estimate.

A mistake in the prompts, references, baselines or grader is one `ConfigError` line; a batch
whose new part would cost more than ``max_cost`` is one `BudgetError` line. Either way nothing
has been sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .._base.config import Member, check_prompt, parse_members
from .._base.errors import BudgetError, ConfigError
from .._engine.budget import check_unknown, estimate_run, load_prices
from .._engine.context import RunContext
from .._engine.deliberation import panel_messages
from .._engine.panel import is_cached
from .._engine.pricing import JUDGE_OVERHEAD_TOKENS, cost_from_tokens, count_tokens, estimate, find_price
from .._engine.run_settings import RunSettings
from . import grading
from .compare_methods import Approach, approaches

__all__ = ["Plan", "estimate_batch", "estimate_line", "make_plan"]

GRADER_OUT_TOKENS = 150  # a reason and a verdict


@dataclasses.dataclass
class Plan:
    """The checked inputs of one comparison."""

    prompts: list[str]
    labels: list[Any]
    references: list[Any] | None
    baselines: tuple[Member, ...]
    mode: str  # reference | pairwise | none
    scorer: Callable[[str, Any], Any] | None
    grader: Member | None
    grader_name: str | None
    concurrency: int
    max_cost: float | None
    methods: tuple[Approach, ...] = ()  # "vote", "model*3", "fusion+cross-examine" (see compare_methods)

    @property
    def names(self) -> list[str]:
        "Every approach but fusion, as the comparison lists them: single models, then methods."
        return [m.name for m in self.baselines] + [a.name for a in self.methods]


# -- checking the inputs --------------------------------------------------------------------------
def make_plan(
    fusion: RunSettings,
    prompts: Any,
    baselines: Any,
    *,
    reference: Any = None,
    grader: Any = None,
    concurrency: int = 8,
    max_cost: float | None = None,
) -> Plan:
    from .._base.settings import setting

    texts, labels = _sequence(prompts, "prompts")
    if not texts:
        raise ConfigError("compare() needs at least one prompt")
    for label, text in zip(labels, texts, strict=True):
        try:
            check_prompt(text)
        except ConfigError as exc:
            raise ConfigError(f"prompt {label!r}: {exc}") from None
    references = None
    if reference is not None:
        references, _ = _sequence(reference, "reference")
        if len(references) != len(texts):
            raise ConfigError(f"reference has {len(references)} entries for {len(texts)} prompts; give one each")
    methods: list[Approach] = []
    if baselines is not None:
        if isinstance(baselines, str):  # "m1,m2*3,vote", as --baselines gives it
            listed: list[Any] = [b.strip() for b in baselines.split(",") if b.strip()]
        else:
            listed = [baselines] if isinstance(baselines, Member) else list(baselines)
        baselines, methods = approaches(fusion, listed)
        if not baselines and not methods:
            raise ConfigError("baselines is empty; name at least one model or method to compare with")
    members = fusion.panel if baselines is None else _baselines(fusion, baselines) if baselines else ()
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive whole number, got {concurrency!r}")
    setting("max_cost").check(max_cost)
    mode, scorer, judge, name = _grading(fusion, references is not None, grader)
    return Plan(
        [t.strip() for t in texts],
        labels,
        references,
        members,
        mode,
        scorer,
        judge,
        name,
        concurrency,
        max_cost,
        tuple(methods),
    )


def _sequence(values: Any, what: str) -> tuple[list[Any], list[Any]]:
    "The items and their labels (a Series keeps its index) of a list-like input."
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None and isinstance(values, pd.DataFrame):
        raise ConfigError(f"compare() takes one column as {what}, e.g. df['question']")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{what} must be a list or a column of text, got {type(values).__name__}")
    items = list(values)
    labels = list(values.index) if pd is not None and isinstance(values, pd.Series) else list(range(len(items)))
    return [_plain(v) for v in items], [_plain(v) for v in labels]


def _plain(value: Any) -> Any:
    "A JSON-ready copy of a label or reference (numpy scalars become Python numbers, the rest text)."
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _baselines(fusion: RunSettings, baselines: Any) -> tuple[Member, ...]:
    if isinstance(baselines, (str, Member)):
        baselines = [baselines] if isinstance(baselines, Member) else baselines
    members = parse_members(baselines, what="baselines", openrouter=fusion.strict_ids)
    if not members:
        raise ConfigError("baselines is empty; name at least one model to compare with")
    names = [m.name for m in members]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"baseline {name!r} is listed twice")
    return members


def _grading(fusion: RunSettings, has_reference: bool, grader: Any) -> tuple[str, Any, Member | None, str | None]:
    if has_reference:
        if grader is None:
            return "reference", grading.contains, None, "contains"
        if callable(grader):
            return "reference", grader, None, getattr(grader, "__name__", type(grader).__name__)
        if isinstance(grader, str) and grader in grading.SCORERS:
            return "reference", grading.SCORERS[grader], None, grader
        raise ConfigError(
            "with reference=, grader is a scorer: 'exact', 'contains' or a function "
            "(answer, reference) -> score in [0, 1]"
        )
    if grader is False or grader == "none":
        return "none", None, None, None
    if callable(grader) or grader in grading.SCORERS:
        raise ConfigError("a scorer needs expected answers: pass reference=[...] (one per prompt)")
    if grader is None or grader == "judge":
        return "pairwise", None, fusion.judge, fusion.judge.name
    if isinstance(grader, (str, Member)):
        (member,) = parse_members([grader], what="grader", openrouter=fusion.strict_ids)
        return "pairwise", None, member, member.name
    raise ConfigError(f"grader must be 'judge', a model id, a scorer or None, got {type(grader).__name__}")


# -- the batch estimate ------------------------------------------------------------------------------
async def estimate_batch(
    fusion: RunSettings, call: RunContext, plan: Plan
) -> tuple[float | None, float | None, list[str]]:
    """(everything, the part not in the cache) in USD; `BudgetError` when that part exceeds max_cost.

    A deliberation counts as new when a panel answer is not cached; a baseline when its answer
    is not; a grader call when either answer it reads is new (its own key depends on them).
    """
    if not load_prices(call, budget=plan.max_cost):
        return None, None, []
    total = new = 0.0
    unknown: set[str] = set()
    grader_price = find_price(call.price_list, plan.grader.model) if plan.grader else None
    for prompt in plan.prompts:
        tokens = count_tokens(prompt)
        models = [m.model for m in fusion.panel]
        fused = estimate(tokens, models, fusion.judge.model, call.price_list, max_tokens=fusion.max_tokens)
        solo = estimate(
            tokens, [m.model for m in plan.baselines], fusion.judge.model, call.price_list, max_tokens=fusion.max_tokens
        )
        unknown.update(fused.unknown, (m for m, c in solo.members if c is None))
        fused_new = not all(is_cached(call, m, panel_messages(fusion, m, prompt)) for m in fusion.panel)
        total += fused.total
        new += fused.total if fused_new else 0.0
        for member, (_, cost) in zip(plan.baselines, solo.members, strict=True):
            base_new = not is_cached(call, member, panel_messages(fusion, member, prompt))
            total += cost or 0.0
            if member not in fusion.panel:  # a panel member's answer is paid for once, by the deliberation
                new += (cost or 0.0) if base_new else 0.0
            if plan.grader is not None:
                reads = tokens + 2 * solo.completion_tokens + JUDGE_OVERHEAD_TOKENS // 2
                grade = 2 * (cost_from_tokens(grader_price, reads, GRADER_OUT_TOKENS) or 0.0)
                total += grade
                new += grade if fused_new or base_new else 0.0
        for approach in plan.methods:  # a method is a deliberation of its own
            run = estimate_run(approach.fusion, call, prompt)
            unknown.update(run.unknown)
            method_new = not all(
                is_cached(call, m, panel_messages(approach.fusion, m, prompt)) for m in approach.fusion.panel
            )
            grade = 0.0
            if plan.grader is not None:
                reads = tokens + 2 * fused.completion_tokens + JUDGE_OVERHEAD_TOKENS // 2
                grade = 2 * (cost_from_tokens(grader_price, reads, GRADER_OUT_TOKENS) or 0.0)
            total += run.total + grade
            new += run.total + grade if method_new else 0.0
    if plan.grader is not None and grader_price is None:
        unknown.add(plan.grader.model)
    if plan.max_cost is not None:
        check_unknown(call, unknown)
        if new > plan.max_cost:
            raise BudgetError(
                f"estimated cost {_usd(new)} of what is not cached yet exceeds max_cost "
                f"${plan.max_cost:g}; nothing was sent"
            )
    return total, new, sorted(unknown)


def estimate_line(fusion: RunSettings, plan: Plan, total: float | None, new: float | None, unknown: list[str]) -> str:
    "The batch estimate as one line, shown before anything is sent."
    n, k = len(plan.prompts), len(plan.names)
    what = f"{n} prompt{'s' * (n != 1)} × ({fusion.preset_label} fusion + {k} baseline{'s' * (k != 1)})"
    if plan.mode == "pairwise":
        what += f" + {2 * n * k} grader calls"
    if total is None or new is None:
        return f"compare: {what}: cost unknown (the endpoint lists no prices)"
    text = f"compare: {what}: about {_usd(new)} to pay now"
    if total > new:
        text += f" ({_usd(total - new)} more is already cached)"
    if unknown:
        text += f"; price unknown for {', '.join(unknown)}"
    return text


def _usd(value: float | None) -> str:
    from .._render.facts import fmt_cost

    return fmt_cost(value)
