"""How one chat request is answered on the wire: JSON, SSE, and each scripted failure mode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import dialects, wire
from .plan import Plan
from .replies import Reply, prompt_text, split_pieces

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["Exchange", "LoggedRequest", "complete", "error", "prepare", "replay", "respond", "stream"]

Charge = Callable[[str, float], None]


@dataclass
class LoggedRequest:
    """One request as the emulator saw it; secret headers read "REDACTED"."""

    path: str
    model: str | None
    body: dict[str, Any]
    headers: dict[str, str]  # lower-case names
    t_start: float  # time.monotonic()
    t_end: float | None = None
    status: int | None = None  # None: no response was started (hang, or the client left first)
    cancelled: bool = False  # the client disconnected before the response was complete


@dataclass
class Exchange:
    """One request in flight: what came in, its log entry, and the response once started."""

    request: web.Request
    rec: LoggedRequest
    resp: web.StreamResponse | None = None
    spec: bool = False  # answer in OpenAI's shapes (see `dialects`)


def dumps(obj: Any) -> bytes:
    "Compact JSON, as OpenRouter sends it."
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


async def _forever() -> None:
    await asyncio.get_running_loop().create_future()


async def _wait(resp: web.StreamResponse | None, seconds: float, every: float, beat: bytes) -> None:
    """Sleep `seconds` against an absolute deadline, writing `beat` every `every` s if streaming."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        if resp is None or every <= 0 or left <= every:
            await asyncio.sleep(left)
            return
        await asyncio.sleep(every)
        await resp.write(beat)


async def _flush(resp: web.StreamResponse, out: bytearray) -> None:
    if out:
        data = bytes(out)
        out.clear()
        await resp.write(data)


def _cut(ex: Exchange) -> None:
    # close() flushes what was written, then sends FIN mid-body: the client sees a truncated response.
    if ex.request.transport is not None:
        ex.request.transport.close()


