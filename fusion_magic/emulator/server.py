"""The `Emulator`: an aiohttp server on 127.0.0.1 in a daemon thread, scripted per model.

aiohttp is imported lazily: it is a test dependency, not a runtime one.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import catalog
from . import respond as rs
from .plan import Plan
from .replies import Reply, rejection

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["Emulator"]

_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "cookie"})
Handler = Callable[[rs.Exchange], Awaitable["web.StreamResponse"]]


class Emulator:
    """An OpenAI-compatible / OpenRouter server on 127.0.0.1, scripted per model.

    >>> with Emulator() as emu:
    ...     emu.script("a/x", Reply(status=429, retry_after=0.1), Reply(content="ok"))
    ...     # point a client at emu.base_url, then read emu.requests and emu.total_cost
    """

    def __init__(
        self,
        api_key: Any = None,
        credits: float | None = None,
        models: dict[str, dict[str, Any]] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        auth_header: str = "Authorization",
        auth_scheme: str = "Bearer",
        mode: str = "openrouter",
    ) -> None:
        if mode not in ("openrouter", "spec"):
            raise ValueError(f"mode must be 'openrouter' or 'spec' (OpenAI's contract), got {mode!r}")
        # "spec": usage only when stream_options asks, no cost, OpenAI's error bodies (see `dialects`).
        self.mode = mode
        # An _endpoint.Secret works as well as a str; the key is only ever compared, never shown.
        self._api_key: str | None = api_key.reveal() if hasattr(api_key, "reveal") else api_key
        self.credits = credits
        # How clients must send the key: "<auth_scheme> <key>" in auth_header (Azure: api-key, no scheme).
        self._auth_header, self._auth_scheme = auth_header, auth_scheme
        self.models: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (models or {}).items()}
        self.requests: list[rs.LoggedRequest] = []
        self.charges: list[tuple[str, float]] = []
        self._host, self._port = host, port
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None

    def __repr__(self) -> str:
        where = self.base_url if self._thread else "not started"
        return f"Emulator({where}, auth={'on' if self._api_key else 'off'}, requests={len(self.requests)})"

    # -- scripting and inspection -----------------------------------------------------------

    def script(self, model: str, *replies: Reply | str | dict[str, Any]) -> None:
        "Answer the next requests to `model` with these replies in order; the last one repeats forever."
        with self._lock:
            if replies:
                self._scripts[model] = [Reply.coerce(r) for r in replies]
            else:
                self._scripts.pop(model, None)

    def reset(self) -> None:
        "Forget scripts, logged requests and charges."
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.charges.clear()

    def chats(self, model: str | None = None, since: int = 0) -> list[rs.LoggedRequest]:
        "The logged chat-completion requests (of ``model`` only, if given), from request ``since`` on."
        return [r for r in self.requests[since:] if r.path.endswith("/chat/completions") and model in (None, r.model)]

    @property
    def total_cost(self) -> float:
        "USD reported to clients in usage blocks that were actually sent."
        return sum(cost for _, cost in self.charges)

    @property
    def base_url(self) -> str:
        "The OpenAI-compatible base URL, http://127.0.0.1:PORT/api/v1."
        if self._thread is None:
            raise RuntimeError("the emulator is not running; call Emulator().start() first")
        return f"http://{self._host}:{self._port}/api/v1"

    def _next_reply(self, model: str) -> Reply:
        with self._lock:
            queue = self._scripts.get(model)
            if not queue:
                return Reply()
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _prices(self, model: str) -> tuple[Decimal, Decimal]:
        return catalog.prices_for(self.models, model)

    def _charge(self, model: str, cost: float) -> None:
        self.charges.append((model, cost))

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Emulator:
        "Serve in a daemon thread with its own event loop; returns self."
        if self._thread is not None:
            return self
        from aiohttp import web

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._loop = loop = asyncio.new_event_loop()
        # handler_cancellation: a client that disconnects cancels its handler, so hangs and
        # stalls notice it (and log cancelled=True) instead of waiting forever.
        self._runner = web.AppRunner(self._app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.2)
        outcome: list[BaseException | None] = []
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._runner.setup())
                # A deep backlog: benchmarks open hundreds of connections at once.
                loop.run_until_complete(web.SockSite(self._runner, sock, backlog=1024).start())
            except BaseException as exc:  # handed to start() in the caller's thread
                outcome.append(exc)
                sock.close()
                loop.close()
                started.set()
                return
            outcome.append(None)
            started.set()
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=serve, name=f"fusion-emulator-{self._port}", daemon=True)
        self._thread.start()
        started.wait(10)
        if not outcome or outcome[0] is not None:
            self._thread = None
            raise (outcome[0] if outcome and outcome[0] else RuntimeError("the emulator did not start within 10 s"))
        return self

    def stop(self) -> None:
        "Close every connection and stop the server thread."
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP ---------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        from aiohttp import web

        app = web.Application(client_max_size=64 * 1024 * 1024)  # judge prompts carry every answer
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "/chat/completions", self._chat),
            ("GET", "/models", self._models),
            ("GET", "/key", self._key),
            ("GET", "/auth/key", self._key),  # legacy path many clients still call
            ("GET", "/credits", self._credits),
        ]
        for prefix in ("/api/v1", "/v1"):
            for method, path, inner in routes:
                app.router.add_route(method, prefix + path, self._logged(inner))
        return app

    def _logged(self, inner: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            from aiohttp import web

            headers = {
                k.lower(): "REDACTED" if k.lower() in _SECRET_HEADERS or k.lower() == self._auth_header.lower() else v
                for k, v in request.headers.items()
            }
            ex = rs.Exchange(request, rs.LoggedRequest(request.path, None, {}, headers, time.monotonic()))
            ex.spec = self.mode == "spec"
            self.requests.append(ex.rec)
            try:
                return await inner(ex)
            except asyncio.CancelledError:  # the client disconnected while we waited
                ex.rec.cancelled = True
                raise
            except ConnectionError:  # the client disconnected while we wrote
                ex.rec.cancelled = True
                return ex.resp if ex.resp is not None else web.Response(status=499)
            finally:
                ex.rec.t_end = time.monotonic()

        return handler

    def _auth_error(self, ex: rs.Exchange, model: str = "") -> web.Response | None:
        if not self._api_key:
            return None
        header = ex.request.headers.get(self._auth_header, "")
        if not header:
            return rs.error(ex, 401, model, message="Missing Authentication header")
        if not hmac.compare_digest(header.encode(), f"{self._auth_scheme} {self._api_key}".lstrip().encode()):
            return rs.error(ex, 401, model)
        return None

    async def _chat(self, ex: rs.Exchange) -> web.StreamResponse:
        try:
            body = json.loads(await ex.request.read())
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return rs.error(ex, 400, message="Invalid JSON in request body")
        ex.rec.body = body
        model = str(body.get("model") or (body.get("models") or ["openrouter/auto"])[0])
        ex.rec.model = model
        if (denied := self._auth_error(ex, model)) is not None:
            return denied
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return rs.error(ex, 400, model, message="Input must have at least 1 token.")
        if self.credits is not None and self.total_cost >= self.credits:
            return rs.error(ex, 402, model)
        reply = self._next_reply(model)
        if reply.hang:
            await asyncio.get_running_loop().create_future()  # until the client gives up
        if reply.raw is not None:
            return await rs.replay(ex, model, reply, self._charge)
        if (refused := rejection(reply, body)) is not None:
            return rs.error(ex, reply.reject_status, model, message=refused)
        if reply.status >= 400:
            await asyncio.sleep(reply.latency)
            return rs.error(
                ex,
                reply.status,
                model,
                message=reply.error_message,
                retry_after=reply.retry_after,
                provider=reply.provider or "",
            )
        served = reply.served_model or model
        prices = self._prices(served if served in self.models else model)  # billed as the serving model
        plan = Plan.build(reply, model, body, prices, spec=self.mode == "spec")
        if body.get("stream"):
            return await rs.stream(ex, plan, self._charge)
        return await rs.complete(ex, plan, self._charge)

    async def _models(self, ex: rs.Exchange) -> web.StreamResponse:
        with self._lock:
            ids = list(dict.fromkeys([*self.models, *self._scripts]))
        data = [catalog.model_object(model_id, self.models) for model_id in ids]
        body = {"data": data, "total_count": len(data), "links": {"next": None}}
        return rs.respond(ex, 200, rs.dumps(body), "application/json")

    async def _key(self, ex: rs.Exchange) -> web.StreamResponse:
        if (denied := self._auth_error(ex)) is not None:
            return denied
        return rs.respond(ex, 200, rs.dumps(catalog.key_info(self.credits, self.total_cost)), "application/json")

    async def _credits(self, ex: rs.Exchange) -> web.StreamResponse:
        if (denied := self._auth_error(ex)) is not None:
            return denied
        return rs.respond(ex, 200, rs.dumps(catalog.credits_info(self.credits, self.total_cost)), "application/json")
