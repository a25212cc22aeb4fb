"""The local model: SmolLM2-135M served by llama.cpp on 127.0.0.1, the default that needs no key.

`start_local()` runs one OpenAI-compatible server per Python process (``fusion_magic/_local/llama_child.py``
in a child process) and returns it; later calls return the same server. It stops when the process
exits (atexit), and the child also exits on its own when its parent dies: it watches its stdin, a
pipe only the parent holds, so EOF means the parent is gone however it ended (SIGKILL, kernel
restart), on every OS. ``prctl(PR_SET_PDEATHSIG)`` is Linux-only and fires when the *thread* that
started the child ends, which would kill the server under a notebook that starts it from a worker
thread; the pipe has neither problem.

Which weights to serve, with how many threads, is `fusion_magic._local.model`; this module runs
and tracks the server processes.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from .._base.endpoint import Endpoint, resolve_endpoint
from .._base.errors import FusionError
from .model import (
    DEFAULT_N_CTX,
    MODEL_ENV,
    MODEL_ID,
    check_server_installed,
    cpus,
    model_identity,
    model_path,
    most_threads,
    pick_port,
)

__all__ = [
    "MODEL_ID",
    "LocalServer",
    "local_base_url",
    "local_base_urls",
    "local_endpoint",
    "main_local",
    "model_path",
    "pool_size",
    "start_local",
    "start_local_pool",
]

START_TIMEOUT = 120.0
_KEY_ENV_VARS = ("FUSION_API_KEY", "OPENROUTER_API_KEY")  # the child needs no key: do not hand it one
_CHILD = "fusion_magic._local.llama_child"
# Where this fusion_magic is imported from, first on the child's path, so it runs this copy's child.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])

_lock = threading.RLock()  # stop() takes it too, also from inside start_local()
_server: LocalServer | None = None
_replicas: list[LocalServer] = []  # more processes serving the same weights, one per panel member
_atexit_registered = False


class LocalServer:
    """A running local model server: ``base_url`` for an OpenAI-compatible client, ``stop()`` to end it."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        port: int,
        model_file: Path,
        log_path: Path,
        n_ctx: int,
        threads: int | None,
    ) -> None:
        self.process = process
        self.port = port
        self.model = MODEL_ID
        self.model_file = model_file
        self.log_path = log_path
        self.n_ctx = n_ctx
        self.threads = threads  # None: as many as other work leaves free (see _local/free_cpus.py)
        self.start_s: float | None = None  # seconds from launch to the first healthy answer
        self._owner = os.getpid()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 10) -> str:
        "The last lines the server wrote (stdout and stderr), for error messages."
        try:
            with open(self.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - 4000))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        "Poll ``GET /v1/models`` until it answers 200; raise `FusionError` if the server dies or hangs."
        started = time.monotonic()
        deadline = started + timeout
        # trust_env=False: a proxy from HTTP_PROXY must not sit between us and 127.0.0.1.
        with httpx.Client(trust_env=False, timeout=5.0) as http:
            while True:
                if not self.alive:
                    raise FusionError(
                        f"the local model server exited (code {self.process.returncode}) while starting; "
                        f"its log ends with:\n{self.log_tail()}"
                    )
                try:
                    if http.get(f"{self.base_url}/models").status_code == 200:
                        self.start_s = time.monotonic() - started
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise FusionError(
                        f"the local model server did not answer within {timeout:.0f} s; "
                        f"its log ends with:\n{self.log_tail()}"
                    )
                time.sleep(0.1)

    def wait(self) -> int:
        "Block until the server exits; return its exit code."
        return self.process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and free its port (idempotent)."""
        global _server
        process = self.process
        if process.stdin and not process.stdin.closed:
            try:
                process.stdin.close()  # EOF: the child's watchdog exits it at once
            except OSError:
                pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log_path.unlink(missing_ok=True)
        with _lock:
            if _server is self:
                _server = None
            if self in _replicas:
                _replicas.remove(self)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive else "stopped"
        return f"LocalServer({self.base_url!r}, model={self.model!r}, pid={self.pid}, {state})"


def _launch(model_file: Path, port: int, n_ctx: int, threads: int | None) -> LocalServer:
    handle, log_name = tempfile.mkstemp(prefix="fusion_magic-local-", suffix=".log")
    args = [
        "--model",
        str(model_file),
        "--alias",
        MODEL_ID,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n-ctx",
        str(n_ctx),
    ]
    if threads is None:
        most, most_batch = most_threads()
        args += ["--threads", str(most), "--batch-threads", str(most_batch), "--adapt-threads"]
    else:
        args += ["--threads", str(threads), "--batch-threads", str(threads)]
    if not os.environ.get(MODEL_ENV):
        # SmolLM2's own template is ChatML that adds a default system prompt when none is given;
        # plain ChatML sends exactly the messages we pass.
        args += ["--chat-format", "chatml"]
    env = {k: v for k, v in os.environ.items() if k not in _KEY_ENV_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
    with os.fdopen(handle, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", _CHILD, *args],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=model_file.parent,  # the child's sys.path[0] (-m): no stray .py files to shadow modules
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop the server in order
        )
    return LocalServer(process, port, model_file, Path(log_name), n_ctx, threads)


def start_local(
    port: int | None = None, *, n_ctx: int = DEFAULT_N_CTX, threads: int | None = None, timeout: float = START_TIMEOUT
) -> LocalServer:
    """Start the local model server (or return the one already running) and wait until it answers.

    The arguments apply only when a server is started; a running server is returned as it is.
    """
    global _server, _atexit_registered
    with _lock:
        if _server is not None and _server.alive:
            return _server
        check_server_installed()
        model_file = model_path()
        server = _launch(model_file, pick_port(port), n_ctx, threads)
        try:
            server.wait_ready(timeout)
        except BaseException:  # includes Ctrl-C while waiting: never leave a half-started server
            server.stop()
            raise
        _server = server
        if not _atexit_registered:
            atexit.register(_stop_at_exit)
            _atexit_registered = True
        return server


def local_base_url() -> str:
    """The local server's base URL (``http://127.0.0.1:PORT/v1``), starting it if needed."""
    return start_local().base_url


