"""Running the server: `fusion-magic serve` on the command line, `%fusion serve` in a kernel.

    fusion-magic serve [--host 127.0.0.1] [--port 8787] [--preset P] [--token T]

The first line on stdout is exactly ``serving on http://HOST:PORT/v1``; the rest goes to stderr.
In a kernel the one background server shares the session's loop, cache and ledger.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from .._base.config import get_preset
from .._base.errors import ConfigError, FusionError
from .._fusion import Fusion
from .._local.model import check_runnable
from .serve import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, FusionServer

__all__ = ["background_server", "main_serve", "serve_in_background", "serve_magic", "stop_background"]


# -- in a kernel ----------------------------------------------------------------------------------
_background: FusionServer | None = None


def background_server() -> FusionServer | None:
    "The server `serve_in_background` started in this process, if it still runs."
    return _background if _background is not None and _background.running else None


def serve_in_background(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, preset: str = "quality", token: str | None = None
) -> FusionServer:
    "Start this process's one background server (`%fusion serve`); it shares the session's cache and ledger."
    global _background
    if (running := background_server()) is not None:
        raise ConfigError(f"already serving on {running.url}; stop it first (%fusion serve stop)")
    check_runnable(get_preset(preset).endpoint)
    _background = FusionServer(host, port, preset=preset, token=token).start()
    return _background


def stop_background() -> FusionServer | None:
    "Stop the background server; returns it (None when none was running)."
    global _background
    server, _background = background_server(), None
    if server is not None:
        server.stop()
    return server


def serve_magic(magics: Any, rest: str) -> None:
    "`%fusion serve [--port N] [--preset P]` in the background of this kernel; `%fusion serve stop` ends it."
    from IPython.core.error import UsageError
    from IPython.core.magic_arguments import MagicArgumentParser

    parser = MagicArgumentParser(prog="%fusion serve", description="Serve deliberation over OpenAI-compatible HTTP.")
    parser.add_argument("action", nargs="?", choices=("stop",), help="stop the running server")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8787; 0 picks a free one)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--preset", default=None, help="what model `fusion` runs (default: the session's preset)")
    parser.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN")
    try:
        args = parser.parse_argstring(rest)
    except UsageError as exc:
        raise UsageError(f"%fusion serve: {exc}; usage: %fusion serve [--port N] | %fusion serve stop") from None
    if args.action == "stop":
        stopped = stop_background()
        print(f"stopped serving on {stopped.url}" if stopped else "no server is running")
        return
    preset = args.preset or magics.settings()[0].get("preset") or "quality"
    server = serve_in_background(args.host, args.port, preset=preset, token=args.token)
    print(f"serving on {server.url} (model 'fusion' = preset {preset}); %fusion serve stop ends it")


# -- command line ---------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fusion-magic serve",
        description="Serve deliberation as an OpenAI-compatible model: GET /v1/models, POST /v1/chat/completions.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8787; 0 picks a free one)")
    parser.add_argument("--preset", default="quality", help="the preset model `fusion` runs (default quality)")
    parser.add_argument("--token", default=None, help=f"require Authorization: Bearer TOKEN (or set {TOKEN_ENV})")
    return parser.parse_args(argv)


def main_serve(argv: list[str]) -> int:
    "Run the server until SIGINT/SIGTERM. The first line on stdout is ``serving on http://HOST:PORT/v1``."
    args = parse_args(argv)
    try:
        check_runnable(get_preset(args.preset).endpoint)  # the local preset without the local model: refuse now
        server = FusionServer(args.host, args.port, preset=args.preset, token=args.token).start()
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"serving on {server.url}", flush=True)
    upstream = Fusion(preset=args.preset)
    where = "the local model" if upstream.endpoint is None else upstream.endpoint.label
    print(f"upstream {where}; model 'fusion' runs preset {args.preset}; Ctrl-C stops", file=sys.stderr, flush=True)
    # One line per request on stderr (never a key: messages name models, statuses and costs).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    served = logging.getLogger("fusion_magic._fronts.serve")
    served.addHandler(handler)
    served.setLevel(logging.INFO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0
