"""A jury of judges and the judge diff, over real HTTP to the emulator."""

from __future__ import annotations

import json

import pytest
from helpers import PANEL, panel_fusion

from fusion_magic import BudgetError, ConfigError, compare_analyses, ledger
from fusion_magic._render import to_html, to_markdown, to_text
from fusion_magic.emulator import Emulator, Reply
from fusion_magic.emulator.replies import _default_answer, quote_from

JURY = ["j/one", "j/two", "j/three"]
QUESTION = "Which database should we use?"


def answer_of(model: str) -> str:
    "What the emulator's panel member answers to QUESTION."
    return _default_answer(model, [{"role": "user", "content": QUESTION}])


def dissenting_verdict() -> str:
    """A judge that agrees on consensus and the insight but sees no contradiction and another blind spot."""
    cite = {label: quote_from(answer_of(model)) for label, model in zip("ABC", PANEL, strict=True)}
    return json.dumps(
        {
            "answer": "Dissent.",
            "consensus": [
                {
                    "point": f'Every member answers "{QUESTION}" with an incremental approach.',
                    "support": [{"model": k, "quote": q} for k, q in cite.items()],
                }
            ],
            "contradictions": [],
            "partial_coverage": [
                {
                    "models": ["A", "B"],
                    "point": "Measure before optimising.",
                    "quotes": [{"model": "A", "quote": cite["A"]}, {"model": "B", "quote": cite["B"]}],
                }
            ],
            "unique_insights": [
                {"model": "C", "quote": cite["C"], "insight": "Only C insists on checking the edge cases."}
            ],
            "blind_spots": ["Nobody mentions backups or restore drills."],
        }
    )


def test_two_of_three_judges_agree(emulator):
    emulator.script("j/three", dissenting_verdict())
    result = panel_fusion(judge=None, judges=JURY).run(QUESTION)
    assert result.status == "ok"
    analysis = result.analysis
    (contradiction,) = analysis.contradictions
    assert str(contradiction.agreement) == "2/3" and contradiction.agreement.judges == ["j/one", "j/two"]
    assert str(analysis.items("consensus")[0].agreement) == "3/3"
    assert str(analysis.unique_insights[0].agreement) == "3/3"  # worded differently, matched anyway
    blind = {text: str(a) for text, a in zip(analysis.blind_spots, analysis.blind_spots_agreement, strict=True)}
    assert blind == {
        "No member says how to tell, later on, whether the choice worked.": "2/3",
        "Nobody mentions backups or restore drills.": "1/3",
    }
    frame = analysis.to_frame()
    assert frame.set_index("section").loc["contradictions", "agreement"] == "2/3"
    assert '<span class="fm-agree" title="found by j/one, j/two">2/3 judges</span>' in to_html(result)
    assert "2/3 judges" in to_markdown(result) and "jury: 3 judges, chair j/one" in to_text(result)


def test_the_chair_synthesizes_from_the_merged_analysis(emulator):
    emulator.script("j/one", Reply(), Reply(content="The chair's synthesis."))
    result = panel_fusion(judge=None, judges=JURY).run(QUESTION)
    assert result.answer == "The chair's synthesis."
    calls = emulator.chats("j/one")
    assert len(calls) == 2 and len(emulator.chats("j/two")) == len(emulator.chats("j/three")) == 1
    chair = calls[1].body
    assert "response_format" not in chair
    prompt = chair["messages"][-1]["content"]
    assert '<answer member="A">' in prompt and "<analysis>" in prompt and '"judges": "3/3"' in prompt
    merged = prompt.split("<analysis>")[1]
    assert not any(model in merged for model in PANEL) and '"members": [' in merged  # labels, as a judge sees
    assert [r.model for r in result.jury] == JURY and result.judge.model == "j/one"


def test_jury_costs_are_estimated_capped_itemized_and_cached(monkeypatch):
    prices = {m: {"prompt": "0.00001", "completion": "0.00003"} for m in [*PANEL, *JURY]}
    with Emulator(models=prices) as emu:
        monkeypatch.setenv("FUSION_BASE_URL", emu.base_url)
        single = panel_fusion(judge="j/one", max_cost=1.0).run(QUESTION)
        with pytest.raises(BudgetError, match="exceeds --max-cost"):
            panel_fusion(judge=None, judges=JURY, max_cost=single.estimate_usd * 1.5).run("Another question?")
        assert all("Another" not in json.dumps(r.body) for r in emu.chats())  # refused: nothing sent
        result = panel_fusion(judge=None, judges=JURY, max_cost=1.0).run(QUESTION)
        assert result.estimate_usd > 1.5 * single.estimate_usd  # three judges and the chair's synthesis
        assert [r.cached for r in result.responses] == [True] * 3  # the panel was paid for by the first run
        assert result.jury[0].cached and not result.jury[1].cached  # j/one judged the same answers before
        assert result.cost_usd == pytest.approx(sum(r.cost_usd for r in [*result.jury[1:], result.judge]))
        rows = ledger().to_frame(detail=True)
        last = rows[rows["entry"] == rows["entry"].max()]
        assert list(last["role"]) == ["member"] * 3 + ["juror"] * 3 + ["judge"]
        assert ledger().totals()["cost_usd"] == pytest.approx(emu.total_cost)
        before = len(emu.chats())
        again = panel_fusion(judge=None, judges=JURY, max_cost=1.0).run(QUESTION)
        assert len(emu.chats()) == before and again.cost_usd == 0 and again.analysis == result.analysis


