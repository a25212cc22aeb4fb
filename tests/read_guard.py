"""A guard against tests that read files outside the checkout.

The test suite must pass from a copy of the repository with nothing beside it, so a test may only open
files inside the checkout, inside the interpreter (the venv, site-packages, the standard library), in
the temporary folder, in the user's own configuration and cache folders (`~/.cache`, `~/.jupyter`,
...), or in the system's folders (`/usr`, `/etc`, `/proc`, ...). Everything else, typically a folder
beside the checkout, is recorded.

It works with an audit hook (PEP 578) on the `open` event, which `open()`, `io.open`, `Path.read_*`
and `os.open` raise before touching the file, so even a read of a missing file is seen. Audit hooks
cannot be removed: the hook is installed once per process and only records while `active`.

Subprocesses: `sitecustomize.py` in `read_guard_site/` installs the same hook in every Python child
that inherits the environment (the emulator, `serve`, kernels, the local model server), writing what
it catches to the file named by `READ_LOG`; the session fails on any line there. Children that are not
Python (chromium) or that clear the environment are not guarded.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

__all__ = ["READ_ALLOW", "READ_LOG", "ROOT", "ReadGuard", "allowed_roots", "beside_roots"]

ROOT = Path(__file__).resolve().parents[1]
READ_LOG = "FUSION_TEST_READ_LOG"
# The session's allowed folders, for its subprocesses: a child may run on another interpreter (a fresh
# venv) and still read the session's (pip re-running itself with `--python`, a kernel's packages).
READ_ALLOW = "FUSION_TEST_READ_ALLOW"
# System folders a program may read on any machine; /home, /root, /work, /srv, /mnt ... are not here.
_SYSTEM = (
    "/usr",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/var/lib",
    "/var/cache",
    "/opt/conda",
    "/nix",
    "/System",
    "/Library",
    "/private/etc",
    "/private/var",
)


def _forms(path: str | os.PathLike[str]) -> set[str]:
    "The path as given (made absolute) and with its symlinks resolved."
    absolute = os.path.abspath(path)
    return {absolute, os.path.realpath(absolute)}


def allowed_roots(root: Path = ROOT) -> tuple[str, ...]:
    "Every folder a test may open files in, as absolute paths without a trailing separator."
    places: set[str] = set(_SYSTEM)
    for place in (
        root,
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        tempfile.gettempdir(),
        *site.getsitepackages(),
        site.getusersitepackages(),
        *sysconfig.get_paths().values(),
        *(p for p in sys.path if p and os.path.isdir(p) and not _beside(p, root)),
    ):
        places |= _forms(place)
    home = Path.home()
    # The user's own configuration and caches (~/.cache, ~/.config, ~/.local, ~/.jupyter, ~/.ipython, ...).
    places |= {str(home / name) for name in _dot_names(home)}
    places |= {p for p in os.environ.get(READ_ALLOW, "").split(os.pathsep) if p}
    return tuple(sorted(p.rstrip(os.sep) or os.sep for p in places))


_DOT_NAMES = (".cache", ".config", ".local", ".jupyter", ".ipython", ".matplotlib")


def _dot_names(home: Path) -> set[str]:
    "The usual configuration folders (even before they exist) and whatever hidden entries the home has."
    try:
        return set(_DOT_NAMES) | {name for name in os.listdir(home) if name.startswith(".")}
    except OSError:
        return set(_DOT_NAMES)


def _beside(path: str, root: Path) -> bool:
    "A sys.path entry outside the checkout that is not part of an installation (e.g. a sibling folder)."
    real = os.path.realpath(path)
    return not real.startswith(str(root)) and "site-packages" not in real and "python" not in real.lower()


def beside_roots(root: Path = ROOT) -> tuple[str, ...]:
    "The folder that holds the checkout: nothing in it but the checkout may be read, even inside /tmp."
    return tuple(sorted(p.rstrip(os.sep) or os.sep for p in _forms(root.parent)))


def _longest(path: str, roots: tuple[str, ...]) -> int:
    return max((len(r) for r in roots if path == r or path.startswith(r.rstrip(os.sep) + os.sep)), default=-1)


class ReadGuard:
    """Records every `open` of a path outside `allowed` while `active`.

    A path is inside when the longest folder of `allowed` holding it is longer than the longest of
    `denied` holding it: with the checkout in a temporary folder (as `.ci/run` does), the folder
    beside it stays out of bounds although the temporary folder is allowed, while `~/.cache` stays
    allowed for a checkout in the home folder.
    """

    def __init__(self, allowed: tuple[str, ...], log: str | None = None, denied: tuple[str, ...] = ()) -> None:
        self.allowed = allowed
        self.denied = denied or beside_roots()
        self.log = log  # a file to append to (in a subprocess), else kept in `caught`
        self.active = False
        self.caught: list[str] = []
        self._busy = threading.local()

    def install(self) -> ReadGuard:
        sys.addaudithook(self._hook)
        self.active = True
        return self

    def outside(self, path: str) -> bool:
        absolute = os.path.normpath(os.path.join(os.getcwd(), path))
        return _longest(absolute, self.denied) >= _longest(absolute, self.allowed)

    def _hook(self, event: str, args: tuple) -> None:
        if event != "open" or not self.active or getattr(self._busy, "on", False):
            return
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return  # a file descriptor
        self._busy.on = True  # the checks below may open files themselves
        try:
            if self.outside(path):
                self._record(os.path.normpath(os.path.join(os.getcwd(), path)))
        except Exception:  # noqa: BLE001 - a guard must never break the program it watches
            pass
        finally:
            self._busy.on = False

    def _record(self, path: str) -> None:
        if self.log is None:
            self.caught.append(path)
            return
        with open(self.log, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {' '.join(sys.argv[:3])[:200]}: {path}\n")

    def take(self) -> list[str]:
        "What was caught since the last take."
        caught, self.caught = self.caught, []
        return caught
