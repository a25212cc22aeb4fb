"""Cost control and caching over the emulator: the estimate, the guard, the ledger, re-runs, resumes.

Every money figure is checked against what the emulator reports having charged (``charges``),
or against the prices it was configured with, computed here from the documented formula.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest
from helpers import JUDGE, PANEL, interrupt_when, panel_fusion

import fusion_magic
from fusion_magic._base.errors import BudgetError
from fusion_magic._engine import pricing
from fusion_magic._engine.cache import Cache
from fusion_magic.emulator import Emulator, Reply

# Distinct prices per model, so a cost put on the wrong model shows.
PRICES = {
    "a/alpha": {"prompt": "0.000001", "completion": "0.000002"},
    "b/beta": {"prompt": "0.000003", "completion": "0.000015"},
    "c/gamma": {"prompt": "0.0000005", "completion": "0.0000015"},
    "d/delta": {"prompt": "0.0000002", "completion": "0.0000006"},
    "k/other": {"prompt": "0.000004", "completion": "0.000012"},
    JUDGE: {"prompt": "0.000002", "completion": "0.000008"},
}


@pytest.fixture
def emu(emulator):
    "The shared emulator, listing PRICES in /models and billing with them."
    emulator.models.update(PRICES)
    return emulator


fusion = panel_fusion


def paid(emu, since: int = 0) -> dict[str, float]:
    "USD charged per model by the emulator since charge number ``since``."
    out: dict[str, float] = {}
    for model, cost in emu.charges[since:]:
        out[model] = out.get(model, 0.0) + cost
    return out


def price(model: str, which: str) -> float:
    return float(Decimal(PRICES[model][which]))


# -- the estimate and the guard -----------------------------------------------------------------
def expected_estimate(prompt: str, panel: list[str], judge: str, completion: int = 600) -> float:
    """The documented estimate, from the configured prices: ~4 characters a token; each member writes
    600 tokens; the judge reads the prompt, every answer and 700 tokens of instructions, and writes
    twice a member's answer."""
    tokens = math.ceil(len(prompt) / 4)
    members = sum(tokens * price(m, "prompt") + completion * price(m, "completion") for m in panel)
    judge_in = tokens + completion * len(panel) + 700
    return members + judge_in * price(judge, "prompt") + 2 * completion * price(judge, "completion")


def test_estimate_comes_from_the_listed_prices(emu):
    prompt = "Explain the CAP theorem in two sentences, with one example of each trade-off."
    result = fusion(max_cost=1.0).run(prompt)
    assert result.status == "ok"
    assert result.estimate_usd == pytest.approx(expected_estimate(prompt, PANEL, JUDGE), rel=1e-9)
    # Shorter answers when max_tokens caps them: the cap replaces the 600 expected tokens.
    capped = fusion(max_tokens=100, cache=False).run(prompt)
    assert capped.estimate_usd == pytest.approx(expected_estimate(prompt, PANEL, JUDGE, 100), rel=1e-9)


def test_max_cost_refuses_before_sending_anything(emu):
    prompt = "Write a long essay on distributed consensus."
    expected = expected_estimate(prompt, PANEL, JUDGE)
    with pytest.raises(BudgetError) as info:
        fusion(max_cost=0.001).run(prompt)
    message = str(info.value)
    assert f"${expected:.4f}" in message and "$0.001" in message and "nothing was sent" in message
    assert "\n" not in message
    assert emu.chats() == [] and emu.charges == []
    assert fusion_magic.ledger().totals()["calls"] == 0
    # Just above the estimate goes through.
    result = fusion(max_cost=round(expected * 1.01, 6)).run(prompt)
    assert result.status == "ok" and len(emu.chats()) == 4


def test_max_cost_refuses_a_model_without_a_price(emu):
    # z/unlisted is answered by the server but missing from its priced /models list: the budget
    # cannot be checked, so nothing is sent rather than something of unknown cost.
    with pytest.raises(BudgetError) as info:
        fusion(panel=["a/alpha", "z/unlisted"], max_cost=5.0).run("Q?")
    message = str(info.value)
    assert "z/unlisted" in message and "not in /models" in message and "--max-cost" in message
    assert emu.chats() == []
    # Without a budget the same panel runs; the unknown price is simply not part of the estimate.
    result = fusion(panel=["a/alpha", "z/unlisted"]).run("Q?")
    assert result.status == "ok"
    # The judge still reads both answers: one more 600-token answer than a one-member panel.
    assert result.estimate_usd == pytest.approx(
        expected_estimate("Q?", ["a/alpha"], JUDGE) + 600 * price(JUDGE, "prompt")
    )


def test_max_cost_on_a_server_without_prices_is_not_refused(monkeypatch):
    # llama.cpp / Ollama list models with no prices at all: an unknown cost there is not a reason
    # to refuse (nothing is billed), so --max-cost does not get in the way.
    with Emulator() as server:
        monkeypatch.setenv("FUSION_BASE_URL", server.base_url)
        result = fusion(max_cost=0.5).run("Q?")  # nothing scripted or configured: /models is empty
    assert result.status == "ok" and result.estimate_usd == 0


