"""`judge="vote"`: a majority over short answers, no judge call; its normalisation on shapes real models write."""

from __future__ import annotations

import json

import pytest
from helpers import JUDGE, panel_fusion

from fusion_magic import ConfigError, FusionResult
from fusion_magic._engine.vote import group_answers, normalise, short_answer
from fusion_magic._render import to_html, to_markdown, to_text
from fusion_magic._render.widget import result_parts


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("Let me think.\n\nThe train covers 120 km in 2 h, so 60 km/h.\n\nAnswer: 60 km/h", "60 km/h"),
        ("Reasoning...\n**Final Answer:** (B)", "(B)"),
        ("So the result is $\\boxed{42}$.", "42"),
        ("Paris.", "Paris."),
        ("The answer is: yes", "yes"),
        ("A long essay " + "word " * 40 + "with no final line.", None),
    ],
)
def test_short_answer_reads_the_final_answer(text, short):
    assert short_answer(text) == short


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("1,000", "1000.0", True),
        ("$1,000", "1000", True),
        ("0.5", ".50", True),
        ("12", "13", False),  # numbers by value, never by string similarity
        ("60 km/h", "60 km/h.", True),
        ("(B)", "b", True),
        ("Option B", "B)", True),
        ("B", "C", False),
        ("Yes.", "true", True),
        ("No", "yes", False),
        ("The Eiffel Tower", "eiffel tower", True),
        ("Eiffel Tower", "Eiffel Towers", True),  # a near spelling: one answer
        ("Paris", "London", False),
        ("**Paris**", "paris", True),
        ("The answer is 42.", "42", True),
        ("So the final answer is (C)", "c", True),
        ("It's yes", "Yes", True),
        ("The answer is 42.", "The answer is 43.", False),
    ],
)
def test_normalisation_preserves_meaning(a, b, same):
    groups, _ = group_answers([("m1", a), ("m2", b)])
    assert (len(groups) == 1) is same, (normalise(a), normalise(b))


def test_vote_makes_no_judge_call_and_counts_the_majority(emulator):
    emulator.script("a/alpha", "Working it out: 17 * 3 = 51.\nAnswer: 51")
    emulator.script("b/beta", "Answer: 51")
    emulator.script("c/gamma", "I get 54.\nFinal answer: 54")
    fusion = panel_fusion(judge="vote")
    result = fusion.run("What is 17 * 3?")
    assert result.status == "ok"
    assert not emulator.chats(JUDGE)  # no judge request at all
    assert len(emulator.chats()) == 3
    assert result.answer == "51" and result.judge is None
    assert result.vote["support"] == "2/3" and result.vote["groups"][0]["members"] == ["a/alpha", "b/beta"]
    # Cost: only the panel, equal to what the server charged.
    assert result.cost_usd == pytest.approx(emulator.total_cost)
    (contradiction,) = result.analysis.contradictions
    assert {s.model: s.stance for s in contradiction.stances}["c/gamma"] == "The answer is 54."
    assert all(s.verified for s in contradiction.stances)  # each quote is the member's own final answer
    (majority,) = result.analysis.partial_coverage
    assert majority.models == ["a/alpha", "b/beta"] and "(2/3)" in majority.point
    for view in (to_text(result), to_markdown(result), to_html(result)):
        assert "2/3" in view and "54" in view
    titles = [title for title, _, _ in result_parts(result)]  # the widget shows the vote's analysis too
    assert "Contradictions (1)" in titles and "Methods" in titles
    saved = FusionResult.from_dict(json.loads(result.to_json()))
    assert saved.vote == result.vote
    before = len(emulator.chats())
    assert fusion.run("What is 17 * 3?").answer == "51"
    assert len(emulator.chats()) == before  # a re-run sends nothing


def test_unanimous_vote_is_consensus_with_support(emulator):
    for model in ("a/alpha", "b/beta", "c/gamma"):
        emulator.script(model, "Answer: (C)")
    result = panel_fusion(judge="vote").run("Pick one: A, B or C?")
    (point,) = result.analysis.items("consensus")
    assert point.support == "3/3" and not result.analysis.contradictions


def test_long_answers_without_a_final_line_are_reported_not_guessed(emulator):
    essay = "There are many considerations here. " * 10
    emulator.script("a/alpha", essay)
    emulator.script("b/beta", essay + " Still thinking.")
    emulator.script("c/gamma", essay + "\nAnswer: Postgres")
    result = panel_fusion(judge="vote").run("Which database?")
    assert result.answer == "Postgres" and result.vote["support"] == "1/3"
    assert result.vote["unreadable"] == ["a/alpha", "b/beta"]
    assert any("no short final answer" in n for n in result.notes)
    emulator.script("c/gamma", essay)
    nothing = panel_fusion(judge="vote").run("Which database, again?")
    assert nothing.status == "judge_failed" and "vote needs short answers" in nothing.error
    assert [r.content for r in nothing.responses if r.ok]  # the answers are kept


def test_vote_refuses_a_jury_and_can_rejudge_a_result(emulator):
    with pytest.raises(ConfigError, match="vote"):
        panel_fusion(judge="vote", judges=["j/one", "j/two"])
    emulator.script("a/alpha", "Answer: 7")
    judged = panel_fusion().run("How many days in a week?")
    voted = panel_fusion().rejudge(judged, "vote")
    assert voted.vote is not None and voted.vote["groups"][0]["answer"] == "7"
