"""The built wheel, installed into a fresh venv, runs `fusion-magic quickstart --emulator` outside the checkout.

The fresh venv gets the wheel with pip (``--no-deps``); its dependencies come from this test's own
environment through a path entry, so nothing is downloaded. The source checkout is on no path of
the new interpreter: `fusion_magic` and its example notebooks must come from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("hatchling")
pytest.importorskip("nbclient")

SOURCE = Path(__file__).resolve().parent.parent


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv[:4]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(SOURCE)],
        cwd=out,
    )
    (built,) = out.glob("fusion_magic-*.whl")
    return built


def test_the_wheel_ships_the_examples_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "fusion_magic/py.typed",
        "fusion_magic/examples/quickstart.ipynb",
        "fusion_magic/examples/research_workflow.ipynb",
        "fusion_magic/examples/compare.ipynb",
        "fusion_magic/examples/methods.ipynb",
        "fusion_magic/emulator/server.py",
    ):
        assert needed in names
    assert not [n for n in names if "/out/" in n or n.endswith((".pyc", ".json"))], "no build leftovers"


def test_quickstart_runs_from_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], cwd=tmp_path)
    fresh_site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path).strip()
    )
    # This environment's packages (not its fusion_magic) serve as the wheel's dependencies.
    ours = sysconfig.get_path("purelib")
    (fresh_site / "zz_test_dependencies.pth").write_text(ours + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FUSION_BASE_URL")}
    env.update(FUSION_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path / "home"), JUPYTER_PLATFORM_DIRS="1")
    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(python), "-c", "import fusion_magic; print(fusion_magic.__file__)"], cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(fresh_site), where
    out = _run([str(target / "bin" / "fusion-magic"), "quickstart", "--emulator"], cwd=work, env=env)
    assert "running against the built-in emulator, answers are scripted" in out
    written = work / "fusion-quickstart.ipynb"
    assert f"executed notebook written to {written}" in out and "FusionResult(status='ok'" in out
    assert written.is_file() and written.stat().st_size > 1000
