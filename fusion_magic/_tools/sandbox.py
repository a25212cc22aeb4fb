"""The OS sandbox of the `python` tool: bubblewrap (``bwrap``) on Linux.

The sandbox a command line from `bwrap_command` builds has:

- its own network namespace (no interface but a loopback of its own: no internet, no host ports),
  PID, IPC, UTS and cgroup namespaces; a new session (no terminal injection); ``--die-with-parent``;
- an empty root with, read-only: /usr (and the /bin, /lib... links into it), the Python installation
  (``sys.base_prefix``) and the interpreter's site-packages folders, the frames folder at /data;
  a fresh /proc and a minimal /dev; size-capped tmpfs at /sandbox (the working folder) and /tmp.
  Nothing else: not the user's home, not the project folder, not /etc beyond the loader cache;
- a cleared environment (``--clearenv``): no API key, no token, nothing the kernel had;
- an unprivileged uid: a user namespace with uid/gid 65534 for a normal user; when fusion_magic runs
  as root (containers, CI), no user namespace (that would keep uid 0, which the kernel exempts from
  the process limit) and the child drops to a fresh unprivileged uid before any model code runs.
  ``no_new_privs`` is set by bwrap, so no setuid program can give privileges back.

`unavailable()` says in one line why no such sandbox can be made here (not Linux, no bwrap,
namespaces forbidden), or returns None.
"""

from __future__ import annotations

import functools
import os
import platform
import secrets
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

__all__ = ["as_root", "bwrap_command", "clean_env", "interpreter_paths", "sandbox_uid", "unavailable"]

_HOST_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ENV = {
    "HOME": "/sandbox",
    "TMPDIR": "/tmp",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    # One thread per numeric library: threads count against the process limit.
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_MAX_THREADS": "1",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp",
}


def _namespaces(privileged: bool) -> list[str]:
    flags = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not privileged:
        flags += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    return flags + ["--die-with-parent", "--new-session", "--clearenv"]


def as_root() -> bool:
    "Whether the sandbox is made by root: then without a user namespace, the child dropping to a fresh uid."
    return os.geteuid() == 0


def _bwrap() -> str | None:
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None)


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    "Why the sandbox cannot run here, in one line; None when it can."
    if platform.system() != "Linux":
        return f"the python sandbox needs Linux with bubblewrap; this is {platform.system()}"
    bwrap = _bwrap()
    if bwrap is None:
        return "the python sandbox needs bubblewrap (bwrap), which is not installed (apt-get install bubblewrap)"
    home = os.path.realpath(os.path.expanduser("~"))
    for folder in interpreter_paths()[0]:
        if folder == "/" or _inside(home, folder):
            return f"the Python installation at {folder} contains the home folder, which the sandbox would expose"
    probe = [bwrap, *_namespaces(as_root()), *_system_binds(), "--", "/usr/bin/true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=20, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not be started ({exc})"
    if done.returncode != 0:
        why = (done.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"bubblewrap cannot create a sandbox here ({why}); namespaces may be disabled"
    return None


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for link in _HOST_LINKS:
        path = Path(link)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), link]
        elif path.is_dir():
            args += ["--ro-bind", link, link]
    args += ["--perms", "0755", "--dir", "/etc", "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return args + ["--proc", "/proc", "--dev", "/dev"]


def interpreter_paths() -> tuple[list[str], list[str]]:
    """(folders to bind read-only, folders to put on the child's sys.path): the Python installation
    and the current environment's site-packages, never the user-site, PYTHONPATH or the working folder."""
    paths = sysconfig.get_paths()
    site = [p for p in dict.fromkeys([paths["purelib"], paths["platlib"]]) if os.path.isdir(p)]
    base = [os.path.realpath(sys.base_prefix), os.path.dirname(os.path.realpath(sys.executable))]
    binds: list[str] = []
    for folder in sorted(dict.fromkeys(base + site), key=len):
        if folder != "/usr" and not folder.startswith("/usr/") and not any(_inside(folder, b) for b in binds):
            binds.append(folder)
    return binds, site


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def sandbox_uid() -> int:
    "A uid for one sandbox when running as root: unused, so the process limit counts this sandbox alone."
    return 1_900_000_000 + secrets.randbelow(90_000_000)


def bwrap_command(
    argv: list[str], *, data_dir: str, work_mb: int, privileged: bool, extra_ro: list[str] | None = None
) -> list[str]:
    "The bwrap command line that runs ``argv`` (an interpreter command) in the sandbox."
    bwrap = _bwrap()
    if bwrap is None:  # unavailable() is checked first; this is a guard for a bwrap removed since
        raise RuntimeError("bubblewrap (bwrap) is not installed")
    binds, _ = interpreter_paths()
    size = str(work_mb * 1024 * 1024)
    cmd = [bwrap, *_namespaces(privileged), *_system_binds(), "--hostname", "sandbox"]
    # The writable folders first: a Python installed under /tmp (a CI clone) is bound on top.
    cmd += ["--size", size, "--tmpfs", "/sandbox", "--size", size, "--tmpfs", "/tmp"]
    made = {"/", "/sandbox", "/tmp"}
    for folder in binds + list(extra_ro or []):
        # Its parents as plain 0755 folders (bwrap would copy the host's modes: /root is 0700 and
        # would keep the unprivileged uid out of a Python installed under it).
        for parent in reversed(Path(folder).parents):
            if str(parent) not in made:
                made.add(str(parent))
                cmd += ["--perms", "0755", "--dir", str(parent)]
        cmd += ["--ro-bind", folder, folder]
    cmd += ["--ro-bind", data_dir, "/data"]
    for key, value in _ENV.items():
        cmd += ["--setenv", key, value]
    return [*cmd, "--chdir", "/", "--", *argv]


def clean_env(workdir: str) -> dict[str, str]:
    "The environment of an unsandboxed child: the same clean set, pointing at its working folder."
    return {**_ENV, "HOME": workdir, "TMPDIR": workdir, "MPLCONFIGDIR": workdir}
