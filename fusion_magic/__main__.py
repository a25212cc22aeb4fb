"""``fusion-magic`` (also ``python -m fusion_magic``): ``quickstart``, ``local``, ``serve`` and ``mcp``.

    fusion-magic quickstart [--output PATH] [--emulator]
    fusion-magic local [--port N]
    fusion-magic serve [--host 127.0.0.1] [--port 8787] [--preset P] [--token T]
    fusion-magic mcp [--preset P]

The example notebooks ship inside the package (``fusion_magic/examples/``, read through
`importlib.resources`), so the quickstart works the same from a source checkout and after
``pip install fusion-magic``.

The quickstart picks its endpoint and says which: OpenRouter when a key is set (the ``budget``
preset, real money), else the local model (the ``local`` preset), else the built-in emulator.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["example", "execute_notebook", "kernel_manager", "kernel_env", "main"]

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding fusion_magic/
DEFAULT_OUTPUT = Path("fusion-quickstart.ipynb")  # in the current folder: never inside the installed package
PRESET_ENV = "FUSION_QUICKSTART_PRESET"  # the example notebooks read their preset from here
KERNEL_NAME = "fusion-magic-python"
KEY_VARS = ("FUSION_API_KEY", "OPENROUTER_API_KEY")


# -- running notebooks --------------------------------------------------------------------------------
def kernel_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    "This process's environment plus ``extra``, with this fusion_magic first on the kernel's path."
    env = dict(os.environ)
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@contextlib.contextmanager
def kernel_manager() -> Iterator[Any]:
    """A `KernelManager` whose kernel runs on this very interpreter (``sys.executable``).

    A private kernelspec, so neither a global ``python3`` kernelspec nor a different Python on
    PATH decides which interpreter (and which fusion_magic) the notebook runs on.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="fusion-kernel-") as tmp:
        spec = Path(tmp) / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        argv = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            # No history file in ~/.ipython; no warnings on stderr (e.g. about TCP transport).
            "--HistoryManager.hist_file=:memory:",
            "--IPKernelApp.log_level=ERROR",
        ]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "Python (fusion_magic)", "language": "python"})
        )
        specs = KernelSpecManager(kernel_dirs=[str(spec.parent)])
        yield KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


@contextlib.contextmanager
def example(name: str) -> Iterator[Path]:
    "A file path to the example notebook ``name`` shipped in the package (e.g. ``quickstart.ipynb``)."
    resource = importlib.resources.files(__package__ or "fusion_magic").joinpath("examples").joinpath(name)
    if not resource.is_file():
        raise FileNotFoundError(f"fusion_magic ships no example named {name!r}")
    with importlib.resources.as_file(resource) as path:
        yield path


