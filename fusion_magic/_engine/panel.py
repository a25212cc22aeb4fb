"""Ask every panel member concurrently: cache, fallbacks, per-member deadline, quorum.

A member's failure is data (a `Response` with status and a one-line error); only the
deliberation as a whole decides what the failures mean.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .._base.config import Member
from .._base.errors import ProviderError
from .._values.result import Response
from .cache import cache_key
from .client import Billing, Completion
from .context import RunContext
from .outcomes import PanelCancelled, PanelOutcome
from .pricing import ModelPrice, cost_from_tokens, count_tokens, find_price
from .toolset import first_step

__all__ = ["SAMPLE_TEMPERATURE", "ask", "ask_panel", "is_cached", "merge_calls"]

SAMPLE_TEMPERATURE = 0.7  # a `model*N` sample's temperature when none is set


async def ask(
    ctx: RunContext,
    member: Member,
    messages: list[dict[str, Any]],
    *,
    key: str | None = None,
    accept: Callable[[str], bool] | None = None,
    deadline: float | None = None,
    billing: Billing | None = None,
    note_done: bool = True,
    key_extra: Mapping[str, Any] | None = None,
    **params: Any,
) -> tuple[Response, Completion | None]:
    """One member's answer: from the cache, else from its model, else from its fallbacks.

    ``accept`` decides whether an answer is good enough to cache (and to take from the cache).
    ``key_extra`` is part of the cache key but not of the request (a tool's data fingerprint);
    without ``note_done`` the caller reports the call's end (one step of a tool loop).
    ``deadline`` (loop clock) stops retries that could not finish in time. Calls that were billed
    but not kept (an empty answer, a failed fallback) are added to ``billing`` as they happen and
    to the returned `Response`'s cost and tokens.
    """
    billing = billing if billing is not None else Billing()
    key = key or member.name
    params = _params(ctx, member, params)
    errors: list[str] = []
    status_code: int | None = None
    last: ProviderError | None = None
    tracker = ctx.tracker
    ctx.note(key, state="waiting")
    for model in member.models:
        sent = _fitted(ctx, model, messages, params)
        ckey = cache_key(ctx.endpoint.cache_base, model, messages, _keyed(member, {**sent, **(key_extra or {})}))
        hit = ctx.cache.get(ckey, hit=False) if ctx.cache is not None and not ctx.refresh else None
        if hit is not None and hit.get("status", "ok") != "ok":
            hit = None  # a marked partial answer (an old cache's filtered one) is never served as complete
        if hit is not None and (accept is None or accept(hit.get("content", ""))):
            ctx.cache.record_hit(ckey)  # type: ignore[union-attr]
            if note_done:
                ctx.note(key, state="cached", latency_s=0.0, tokens=hit.get("completion_tokens"))
            return _from_cache(member.name, hit), Completion(
                content=hit.get("content", ""), tool_calls=hit.get("tool_calls") or []
            )
        try:
            done = await ctx.client.chat(
                model,
                messages,
                stream=ctx.stream,
                on_delta=(lambda text: tracker.delta(key, text)) if tracker else None,
                on_retry=(lambda why: ctx.note(key, state="retrying", note=why, chars=0, chunks=0)),
                deadline=deadline,
                billing=billing,
                **sent,
            )
        except ProviderError as exc:
            errors.append(str(exc))
            status_code, last = exc.status_code, exc
            billing.settle(_pricer(ctx, model))
            if len(member.models) > 1:
                ctx.note(key, state="retrying", note=f"{model} failed, trying the next fallback", chars=0, chunks=0)
            continue
        response = _response(member.name, model, done, ctx.price_list, free=ctx.client.endpoint.free)
        if ctx.cache is not None and (accept is None or accept(response.content)):
            ctx.cache.put(ckey, _record(response, done), secrets=ctx.client.secrets())
        billing.settle(_pricer(ctx, model))
        billing.onto(response)
        if note_done:
            ctx.note(
                key,
                state="done",
                latency_s=response.latency_s,
                cost_usd=response.cost_usd,
                tokens=response.completion_tokens,
            )
        return response, done
    reason = " | ".join(errors)
    ctx.note(key, state="failed", note=reason)
    failed = Response(member.name, status="failed", error=reason, status_code=status_code)
    if last is not None and last.outcome:
        _take_outcome(failed, last)
    return billing.onto(failed), None


def _take_outcome(response: Response, error: ProviderError) -> None:
    "The last model's outcome (refused, filtered...) as the member's status, with what it did say."
    response.status = error.outcome  # type: ignore[assignment]
    done = error.partial
    if isinstance(done, Completion):
        response.content = done.content  # a filtered partial answer: kept, marked by the status
        response.reasoning, response.reasoning_tokens = done.reasoning, done.reasoning_tokens
        response.finish_reason, response.served_by = done.finish_reason, done.served_model


def _pricer(ctx: RunContext, model: str) -> Callable[[int, int], float | None]:
    "Prices tokens billed without a cost at ``model``'s list price (free on the user's own machine)."
    price = find_price(ctx.price_list, model)
    if ctx.client.endpoint.free:
        return lambda prompt, completion: 0.0
    return lambda prompt, completion: cost_from_tokens(price, prompt, completion)


def _params(ctx: RunContext, member: Member, params: dict[str, Any]) -> dict[str, Any]:
    "The request parameters of one member's call: the call's, then these, then the member's own."
    merged = {**ctx.params, **params}
    if member.temperature is not None:
        merged["temperature"] = member.temperature
    if member.sample and merged.get("temperature") is None:
        merged["temperature"] = SAMPLE_TEMPERATURE  # N samples of one model at 0 would be N copies
    if member.reasoning is not None:
        merged["reasoning"] = member.reasoning
    return merged


def _keyed(member: Member, params: dict[str, Any]) -> dict[str, Any]:
    "The params a cache key is made of: a sample's index too (never sent), so each sample is its own entry."
    return {**params, "fusion_sample": member.sample} if member.sample else params


def is_cached(ctx: RunContext, member: Member, messages: list[dict[str, Any]], **params: Any) -> bool:
    "True when `ask` would answer this member's first model from the cache (without counting a hit)."
    if ctx.cache is None or ctx.refresh:
        return False
    step, extra = first_step(ctx.tools)
    sent = _fitted(ctx, member.model, messages, _params(ctx, member, {**step, **params}))
    key = cache_key(ctx.endpoint.cache_base, member.model, messages, _keyed(member, {**sent, **extra}))
    return ctx.cache.get(key, hit=False) is not None


def _fitted(ctx: RunContext, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with ``max_tokens`` lowered to what ``model`` can write, when its listing says so.

    The default (16000, room for reasoning) exceeds some models' output limit or context; a server
    refuses such a request outright. The limits come from ``/models`` (``top_provider.max_completion_tokens``,
    and the context minus a generous estimate of the prompt); unknown limits leave it as it is.
    """
    wanted, price = params.get("max_tokens"), find_price(ctx.price_list, model)
    if not isinstance(wanted, int) or price is None:
        return params
    top = price.raw.get("top_provider")
    caps = [top.get("max_completion_tokens")] if isinstance(top, dict) else []
    if price.context_length:
        caps.append(price.context_length - count_tokens(json.dumps(messages, ensure_ascii=False)) * 5 // 4 - 64)
    known = [c for c in caps if isinstance(c, int) and not isinstance(c, bool) and c > 0]
    return {**params, "max_tokens": min(known)} if known and min(known) < wanted else params


def _response(
    name: str, model: str, done: Completion, prices: Mapping[str, ModelPrice], *, free: bool = False
) -> Response:
    cost, estimated = done.cost_usd, False
    price = find_price(prices, model)
    if cost is None and free:
        cost = 0.0  # the local model: nothing to pay
    elif cost is None and price is not None and price.free:
        cost, estimated = 0.0, True
    elif cost is None and price is not None and done.prompt_tokens is not None and done.completion_tokens is not None:
        # Without token counts (`"usage": null`) there is nothing to price: unknown, never $0.
        cost = cost_from_tokens(price, done.prompt_tokens, done.completion_tokens)
        estimated = cost is not None
    return Response(
        model=name,
        content=done.content,
        latency_s=round(done.latency_s, 4),
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        cost_usd=cost,
        cost_estimated=estimated,
        served_by=done.served_model or model,
        sources=list(done.sources),
        reasoning=done.reasoning,
        reasoning_tokens=done.reasoning_tokens,
        finish_reason=done.finish_reason,
    )


def _record(response: Response, done: Completion) -> dict[str, Any]:
    return {
        "content": response.content,
        "served_by": response.served_by,
        "latency_s": response.latency_s,
        "prompt_tokens": response.prompt_tokens,
        "completion_tokens": response.completion_tokens,
        "cost_usd": response.cost_usd,
        "finish_reason": done.finish_reason,
        "reasoning": response.reasoning,
        "reasoning_tokens": response.reasoning_tokens,
        "tool_calls": done.tool_calls,
        "sources": response.sources,
        "created_at": time.time(),
    }


def _from_cache(name: str, hit: dict[str, Any]) -> Response:
    # A cache hit costs nothing now; what it cost when first paid is what it saves.
    return Response(
        model=name,
        content=hit.get("content", ""),
        latency_s=0.0,
        prompt_tokens=hit.get("prompt_tokens"),
        completion_tokens=hit.get("completion_tokens"),
        cost_usd=0.0,
        cached=True,
        served_by=hit.get("served_by"),
        saved_usd=hit.get("cost_usd") or 0.0,
        first_latency_s=hit.get("latency_s"),
        sources=list(hit.get("sources") or []),
        reasoning=str(hit.get("reasoning") or ""),
        reasoning_tokens=hit.get("reasoning_tokens"),
        finish_reason=hit.get("finish_reason"),
    )


async def ask_panel(
    ctx: RunContext,
    panel: tuple[Member, ...],
    messages_for: dict[str, list[dict[str, Any]]],
    *,
    timeout: float | None,
    quorum: int | None,
    asker: Callable[..., Awaitable[tuple[Response, Completion | None]]] | None = None,
) -> PanelOutcome:
    """All members concurrently; one `Response` per member, in panel order.

    A member past ``timeout`` is cancelled and reported; once ``quorum`` members have
    answered, the rest are cancelled and reported. If the caller is cancelled (an interrupt),
    in-flight calls are cancelled too and `PanelCancelled` (an `asyncio.CancelledError`)
    carries every member's `Response` so far. ``asker`` asks one member (default `ask`; the
    tool loop's `fusion_magic._engine.toolloop.ask_member` when members have tools).
    """
    asker = asker or ask
    billed = {m.name: Billing() for m in panel}  # what each member was billed for answers not kept
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout

    async def guarded(member: Member) -> Response:
        asked = asker(ctx, member, messages_for[member.name], deadline=deadline, billing=billed[member.name])
        try:
            response, _ = await asyncio.wait_for(asked, timeout)
            return response
        except asyncio.TimeoutError:
            ctx.note(member.name, state="timed_out", note=f"no answer within {timeout:g}s")
            late = Response(member.name, status="timed_out", error=f"no answer within {timeout:g}s (cancelled)")
            return billed[member.name].onto(late)

    tasks = {asyncio.ensure_future(guarded(m)): m for m in panel}
    done_responses: dict[str, Response] = {}
    why_cancelled = "interrupted"
    interrupted = False
    try:
        pending = set(tasks)
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                response = task.result()
                done_responses[response.model] = response
            if quorum and sum(r.ok for r in done_responses.values()) >= quorum and pending:
                why_cancelled = f"cancelled: quorum of {quorum} reached"
                break
    except asyncio.CancelledError:
        interrupted = True
    finally:
        leftovers = [t for t in tasks if not t.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        for task, member in tasks.items():
            if member.name not in done_responses:
                if task.done() and not task.cancelled() and task.exception() is None:
                    done_responses[member.name] = task.result()
                else:
                    ctx.note(member.name, state="cancelled", note=why_cancelled)
                    cancelled = Response(member.name, status="cancelled", error=why_cancelled)
                    done_responses[member.name] = billed[member.name].onto(cancelled)
    responses = tuple(done_responses[m.name] for m in panel)
    if interrupted:
        raise PanelCancelled(responses)
    return PanelOutcome(responses)


def merge_calls(name: str, calls: list[Response]) -> Response:
    "One `Response` summing several calls of one seat (a judge re-ask, a tool round trip)."
    last = calls[-1]

    def total(attr: str) -> Any:
        values = [getattr(c, attr) for c in calls if getattr(c, attr) is not None]
        return sum(values) if values else None

    return Response(
        model=name,
        content=last.content,
        status=last.status,
        error=last.error,
        latency_s=total("latency_s"),
        prompt_tokens=total("prompt_tokens"),
        completion_tokens=total("completion_tokens"),
        cost_usd=total("cost_usd"),
        cached=all(c.cached for c in calls),
        served_by=last.served_by,
        cost_estimated=any(c.cost_estimated for c in calls),
        saved_usd=sum(c.saved_usd for c in calls),
        first_latency_s=total("first_latency_s"),
        status_code=last.status_code,
        reasoning=last.reasoning,
        reasoning_tokens=last.reasoning_tokens,
        finish_reason=last.finish_reason,
    )
