"""A recognisable key must show up nowhere: output, repr, exceptions, cache, ledger, exports."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from fusion_magic import Fusion, ledger
from fusion_magic._base.errors import FusionError
from fusion_magic.emulator import Emulator, Reply

KEY = "sk-or-v1-CANARY0123456789abcdef0123456789abcdef"
PANEL = ["a/alpha", "b/beta", "c/gamma"]


@pytest.fixture
def keyed(monkeypatch):
    "An emulator that requires KEY, with KEY in the environment."
    with Emulator(api_key=KEY) as emu:
        monkeypatch.setenv("FUSION_BASE_URL", emu.base_url)
        monkeypatch.setenv("FUSION_API_KEY", KEY)
        yield emu


def test_key_appears_nowhere(keyed, tmp_path, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    # A server that echoes the key back in an error (some do) must not leak it either.
    keyed.script("c/gamma", Reply(status=400, error_message=f"bad request for key {KEY}"))
    keyed.script("j/judge", Reply(json_valid=False))
    fusion = Fusion(panel=PANEL, judge="j/judge", max_retries=0)
    result = fusion.run("Tell me a secret")
    assert result.status == "judge_failed"  # the key did authenticate: members answered
    rejudged = fusion.rejudge(result, judge="k/judge2")
    texts = [
        repr(result),
        str(result),
        result.to_json(),
        result._repr_html_(),
        result._repr_markdown_(),
        result.to_frame().to_string(),
        result.analysis.to_frame().to_string(),
        repr(rejudged),
        rejudged.to_json(),
        repr(fusion),
        repr(fusion.endpoint),
        str(fusion.__dict__),
        repr(ledger()),
        ledger()._repr_html_(),
        ledger().to_frame(detail=True).to_string(),
    ]
    errors = []
    for bad in (dict(panel=["no slash"]), dict(quorum=9), dict(preset="nope")):
        with pytest.raises(FusionError) as info:
            Fusion(**{"panel": PANEL, "judge": "j/judge", **bad})
        errors.append(repr(info.value))
    failed = result.responses[2]
    assert failed.status == "failed" and "bad request for key" in failed.error
    out, err = capfd.readouterr()
    files = b"".join(p.read_bytes() for p in Path(tmp_path / "cache").rglob("*") if p.is_file())
    assert files  # the cache and the price list were written
    everything = "\n".join([*texts, *errors, out, err, caplog.text])
    assert KEY not in everything
    assert KEY.encode() not in files
    assert KEY[10:30] not in everything  # not even a fragment


def test_key_cannot_be_pickled_or_printed(keyed):
    fusion = Fusion(panel=PANEL, judge="j/judge")
    assert KEY not in repr(fusion.endpoint.api_key) and KEY not in str(fusion.endpoint.api_key)
    with pytest.raises(TypeError):
        pickle.dumps(fusion.endpoint.api_key)


def test_request_log_redacts_authorization(keyed):
    Fusion(panel=PANEL, judge="j/judge").run("Q")
    assert keyed.requests and all(r.headers.get("authorization") == "REDACTED" for r in keyed.requests)