def execute_notebook(
    path: Path, *, env: Mapping[str, str] | None = None, timeout: int = 600, cwd: Path | None = None
) -> Any:
    """Run every cell of the notebook at ``path`` in a fresh kernel; returns the executed notebook.

    The kernel starts in ``cwd`` (default: the notebook's folder), where the notebook's relative
    paths (files it saves or reads) resolve.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    with kernel_manager() as km:
        client = NotebookClient(
            notebook,
            km=km,
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(cwd or path.parent)}},
        )
        # cleanup_kc: nbclient only shuts down kernels it created itself; this one is ours to stop.
        client.execute(env=kernel_env(env), cleanup_kc=True)
    return notebook


def answer_summary(notebook: Any) -> str:
    "The first result's plain-text summary (status line and answer) from an executed notebook."
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.source.startswith("%%fusion"):
            continue
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "")
            if text.startswith("FusionResult("):
                return "\n".join(text.splitlines()[:2])
    return "(no result found in the executed notebook)"


# -- quickstart ---------------------------------------------------------------------------------------
def _local_model_missing() -> str | None:
    "Why the local model cannot run here, or None when it can."
    from ._base.errors import ConfigError
    from ._local.model import check_server_installed, model_path

    try:
        check_server_installed()
        model_path()
    except ConfigError as exc:
        return str(exc)
    return None


def _start_emulator() -> Any:
    if importlib.util.find_spec("aiohttp") is None:
        raise SystemExit(
            "error: no key, no local model, and the emulator needs aiohttp: "
            "pip install 'fusion-magic[test]' (or set OPENROUTER_API_KEY)"
        )
    from .emulator import Emulator, Reply

    emulator = Emulator().start()
    # A little latency and streaming, so the live progress has something to show.
    for i, model in enumerate(("openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat")):
        emulator.script(model, Reply(latency=0.2 + 0.2 * i, tokens_per_s=100))
    emulator.script("openai/gpt-4.1-mini", Reply(latency=0.3, tokens_per_s=400))
    return emulator


def quickstart(output: Path | None, force_emulator: bool) -> int:
    "Execute the shipped quickstart notebook in a fresh kernel and write the executed copy to ``output``."
    output = (output or DEFAULT_OUTPUT).expanduser().resolve()
    if output.is_dir():
        print(f"error: {output} is a folder; give --output a notebook file name", file=sys.stderr)
        return 1
    env: dict[str, str] = {}
    emulator = None
    key_var = None if force_emulator else next((v for v in KEY_VARS if os.environ.get(v)), None)
    missing = "" if force_emulator or key_var else _local_model_missing()
    if key_var:
        where = os.environ.get("FUSION_BASE_URL") or "OpenRouter"
        print(f"endpoint: {where} with the key in {key_var}, preset budget (spends real credit, about $0.01)")
        env[PRESET_ENV] = "budget"
    elif missing is None:
        print(
            "endpoint: no key set, so the local model (SmolLM2-135M on this machine), preset local; "
            "its answers are weak: it shows the mechanics, not the quality"
        )
        env[PRESET_ENV] = "local"
    else:
        if missing:
            print(f"(local model unavailable: {missing})")
        why = "--emulator" if force_emulator else "no key and no local model"
        print(f"{why}: running against the built-in emulator, answers are scripted")
        emulator = _start_emulator()
        env.update({PRESET_ENV: "budget", "FUSION_BASE_URL": emulator.base_url})
    print("executing the quickstart notebook in a fresh kernel...", flush=True)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with example("quickstart.ipynb") as source:
            notebook = execute_notebook(source, env=env, cwd=output.parent)
    except Exception as exc:  # nbclient's CellExecutionError carries the failing cell and its traceback
        print(f"error: the notebook failed:\n{exc}", file=sys.stderr)
        return 1
    finally:
        if emulator is not None:
            emulator.stop()
    import nbformat

    nbformat.write(notebook, output)
    print(f"executed notebook written to {output}")
    print(answer_summary(notebook))
    return 0


def main(argv: list[str] | None = None) -> int:
    "Entry point of ``python -m fusion_magic`` and the ``fusion-magic`` script."
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["local"]:
        from ._local.server import main_local

        return main_local(argv[1:])
    if argv[:1] == ["serve"]:
        from ._fronts.launch import main_serve

        return main_serve(argv[1:])
    if argv[:1] == ["mcp"]:
        from ._fronts.mcp import main_mcp

        return main_mcp(argv[1:])
    parser = argparse.ArgumentParser(
        prog="fusion-magic", description="fusion_magic command line tools (also: python -m fusion_magic)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{quickstart,local,serve,mcp}")
    quick = commands.add_parser("quickstart", help="run the quickstart notebook in a real kernel")
    quick.add_argument(
        "--output", type=Path, default=None, help=f"where to write the executed notebook (default ./{DEFAULT_OUTPUT})"
    )
    quick.add_argument(
        "--emulator",
        action="store_true",
        help="use the built-in emulator even when a key or the local model is available",
    )
    commands.add_parser("local", help="serve the local model until Ctrl-C (see: local --help)")
    commands.add_parser("serve", help="an OpenAI-compatible endpoint for deliberation (see: serve --help)")
    commands.add_parser("mcp", help="an MCP server (stdio) with a `fusion` tool (see: mcp --help)")
    args = parser.parse_args(argv)
    return quickstart(args.output, args.emulator)


if __name__ == "__main__":
    sys.exit(main())
