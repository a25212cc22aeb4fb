"""The program that runs INSIDE the python sandbox (its source is passed with ``python -I -S -c``).

It imports nothing from fusion_magic (the package is not visible in the sandbox). Steps, with the
configuration as the JSON in ``sys.argv[1]``:

1. make the interpreter's packages importable (their folders are read-only binds);
2. load the frames (pickles written by the parent into a read-only folder) as variables;
3. when started as root (CI, containers): give the working folders to an unprivileged uid and
   become that uid, so the kernel's process limit binds (it never binds uid 0) and no capability
   is left; the parent picks a uid no other process uses, so concurrent sandboxes are counted apart;
4. set the resource limits (CPU seconds, address space, processes, file size, open files, no core);
5. say READY, wait for the code on stdin (exit when none comes within ``idle_s``), run it with
   stdout/stderr captured (capped), evaluate a last expression as a notebook does, and write one
   JSON line with the outcome to the saved result descriptor. File descriptors 1 and 2 point at
   /dev/null while the code runs, so only Python-level output is captured.
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["main"]


class _Capped:
    "A text stream keeping the first ``limit`` characters written to it."

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def value(self) -> str:
        text = "".join(self.parts)
        return text + (f"\n[... {self.dropped:,} more characters not shown]" if self.dropped else "")


def _limits(config: dict) -> None:
    "Set the limits; in the sandbox each must hold, unsandboxed (macOS...) one the system refuses is skipped."
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)  # the limit counts from the process's start:
    cpu = int(config["cpu_s"]) + int(used.ru_utime + used.ru_stime) + 1  # the set-up (pandas) is not the code's
    memory = int(config["memory_mb"]) * 1024 * 1024
    wanted = [
        ("RLIMIT_CPU", (cpu, cpu + 1)),
        ("RLIMIT_AS", (memory, memory)),
        ("RLIMIT_FSIZE", (int(config["file_mb"]) * 1024 * 1024,) * 2),
        ("RLIMIT_NOFILE", (256, 256)),
        ("RLIMIT_CORE", (0, 0)),
    ]
    if config["processes"] is not None:  # unsandboxed it would count every process of the user
        wanted.append(("RLIMIT_NPROC", (int(config["processes"]),) * 2))
    for name, value in wanted:
        try:
            resource.setrlimit(getattr(resource, name), value)
        except (ValueError, OSError, AttributeError):
            if config["strict"]:
                raise


def _drop(uid: int, workdir: str) -> None:
    for folder in (workdir, "/tmp"):
        if os.path.isdir(folder):
            os.chown(folder, uid, uid)
            os.chmod(folder, 0o700)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise SystemExit("the sandbox could not drop root")  # pragma: no cover - would be a kernel defect


def _run(code: str, names: dict, limit: int) -> dict:
    import ast
    import contextlib
    import traceback

    out, err = _Capped(limit), _Capped(limit)
    outcome: dict = {"value": None, "error": None}
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # type: ignore[type-var,unused-ignore]
        try:
            tree = ast.parse(code, "<code>", "exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            assert last is None or isinstance(last, ast.Expr)
            exec(compile(tree, "<code>", "exec"), names)  # noqa: S102 - running this code is the point
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<code>", "eval"), names)  # noqa: S307
                if value is not None:
                    outcome["value"] = repr(value)[: limit * 2]
        except SystemExit as exc:  # sys.exit() / exit(): a normal end unless it carries a failure
            if exc.code not in (None, 0):
                outcome["error"] = f"SystemExit: {exc.code}"
        except BaseException as exc:  # noqa: BLE001 - MemoryError, KeyboardInterrupt...: all reported
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<code>"]
            lines = traceback.format_list(frames[-5:]) + traceback.format_exception_only(type(exc), exc)
            outcome["error"] = "".join(lines)[-3000:]
    outcome["stdout"], outcome["stderr"] = out.value(), err.value()
    return outcome


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.path[:0] = config["paths"]
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    names: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        if config["frames"]:
            import pickle

            for name in config["frames"]:
                with open(os.path.join(config["data_dir"], name + ".pkl"), "rb") as f:
                    names[name] = pickle.load(f)  # noqa: S301 - written by the parent from the user's frames
            import pandas

            pandas.set_option("display.max_rows", 40)
            pandas.set_option("display.max_columns", 20)
            pandas.set_option("display.width", 160)
        if config["uid"] is not None:
            _drop(int(config["uid"]), config["workdir"])
        _limits(config)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the reason nothing ran
        result.write(json.dumps({"setup_error": f"{type(exc).__name__}: {exc}"}) + "\n")
        result.flush()
        os._exit(3)
    os.chdir(config["workdir"])
    result.write("READY\n")
    result.flush()
    import select

    if not select.select([0], [], [], float(config["idle_s"]))[0]:
        os._exit(0)  # a spare nobody used
    code = sys.stdin.buffer.read(int(config["max_code"]) + 1).decode("utf-8", "replace")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    outcome = _run(code, names, int(config["max_chars"]))
    result.write(json.dumps(outcome) + "\n")
    result.flush()
    os._exit(0)  # no atexit handler of the code runs after the outcome


if __name__ == "__main__":
    main()
