"""Send one chat request to an OpenAI-compatible server and read the answer.

The client knows nothing of panels or judges. It owns the wire format (JSON and SSE bodies,
in-band errors, usage and cost), retries with backoff, and the shared `httpx.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_sse import EventSource

from .config import DEPTH_HEADER, Endpoint
from .errors import ProviderError

__all__ = ["ChatClient", "Completion", "aclose_shared", "shared_http"]

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
MAX_BACKOFF_S = 8.0

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


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
    return http


async def aclose_shared() -> None:
    "Close the shared client of the running loop (at exit, or to start afresh)."
    http = _clients.pop(asyncio.get_running_loop(), None)
    if http is not None:
        await http.aclose()


def _new_http(transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30)
    if transport is None:
        # httpcore's pool rescans every connection whenever one is handed out or returned, so
        # its cost grows with the square of the panel size (~100 ms at 30 members here);
        # aiohttp's connector does not. The httpx API on top stays the same.
        transport = AiohttpTransport(limits=limits)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60, connect=10))


@dataclass
class Completion:
    """One finished chat completion."""

    content: str = ""
    served_model: str | None = None
    provider: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float = 0.0
    generation_id: str | None = None
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)

    def take_usage(self, usage: dict[str, Any] | None) -> None:
        if not usage:
            return
        self.usage = usage
        self.prompt_tokens = _int(usage.get("prompt_tokens"))
        self.completion_tokens = _int(usage.get("completion_tokens"))
        cost = usage.get("cost")
        self.cost_usd = float(cost) if isinstance(cost, (int, float)) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


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
        headers = {**self.endpoint.headers, DEPTH_HEADER: str(self.depth)}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key.reveal()}"
        return headers

    async def get_json(self, path: str) -> Any:
        "GET a JSON document such as `/models`."
        url = self.endpoint.base_url + path
        resp = await self.http.get(url, headers=self.headers())
        if resp.status_code != 200:
            raise self._error(resp.status_code, resp.text, None, resp.headers)
        return _loads(resp.text, "GET " + path)

    async def chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        *,
        stream: bool = True,
        on_delta: Callable[[str], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
        **params: Any,
    ) -> Completion:
        """Send one chat request, retrying 408/429/5xx and broken streams with backoff.

        Raises `ProviderError` when the call fails for good. ``on_delta`` receives each
        streamed text fragment; ``on_retry`` a one-line reason before each retry.
        """
        body = {"model": model, "messages": messages, **{k: v for k, v in params.items() if v is not None}}
        if stream:
            body["stream"] = True
        attempt = 0
        while True:
            try:
                return await self._once(model, body, stream, on_delta)
            except ProviderError as exc:
                if not exc.retryable or attempt >= self.max_retries:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else _backoff(attempt)
                reason = str(exc)
            attempt += 1
            if on_retry:
                on_retry(f"{reason}; retry {attempt}/{self.max_retries} in {delay:.1f}s")
            await asyncio.sleep(delay)

    async def _once(
        self, model: str, body: dict[str, Any], stream: bool, on_delta: Callable[[str], None] | None
    ) -> Completion:
        url = self.endpoint.base_url + "/chat/completions"
        timeout = httpx.Timeout(self.stall_timeout, connect=10)
        started = time.perf_counter()
        try:
            async with self.http.stream(
                "POST", url, json=body, headers=self.headers(), timeout=timeout
            ) as resp:
                if resp.status_code != 200:
                    text = (await resp.aread()).decode("utf-8", "replace")
                    raise self._error(resp.status_code, text, model, resp.headers)
                if stream and "text/event-stream" in resp.headers.get("content-type", ""):
                    done = await self._read_stream(resp, model, on_delta)
                else:
                    text = (await resp.aread()).decode("utf-8", "replace")
                    done = self._read_body(text, model)
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
        if not done.content.strip() and not done.tool_calls:
            raise ProviderError(f"{model}: empty answer", model=model, retryable=True)
        return done

    async def _read_stream(
        self, resp: httpx.Response, model: str, on_delta: Callable[[str], None] | None
    ) -> Completion:
        done = Completion()
        parts: list[str] = []
        tools: dict[int, dict[str, Any]] = {}
        finished = False
        async for event in EventSource(resp).aiter_sse():
            # Read on past [DONE] to the end of the body: a fully read response hands its
            # connection back to the pool, an abandoned one costs a close and a reconnect.
            if finished or not event.data.strip():
                continue
            if event.data.strip() == "[DONE]":
                finished = True
                continue
            chunk = _loads(event.data, model)
            if not isinstance(chunk, dict):
                raise ProviderError(f"{model}: malformed stream chunk", model=model, retryable=True)
            done.served_model = chunk.get("model") or done.served_model
            done.provider = chunk.get("provider") or done.provider
            done.generation_id = chunk.get("id") or done.generation_id
            done.take_usage(chunk.get("usage"))
            if chunk.get("error"):
                # In-band error: the status was already 200. Key on `error`, not on finish_reason.
                done.content = "".join(parts)
                raise self._error_from(chunk["error"], model, None, partial=done)
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                text = delta.get("content")
                if text:
                    parts.append(text)
                    if on_delta:
                        on_delta(text)
                done.reasoning += delta.get("reasoning") or ""
                for call in delta.get("tool_calls") or []:
                    slot = tools.setdefault(call.get("index", 0), {"id": None, "name": "", "arguments": ""})
                    slot["id"] = call.get("id") or slot["id"]
                    fn = call.get("function") or {}
                    slot["name"] += fn.get("name") or ""
                    slot["arguments"] += fn.get("arguments") or ""
                if choice.get("finish_reason"):
                    done.finish_reason = choice["finish_reason"]
        if not finished and done.finish_reason is None:
            raise ProviderError(f"{model}: stream ended early (connection closed)", model=model, retryable=True)
        done.content = "".join(parts)
        done.tool_calls = [tools[i] for i in sorted(tools)]
        return done

    def _read_body(self, text: str, model: str) -> Completion:
        # Bodies may start with whitespace keep-alive padding; json.loads accepts that.
        data = _loads(text, model)
        if not isinstance(data, dict):
            raise ProviderError(f"{model}: malformed response body", model=model, retryable=True)
        if data.get("error"):
            raise self._error_from(data["error"], model, None)
        choices = data.get("choices") or []
        if not choices:
            raise ProviderError(f"{model}: response has no choices", model=model, retryable=True)
        message = choices[0].get("message") or {}
        done = Completion(
            content=message.get("content") or "",
            served_model=data.get("model"),
            provider=data.get("provider"),
            finish_reason=choices[0].get("finish_reason"),
            generation_id=data.get("id"),
            reasoning=message.get("reasoning") or "",
            tool_calls=[
                {"id": c.get("id"), "name": (c.get("function") or {}).get("name", ""),
                 "arguments": (c.get("function") or {}).get("arguments", "")}
                for c in message.get("tool_calls") or []
            ],
        )
        done.take_usage(data.get("usage"))
        return done

    def _error(self, status: int, text: str, model: str | None, headers: httpx.Headers) -> ProviderError:
        try:
            data = json.loads(text)
            error = data.get("error") if isinstance(data, dict) else None
        except ValueError:
            error = None
        if not isinstance(error, dict):
            reason = httpx.codes.get_reason_phrase(status)
            snippet = " ".join(text.split())[:160]
            error = {"code": status, "message": reason + (f" ({snippet})" if snippet and snippet != reason else "")}
        error.setdefault("code", status)
        return self._error_from(error, model, _retry_after(headers), status=status)

    def _error_from(
        self,
        error: dict[str, Any] | Any,
        model: str | None,
        retry_after: float | None,
        *,
        status: int | None = None,
        partial: Completion | None = None,
    ) -> ProviderError:
        if not isinstance(error, dict):
            error = {"message": str(error)}
        code = error.get("code", error.get("http_status"))
        status = status or (code if isinstance(code, int) else None)
        message = " ".join(self._scrub(str(error.get("message") or "error")).split())  # one line
        raw = (error.get("metadata") or {}).get("raw") if isinstance(error.get("metadata"), dict) else None
        if raw and message == "Provider returned error":
            message += f": {' '.join(self._scrub(str(raw)).split())[:160]}"
        who = model or "server"
        hint = {
            401: f" (check the API key {_key_hint(self.endpoint.key_source)})",
            402: " (out of credits: add credits at https://openrouter.ai/credits or pick cheaper models)",
            403: " (refused: moderation or permissions)",
            404: " (unknown model or no endpoint serves it; see `%fusion models`)",
        }.get(status or 0, "")
        label = f"{status} " if status else (f"{code} " if code else "")
        err = ProviderError(
            f"{who}: {label}{message}{hint}".strip(),
            model=model,
            status_code=status,
            retryable=status in RETRYABLE_STATUS if status else isinstance(code, str),
            retry_after=retry_after,
        )
        err.partial = partial  # type: ignore[attr-defined]
        return err

    def secrets(self) -> tuple[str, ...]:
        "Values that must never be stored or shown (the API key)."
        return (self.endpoint.api_key.reveal(),) if self.endpoint.api_key else ()

    def _scrub(self, text: str) -> str:
        "Remove the API key from text a server echoed back."
        key = self.endpoint.api_key.reveal() if self.endpoint.api_key else ""
        return text.replace(key, "***") if key else text

    async def aclose(self) -> None:
        if self._own_http is not None:
            await self._own_http.aclose()


def _is_timeout(exc: httpx.TransportError) -> bool:
    # The aiohttp transport maps a dropped connection to httpx.ConnectTimeout; look at the cause.
    cause = exc.__cause__
    if isinstance(cause, TimeoutError):
        return True
    return isinstance(exc, httpx.TimeoutException) and not isinstance(cause, aiohttp.ClientError)


def _key_hint(source: str | None) -> str:
    if source == "argument":
        return "passed as api_key"
    return f"in {source}" if source else "(set OPENROUTER_API_KEY or FUSION_API_KEY)"


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ProviderError(f"{what}: malformed JSON from the server", retryable=True) from None


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare here; fall back to backoff


def _backoff(attempt: int) -> float:
    return min(MAX_BACKOFF_S, 0.5 * 2**attempt) * (0.5 + random.random() / 2)