# -- actual costs -------------------------------------------------------------------------------
def test_member_judge_and_total_costs_are_what_the_server_charged(emu):
    emu.script("b/beta", Reply(prompt_tokens=120, completion_tokens=480))
    result = fusion().run("How do vector clocks work?")
    charged = paid(emu)
    assert set(charged) == {*PANEL, JUDGE}
    for r in result.responses:
        assert r.cost_usd == pytest.approx(charged[r.model], rel=1e-9) and not r.cost_estimated
    assert result.judge.cost_usd == pytest.approx(charged[JUDGE], rel=1e-9)
    assert result.cost_usd == pytest.approx(emu.total_cost, rel=1e-9)
    # The server's figure for the scripted usage, recomputed from its prices.
    beta = result.responses[1]
    assert (beta.prompt_tokens, beta.completion_tokens) == (120, 480)
    assert beta.cost_usd == pytest.approx(120 * price("b/beta", "prompt") + 480 * price("b/beta", "completion"))
    assert result.to_frame()["cost_usd"].sum() + result.judge.cost_usd == pytest.approx(emu.total_cost)


def sse_without_cost(model: str, content: str, prompt_tokens: int, completion_tokens: int) -> bytes:
    "A streamed answer whose usage block has token counts but no cost, as self-hosted servers send."
    head = {"id": "gen-x", "object": "chat.completion.chunk", "created": 1, "model": model}
    chunks = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}]},
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {
            **head,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    ]
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def test_missing_usage_cost_falls_back_to_tokens_times_price(emu):
    emu.script("b/beta", Reply(raw=sse_without_cost("b/beta", "Beta answers without a bill.", 40, 25)))
    verdict = {
        "answer": "Synthesis.",
        "consensus": ["All agree."],
        "contradictions": [],
        "partial_coverage": [],
        "blind_spots": [],
        "unique_insights": [{"model": "B", "insight": "Only B is unbilled."}],
    }
    emu.script(JUDGE, Reply(raw=sse_without_cost(JUDGE, json.dumps(verdict), 900, 70)))
    result = fusion().run("Q?")
    assert result.status == "ok"
    beta = result.responses[1]
    assert beta.content == "Beta answers without a bill." and beta.cost_estimated
    assert beta.cost_usd == pytest.approx(40 * price("b/beta", "prompt") + 25 * price("b/beta", "completion"))
    assert result.judge.cost_estimated
    assert result.judge.cost_usd == pytest.approx(900 * price(JUDGE, "prompt") + 70 * price(JUDGE, "completion"))
    # The others were billed by the server, and only those appear in its charges.
    billed = paid(emu)
    assert set(billed) == {"a/alpha", "c/gamma"}
    assert not any(r.cost_estimated for r in (result.responses[0], result.responses[2]))
    assert result.cost_usd == pytest.approx(emu.total_cost + beta.cost_usd + result.judge.cost_usd)


# -- the ledger ---------------------------------------------------------------------------------
def test_ledger_sums_equal_the_servers_charges(emu):
    book = fusion_magic.ledger()
    steps: list[dict[str, float]] = []

    def step(action):
        before = len(emu.charges)
        out = action()
        steps.append(paid(emu, before))
        return out

    first = step(lambda: fusion().run("What is a CRDT?"))
    # Two members shared with the first run come from the cache; d/delta and the judge are new.
    mixed = step(lambda: fusion(panel=["a/alpha", "b/beta", "d/delta"]).run("What is a CRDT?"))
    emu.script(JUDGE, Reply(json_valid=False))
    failed = step(lambda: fusion().run("What is Raft?"))
    emu.script(JUDGE)
    rejudged = step(lambda: fusion().rejudge(failed, judge="k/other"))
    again = step(lambda: fusion().run("What is a CRDT?"))

    assert [first.status, mixed.status, failed.status, rejudged.status, again.status] == [
        "ok",
        "ok",
        "judge_failed",
        "ok",
        "ok",
    ]
    assert set(steps[1]) == {"d/delta", JUDGE} and len(emu.chats(JUDGE)) == 4  # 1 + 1 + 2 (re-ask)
    assert set(steps[3]) == {"k/other"} and steps[4] == {}

    totals = book.totals()
    assert totals["cost_usd"] == pytest.approx(emu.total_cost, rel=1e-9)
    assert totals["cache_hits"] == 2 + 4
    first_costs = {r.model: r.cost_usd for r in first.calls}
    # The second run reused two of the first run's answers, the last one all four.
    reused = first_costs["a/alpha"] + first_costs["b/beta"]
    assert totals["saved_usd"] == pytest.approx(reused + sum(first_costs.values()))
    assert mixed.saved_usd == pytest.approx(reused)
    assert again.cost_usd == 0 and again.saved_usd == pytest.approx(sum(steps[0].values()))

    # What `%fusion costs` shows: one row per call, each costing what the server charged for it.
    frame = book.to_frame()
    assert len(frame) == 5
    assert list(frame["kind"]) == ["fusion", "fusion", "fusion", "call", "fusion"]
    assert list(frame["status"]) == ["ok", "ok", "judge_failed", "ok", "ok"]
    assert list(frame["cache_hits"]) == [0, 2, 0, 0, 4]
    assert list(frame["cost_usd"]) == pytest.approx([sum(s.values()) for s in steps], rel=1e-9)
    assert frame["label"][0] == "What is a CRDT?"
    detail = book.to_frame(detail=True)
    assert len(detail) == 4 + 4 + 4 + 1 + 4
    assert detail["cost_usd"].sum() == pytest.approx(emu.total_cost, rel=1e-9)
    assert list(detail.loc[detail["role"] == "rejudge", "model"]) == ["k/other"]


