"""What the deliberation methods add to a run's cost, estimated before sending (for ``max_cost``).

Cross-examination asks every member once more (its answer and the analysis in, a list of marks
out); a targeted round asks the members of each contradiction once and the judge again. The
estimates use the same rough token counts and `/models` prices as a run's own estimate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .pricing import ModelPrice, cost_from_tokens, count_tokens, find_price

if TYPE_CHECKING:
    from .run_settings import RunSettings

__all__ = ["ANSWER_TOKENS", "calls_cost", "cross_exam_calls", "methods_estimate", "round_calls"]

ANSWER_TOKENS = 600  # what a member is expected to write (as in `fusion_magic._engine.pricing.estimate`)
_INSTRUCTIONS = 250  # the method's own instructions and the listed items


def calls_cost(calls: Sequence[tuple[str, int, int]], prices: Mapping[str, ModelPrice]) -> tuple[float, list[str]]:
    "USD for ``(model, prompt tokens, completion tokens)`` calls, and the models without a price."
    total, unknown = 0.0, []
    for model, prompt, completion in calls:
        cost = cost_from_tokens(find_price(prices, model), prompt, completion)
        if cost is None:
            unknown.append(model)
        total += cost or 0.0
    return total, unknown


def cross_exam_calls(prompt_tokens: int, members: Sequence[str]) -> list[tuple[str, int, int]]:
    "One call per member: the question, its answer and the items in; a few marks out."
    return [(m, prompt_tokens + ANSWER_TOKENS + _INSTRUCTIONS, 300) for m in members]


def round_calls(prompt_tokens: int, members: Sequence[str], judge: str | None) -> list[tuple[str, int, int]]:
    "One call per member holding a stance (at worst every member), then the judge reading all again."
    calls = [(m, prompt_tokens + ANSWER_TOKENS + _INSTRUCTIONS, 200) for m in members]
    if judge is not None:
        calls.append((judge, prompt_tokens + len(members) * (ANSWER_TOKENS + 100) + 700, 2 * ANSWER_TOKENS))
    return calls


def methods_estimate(
    fusion: RunSettings, prompt: str, prices: Mapping[str, ModelPrice], *, examine: bool, resolve: bool
) -> tuple[float, list[str]]:
    "The estimated extra cost of the methods asked for on ``prompt``, and the models without a price."
    members = [m.model for m in fusion.panel]
    calls = cross_exam_calls(count_tokens(prompt), members) if examine else []
    if resolve:
        calls += round_calls(count_tokens(prompt), members, None if fusion.vote else fusion.judge.model)
    return calls_cost(calls, prices)
