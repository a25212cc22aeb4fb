"""The engine runs without the facade: a `RunSettings` value, the engine's entry, a result.

`Fusion` builds the settings value once per call and hands it down; nothing in the engine reads
the `Fusion` class. The proof: a fresh interpreter runs one deliberation from a hand-made
`RunSettings` against the emulator and `fusion_magic._fusion` is never imported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import JUDGE, PANEL, panel_fusion

from fusion_magic import Fusion
from fusion_magic._base.config import Member
from fusion_magic._base.errors import ConfigError
from fusion_magic._engine.run_settings import RunSettings
from fusion_magic._engine.runner import run_sync

ROOT = Path(__file__).resolve().parents[1]

NEWCOMER = textwrap.dedent(
    """
    import json, sys
    from fusion_magic._base.config import Member
    from fusion_magic._base.endpoint import resolve_endpoint
    from fusion_magic._engine.run import arun_prompt
    from fusion_magic._engine.run_settings import RunSettings
    from fusion_magic._engine.runner import run_sync

    settings = RunSettings(
        panel=tuple(Member(m) for m in ("a/alpha", "b/beta", "c/gamma")),
        judge=Member("j/judge"),
        endpoint=resolve_endpoint(sys.argv[1], api_key="test-key"),
    )
    result = run_sync(arun_prompt(settings, "Should we use SQLite or Postgres for a small web app?"))
    print(json.dumps({
        "status": result.status,
        "answered": [r.model for r in result.responses if r.ok],
        "answer": result.answer,
        "facade_loaded": "fusion_magic._fusion" in sys.modules,
        "ledger_entries": len(settings.ledger.entries),
    }))
    """
)


def test_a_newcomer_runs_one_deliberation_from_the_settings_value_without_the_facade(emulator, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FUSION_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", NEWCOMER, emulator.base_url], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == "ok"
    assert seen["answered"] == PANEL
    assert seen["answer"].strip()
    assert seen["facade_loaded"] is False  # the engine never imported `Fusion`
    assert seen["ledger_entries"] == 1  # the run was recorded in the settings' own ledger
    assert len(emulator.chats()) == 4  # three members and the judge, over real HTTP


def test_the_facade_builds_the_value_from_its_own_settings(emulator):
    fusion = panel_fusion(timeout=42, quorum=2, max_tokens=321, verified_only=True)
    settings = fusion.run_settings()
    assert [m.name for m in settings.panel] == PANEL and settings.judge.name == JUDGE
    assert (settings.timeout, settings.quorum, settings.max_tokens, settings.verified_only) == (42, 2, 321, True)
    assert settings.ledger is fusion.ledger
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 1  # type: ignore[misc]
    # Every field is filled from the Fusion, none left at a default it does not share.
    for field in dataclasses.fields(RunSettings):
        if hasattr(fusion, field.name) and field.name not in ("panel", "jury"):
            assert getattr(settings, field.name) == getattr(fusion, field.name), field.name


def test_a_result_made_through_the_facade_can_be_followed_up(emulator):
    fusion = panel_fusion()
    first = fusion.run("Which database for a small web app?")
    assert fusion.last_result is first
    second = first.follow_up("And for a large one?")
    assert second.status == "ok" and second.history[0]["prompt"] == first.prompt


def test_settings_without_an_endpoint_say_so():
    settings = RunSettings(panel=(Member("a/alpha"),), judge=Member("j/judge"))
    with pytest.raises(ConfigError, match="no endpoint"):
        run_sync(settings.aendpoint())


def test_fusion_still_exposes_what_the_fronts_read():
    "Only the facade and the fronts import `Fusion`; they keep reading its attributes as before."
    fusion = Fusion(preset="budget", base_url="http://127.0.0.1:9/v1", api_key="k")
    names = [state.name for state in fusion.tracker().snapshot()]
    assert names[: len(fusion.panel)] == [m.name for m in fusion.panel] and fusion.judge.name in names
