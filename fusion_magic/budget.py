"""Cost guards before sending: load the endpoint's prices once per run context, estimate, refuse.

One run, a `map` batch and `compare` all check their estimate here, with the same rules: no prices
is fatal only under a budget; a model without a price is refused only by a server that prices
others (OpenRouter, a proxy of it, bills the rest too; llama.cpp or Ollama bill nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .config import Member, check_prompt
from .errors import BudgetError, ConfigError
from .panel import Call, is_cached
from .pricing import Estimate, ModelPrice, count_tokens, estimate, find_price, load_models

if TYPE_CHECKING:
    from .pipeline import Fusion

__all__ = ["check_batch", "check_context", "check_unknown", "estimate_run", "guard_run", "load_prices"]


async def load_prices(call: Call, *, budget: float | None, flag: str = "max_cost") -> bool:
    """Fill ``call.prices`` from the endpoint's ``/models`` unless already there; False when they
    cannot be had (a `BudgetError` instead when a ``budget`` needs them)."""
    if call.prices:
        return True
    try:
        call.prices = await load_models(call.client.http, call.client.endpoint.base_url, call.client.headers())
    except Exception as exc:  # noqa: BLE001 - no prices is not fatal unless a budget needs them
        if budget is not None:
            raise BudgetError(f"cannot check {flag}: model prices unavailable ({exc})") from None
        return False
    return True


def estimate_run(fusion: Fusion, call: Call, prompt: str) -> Estimate:
    "What one deliberation of ``prompt`` is expected to cost at ``call.prices``."
    models = [m.model for m in fusion.panel] + ([fusion.tool] if fusion.tool else [])
    est = estimate(count_tokens(prompt), models, fusion.judge.model, call.prices, max_tokens=fusion.max_tokens)
    if fusion.jury:  # every further judge and the chair's synthesis are estimated too
        from .jury import extra_estimate

        extra, unknown = extra_estimate(
            count_tokens(prompt), models, fusion.jury, call.prices, max_tokens=fusion.max_tokens
        )
        est.total, est.unknown = est.total + extra, list(dict.fromkeys([*est.unknown, *unknown]))
    return est


def check_unknown(call: Call, unknown: Iterable[str], flag: str = "max_cost") -> None:
    "Refuse models without a price on a server that prices others."
    names = sorted(set(unknown)) if not isinstance(unknown, list) else list(unknown)
    priced = call.client.endpoint.is_openrouter or any(p.known for p in call.prices.values())
    if names and priced:
        raise BudgetError(
            f"cannot estimate the cost of {', '.join(names)} (not in /models); drop {flag} or choose listed models"
        )


async def guard_run(fusion: Fusion, call: Call, prompt: str) -> float | None:
    "The run's estimate (None without prices); `BudgetError` over the `Fusion`'s ``max_cost``."
    if not await load_prices(call, budget=fusion.max_cost, flag="--max-cost"):
        return None
    check_context(fusion, prompt, call.prices)
    est = estimate_run(fusion, call, prompt)
    if fusion.max_cost is not None:
        check_unknown(call, est.unknown, "--max-cost")
        if est.total > fusion.max_cost:
            raise BudgetError(
                f"estimated cost ${est.total:.4f} exceeds --max-cost ${fusion.max_cost:g}; nothing was sent"
            )
    return est.total


def check_context(fusion: Fusion, prompt: str, prices: dict[str, ModelPrice]) -> None:
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


async def check_batch(fusion: Fusion, call: Call, prompts: Iterable[object], max_cost: float | None) -> None:
    """Refuse a batch, before anything is sent, when what is not cached would cost over ``max_cost``
    (a prompt whose panel answers are all cached costs nothing: its judge is cached with them)."""
    if not await load_prices(call, budget=max_cost, flag="the batch max_cost") or max_cost is None:
        return
    total, unknown = 0.0, set()
    for item in prompts:
        try:
            prompt = check_prompt(item)
        except ConfigError:
            continue  # that row fails on its own, costing nothing
        if all(is_cached(call, m, fusion._messages(m, prompt)) for m in fusion.panel):
            continue
        est = estimate_run(fusion, call, prompt)
        total += est.total
        unknown.update(est.unknown)
    check_unknown(call, unknown)
    if total > max_cost:
        raise BudgetError(f"estimated cost of the batch ${total:.4f} exceeds max_cost ${max_cost:g}; nothing was sent")
