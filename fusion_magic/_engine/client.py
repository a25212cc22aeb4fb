"""Send one chat request to an OpenAI-compatible server and read the answer.

The client knows nothing of panels or judges. It owns the shared `httpx.AsyncClient`, the
headers (key, depth), timeouts and retries with backoff; `fusion_magic._engine.wire` reads the bodies.
"""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from .._base.config import DEPTH_HEADER, Endpoint
from .._base.errors import ProviderError
from .._base.reasoning import reasoning_params
from .finish import outcome_of
from .runner import on_shutdown
from .usage import money
from .wire import Billing, Completion, error_from_response, loads, names_stream_options, read_body, read_stream

__all__ = ["Billing", "ChatClient", "Completion", "aclose_shared", "forget_stream_options", "shared_http"]

MAX_BACKOFF_S = 8.0
USAGE_OPTION = {"include_usage": True}  # OpenAI's spec: a stream carries usage only when asked
# Base URLs that rejected `stream_options` this session: their streams are sent without it.
_no_stream_options: set[str] = set()


def forget_stream_options() -> None:
    "Forget which servers rejected `stream_options` (the next stream asks for usage again)."
    _no_stream_options.clear()


_busy: dict[str, int] = {}  # requests in flight per base URL, to spread them over an endpoint's replicas

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
# Per loop, a suspended async generator that closes the loop's client when it is closed (see _close_with).
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def shared_http(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The session's `httpx.AsyncClient` for the running event loop (created on first use).

    One client per loop: a connection pool is bound to the loop that opened it, and a new
    client per request would cost ~20 ms of CPU each.
    """
    if transport is not None:
        return _new_http(transport)
    loop = asyncio.get_running_loop()
    http = _clients.get(loop)
    if http is None or http.is_closed:
        http = _clients[loop] = _new_http(None)
        _closers[loop] = _close_with(loop, http)
    return http


def _close_with(loop: asyncio.AbstractEventLoop, http: httpx.AsyncClient) -> Any:
    """An async generator, started on ``loop``, whose closing closes ``http``.

    ``asyncio.run()`` (through ``loop.shutdown_asyncgens()``) closes every started async generator
    before it closes its loop, so a client made for a caller's ``asyncio.run(fusion.arun(...))`` closes
    its connections then, instead of leaving them open until garbage collection.
    """

    async def holder() -> Any:
        try:
            yield
        finally:
            await http.aclose()

    generator = holder()

    async def start() -> None:
        await generator.__anext__()  # the first step registers the generator with the loop

    loop.create_task(start())
    return generator


async def aclose_shared() -> None:
    "Close the shared client of the running loop (at exit, or to start afresh)."
    loop = asyncio.get_running_loop()
    http, closer = _clients.pop(loop, None), _closers.pop(loop, None)
    if closer is not None:
        await closer.aclose()
    if http is not None:
        await http.aclose()


on_shutdown(aclose_shared)  # the background loop's pool closes at exit, before its loop stops


def _new_http(transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30)
    if transport is None:
        # httpcore's pool rescans every connection whenever one is handed out or returned, so
        # its cost grows with the square of the panel size (~100 ms at 30 members here);
        # aiohttp's connector does not. The httpx API on top stays the same.
        transport = AiohttpTransport(limits=limits)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60, connect=10))


class ChatClient:
    """Chat completions against one endpoint, over the session's shared HTTP client.

    Usage:

        client = ChatClient(resolve_endpoint())
        done = await client.chat("openai/gpt-4o", [{"role": "user", "content": "Hi"}])
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = 3,
        stall_timeout: float = 60.0,
        depth: int = 1,
    ) -> None:
        self.endpoint = endpoint
        self.transport = transport
        self.max_retries = max_retries
        self.stall_timeout = stall_timeout
        self.depth = depth
        self._own_http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self.transport is None:
            return shared_http()
        if self._own_http is None:
            self._own_http = shared_http(self.transport)
        return self._own_http

    def headers(self) -> dict[str, str]:
        return {**self.endpoint.auth_headers(), DEPTH_HEADER: str(self.depth)}

    async def get_json(self, path: str) -> Any:
        "GET a JSON document such as `/models`."
        url = self.endpoint.base_url + path
        resp = await self.http.get(url, headers=self.headers())
        if resp.status_code != 200:
            raise self._scrubbed(error_from_response(resp.status_code, resp.text, None, resp.headers))
        return loads(resp.text, "GET " + path)

    async def chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        *,
        stream: bool = True,
        on_delta: Callable[[str], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
        deadline: float | None = None,
        billing: Billing | None = None,
        **params: Any,
    ) -> Completion:
        """Send one chat request, retrying 408/429/5xx and broken streams with backoff.

        Raises `ProviderError` when the call fails for good. ``on_delta`` receives each
        streamed text fragment; ``on_retry`` a one-line reason before each retry. ``deadline``
        (on the running loop's clock) ends the retries early: a wait that would pass it is not
        taken, and the error says why at once (a 429 whose Retry-After is too long: "rate
        limited"). What the server billed for attempts whose answer was not kept is added to
        ``billing`` as it happens (and carried by the final error).
        """
        effort = params.pop("reasoning", None)
        if isinstance(effort, (str, int)) and not isinstance(effort, bool):
            params.update(reasoning_params(effort, openrouter=self.endpoint.speaks_openrouter))
        elif effort is not None:
            params["reasoning"] = effort  # already in the wire form
        body = {"model": model, "messages": messages, **{k: v for k, v in params.items() if v is not None}}
        if stream:
            body["stream"] = True
        billing = billing if billing is not None else Billing()
        spent_before = (billing.cost_usd, billing.prompt_tokens, billing.completion_tokens)
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                return await self._once(model, body, stream, on_delta)
            except ProviderError as exc:
                exc = self._scrubbed(exc)
                billing.take(exc)
                delay = exc.retry_after if exc.retry_after is not None else _backoff(attempt)
                if (
                    exc.retryable
                    and attempt < self.max_retries
                    and deadline is not None
                    and loop.time() + delay >= deadline
                ):
                    exc = _no_time_left(exc, model, delay)
                if not exc.retryable or attempt >= self.max_retries:
                    raise _with_spent(exc, billing, spent_before) from None
                reason = str(exc)
            attempt += 1
            if on_retry:
                on_retry(f"{reason}; retry {attempt}/{self.max_retries} in {delay:.1f}s")
            await asyncio.sleep(delay)

    async def _once(
        self, model: str, body: dict[str, Any], stream: bool, on_delta: Callable[[str], None] | None
    ) -> Completion:
        base = self._least_busy()
        _busy[base] = _busy.get(base, 0) + 1
        try:
            return await self._once_at(base, model, body, stream, on_delta)
        finally:
            _busy[base] -= 1

    def _least_busy(self) -> str:
        "The base URL with the fewest requests in flight (the first on a tie)."
        bases = (self.endpoint.base_url, *self.endpoint.replicas)
        return min(bases, key=lambda b: _busy.get(b, 0)) if len(bases) > 1 else bases[0]

    async def _once_at(
        self, base: str, model: str, body: dict[str, Any], stream: bool, on_delta: Callable[[str], None] | None
    ) -> Completion:
        if not stream or base in _no_stream_options:
            return await self._post(base, model, body, stream, on_delta)
        try:
            return await self._post(base, model, {**body, "stream_options": USAGE_OPTION}, stream, on_delta)
        except ProviderError as exc:
            if exc.status_code not in (400, 422, 500) or not names_stream_options(str(exc)):
                raise
        _no_stream_options.add(base)  # this server does not know the option: ask without it from now on
        return await self._post(base, model, body, stream, on_delta)

    async def _post(
        self, base: str, model: str, body: dict[str, Any], stream: bool, on_delta: Callable[[str], None] | None
    ) -> Completion:
        url = base + "/chat/completions"
        timeout = httpx.Timeout(self.stall_timeout, connect=10)
        started, source = time.perf_counter(), self.endpoint.key_source
        try:
            async with self.http.stream("POST", url, json=body, headers=self.headers(), timeout=timeout) as resp:
                if resp.status_code != 200:
                    text = (await resp.aread()).decode("utf-8", "replace")
                    raise error_from_response(resp.status_code, text, model, resp.headers, key_source=source)
                if stream and "text/event-stream" in resp.headers.get("content-type", ""):
                    done = await read_stream(resp, model, on_delta, key_source=source)
                else:
                    text = (await resp.aread()).decode("utf-8", "replace")
                    done = read_body(text, model, key_source=source)
                if done.cost_usd is None:  # LiteLLM's proxy states the cost in a header
                    done.cost_usd = money(resp.headers.get("x-litellm-response-cost"))
        except httpx.TransportError as exc:
            if _is_timeout(exc):
                raise ProviderError(
                    f"{model}: no data for {self.stall_timeout:g}s (stalled)", model=model, retryable=True
                ) from None
            raise ProviderError(
                f"{model}: connection failed ({type(exc).__name__}: {self._scrub(str(exc)) or 'closed'})",
                model=model,
                retryable=True,
            ) from None
        done.latency_s = time.perf_counter() - started
        problem = outcome_of(done, model)  # a refusal, a filter, no answer: only a plain empty one is retried
        if problem is not None:
            raise problem
        return done

    def secrets(self) -> tuple[str, ...]:
        "Values that must never be stored or shown (the API key)."
        return (self.endpoint.api_key.reveal(),) if self.endpoint.api_key else ()

    def _scrubbed(self, exc: ProviderError) -> ProviderError:
        "The same error with the API key removed from its message (servers sometimes echo it)."
        text = str(exc)
        clean = self._scrub(text)
        return exc if clean == text else exc.reworded(clean)

    def _scrub(self, text: str) -> str:
        "Remove the API key from text a server echoed back."
        key = self.endpoint.api_key.reveal() if self.endpoint.api_key else ""
        return text.replace(key, "***") if key else text

    async def aclose(self) -> None:
        if self._own_http is not None:
            await self._own_http.aclose()