def respond(ex: Exchange, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> web.Response:
    "A complete response with exactly these bytes."
    from aiohttp import web

    ex.rec.status = status
    return web.Response(status=status, body=body, headers={"Content-Type": ctype, **(headers or {})})


def error(
    ex: Exchange,
    status: int,
    model: str = "",
    *,
    message: str | None = None,
    retry_after: float | str | None = None,
    provider: str = "",
) -> web.Response:
    "An OpenRouter error JSON; pre-stream errors are JSON even for stream requests."
    body = wire.error_body(
        status,
        model=model,
        provider=provider or (wire.provider_for(model) if model else ""),
        message=message,
        flagged=prompt_text(ex.rec.body.get("messages") or []),
    )
    headers = {"Retry-After": dialects.retry_after_value(retry_after)} if retry_after is not None else {}
    if ex.spec:
        body = dialects.openai_error(status, str(body["error"]["message"]))
    return respond(ex, status, dumps(body), "application/json", headers)


async def prepare(
    ex: Exchange, ctype: str, *, length: int | None = None, extra: dict[str, str] | None = None
) -> web.StreamResponse:
    "Send the 200 headers now; the body follows piece by piece."
    from aiohttp import web

    resp = web.StreamResponse(status=200, headers={"Content-Type": ctype, **(extra or {})})
    if length is not None:
        resp.content_length = length
    ex.resp = resp
    await resp.prepare(ex.request)
    ex.rec.status = 200
    return resp


def raw_cost(raw: bytes) -> float | None:
    """usage.cost inside a recorded body (JSON or SSE), so replays are charged like live answers."""
    text = raw.decode("utf-8", "replace")
    docs = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")] or [text]
    cost = None
    for doc in docs:
        try:
            usage = json.loads(doc).get("usage") or {}
        except (ValueError, AttributeError):
            continue
        if isinstance(usage.get("cost"), (int, float)):
            cost = float(usage["cost"])
    return cost


async def replay(ex: Exchange, model: str, reply: Reply, charge: Charge) -> web.StreamResponse:
    "Send recorded bytes verbatim with the scripted status."
    await asyncio.sleep(reply.latency)
    raw = reply.raw or b""
    guess = "text/event-stream" if raw.lstrip()[:5] in (b"data:", b": OPE") else "application/json"
    after = reply.retry_after
    headers = {"Retry-After": dialects.retry_after_value(after)} if after is not None else {}
    resp = respond(ex, reply.status, raw, reply.raw_content_type or guess, headers)
    if reply.status < 400 and (cost := raw_cost(raw)) is not None:
        charge(model, cost)
    return resp


async def stream(ex: Exchange, plan: Plan, charge: Charge) -> web.StreamResponse:
    "Answer as SSE: keep-alives while waiting, paced content chunks, finish, usage, [DONE]."
    r, g = plan.reply, plan.gen
    resp = await prepare(
        ex,
        "text/event-stream",
        extra={
            "Cache-Control": "no-cache",
            "X-Generation-Id": g.id,
            "Access-Control-Expose-Headers": "X-Generation-Id,X-Provider-Name,cf-ray",
        },
    )
    await resp.write(wire.KEEPALIVE)
    await _wait(resp, r.latency, r.keepalive, wire.KEEPALIVE)
    if r.malformed:
        await resp.write(wire.sse(wire.chunk(g, "")))
        await resp.write(b'data: {"id":"' + g.id.encode() + b'","choices":[{"delta":{"content":"trun\n\n')
        await resp.write(wire.DONE)
        return resp
    pieces = split_pieces(plan.text)[: r.filter_after]  # a filter stops the answer after N pieces
    events = [*plan.reasoning_chunks(), *map(plan.text_chunk, pieces), *wire.tool_call_chunks(g, plan.tool_calls)]
    out = bytearray()  # chunks due at the same moment go out in one write: cheap under heavy load
    if r.usage_layout == "separate" and not plan.tool_calls:
        out += plan.sse(wire.chunk(g, ""))  # the 2025 recordings open with an empty delta
    n = len(events)
    err_at = (n + 1) // 2 if r.midstream_error is not None else None
    step = plan.completion_tokens / max(n, 1) / r.tokens_per_s if r.tokens_per_s else 0.0
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(n + 1):
        if i in (r.stall_after, r.cut_after, err_at) or (i < n and t0 + i * step > loop.time()):
            await _flush(resp, out)
        if i == r.stall_after:
            await _forever()
        if i == r.cut_after:
            _cut(ex)
            return resp
        if i == err_at:
            usage = plan.usage("".join(pieces[:i]), cost=r.cost if r.cost is not None else 0.0)
            await resp.write(plan.sse(wire.chunk(g, "", usage=usage, error=plan.midstream_error())))
            charge(plan.model, usage["cost"])
            await resp.write(wire.DONE)
            return resp
        if i == n:
            break
        if (delay := t0 + i * step - loop.time()) > 0:
            await asyncio.sleep(delay)
        out += plan.sse(events[i])
    usage = plan.usage("".join(pieces) if r.filter_after is not None else None, cost=r.cost)
    end = wire.chunk(g, "", finish=plan.finish(), annotations=wire.url_citations(r.citations))
    if plan.finish() == "content_filter":
        end["choices"][0]["content_filter_results"] = dialects.filter_results(r.filter_categories)
    if plan.spec:  # OpenAI: usage only when asked, in a last chunk without choices
        out += plan.sse(end)
        if plan.usage_asked:
            last = dialects.spec_frame({**g.head("chat.completion.chunk"), "usage": usage}, streamed=False)
            out += wire.sse({**last, "choices": []})
    elif r.usage_layout == "finish":
        out += plan.sse({**end, "usage": usage})
    else:
        out += plan.sse(end)
        out += plan.sse(wire.chunk(g, "", usage=usage))
    await _flush(resp, out)
    charge(plan.model, usage["cost"])  # only now has the client been told what it costs
    await resp.write(wire.DONE)
    if r.linger:
        await asyncio.sleep(r.linger)  # the body stays open after [DONE], as a slow proxy may keep it
    return resp


async def complete(ex: Exchange, plan: Plan, charge: Charge) -> web.StreamResponse:
    "Answer as one chat.completion JSON body, after the whole generation time."
    r, g = plan.reply, plan.gen
    busy = r.latency + (plan.completion_tokens / r.tokens_per_s if r.tokens_per_s else 0.0)
    if r.malformed:
        await asyncio.sleep(busy)
        return respond(
            ex, 200, b'{"id":"' + g.id.encode() + b'","choices":[{"message":{"content":"trun', "application/json"
        )
    if r.midstream_error is not None:
        pieces = split_pieces(plan.text)
        part = "".join(pieces[: (len(pieces) + 1) // 2])
        usage = plan.usage(part, cost=r.cost if r.cost is not None else 0.0)
        obj = wire.completion(g, part, usage, finish="error", error=plan.midstream_error())
    else:
        text = "".join(split_pieces(plan.text)[: r.filter_after])
        usage = plan.usage(text if r.filter_after is not None else None, cost=r.cost)
        obj = wire.completion(
            g,
            text,
            usage,
            finish=plan.finish(),
            tool_calls=plan.tool_calls,
            annotations=wire.url_citations(r.citations),
        )
    data = dumps(plan.body(obj))
    if r.stall_after is not None or r.cut_after is not None:
        # Half a body under the full Content-Length: a truncated response, never charged.
        resp = await prepare(ex, "application/json", length=len(data))
        await asyncio.sleep(busy)
        await resp.write(data[: len(data) // 2])
        if r.stall_after is not None:
            await _forever()
        _cut(ex)
        return resp
    if r.pad:
        resp = await prepare(ex, "application/json")
        await resp.write(wire.PAD)
        await _wait(resp, busy, r.keepalive, wire.PAD)
        await resp.write(data)
        charge(plan.model, usage["cost"])
        return resp
    await asyncio.sleep(busy)
    charge(plan.model, usage["cost"])
    return respond(ex, 200, data, "application/json")
