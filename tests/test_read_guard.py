"""The read guard (tests/read_guard.py) catches a test that reads beside the checkout, in-process and in a child."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import GUARD
from read_guard import READ_LOG, ROOT, ReadGuard, allowed_roots, beside_roots

TESTS = Path(__file__).resolve().parent


def beside_the_checkout() -> Path:
    "A path in the folder that holds the checkout (where the old tests read their fixtures from)."
    return ROOT.parent / f"{ROOT.name}-read-guard-probe-{uuid.uuid4().hex}" / "index.json"


def test_a_read_beside_the_checkout_is_caught_even_when_the_file_is_missing():
    probe = beside_the_checkout()
    GUARD.take()
    with pytest.raises(FileNotFoundError):
        probe.read_text()
    with pytest.raises(FileNotFoundError):
        open(os.path.relpath(probe))  # a relative path that climbs out is resolved first  # noqa: SIM115
    caught = GUARD.take()  # taken here, so that this test itself passes
    assert caught == [str(probe), str(probe)]


def test_reads_inside_the_checkout_the_interpreter_and_tmp_are_not_caught(tmp_path):
    GUARD.take()
    (TESTS / "fixtures" / "openrouter" / "index.json").read_bytes()
    (tmp_path / "x.txt").write_text("x")
    (tmp_path / "x.txt").read_text()
    Path(os.__file__).read_bytes()  # the standard library
    Path(pytest.__file__).read_bytes()  # site-packages
    with pytest.raises(FileNotFoundError):
        open(f"/etc/fusion-magic-{uuid.uuid4().hex}")  # a system folder  # noqa: SIM115
    assert GUARD.take() == []


def test_the_allowed_roots_hold_no_folder_beside_the_checkout():
    guard = ReadGuard(allowed_roots())
    assert not guard.outside(str(TESTS / "conftest.py"))
    assert not guard.outside(sys.executable)
    assert guard.outside(str(ROOT.parent / "shared" / "fixtures" / "openrouter" / "index.json"))
    assert guard.outside(str(ROOT) + "-sibling/data.json")  # a prefix of the name is not the folder
    assert guard.outside(str(ROOT / ".." / "elsewhere.json"))


def test_a_checkout_inside_the_temporary_folder_still_guards_its_neighbours(tmp_path):
    "As in .ci/run: the copy sits in a fresh temporary folder; beside it is out of bounds, tmp is not."
    checkout = tmp_path / "copy" / "fusion_magic"
    guard = ReadGuard(allowed_roots(checkout), denied=beside_roots(checkout))
    assert not guard.outside(str(checkout / "tests" / "fixtures" / "openrouter" / "index.json"))
    assert guard.outside(str(tmp_path / "copy" / "shared" / "fixtures" / "index.json"))
    assert not guard.outside(str(tmp_path / "elsewhere" / "scratch.txt"))  # another test's tmp_path
    home = ReadGuard(allowed_roots(Path.home() / "project"), denied=beside_roots(Path.home() / "project"))
    assert not home.outside(str(Path.home() / ".cache" / "matplotlib" / "fontlist.json"))
    assert home.outside(str(Path.home() / "shared" / "data.json"))


def test_a_python_subprocess_reading_beside_the_checkout_is_logged_for_the_session():
    log = Path(os.environ[READ_LOG])
    probe = beside_the_checkout()
    script = f"import pathlib\ntry:\n    pathlib.Path({str(probe)!r}).read_text()\nexcept OSError:\n    pass\n"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    lines = log.read_text(encoding="utf-8").splitlines()
    mine = [line for line in lines if str(probe) in line]
    assert len(mine) == 1 and mine[0].split()[0].isdigit()
    # Taken out again so the session stays green (the session fails on any line left in the log).
    log.write_text("".join(f"{line}\n" for line in lines if str(probe) not in line), encoding="utf-8")


def test_no_test_names_a_path_outside_the_repository():
    "The fixtures are read relative to the test files: no absolute path and no climbing out of tests/."
    for source in sorted(TESTS.glob("*.py")):
        text = source.read_text(encoding="utf-8")
        for bad in ('Path("/work', "parents[2]", '"../', "/shared/fixtures"):
            assert bad not in text or source.name == "test_read_guard.py", f"{source.name} names {bad}"
