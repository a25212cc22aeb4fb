"""`import fusion_magic` stays cheap: the heavy libraries load with the first run, not on import."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("aiohttp", "httpx", "pydantic", "markdown_it", "nh3", "tqdm", "ipywidgets", "pandas", "matplotlib")


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_loads_no_heavy_library() -> None:
    assert _loaded_after("import fusion_magic") == dict.fromkeys(HEAVY, False)


def test_load_ext_loads_no_http_stack_or_pydantic() -> None:
    loaded = _loaded_after(
        "from IPython.testing.globalipapp import start_ipython\n"
        "shell = start_ipython()\n"
        "import fusion_magic\n"
        "fusion_magic.load_ipython_extension(shell)\n"
        "assert 'fusion' in shell.magics_manager.magics['cell']"
    )
    # The views' libraries too: markdown-it and nh3 load with the first rendering, tqdm with a batch bar.
    assert not any(loaded[m] for m in ("aiohttp", "httpx", "pydantic", "ipywidgets", "markdown_it", "nh3", "tqdm"))


def test_public_names_load_on_first_use() -> None:
    code = (
        "import fusion_magic\n"
        "from fusion_magic import Analysis, Comparison, Fusion, FusionResult, Response, ledger\n"
        "assert callable(ledger) and type(ledger()).__name__ == 'Ledger'\n"
        "assert Fusion.__module__ == 'fusion_magic._fusion'\n"
        "assert set(fusion_magic.__all__) <= set(dir(fusion_magic))\n"
    )
    assert _loaded_after(code)["httpx"]
