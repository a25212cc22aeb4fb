"""`python`: model-written code run in an OS sandbox, with read-only copies of the user's frames.

    python_tool({"sales": df})                        # Linux with bubblewrap, else ConfigError (one line)
    python_tool({"sales": df}, mode="unsandboxed")    # explicit opt-in: a plain child process

Each call runs in a NEW process (nothing carries over from one call to the next) under the sandbox
described in `fusion_magic._tools.sandbox`, with limits on CPU seconds, wall time, address space,
processes, file size and open files. The frames are pickled once into a private folder that the
sandbox sees read-only at /data and loads as variables of the same names before the code runs.
The result is the captured stdout and stderr, and the value of a last expression (as in a notebook),
capped; an exception, a limit reached or a killed process is a `ToolError` saying which.

To keep a call's start short, one started sandbox waits ready (interpreter, pandas and frames
loaded) for the next call; it is never reused after running code, exits by itself when unused for
``idle_s``, and is killed when the tool is garbage collected or the interpreter exits.

``mode="unsandboxed"`` runs the same child without bubblewrap: a clean environment, a temporary
working folder, the same limits, but the user's files and the network are reachable and, as root,
the process limit does not bind. It is for machines without a sandbox, by the user's explicit choice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from .._base.errors import ConfigError
from . import sandbox
from .base import Tool, ToolError
from .output import clip

__all__ = ["python_tool"]

_CHILD = Path(__file__).with_name("python_child.py")
# Every sandbox is started from this one long-lived thread: bwrap's --die-with-parent follows the
# THREAD that started it, so a sandbox started from a short-lived thread (a refill, an asyncio
# worker) would be killed when that thread ends. This one ends with the interpreter.
_SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusion-sandbox-spawner")


def python_tool(
    frames: Mapping[str, Any] | None = None,
    *,
    mode: Literal["sandboxed", "unsandboxed"] = "sandboxed",
    timeout_s: float = 20.0,
    cpu_s: int = 20,
    memory_mb: int = 2048,
    processes: int = 32,
    work_mb: int = 64,
    max_chars: int = 8_000,
    max_code_chars: int = 100_000,
    start_timeout_s: float = 60.0,
    idle_s: float = 300.0,
    prewarm: bool = True,
) -> Tool:
    """A `python` tool. Raises `ConfigError` (one line) when ``mode="sandboxed"`` and no sandbox exists."""
    if mode not in ("sandboxed", "unsandboxed"):
        raise ConfigError(f"python: mode must be 'sandboxed' or 'unsandboxed', not {mode!r}")
    if mode == "unsandboxed" and os.name != "posix":
        raise ConfigError("python: running model code needs Linux or macOS (process limits); this is Windows")
    if mode == "sandboxed":
        why = sandbox.unavailable()
        if why is not None:
            raise ConfigError(f"python: {why}; python='unsandboxed' runs model code without a sandbox")
    frames = dict(frames or {})
    for name in frames:
        if not (isinstance(name, str) and name.isidentifier()):
            raise ConfigError(f"python: {name!r} is not a usable variable name")
    limits = {
        "timeout_s": timeout_s, "cpu_s": cpu_s, "memory_mb": memory_mb, "processes": processes, "work_mb": work_mb,
        "max_chars": max_chars, "max_code_chars": max_code_chars, "start_timeout_s": start_timeout_s,
        "idle_s": idle_s, "prewarm": prewarm,
    }  # fmt: skip
    pool = _Pool(frames, mode, limits)
    description = (
        f"Run Python code in a sandbox without network or file access{_libraries()} and get "
        "its printed output and the value of its last expression. Each call starts fresh: define "
        "everything you use."
        + (f" These variables hold the user's data (read-only copies): {', '.join(sorted(frames))}." if frames else "")
        + f" Limits: {timeout_s:g} s, {memory_mb} MB, output cut to {max_chars:,} characters."
    )
    parameters = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python source; the last expression is shown"}},
        "required": ["code"],
    }

    async def run(arguments: dict[str, Any]) -> str:
        code = arguments.get("code") if isinstance(arguments, dict) else None
        if not isinstance(code, str) or not code.strip():
            raise ToolError("python needs `code`: Python source to run")
        if len(code) > max_code_chars:
            raise ToolError(f"the code is longer than {max_code_chars:,} characters")
        running: list[_Child] = []
        try:
            return await asyncio.to_thread(pool.run, code, running)
        except asyncio.CancelledError:  # the member's deadline: stop the code rather than let it run on
            for child in running:
                child.kill_group()
            raise

    return Tool("python", description, parameters, run, identity=f"python:v1:{mode}:{pool.fingerprint}")


class _Pool:
    """Starts sandboxed children, keeps one ready, runs one call per child."""

    def __init__(self, frames: dict[str, Any], mode: str, options: dict[str, Any]) -> None:
        self.mode = mode
        self.o = options
        self.data_dir = tempfile.mkdtemp(prefix="fusion-py-data-")
        digest = hashlib.sha256(repr(sorted(options.items())).encode())
        for name, frame in sorted(frames.items()):
            blob = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
            Path(self.data_dir, name + ".pkl").write_bytes(blob)
            digest.update(name.encode() + b"\x00" + hashlib.sha256(blob).digest())
        self.fingerprint = digest.hexdigest()[:24]
        self.names = sorted(frames)
        self.lock = threading.Lock()
        self.spare: _Child | None = None
        self.live: list[_Child] = []  # every child not yet killed; the finalizer kills what is left
        weakref.finalize(self, _cleanup, self.data_dir, self.live)
        if options["prewarm"]:
            self._refill()

    def _spawn(self) -> _Child:
        privileged = sandbox.as_root()
        work = tempfile.mkdtemp(prefix="fusion-py-work-") if self.mode == "unsandboxed" else "/sandbox"
        _, site = sandbox.interpreter_paths()
        config = {
            "paths": site,
            "frames": self.names,
            "data_dir": self.data_dir if self.mode == "unsandboxed" else "/data",
            "workdir": work,
            "uid": sandbox.sandbox_uid() if privileged and self.mode == "sandboxed" else None,
            "cpu_s": self.o["cpu_s"],
            "memory_mb": self.o["memory_mb"],
            "processes": self.o["processes"] if self.mode == "sandboxed" else None,
            "strict": self.mode == "sandboxed",
            "file_mb": self.o["work_mb"],
            "max_chars": self.o["max_chars"],
            "max_code": self.o["max_code_chars"],
            "idle_s": self.o["idle_s"],
        }
        python = os.path.realpath(sys.executable)
        argv = [python, "-I", "-S", "-B", "-c", _CHILD.read_text(encoding="utf-8"), json.dumps(config)]
        if self.mode == "sandboxed":
            argv = sandbox.bwrap_command(argv, data_dir=self.data_dir, work_mb=self.o["work_mb"], privileged=privileged)
            env: dict[str, str] | None = {}
        else:
            env = sandbox.clean_env(work)
        errors = tempfile.TemporaryFile()  # bwrap's own complaints; a file, so no pipe can fill and block
        proc = _SPAWNER.submit(
            subprocess.Popen,
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
            cwd=work if self.mode == "unsandboxed" else "/",
            start_new_session=True,  # its own process group: a kill reaches everything it started
        ).result()
        child = _Child(proc, work if self.mode == "unsandboxed" else None, errors)
        # Reaped as soon as it ends (a spare that exits when idle leaves no zombie behind).
        threading.Thread(target=proc.wait, daemon=True).start()
        self.live.append(child)
        return child

    def _discard(self, child: _Child) -> None:
        child.kill()
        with self.lock:
            if child in self.live:
                self.live.remove(child)

    def _refill(self) -> None:
        try:
            spare = self._spawn()
        except OSError:
            return
        with self.lock:
            old, self.spare = self.spare, spare
        if old is not None:
            self._discard(old)

    def run(self, code: str, running: list[_Child]) -> str:
        with self.lock:
            child, self.spare = self.spare, None
        if child is None or child.proc.poll() is not None:
            if child is not None:
                self._discard(child)
            child = self._spawn()
        if self.o["prewarm"]:
            threading.Thread(target=self._refill, daemon=True).start()
        running.append(child)
        try:
            return child.run(code, self.o)
        finally:
            self._discard(child)


class _Child:
    def __init__(self, proc: subprocess.Popen[bytes], workdir: str | None, errors: Any) -> None:
        self.proc = proc
        self.workdir = workdir
        self.errors = errors

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
            pass
        for stream in (self.proc.stdin, self.proc.stdout, self.errors):
            if stream is not None:
                stream.close()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def run(self, code: str, o: dict[str, Any]) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        fired = threading.Event()

        def stop() -> None:
            fired.set()
            self.kill_group()

        timer = threading.Timer(o["start_timeout_s"], stop)
        timer.daemon = True
        timer.start()
        ready = self.proc.stdout.readline(4096)
        timer.cancel()
        if ready != b"READY\n":
            raise ToolError(f"the python sandbox did not start: {self._why_not(ready)}")
        timer = threading.Timer(o["timeout_s"], stop)
        timer.daemon = True
        started = time.monotonic()
        timer.start()
        try:
            try:
                self.proc.stdin.write(code.encode("utf-8", "replace"))
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            # One line: a process the code left behind may hold the pipe open, so EOF may never come.
            data = self.proc.stdout.readline(8 * o["max_chars"] + 65_536)
            self.kill_group()
            status = self.proc.wait()
        finally:
            timer.cancel()
        elapsed = time.monotonic() - started
        if fired.is_set():
            raise ToolError(f"the code ran longer than {o['timeout_s']:g} s (time limit) and was stopped")
        line = data.split(b"\n", 1)[0]
        try:
            outcome = json.loads(line)
        except ValueError:
            raise ToolError(self._ended(status, elapsed, o)) from None
        return _format(outcome, o["max_chars"])

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _why_not(self, first: bytes) -> str:
        self.kill_group()
        self.proc.wait()
        try:
            setup = json.loads(first).get("setup_error")
        except ValueError:
            setup = None
        self.errors.seek(0)
        err = self.errors.read(4000).decode(errors="replace").strip()
        return setup or (err.splitlines()[-1] if err else f"exit code {self.proc.returncode}")

    def _ended(self, status: int, elapsed: float, o: dict[str, Any]) -> str:
        # Killed by a signal: -N from the process itself, 128+N as bwrap reports its child's end.
        signalled = {-status, status - 128}
        if signal.SIGXCPU in signalled or (signal.SIGKILL in signalled and elapsed >= o["cpu_s"] * 0.8):
            return f"the code used more than {o['cpu_s']} s of CPU time (limit) and was stopped"
        if signal.SIGKILL in signalled:
            return f"the code was killed (memory limit {o['memory_mb']} MB, or a process limit) before it finished"
        return f"the code ended without a result (exit status {status}); it may have exited the interpreter"


def _libraries() -> str:
    "Which of the usual data libraries the sandbox's interpreter has (the description says so)."
    import importlib.util

    found = [name for name in ("pandas", "numpy", "scipy", "polars") if importlib.util.find_spec(name) is not None]
    return f" ({', '.join(found)} available)" if found else " (standard library only)"


def _format(outcome: dict[str, Any], max_chars: int) -> str:
    parts = []
    if outcome.get("stdout"):
        parts.append(outcome["stdout"].rstrip("\n"))
    if outcome.get("stderr"):
        parts.append("[stderr]\n" + outcome["stderr"].rstrip("\n"))
    if outcome.get("value") is not None:
        parts.append(outcome["value"])
    if outcome.get("error"):
        parts.append("[error]\n" + outcome["error"].rstrip("\n"))
        raise ToolError(clip("\n".join(parts), max_chars))
    return clip(
        "\n".join(parts) if parts else "(no output; print() or end with an expression to see a value)", max_chars
    )


def _cleanup(data_dir: str, children: list[_Child]) -> None:
    for child in list(children):
        child.kill()
    shutil.rmtree(data_dir, ignore_errors=True)
