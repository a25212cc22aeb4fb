"""The server behind `fusion-magic serve`: deliberation as an OpenAI-compatible HTTP endpoint.

``GET /v1/models`` and ``POST /v1/chat/completions`` (JSON or SSE) on aiohttp's server, running
on the same private event loop, HTTP client, answer cache and session ledger as `Fusion.run`,
so `%fusion serve` in a kernel shares them with the notebook. The dialect (requests, answers,
errors) lives in `fusion_magic._fronts.openai_api` and `openai_limits` (what it refuses, when a stream
ends with usage); the command line and `%fusion serve` in `fusion_magic._fronts.launch`.

Security: binds 127.0.0.1 by default; with a token (``--token`` or ``FUSION_SERVE_TOKEN``) every
request needs ``Authorization: Bearer <token>``; a non-loopback host without a token is refused.
A request that carries a fusion depth header >= 1 is refused, so a panel member pointed back
at this server cannot start a loop.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from .._base.config import DEPTH_HEADER, PRESETS
from .._base.errors import BudgetError, ConfigError, FusionError, MissingKeyError
from .._engine.runner import background_loop
from .._fusion import Fusion
from .._render.progress import Tracker
from . import openai_api as api
from .openai_request import ChatRequest, model_list, parse_chat
from .serve_stream import AnswerStream, pump

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "TOKEN_ENV", "FusionServer"]

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8787
TOKEN_ENV = "FUSION_SERVE_TOKEN"
DEPTH_HEADERS = (DEPTH_HEADER, "x-openrouter-fusion-depth")
HEADERS_WITHIN = 1.0  # s: a stream's 200 waits this long for the budget check, so refusals stay 402
log = logging.getLogger("fusion_magic._fronts.serve")


def _json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FusionServer:
    """The OpenAI-compatible server, on the session's private event loop.

    >>> server = FusionServer(port=0).start()   # serving on server.url
    >>> server.stop()
    """

    def __init__(
        self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, preset: str = "quality", token: str | None = None
    ) -> None:
        token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        if not _is_loopback(host) and not token:
            raise ConfigError(
                f"refusing to serve on {host} without a token: set --token or {TOKEN_ENV} (or bind 127.0.0.1)"
            )
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
        Fusion(preset=preset)  # a missing key or a bad endpoint fails now, not at the first request
        self.host, self.port, self.preset = host, port, preset
        self._token = token
        self._runner: Any = None
        self.requests = 0  # chat requests answered (any outcome)

    @property
    def url(self) -> str:
        "The OpenAI base URL, ``http://HOST:PORT/v1``."
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._runner is not None

    def __repr__(self) -> str:
        return f"FusionServer({self.url}, preset={self.preset!r}, token={'on' if self._token else 'off'})"

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> FusionServer:
        "Bind and serve on the private loop; returns self once the port is open."
        asyncio.run_coroutine_threadsafe(self.astart(), background_loop()).result(30)
        return self

    def stop(self) -> None:
        "Close the listening socket and every connection; deliberations in flight are cancelled."
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self.astop(), background_loop()).result(30)

    async def astart(self) -> None:
        from aiohttp import web

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = sock.getsockname()[1]
        # handler_cancellation: a client that goes away cancels its handler, and so its deliberation.
        runner = web.AppRunner(self._app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock, backlog=1024).start()
        self._runner = runner

    async def astop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- HTTP ---------------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        from aiohttp import web

        app = web.Application(client_max_size=32 * 1024 * 1024, middlewares=[self._middleware()])
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model:.+}", self._model)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    def _middleware(self) -> Any:
        "Authorization first; every error, ours or aiohttp's (404, 405), as OpenAI's error JSON."
        from aiohttp import web

        @web.middleware
        async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
            try:
                self._authorize(request)
                return await handler(request)
            except api.ApiError as exc:
                log.info("%s %s -> %d %s", request.method, request.path, exc.status, exc.code or exc.type)
                return self._error_response(exc)
            except web.HTTPException as exc:  # unknown path, wrong method
                code = "not_found" if exc.status == 404 else "method_not_allowed" if exc.status == 405 else None
                return self._error_response(
                    api.ApiError(
                        exc.status,
                        f"{exc.reason}: {request.method} {request.path} (this server has GET /v1/models "
                        "and POST /v1/chat/completions)",
                        code=code,
                    )
                )

        return errors

    @staticmethod
    def _error_response(exc: api.ApiError) -> web.Response:
        from aiohttp import web

        return web.Response(status=exc.status, body=_json(exc.body()), content_type="application/json")

    def _authorize(self, request: web.Request) -> None:
        if not self._token:
            return
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
            why = "missing" if not given else "wrong"
            raise api.ApiError(
                401,
                f"{why} token: send Authorization: Bearer <the server's token>",
                code="invalid_api_key",
                type="authentication_error",
            )

    async def _models(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.Response(body=_json(model_list(self.preset)), content_type="application/json")

    async def _model(self, request: web.Request) -> web.Response:
        from aiohttp import web

        wanted = request.match_info["model"]
        for item in model_list(self.preset)["data"]:
            if item["id"] == wanted:
                return web.Response(body=_json(item), content_type="application/json")
        raise api.ApiError(404, f"unknown model {wanted!r}; GET /v1/models lists them", code="model_not_found")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        _check_depth(request)
        chat = parse_chat(await request.read(), self.preset)
        try:
            fusion = Fusion(**chat.settings)
        except MissingKeyError as exc:
            raise api.ApiError(
                500, f"server misconfigured: {exc}", code="server_misconfigured", type="server_error"
            ) from None
        except ConfigError as exc:
            raise api.ApiError(400, str(exc), code="invalid_overrides") from None
        self.requests += 1
        tracker = fusion.tracker()
        task = asyncio.ensure_future(
            fusion.arun(
                chat.question,
                tracker=tracker,
                messages=chat.messages,
                tools=chat.tools or None,
                tool_choice=chat.tool_choice,
            )
        )
        try:
            if chat.stream:
                return await self._stream(request, chat, task, tracker)
            result = await _outcome(task)
            _log_result(chat, result)
            if (failed := api.outcome_error(result)) is not None:
                raise failed
            return web_response(api.completion(result, chat.model))
        finally:
            if not task.done():  # the client went away: stop spending (arrived answers stay cached)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _stream(
        self, request: web.Request, chat: ChatRequest, task: asyncio.Future[Any], tracker: Tracker
    ) -> web.StreamResponse:
        from aiohttp import web

        # Hold the 200 until the first call starts (the budget check has passed) or a moment has
        # gone by, so that a refused request still gets its own HTTP status.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HEADERS_WITHIN
        while not task.done() and tracker.version == 0 and loop.time() < deadline:
            await asyncio.wait({task}, timeout=0.02)
        if task.done():
            await _outcome(task)  # raises an ApiError for a refused request
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
        await resp.prepare(request)
        panel = ", ".join(tracker.members)
        await resp.write(f": fusion deliberating: {panel}; judge {tracker.judge_name}\n\n".encode())
        # The judge's answer goes out as it is written (in server-tool mode the primary writes it).
        answer = AnswerStream(
            tracker, chat.model, api.completion_id(), live=not chat.tool_mode, include_usage=chat.include_usage
        )
        await pump(resp, task, tracker, answer)
        try:
            result = await _outcome(task)
            _log_result(chat, result)
            failed = api.outcome_error(result)
        except api.ApiError as exc:
            log.info("POST /v1/chat/completions (stream) -> %d %s", exc.status, exc.code or exc.type)
            failed = exc
        if failed is not None:
            events = [failed.body()]
        else:
            events = answer.ending(result)
        await resp.write(b"".join(b"data: " + _json(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def web_response(body: dict[str, Any]) -> web.Response:
    from aiohttp import web

    return web.Response(body=_json(body), content_type="application/json")


def _log_result(chat: ChatRequest, result: Any) -> None:
    answered = sum(r.ok for r in result.responses)
    log.info(
        "%s%s: %s, %d/%d members answered, %.2f s, %s",
        chat.model,
        " (stream)" if chat.stream else "",
        result.status,
        answered,
        len(result.responses),
        result.elapsed_s,
        "cost unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}",
    )


def _check_depth(request: web.Request) -> None:
    for name in DEPTH_HEADERS:
        value = request.headers.get(name)
        if value is None:
            continue
        try:
            depth = int(value.strip())
        except ValueError:
            raise api.ApiError(400, f"{name} must be a whole number, got {value[:20]!r}", param=name) from None
        if depth >= 1:
            raise api.ApiError(
                400,
                f"fusion_invocation_capped: this request comes from inside a deliberation ({name}: {depth}); "
                "fusion does not start another one",
                code="fusion_invocation_capped",
            )


async def _outcome(task: asyncio.Future[Any]) -> Any:
    "The task's result; a fusion_magic error becomes the `ApiError` a client should see."
    try:
        return await task
    except BudgetError as exc:
        raise api.ApiError(402, f"max_cost: {exc}", code="max_cost_exceeded", param="fusion.max_cost") from None
    except ConfigError as exc:
        raise api.ApiError(400, str(exc), code="invalid_request") from None
    except FusionError as exc:
        raise api.ApiError(502, str(exc), code="unexpected_error", type="upstream_error") from None
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line to the client, the traceback to the log
        log.exception("deliberation failed")
        raise api.ApiError(
            500, f"internal error: {type(exc).__name__}", code="unexpected_error", type="server_error"
        ) from None
