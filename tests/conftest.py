"""Shared fixtures: an isolated environment per test and the OpenAI-compatible emulator."""

from __future__ import annotations

import sys

import pytest

from fusion_magic.emulator import Emulator

# Where a test that forgot to point somewhere would send requests: a closed local port,
# so no test can reach a real LLM API even on a machine that has a key set.
NOWHERE = "http://127.0.0.1:9/api/v1"


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
