"""The fault matrix: every way a member, the judge or the network can fail, over real HTTP."""

from __future__ import annotations

import json
import time

import pytest
from helpers import JUDGE, PANEL

from fusion_magic import Fusion
from fusion_magic.emulator import Reply


def fusion(**kw) -> Fusion:
    kw.setdefault("max_retries", 2)
    kw.setdefault("stall_timeout", 0.5)
    return Fusion(panel=PANEL, judge=JUDGE, **kw)


# (name, replies for b/beta, words in the one-line reason when it finally fails)
TRANSIENT = [
    ("429", Reply(status=429, retry_after=0.2), "429"),
    ("500", Reply(status=500), "500"),
    ("502", Reply(status=502), "502"),
    ("503", Reply(status=503, retry_after=0.1), "503"),
    ("408", Reply(status=408), "408"),
    ("stall", Reply(stall_after=2), "stalled"),
    ("cut", Reply(cut_after=2), "connection"),
    ("malformed", Reply(malformed=True), "malformed"),
    ("midstream-5xx", Reply(midstream_error={"code": 502, "message": "Upstream died"}), "Upstream died"),
    ("empty", Reply(empty=True), "empty answer"),
]


@pytest.mark.parametrize(("name", "fault", "words"), TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_transient_fault_is_retried_then_succeeds(emulator, name, fault, words):
    emulator.script("b/beta", fault, Reply(content="recovered answer"))
    result = fusion().run(f"Q {name}")
    assert result.status == "ok"
    assert result.responses[1].content == "recovered answer"
    assert len(emulator.chats("b/beta")) == 2


@pytest.mark.parametrize(("name", "fault", "words"), TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_persistent_fault_gives_partial_with_reason(emulator, name, fault, words):
    emulator.script("b/beta", fault)
    result = fusion(max_retries=1).run(f"Q {name}")
    assert result.status == "partial"
    failed = result.responses[1]
    assert failed.status == "failed" and words in failed.error and "\n" not in failed.error
    assert len(emulator.chats("b/beta")) == 2  # one try plus one bounded retry
    assert [r.ok for r in result.responses] == [True, False, True]
    assert result.answer  # the judge still ran on the two answers


def test_retry_after_is_honoured(emulator):
    emulator.script("b/beta", Reply(status=429, retry_after=0.7), Reply())
    fusion().run("Q")
    first, second = emulator.chats("b/beta")
    assert second.t_start - first.t_end >= 0.65


def test_backoff_grows_and_is_bounded(emulator):
    emulator.script("b/beta", Reply(status=500))
    started = time.perf_counter()
    result = fusion(max_retries=3).run("Q")
    tries = emulator.chats("b/beta")
    assert len(tries) == 4 and result.responses[1].status == "failed"
    gaps = [b.t_start - a.t_end for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps[0] < gaps[2]  # exponential
    assert time.perf_counter() - started < 8


def test_hang_is_cut_by_the_member_timeout(emulator):
    emulator.script("b/beta", Reply(hang=True))
    started = time.perf_counter()
    result = fusion(timeout=0.8, stall_timeout=30).run("Q")
    assert time.perf_counter() - started < 3
    assert result.responses[1].status == "timed_out" and result.status == "partial"


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, ["b/beta", "400"]),
        (401, ["b/beta", "401", "API key"]),
        (402, ["b/beta", "402", "credits"]),
        (403, ["b/beta", "403"]),
    ],
)
def test_client_errors_are_not_retried(emulator, status, words):
    emulator.script("b/beta", Reply(status=status))
    result = fusion().run("Q")
    assert len(emulator.chats("b/beta")) == 1
    reason = result.responses[1].error
    assert all(w in reason for w in words), reason


def test_401_names_the_env_var(emulator, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-wrong")
    emulator.script("b/beta", Reply(status=401))
    result = Fusion(panel=PANEL, judge=JUDGE).run("Q")
    assert "OPENROUTER_API_KEY" in result.responses[1].error


def test_all_members_failing_is_one_error_naming_each(emulator):
    emulator.script("a/alpha", Reply(status=402))
    emulator.script("b/beta", Reply(hang=True))
    emulator.script("c/gamma", Reply(malformed=True))
    result = fusion(timeout=1, max_retries=0, stall_timeout=30).run("Q")
    assert result.status == "error"
    assert "all 3 panel members failed" in result.error
    for model, why in [("a/alpha", "402"), ("b/beta", "no answer within 1s"), ("c/gamma", "malformed")]:
        assert f"{model}: " in result.error and why in result.error
    assert not emulator.chats(JUDGE)


def test_judge_http_failure_keeps_the_panel(emulator):
    emulator.script(JUDGE, Reply(status=503))
    result = fusion(max_retries=1).run("Q")
    assert result.status == "judge_failed"
    assert all(r.ok for r in result.responses)
    assert "503" in result.error


def test_fallback_used_after_a_member_fails_for_good(emulator):
    emulator.script("a/alpha", Reply(status=429), Reply(status=429))
    result = Fusion(panel=["a/alpha|z/zeta", "b/beta"], judge=JUDGE, max_retries=1).run("Q")
    first = result.responses[0]
    assert first.ok and first.served_by == "z/zeta" and result.status == "ok"


def test_nothing_paid_for_is_lost_when_the_judge_fails(emulator):
    emulator.script(JUDGE, Reply(json_valid=False))
    first = fusion().run("Keep my answers")
    assert first.status == "judge_failed"
    emulator.script(JUDGE, Reply())
    n = len(emulator.chats("a/alpha"))
    again = fusion().run("Keep my answers")
    assert again.status == "ok"
    assert all(r.cached for r in again.responses) and len(emulator.chats("a/alpha")) == n


def test_hostile_output_renders_safely(emulator):
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3)) \x1b[31mred\x1b[0m"
    emulator.script("a/alpha", evil)
    result = fusion().run("Q")
    html, md = result._repr_html_(), result._repr_markdown_()
    for text in (html, md):
        lowered = text.lower()
        assert "<script" not in lowered and "onerror=" not in lowered and "javascript:" not in lowered
        assert "\x1b" not in text
    assert "red" in html
    assert json.loads(result.to_json())["responses"][0]["content"] == evil  # data stays exact
