"""Cost guards before sending: estimate at the run context's prices (loaded with it), refuse.

One run, a `map` batch and `compare` all check their estimate here, with the same rules: no prices
is fatal only under a budget; a model without a price is refused only by a server that prices
others (OpenRouter, a proxy of it, bills the rest too; llama.cpp or Ollama bill nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .._base.config import Member, check_prompt
from .._base.errors import BudgetError, ConfigError
from .context import RunContext
from .deliberation import panel_messages
from .method_costs import methods_estimate
from .panel import is_cached
from .pricing import Estimate, ModelPrice, count_tokens, estimate, find_price
from .run_settings import RunSettings

__all__ = ["check_batch", "check_context", "check_unknown", "estimate_run", "guard_run", "load_prices"]


def load_prices(ctx: RunContext, *, budget: float | None, flag: str = "max_cost") -> bool:
    """True when ``ctx`` has the endpoint's prices; False when they could not be had (a
    `BudgetError` instead when a ``budget`` needs them)."""
    if ctx.prices is not None:
        return True
    if budget is not None:
        raise BudgetError(f"cannot check {flag}: model prices unavailable ({ctx.prices_error})")
    return False


def estimate_run(fusion: RunSettings, ctx: RunContext, prompt: str) -> Estimate:
    "What one deliberation of ``prompt`` is expected to cost at ``ctx``'s prices."
    prices = ctx.price_list
    models = [m.model for m in fusion.panel] + ([fusion.tool] if fusion.tool else [])
    est = estimate(count_tokens(prompt), models, fusion.judge.model, prices, max_tokens=fusion.max_tokens)
    if fusion.jury:  # every further judge and the chair's synthesis are estimated too
        from .jury import extra_estimate

        extra, unknown = extra_estimate(count_tokens(prompt), models, fusion.jury, prices, max_tokens=fusion.max_tokens)
        est.total, est.unknown = est.total + extra, list(dict.fromkeys([*est.unknown, *unknown]))
    if fusion.vote:  # no judge call
        est.total -= est.judge[1] or 0.0
    if fusion.cross_examine or fusion.rounds > 1:  # the members asked again (and the judge, for a round)
        extra, unknown = methods_estimate(
            fusion, prompt, prices, examine=fusion.cross_examine, resolve=fusion.rounds > 1
        )
        est.total, est.unknown = est.total + extra, list(dict.fromkeys([*est.unknown, *unknown]))
    return est


def check_unknown(ctx: RunContext, unknown: Iterable[str], flag: str = "max_cost") -> None:
    "Refuse models without a price on a server that prices others."
    names = sorted(set(unknown)) if not isinstance(unknown, list) else list(unknown)
    priced = ctx.endpoint.is_openrouter or any(p.known for p in ctx.price_list.values())
    if names and priced:
        raise BudgetError(
            f"cannot estimate the cost of {', '.join(names)} (not in /models); drop {flag} or choose listed models"
        )


def guard_run(fusion: RunSettings, ctx: RunContext, prompt: str) -> float | None:
    "The run's estimate (None without prices); `BudgetError` over the `Fusion`'s ``max_cost``."
    if not load_prices(ctx, budget=fusion.max_cost, flag="--max-cost"):
        return None
    check_context(fusion, prompt, ctx.price_list)
    est = estimate_run(fusion, ctx, prompt)
    if fusion.max_cost is not None:
        check_unknown(ctx, est.unknown, "--max-cost")
        if est.total > fusion.max_cost:
            floor = " at least" if fusion.toolset else ""  # tool calls would add requests
            raise BudgetError(
                f"estimated cost{floor} ${est.total:.4f} exceeds --max-cost ${fusion.max_cost:g}; nothing was sent"
            )
    return est.total


def check_context(fusion: RunSettings, prompt: str, prices: Mapping[str, ModelPrice]) -> None:
    """Raise `ConfigError` when the prompt cannot fit a model's context (from ``/models``): sending it
    would be refused at best, and billed at worst. Unknown contexts are not checked."""
    seats = [(m, f"panel member {m.name}", m.system if m.system is not None else fusion.system) for m in fusion.panel]
    seats.append((fusion.judge, "the judge", None))  # it reads the prompt plus every answer
    if fusion.tool:
        seats.append((Member(fusion.tool), "the --tool primary", fusion.system))
    for member, role, system in seats:
        need = count_tokens(prompt) + count_tokens(system or "")
        for model in member.models:
            price = find_price(prices, model)
            if price is not None and price.context_length and need > price.context_length:
                who = role if model == member.name else f"{role}, model {model}"
                raise ConfigError(
                    f"the prompt is about {need:,} tokens, more than the {price.context_length:,}-token "
                    f"context of {model} ({who}); shorten it or choose another model; nothing was sent"
                )


def check_batch(fusion: RunSettings, ctx: RunContext, prompts: Iterable[object], max_cost: float | None) -> None:
    """Refuse a batch, before anything is sent, when what is not cached would cost over ``max_cost``
    (a prompt whose panel answers are all cached costs nothing: its judge is cached with them)."""
    if not load_prices(ctx, budget=max_cost, flag="the batch max_cost") or max_cost is None:
        return
    total, unknown = 0.0, set()
    for item in prompts:
        try:
            prompt = check_prompt(item)
        except ConfigError:
            continue  # that row fails on its own, costing nothing
        if all(is_cached(ctx, m, panel_messages(fusion, m, prompt)) for m in fusion.panel):
            continue
        est = estimate_run(fusion, ctx, prompt)
        total += est.total
        unknown.update(est.unknown)
    check_unknown(ctx, unknown)
    if total > max_cost:
        floor = " at least" if fusion.toolset else ""  # tool calls would add requests
        raise BudgetError(
            f"estimated cost of the batch{floor} ${total:.4f} exceeds max_cost ${max_cost:g}; nothing was sent"
        )
