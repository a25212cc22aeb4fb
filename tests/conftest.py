"""Shared fixtures: an isolated environment per test and the OpenAI-compatible emulator."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
from read_guard import READ_ALLOW, READ_LOG, ReadGuard, allowed_roots

from fusion_magic.emulator import Emulator

pytest_plugins = ["magic_shell"]  # the `shell` and `ip` fixtures of the magic tests

# Tests read nothing outside the checkout (see read_guard.py): this process from here on, and every
# Python subprocess that inherits the environment (through read_guard_site/sitecustomize.py).
GUARD = ReadGuard(allowed_roots()).install()
_LOG_FD, _LOG = tempfile.mkstemp(prefix="fusion-reads-", suffix=".log")
os.close(_LOG_FD)
os.environ[READ_LOG] = _LOG
os.environ[READ_ALLOW] = os.pathsep.join(GUARD.allowed)
_SITE = str(Path(__file__).resolve().parent / "read_guard_site")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SITE, os.environ.get("PYTHONPATH")) if p)

# Where a test that forgot to point somewhere would send requests: a closed local port,
# so no test can reach a real LLM API even on a machine that has a key set.
NOWHERE = "http://127.0.0.1:9/api/v1"


@pytest.fixture(autouse=True)
def reads_inside_the_checkout():
    "Fails the test that opened a file outside the checkout (in this process)."
    GUARD.take()  # what the collection or a background thread did before this test is the session's
    yield
    caught = GUARD.take()
    if caught:
        pytest.fail(f"the test opened {len(caught)} file(s) outside the checkout: {sorted(set(caught))[:5]}")


def pytest_sessionfinish(session, exitstatus):
    "Fails the session on reads outside the checkout by subprocesses or outside any test."
    lines = [*(f"{os.getpid()} (collection or between tests): {p}" for p in GUARD.take())]
    try:
        lines += Path(_LOG).read_text(encoding="utf-8").splitlines()
        os.unlink(_LOG)
    except OSError:
        pass
    if lines:
        by_file = {line.rsplit(": ", 1)[-1]: line for line in lines}  # one line per file
        print(f"\nfiles opened outside the checkout ({len(by_file)}):", *sorted(by_file.values())[:30], sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    "No real keys, no real endpoint, a private cache dir, fresh session defaults and ledger."
    for name in ("OPENROUTER_API_KEY", "FUSION_API_KEY", "FUSION_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FUSION_BASE_URL", NOWHERE)
    monkeypatch.setenv("FUSION_CACHE_DIR", str(tmp_path / "cache"))
    from fusion_magic import ledger
    from fusion_magic._fronts import session

    session.clear_defaults()
    ledger().clear()
    main = sys.modules["__main__"]
    yield
    session.clear_defaults()
    # An in-process IPython shell installs its own `__main__`; multiprocessing's spawn re-imports
    # `__main__` in the child, so a later test that spawns would fail. Put the real one back.
    sys.modules["__main__"] = main


@pytest.fixture
def emulator(monkeypatch):
    "A started emulator; FUSION_BASE_URL points at it."
    with Emulator() as emu:
        monkeypatch.setenv("FUSION_BASE_URL", emu.base_url)
        yield emu