def test_a_failed_judge_does_not_sink_the_jury(emulator):
    emulator.script("j/two", Reply(status=400))
    result = panel_fusion(judge=None, judges=JURY).run(QUESTION)
    assert result.status == "ok" and [r.status for r in result.jury] == ["ok", "failed", "ok"]
    assert str(result.analysis.contradictions[0].agreement) == "2/2"  # a failed judge did not disagree
    emulator.script("j/one", Reply(status=400))
    emulator.script("j/three", Reply(status=400))
    failed = panel_fusion(judge=None, judges=JURY).run("Something else?")
    assert failed.status == "judge_failed" and failed.error.startswith("all 3 judges failed")
    assert all(r.ok for r in failed.responses)  # the panel answers are kept


def test_jury_configuration_mistakes_are_one_line(emulator):
    with pytest.raises(ConfigError, match="duplicate judge"):
        panel_fusion(judges=["j/one", "j/one"])
    with pytest.raises(ConfigError, match="malformed model id"):
        panel_fusion(judges="j/one,not an id")
    assert panel_fusion(judges="j/solo").jury == ()  # one judge is just a judge
    assert emulator.chats() == []


def test_diff_after_a_rejudge(emulator):
    fusion = panel_fusion(judge="j/one")
    first = fusion.run(QUESTION)
    emulator.script("j/three", dissenting_verdict())
    second = fusion.rejudge(first, judge="j/three")
    diff = compare_analyses(first, second)
    assert (diff.a, diff.b) == ("j/one", "j/three")
    assert [c.topic for c in diff.only_a["contradictions"]] == ["Where to start"]
    assert diff.only_b["blind_spots"][0].point == "Nobody mentions backups or restore drills."
    assert len(diff.both["consensus"]) == len(diff.both["unique_insights"]) == 1
    frame = diff.to_frame()
    assert list(frame.columns) == ["section", "found_by", "text_a", "text_b", "models", "similarity"]
    assert sorted(frame["found_by"].value_counts().items()) == [("both", 3), ("only A", 2), ("only B", 1)]
    html = diff._repr_html_()
    assert "<th>only A</th><th>both</th><th>only B</th>" in html and "Nobody mentions backups" in html
    assert "3 both, 2 only A, 1 only B" in repr(diff) and "*only B*" in diff._repr_markdown_()
    other = fusion.run("A different question?")
    with pytest.raises(ConfigError, match="same panel"):
        compare_analyses(first, other)


def test_rejudge_with_a_jury(emulator):
    first = panel_fusion(judge="j/one").run(QUESTION)
    rejudged = panel_fusion(judge=None, judges=JURY).rejudge(first)
    assert [r.model for r in rejudged.jury] == JURY and rejudged.responses == first.responses
    assert str(rejudged.analysis.contradictions[0].agreement) == "3/3"
    assert compare_analyses(first, rejudged).counts()["only B"] == 0


def test_live_progress_has_a_line_per_judge(emulator):
    seen = []
    fusion = panel_fusion(judge=None, judges=JURY)
    fusion.run(QUESTION, on_tick=lambda tracker: seen.append(tracker.lines()))
    final = seen[-1]
    assert final[:3] == [line for line in final[:3] if line.split()[0] in PANEL]
    assert [line.split("  ")[0] for line in final[3:]] == ["judge · j/two", "judge · j/three", "judge: j/one"]
    assert all("done" in line for line in final[3:])


def test_a_jury_result_saves_and_loads_with_its_evidence(emulator, tmp_path):
    from fusion_magic import FusionResult

    emulator.script("j/two", Reply(misattribute=True))
    result = panel_fusion(judge=None, judges=JURY, verified_only=True).run(QUESTION)
    result.save(tmp_path / "jury.json")
    back = FusionResult.load(tmp_path / "jury.json")
    assert back == result and back.verified_only and [r.model for r in back.jury] == JURY
    assert str(back.analysis.contradictions[0].agreement) == "3/3"
    assert back._repr_html_() == result._repr_html_()