# -- re-runs and resumes ------------------------------------------------------------------------
def test_rerun_sends_no_request_at_all(emu):
    first = fusion(max_cost=1.0).run("Is TCP reliable?")
    assert [r.path.rsplit("/", 1)[-1] for r in emu.requests].count("models") == 1
    n, cost = len(emu.requests), emu.total_cost
    pricing._MEMO.clear()  # as in a new kernel: prices come from the day-old file on disk, not the server
    again = fusion(max_cost=1.0).run("Is TCP reliable?")
    assert len(emu.requests) == n  # no chat and no /models either
    assert again.cache_hits == len(again.calls) == 4 and all(r.cached for r in again.calls)
    assert again.cost_usd == 0 and again.saved_usd == pytest.approx(cost)
    assert again.answer == first.answer and again.estimate_usd == pytest.approx(first.estimate_usd)
    assert emu.total_cost == cost


def test_member_that_timed_out_is_the_only_one_paid_for_on_rerun(emu):
    emu.script("c/gamma", Reply(hang=True))
    crashed = fusion(timeout=0.5).run("Explain quorum reads.")
    assert crashed.status == "partial" and crashed.responses[2].status == "timed_out"
    assert set(paid(emu)) == {"a/alpha", "b/beta", JUDGE}
    before = len(emu.charges)
    emu.script("c/gamma")
    resumed = fusion().run("Explain quorum reads.")
    assert resumed.status == "ok"
    # Only the missing member and a judge that now reads three answers.
    assert sorted(m for m, _ in emu.charges[before:]) == ["c/gamma", JUDGE]
    assert resumed.cost_usd == pytest.approx(sum(c for _, c in emu.charges[before:]))
    assert [r.cached for r in resumed.responses] == [True, True, False]


def test_interrupted_run_resumes_paying_only_for_what_was_missing(emu):
    emu.script("c/gamma", Reply(latency=30))

    watcher = interrupt_when(lambda: len(emu.charges) >= 2, after=0.1)
    with pytest.raises(KeyboardInterrupt):
        fusion().run("Explain leases.")
    watcher.join()
    time.sleep(0.2)  # let the server see the cancelled request
    assert emu.chats("c/gamma")[0].cancelled
    spent = paid(emu)
    assert set(spent) == {"a/alpha", "b/beta"}
    # What was paid before the interrupt is in the session ledger too.
    assert fusion_magic.ledger().totals()["cost_usd"] == pytest.approx(emu.total_cost)
    before = len(emu.charges)
    emu.script("c/gamma")
    resumed = fusion().run("Explain leases.")
    assert resumed.status == "ok"
    assert sorted(m for m, _ in emu.charges[before:]) == ["c/gamma", JUDGE]
    assert resumed.saved_usd == pytest.approx(sum(spent.values()))
    assert fusion_magic.ledger().totals()["cost_usd"] == pytest.approx(emu.total_cost)


CHILD = textwrap.dedent("""
    import json, sys
    from fusion_magic import Fusion, ledger
    fusion = Fusion(panel=["a/alpha", "b/beta", "c/gamma"], judge="j/judge")
    frame = fusion.map([f"Shared question {i}" for i in range(6)], concurrency=6, progress=False)
    print(json.dumps({"status": list(frame["status"]), "cost": ledger().totals()["cost_usd"]}))
""")


def test_two_processes_share_one_cache_dir(emu, tmp_path, monkeypatch):
    for model in PANEL:
        emu.script(model, Reply(latency=0.1))
    env = {**os.environ, "FUSION_BASE_URL": emu.base_url, "FUSION_CACHE_DIR": str(tmp_path / "shared")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    reports = [json.loads(out) for out, _ in outs]
    assert all(r["status"] == ["ok"] * 6 for r in reports)
    # Each process paid for what it asked; together exactly what the server charged.
    assert sum(r["cost"] for r in reports) == pytest.approx(emu.total_cost)
    with Cache(tmp_path / "shared" / "cache.sqlite3") as cache:
        assert cache.info()["entries"] == 6 * 4
    n = len(emu.requests)
    monkeypatch.setenv("FUSION_CACHE_DIR", env["FUSION_CACHE_DIR"])
    frame = fusion().map([f"Shared question {i}" for i in range(6)], progress=False)
    assert list(frame["cache_hits"]) == [4] * 6 and len(emu.requests) == n
