"""Follow-ups of a result without a synthesized answer: the conversation is enough.

OpenRouter Fusion's documented analysis has no ``answer``; a judge answering in that shape gives
the five sections only. A follow-up of such a result still asks every member with its own earlier
answer; where the synthesis would be, members and judge read the judge's analysis (or a note
that there was none). Over loopback HTTP to the emulator.
"""

from __future__ import annotations

import json

import pytest
from helpers import JUDGE, PANEL, panel_fusion

from fusion_magic import FusionResult
from fusion_magic._base.errors import ConfigError
from fusion_magic.emulator import Reply

# Fusion's tool-result analysis: the five lists, no answer (labels A, B, C are the panel).
FUSION_SHAPE = {
    "consensus": ["Postgres is the safe default for a small web app."],
    "contradictions": [
        {
            "topic": "Managed or self-hosted",
            "stances": [{"model": "A", "stance": "Use a managed service."}, {"model": "B", "stance": "Self-host."}],
        }
    ],
    "partial_coverage": [],
    "unique_insights": [{"model": "C", "insight": "Plan the backups before launch."}],
    "blind_spots": ["Nobody asked about the expected write load."],
}


def sent(emulator, model, since):
    (request,) = emulator.chats(model, since=since)
    return request.body["messages"]


@pytest.fixture
def analysis_only(emulator):
    for model in PANEL:
        emulator.script(model, f"{model} says: use Postgres.")
    emulator.script(JUDGE, json.dumps(FUSION_SHAPE))
    first = panel_fusion().run("Which database for a small web app?")
    assert first.answer == "" and first.analysis.unique_insights  # the shape the defect is about
    emulator.script(JUDGE)  # the follow-up is judged the usual way
    return first


def test_analysis_without_answer_follows_up(emulator, analysis_only):
    first = analysis_only
    mark = len(emulator.requests)
    second = first.follow_up("And how should it be backed up?")
    assert second.status == "ok" and second.answer
    for model in PANEL:
        messages = sent(emulator, model, mark)
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert messages[0]["content"] == "Which database for a small web app?"
        assert messages[1]["content"] == f"{model} says: use Postgres."  # its own earlier answer
        last = messages[2]["content"]
        assert "no synthesized answer" in last and "Postgres is the safe default" in last
        assert "Contradictions: Managed or self-hosted" in last and "Plan the backups before launch." in last
        assert last.endswith("Follow-up question: And how should it be backed up?")
    judge_prompt = sent(emulator, JUDGE, mark)[-1]["content"]
    assert "Question 1: Which database for a small web app?" in judge_prompt
    assert "Analysis 1 (no synthesized answer was given)" in judge_prompt
    assert "Blind spots: Nobody asked about the expected write load." in judge_prompt
    (turn,) = second.history
    assert turn["answer"] == "" and "Consensus: Postgres is the safe default" in turn["findings"]
    assert turn["responses"] == {m: f"{m} says: use Postgres." for m in PANEL}


def test_a_saved_and_loaded_chain_keeps_the_findings(emulator, analysis_only, tmp_path):
    second = analysis_only.follow_up("Backups?")
    path = tmp_path / "second.json"
    second.save(path)
    loaded = FusionResult.load(path)
    mark = len(emulator.requests)
    third = loaded.follow_up("How often?")
    assert [t["prompt"] for t in third.history] == ["Which database for a small web app?", "Backups?"]
    messages = sent(emulator, PANEL[0], mark)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert "only this analysis" in messages[2]["content"] and messages[2]["content"].endswith("Backups?")
    assert second.answer in messages[4]["content"]  # the second turn did have a synthesis


def test_a_failed_judge_still_follows_up_on_the_answers(emulator):
    emulator.script(JUDGE, Reply(status=400))
    first = panel_fusion().run("Which database?")
    assert first.status == "judge_failed" and first.answer == ""
    emulator.script(JUDGE)
    mark = len(emulator.requests)
    second = first.follow_up("Why?")
    assert second.status == "ok"
    last = sent(emulator, PANEL[0], mark)[-1]["content"]
    assert last.startswith("(the judge gave no synthesized answer and no analysis for that question.)")
    assert "Synthesized answer 1: (the judge gave no synthesized answer" in sent(emulator, JUDGE, mark)[-1]["content"]


def test_nothing_to_follow_up_when_no_member_answered(emulator):
    for model in PANEL:
        emulator.script(model, Reply(status=400))
    first = panel_fusion().run("Which database?")
    assert first.status == "error"
    mark = len(emulator.chats())
    with pytest.raises(ConfigError, match="nothing to follow up: no panel member answered"):
        first.follow_up("Why?")
    assert len(emulator.chats()) == mark
