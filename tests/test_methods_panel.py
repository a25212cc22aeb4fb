"""Self-consistency panels (`model*N`) and the judge's reading order, over real HTTP to the emulator."""

from __future__ import annotations

import json

import pytest
from helpers import JUDGE, PANEL, panel_fusion

from fusion_magic import ConfigError, Fusion, FusionResult, Member, add_preset
from fusion_magic._base.config import PRESETS, parse_members
from fusion_magic._judge.order import judge_order
from fusion_magic._judge.prompt import labels_for
from fusion_magic.emulator.replies import _answers


def judge_requests(emulator):
    return [r for r in emulator.chats() if r.model == JUDGE]


def test_model_times_n_asks_one_model_n_times_each_its_own_cache_entry(emulator):
    emulator.script("a/alpha", "first take. Answer: 4", "second take. Answer: 5", "third take. Answer: 4")
    fusion = panel_fusion(panel="a/alpha*3,b/beta")
    assert [m.name for m in fusion.panel] == ["a/alpha#1", "a/alpha#2", "a/alpha#3", "b/beta"]
    result = fusion.run("What is 2 + 2?")
    assert [r.model for r in result.responses] == ["a/alpha#1", "a/alpha#2", "a/alpha#3", "b/beta"]
    sent = emulator.chats("a/alpha")
    assert len(sent) == 3  # three requests, not one shared answer
    # A temperature above zero unless one is set; the sample index is never sent.
    assert {r.body.get("temperature") for r in sent} == {0.7}
    assert not any("fusion_sample" in json.dumps(r.body) for r in sent)
    assert {r.body.get("temperature") for r in emulator.chats("b/beta")} == {None}  # not a sample: untouched
    assert sorted(r.content for r in result.responses[:3]) == sorted(
        ["first take. Answer: 4", "second take. Answer: 5", "third take. Answer: 4"]
    )
    assert result.cost_usd == pytest.approx(emulator.total_cost)  # what the server charged, samples included
    assert result.estimate_usd is not None and result.estimate_usd > 0
    before = len(emulator.chats())
    again = fusion.run("What is 2 + 2?")  # a re-run: every sample from its own cache entry
    assert len(emulator.chats()) == before
    assert [r.content for r in again.responses] == [r.content for r in result.responses]
    assert all(r.cached for r in again.responses) and again.cost_usd == 0


def test_a_set_temperature_wins_and_member_samples_expand(emulator):
    fusion = panel_fusion(panel=[Member("a/alpha", samples=2), "b/beta"], temperature=0.2)
    assert [m.name for m in fusion.panel] == ["a/alpha#1", "a/alpha#2", "b/beta"]
    fusion.run("Q?")
    assert {r.body.get("temperature") for r in emulator.chats("a/alpha")} == {0.2}


def test_presets_and_wrong_counts():
    preset = add_preset("selfmoa", ["a/alpha*2", "b/beta"], "j/judge")
    try:
        assert [m.name for m in preset.panel] == ["a/alpha#1", "a/alpha#2", "b/beta"]
        assert [m.name for m in Fusion(preset="selfmoa").panel] == ["a/alpha#1", "a/alpha#2", "b/beta"]
    finally:
        PRESETS.pop("selfmoa", None)
    for bad in ("a/alpha*0", "a/alpha*x", "a/alpha*17", "a/alpha**2"):
        with pytest.raises(ConfigError):
            parse_members(bad)
    with pytest.raises(ConfigError, match="duplicate"):
        panel_fusion(panel="a/alpha*2,a/alpha*2")
    with pytest.raises(ConfigError, match="at most 16"):
        panel_fusion(panel="a/alpha*9,b/beta*8")
    assert [m.name for m in parse_members("a/alpha*1")] == ["a/alpha"]


def test_samples_reach_the_judge_under_distinct_labels_and_map_back(emulator):
    result = panel_fusion(panel="a/alpha*2,b/beta").run("Which database?")
    assert result.status == "ok"
    names = {r.model for r in result.responses}
    for row in result.analysis.to_frame().itertuples():
        assert set(row.models) <= names
    (request,) = judge_requests(emulator)
    assert len(_answers(request.body["messages"][-1]["content"])) == 3


def test_judge_order_is_seeded_recorded_and_labels_follow_it(emulator):
    question = "Which database should we use for a small shop?"
    result = panel_fusion().run(question)
    order = result.judge_order
    assert sorted(order) == sorted(PANEL) and order == judge_order(question, PANEL)
    (request,) = judge_requests(emulator)
    shown = _answers(request.body["messages"][-1]["content"])
    # Label A holds the first answer the judge read, and so on: each label maps back to its member.
    by_member = {r.model: r.content for r in result.responses}
    assert list(shown) == list(labels_for(order))
    for label, name in labels_for(order).items():
        assert shown[label] == by_member[name]
    # The emulator's judge puts label A's stance first: it is judge_order[0]'s, not PANEL[0]'s.
    (contradiction,) = result.analysis.contradictions
    assert [s.model for s in contradiction.stances] == order[:2]
    assert all(s.verified for s in contradiction.stances)
    # Saved and loaded, the order stays; a re-run is identical and sends nothing.
    assert FusionResult.from_dict(json.loads(result.to_json())).judge_order == order
    before = len(emulator.chats())
    assert panel_fusion().run(question).judge_order == order
    assert len(emulator.chats()) == before


def test_order_averages_over_questions_and_fixed_keeps_the_panel_order(emulator):
    firsts = {judge_order(f"question {i}", PANEL)[0] for i in range(40)}
    assert firsts == set(PANEL)  # every member is read first for some question
    assert judge_order("q", PANEL, "fixed") == PANEL
    result = panel_fusion(order="fixed").run("Q?")
    assert result.judge_order == PANEL
    (request,) = judge_requests(emulator)
    assert list(_answers(request.body["messages"][-1]["content"])) == ["A", "B", "C"]
    with pytest.raises(ConfigError, match="order"):
        panel_fusion(order="random")


def test_a_loaded_sampled_result_follows_up_with_the_same_samples(emulator, tmp_path):
    result = panel_fusion(panel="a/alpha*2,b/beta").run("Q?")
    path = result.save(tmp_path / "r.json")
    loaded = FusionResult.load(path)
    from fusion_magic._fronts.origin import fusion_for

    fusion = fusion_for(loaded)
    assert [m.name for m in fusion.panel] == ["a/alpha#1", "a/alpha#2", "b/beta"]
    before = len(emulator.chats())
    assert [r.content for r in fusion.rejudge(loaded).responses] == [r.content for r in result.responses]
    assert len(emulator.chats()) == before  # the same judge request: from the cache