def pool_size(members: int) -> int:
    "How many server processes a panel of ``members`` gets: one per member, up to the CPU count."
    return max(1, min(members, cpus()))


def start_local_pool(size: int, *, timeout: float = START_TIMEOUT) -> list[LocalServer]:
    """``size`` local servers sharing the weights file (the first is `start_local()`'s).

    llama.cpp's server answers one request at a time, so a panel on one process waits for each
    member in turn; on several processes the members answer side by side (the weights file is
    memory-mapped, so the processes share it). Each process runs on as many threads as the others
    leave CPUs free.
    """
    first = start_local(timeout=timeout)
    with _lock:
        _replicas[:] = [r for r in _replicas if r.alive]
        wanted = max(0, size - 1) - len(_replicas)
        fresh = [_launch(first.model_file, pick_port(None), first.n_ctx, first.threads) for _ in range(wanted)]
        try:
            for server in fresh:
                server.wait_ready(timeout)
        except BaseException:
            for server in fresh:
                server.stop()
            raise
        _replicas.extend(fresh)
        return [first, *_replicas[: max(0, size - 1)]]


def local_base_urls(size: int) -> list[str]:
    "The base URLs of a pool of ``size`` local servers (see `start_local_pool`)."
    return [server.base_url for server in start_local_pool(size)]


def local_endpoint(size: int) -> Endpoint:
    "The endpoint of a pool of ``size`` local servers (free), its answers cached under the weights' identity."
    bases = local_base_urls(size)
    identity = model_identity(_server_file(bases[0]))
    return dataclasses.replace(
        resolve_endpoint(bases[0], api_key="", env={}), replicas=tuple(bases[1:]), cache_id=identity, free=True
    )


def _server_file(base_url: str) -> Path:
    "The weights file of the running server at ``base_url``."
    return next(s.model_file for s in [_server, *_replicas] if s is not None and s.base_url == base_url)


def _stop_at_exit() -> None:
    # A forked child inherits this handler; only the process that started the servers stops them.
    for server in [*_replicas, *([_server] if _server is not None else [])]:
        if server._owner == os.getpid():
            server.stop()


def main_local(argv: list[str] | None = None) -> int:
    """``fusion-magic local``: serve the local model until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="fusion-magic local",
        description="Serve the local model (SmolLM2-135M, llama.cpp) on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: a free one)")
    parser.add_argument("--n-ctx", type=int, default=DEFAULT_N_CTX, help="context size in tokens")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: as many as other work leaves free, 1-4)"
    )
    args = parser.parse_args(argv)
    try:
        server = start_local(args.port, n_ctx=args.n_ctx, threads=args.threads)
    except FusionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"local model {server.model} ready in {server.start_s:.1f} s at {server.base_url}", flush=True)
    print(f"use it from elsewhere with FUSION_BASE_URL={server.base_url}; Ctrl-C to stop", flush=True)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        server.stop()
        return 0
    print(
        f"error: the local model server exited (code {code}); its log ends with:\n{server.log_tail()}", file=sys.stderr
    )
    server.stop()
    return 1
