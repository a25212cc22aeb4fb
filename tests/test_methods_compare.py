"""`compare` with methods as approaches: vote, model*N, fusion+cross-examine beside single models."""

from __future__ import annotations

import pytest

from fusion_magic import ConfigError, Fusion
from fusion_magic.emulator import Reply

PANEL = ["a/alpha", "b/beta"]
JUDGE = "j/judge"
PRICES = {
    "a/alpha": {"prompt": "0.000001", "completion": "0.000002"},
    "b/beta": {"prompt": "0.000003", "completion": "0.000015"},
    JUDGE: {"prompt": "0.000002", "completion": "0.000008"},
    "x/one": {"prompt": "0.0000005", "completion": "0.0000015"},
}
PROMPTS = ["What is 6 * 7?", "What is 2 + 2?"]
REFERENCE = ["42", "4"]


def fusion(**kw) -> Fusion:
    return Fusion(panel=PANEL, judge=JUDGE, **kw)


def test_methods_sit_beside_single_models_in_one_table(emulator):
    emulator.models.update(PRICES)
    solved = {"What is 6 * 7?": "Six sevens.\nAnswer: 42", "What is 2 + 2?": "Answer: 4"}
    for model in ("a/alpha", "b/beta", "x/one"):
        emulator.script(model, Reply(answer=solved.get))
    baselines = ["x/one", "x/one*3", "vote", "fusion+cross-examine", "x/one*3+vote"]
    comparison = fusion().compare(PROMPTS, baselines, reference=REFERENCE, grader="contains", progress=False)
    frame = comparison.to_frame()
    assert list(frame.index) == ["fusion (custom)", *baselines]
    # Each approach has cost per prompt, latency and a score with its interval.
    for column in ("cost_mean_usd", "latency_p50_s", "score", "score_ci_low", "score_ci_high"):
        assert frame[column].notna().all(), column
    assert list(frame.kind) == ["fusion", "baseline", "method", "method", "method", "method"]
    assert frame.loc["vote", "score"] == pytest.approx(1.0)
    assert frame.loc["x/one*3+vote", "score"] == pytest.approx(1.0)
    # vote pays no judge: over the same (cached) panel it costs less than the judged fusion.
    assert frame.loc["vote", "cost_mean_usd"] < frame.loc["fusion (custom)", "cost_mean_usd"]
    # x/one*3 asked x/one three times per prompt, plus the one single-model call: 4 per prompt.
    assert len(emulator.chats("x/one")) == 4 * len(PROMPTS)
    # cross-examination asked each panel member once more per prompt.
    marks = [r for r in emulator.chats() if "<statements>" in str(r.body["messages"])]
    assert len(marks) == len(PANEL) * len(PROMPTS)
    sent = len(emulator.requests)
    again = fusion().compare(PROMPTS, baselines, reference=REFERENCE, grader="contains", progress=False)
    assert not emulator.chats(since=sent)  # a re-run sends nothing
    assert list(again.to_frame().index) == list(frame.index)


def test_bad_method_approaches_are_one_line(emulator):
    with pytest.raises(ConfigError, match="unknown method"):
        fusion().compare(PROMPTS, ["fusion+debate"], progress=False)
    with pytest.raises(ConfigError, match="listed twice"):
        fusion().compare(PROMPTS, ["vote", "vote"], progress=False)
    with pytest.raises(ConfigError, match="x/one\\*0"):
        fusion().compare(PROMPTS, ["x/one*0"], progress=False)
    assert not emulator.chats()