def _no_time_left(exc: ProviderError, model: str, delay: float) -> ProviderError:
    "``exc`` made final: waiting ``delay`` s to retry would pass the deadline, so say why now."
    if exc.status_code == 429:
        why = f"{model}: rate limited (429, retry after {round(delay, 1):g} s)"
    else:
        why = f"{exc}; no time left for a retry before the deadline"
    return exc.reworded(why, retryable=False)


def _with_spent(exc: ProviderError, billing: Billing, before: tuple[Any, Any, Any]) -> ProviderError:
    "``exc`` carrying what every attempt of this call was billed, not just the last one."

    def spent(total: Any, start: Any) -> Any:
        return total if start is None or total is None else total - start

    exc.cost_usd = spent(billing.cost_usd, before[0])
    exc.prompt_tokens = spent(billing.prompt_tokens, before[1])
    exc.completion_tokens = spent(billing.completion_tokens, before[2])
    return exc


def _is_timeout(exc: httpx.TransportError) -> bool:
    # The aiohttp transport maps a dropped connection to httpx.ConnectTimeout; look at the cause.
    cause = exc.__cause__
    if isinstance(cause, TimeoutError):
        return True
    return isinstance(exc, httpx.TimeoutException) and not isinstance(cause, aiohttp.ClientError)


def _backoff(attempt: int) -> float:
    return min(MAX_BACKOFF_S, 0.5 * 2**attempt) * (0.5 + random.random() / 2)
