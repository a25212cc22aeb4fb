"""Ask every panel member concurrently: cache, fallbacks, per-member deadline, quorum.

A member's failure is data (a `Response` with status and a one-line error); only the
deliberation as a whole decides what the failures mean.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._cache import cache_key
from ._client import Billing, Completion
from ._config import Member
from ._context import RunContext
from ._errors import ProviderError
from ._outcomes import PanelCancelled, PanelOutcome
from ._pricing import ModelPrice, cost_from_tokens, find_price
from ._result import Response

__all__ = ["ask", "ask_panel", "is_cached", "merge_calls"]


async def ask(
    ctx: RunContext,
    member: Member,
    messages: list[dict[str, Any]],
    *,
    key: str | None = None,
    accept: Callable[[str], bool] | None = None,
    deadline: float | None = None,
    billing: Billing | None = None,
    **params: Any,
) -> tuple[Response, Completion | None]:
    """One member's answer: from the cache, else from its model, else from its fallbacks.

    ``accept`` decides whether an answer is good enough to cache (and to take from the cache).
    ``deadline`` (loop clock) stops retries that could not finish in time. Calls that were billed
    but not kept (an empty answer, a failed fallback) are added to ``billing`` as they happen and
    to the returned `Response`'s cost and tokens.
    """
    billing = billing if billing is not None else Billing()
    key = key or member.name
    params = _params(ctx, member, params)
    errors: list[str] = []
    status_code: int | None = None
    tracker = ctx.tracker
    ctx.note(key, state="waiting")
    for model in member.models:
        ckey = cache_key(ctx.endpoint.cache_base, model, messages, params)
        hit = ctx.cache.get(ckey, hit=False) if ctx.cache is not None and not ctx.refresh else None
        if hit is not None and (accept is None or accept(hit.get("content", ""))):
            ctx.cache.record_hit(ckey)  # type: ignore[union-attr]
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
                **params,
            )
        except ProviderError as exc:
            errors.append(str(exc))
            status_code = exc.status_code
            if len(member.models) > 1:
                ctx.note(key, state="retrying", note=f"{model} failed, trying the next fallback")
            continue
        response = _response(member.name, model, done, ctx.price_list)
        if ctx.cache is not None and (accept is None or accept(response.content)):
            ctx.cache.put(ckey, _record(response, done), secrets=ctx.client.secrets())
        billing.onto(response)
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
    return billing.onto(Response(member.name, status="failed", error=reason, status_code=status_code)), None


def _params(ctx: RunContext, member: Member, params: dict[str, Any]) -> dict[str, Any]:
    "The request parameters of one member's call: the call's, then these, then the member's own."
    merged = {**ctx.params, **params}
    if member.temperature is not None:
        merged["temperature"] = member.temperature
    return merged


def is_cached(ctx: RunContext, member: Member, messages: list[dict[str, Any]], **params: Any) -> bool:
    "True when `ask` would answer this member's first model from the cache (without counting a hit)."
    if ctx.cache is None or ctx.refresh:
        return False
    key = cache_key(ctx.endpoint.cache_base, member.model, messages, _params(ctx, member, params))
    return ctx.cache.get(key, hit=False) is not None


def _response(name: str, model: str, done: Completion, prices: Mapping[str, ModelPrice]) -> Response:
    cost, estimated = done.cost_usd, False
    if cost is None and (price := find_price(prices, model)) is not None:
        cost = cost_from_tokens(price, done.prompt_tokens or 0, done.completion_tokens or 0)
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
    )


async def ask_panel(
    ctx: RunContext,
    panel: tuple[Member, ...],
    messages_for: dict[str, list[dict[str, Any]]],
    *,
    timeout: float | None,
    quorum: int | None,
) -> PanelOutcome:
    """All members concurrently; one `Response` per member, in panel order.

    A member past ``timeout`` is cancelled and reported; once ``quorum`` members have
    answered, the rest are cancelled and reported. If the caller is cancelled (an interrupt),
    in-flight calls are cancelled too and `PanelCancelled` (an `asyncio.CancelledError`)
    carries every member's `Response` so far.
    """
    billed = {m.name: Billing() for m in panel}  # what each member was billed for answers not kept
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout

    async def guarded(member: Member) -> Response:
        asked = ask(ctx, member, messages_for[member.name], deadline=deadline, billing=billed[member.name])
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
    )
