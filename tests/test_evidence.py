"""Evidence behind the analysis: verified quotes, consensus support, verified_only, over real HTTP."""

from __future__ import annotations

import json

import pytest
from helpers import JUDGE, PANEL
from helpers import panel_fusion as any_order_fusion

from fusion_magic import Analysis, FusionResult
from fusion_magic._judge.evidence import locate
from fusion_magic._render import to_html, to_markdown, to_text
from fusion_magic.emulator import Reply
from fusion_magic.emulator.replies import INVENTED_QUOTE


def panel_fusion(**kw):
    "These tests read the emulator judge's items by position (A, B, C): the judge reads in panel order."
    kw.setdefault("order", "fixed")
    return any_order_fusion(**kw)


def misattributed(emulator, **kw):
    emulator.script(JUDGE, Reply(misattribute=True))
    return panel_fusion(**kw).run("Which database should we use?")


def test_correct_quotes_are_verified_with_where_they_matched(emulator):
    result = panel_fusion().run("Which database should we use?")
    answers = {r.model: r.content for r in result.responses}
    stances = result.analysis.contradictions[0].stances
    assert [s.model for s in stances] == PANEL[:2]
    for stance in stances:
        assert stance.verified and stance.quote and stance.match.model == stance.model
        assert answers[stance.model][stance.match.start : stance.match.end] == stance.quote.rstrip(".")
    assert result.analysis.unverified == 0
    (judged,) = emulator.chats(JUDGE)
    schema = judged.body["response_format"]["json_schema"]["schema"]
    assert "quote" in schema["$defs"]["Stance"]["required"]
    assert "verified" not in json.dumps(schema)  # the judge quotes; only fusion_magic verifies


def test_a_misattributed_stance_and_an_invented_quote_are_flagged(emulator):
    result = misattributed(emulator)
    wrong, right = result.analysis.contradictions[0].stances
    # The judge says a/alpha argues this, quoting b/beta's words: kept as said, flagged, source named.
    assert (wrong.model, wrong.verified, wrong.found_in) == ("a/alpha", False, "b/beta")
    assert (right.model, right.verified, right.found_in) == ("b/beta", True, None)
    insight = result.analysis.unique_insights[0]
    assert insight.quote == INVENTED_QUOTE and not insight.verified and insight.match is None
    assert result.analysis.unverified == 2
    frame = result.analysis.to_frame()
    assert {"support", "quote", "verified"} <= set(frame.columns)
    by_section = frame.set_index("section")
    assert by_section.loc["contradictions", "verified"] is False or not by_section.loc["contradictions", "verified"]
    assert by_section.loc["unique_insights", "quote"] == INVENTED_QUOTE
    assert by_section.loc["consensus", "verified"]


def test_every_view_marks_and_counts_unverified_items(emulator):
    result = misattributed(emulator)
    html = to_html(result)
    assert html.count("⚠ unverified") == 2 and "quote from b/beta" in html
    assert "quote is from b/beta&#x27;s answer, not a/alpha&#x27;s" in html  # the full reason, as a tooltip
    assert '<span class="fm-unv" title="no quote, or the quote is not in' in html and ">2 unverified<" in html
    md = to_markdown(result)
    assert md.count("**⚠ unverified**") == 2 and "quote is from b/beta's answer, not a/alpha's" in md
    text = to_text(result)
    assert "analysis: 2 unverified attributions" in text
    assert "⚠ unverified contradictions: a/alpha: quote is from b/beta's answer" in text
    assert json.loads(result.to_json())["unverified"] == 2


def test_verified_only_hides_unverified_items_but_keeps_them(emulator):
    result = misattributed(emulator, verified_only=True)
    assert result.verified_only and result.analysis.unverified == 2  # nothing is lost
    shown = result.shown_analysis
    assert shown.contradictions == []  # one verified stance left is no contradiction
    assert shown.unique_insights == [] and len(shown.consensus) == 1 and shown.unverified == 0
    html = to_html(result)
    analysis_part = html.split('<div class="fm-label">Panel answers')[0]
    assert "⚠ unverified" not in analysis_part and INVENTED_QUOTE not in analysis_part
    assert "2 unverified attributions hidden: verified_only" in html
    assert "hidden (verified_only)" in to_markdown(result)
    assert len(result.analysis.to_frame(verified_only=True)) == len(result.analysis.to_frame()) - 2


def test_consensus_carries_its_support(emulator):
    result = panel_fusion().run("Which database should we use?")
    (point,) = result.analysis.items("consensus")
    assert point.support == "3/3" and [q.model for q in point.members] == PANEL
    assert all(q.verified for q in point.members)
    assert result.analysis.to_frame().set_index("section").loc["consensus", "support"] == "3/3"
    assert '<span class="fm-support" title="supported by a/alpha, b/beta, c/gamma">3/3</span>' in to_html(result)
    assert "support 3/3" in to_markdown(result)
    assert isinstance(result.analysis.consensus[0], str)  # Fusion's shape: consensus stays text


def test_tolerant_quotes_and_partial_support_from_a_scripted_judge(emulator):
    emulator.script("a/alpha", "Postgres handles   this well. Use JSONB columns — they index nicely.")
    emulator.script("b/beta", "Use SQLite: it is one file and needs no server at all.")
    emulator.script("c/gamma", "Either works; Postgres is the safer default for 50 users.")
    verdict = {
        "answer": "Use Postgres.",
        "consensus": [
            {
                "point": "A relational database fits.",
                "support": [
                    {"model": "A", "quote": "postgres handles this well"},  # case and spacing differ
                    {"model": "C", "quote": "“Postgres is the safer default for 50 users”"},  # typographic quotes
                ],
            }
        ],
        "contradictions": [
            {
                "topic": "Which engine",
                "stances": [
                    {"model": "A", "quote": "Use JSONB columns - they index nicely", "stance": "Postgres."},
                    {"model": "B", "quote": "it is one file ... needs no server", "stance": "SQLite."},  # an ellipsis
                    {"model": "C", "quote": "Postgres is the safer default for 500 users", "stance": "Postgres."},
                ],
            }
        ],
        "partial_coverage": [{"models": ["A", "C"], "point": "Postgres.", "quotes": [{"model": "A", "quote": ""}]}],
        "unique_insights": [{"model": "B", "quote": "one file", "insight": "SQLite is one file."}],
        "blind_spots": [],
    }
    emulator.script(JUDGE, json.dumps(verdict))
    analysis = panel_fusion().run("Which database?").analysis
    a, b, c = analysis.contradictions[0].stances
    assert a.verified and b.verified
    assert not c.verified  # "500 users" is not what c/gamma said, however close the words
    (point,) = analysis.items("consensus")
    assert point.support == "2/3" and all(q.verified for q in point.members)
    partial = analysis.partial_coverage[0]
    assert [q.model for q in partial.quotes] == ["a/alpha", "c/gamma"] and not any(q.verified for q in partial.quotes)
    assert not analysis.unique_insights[0].verified  # two words prove nothing
    assert analysis.unverified == 4


def test_a_judge_without_quotes_leaves_everything_visible_and_unverified(emulator):
    verdict = {
        "answer": "x",
        "consensus": ["All agree."],
        "contradictions": [],
        "partial_coverage": [],
        "unique_insights": [{"model": "A", "insight": "Only A says so."}],
        "blind_spots": ["Cost."],
    }
    emulator.script(JUDGE, json.dumps(verdict))
    result = panel_fusion().run("Q?")
    assert result.analysis.consensus == ["All agree."] and result.analysis.items("consensus")[0].support is None
    insight = result.analysis.unique_insights[0]
    assert not insight.verified and "⚠ unverified" in to_html(result) and "no quote" in to_html(result)


def test_evidence_survives_to_dict(emulator):
    result = misattributed(emulator)
    data = json.loads(result.to_json())
    stance = data["analysis"]["contradictions"][0]["stances"][0]
    assert {"model", "stance", "quote", "verified", "match"} <= set(stance) and stance["verified"] is False
    back = Analysis.model_validate(data["analysis"])
    assert back == result.analysis and back.unverified == 2
    assert back.items("consensus")[0].support == "3/3"
    copy = FusionResult(prompt=result.prompt, status=result.status, analysis=back)
    assert copy.analysis.contradictions[0].stances[0].found_in == "b/beta"


def test_locate_normalises_and_maps_back_to_the_answer():
    answer = "The  **VACUUM FULL** command takes an ACCESS EXCLUSIVE lock, so writes block."
    start, end, score = locate("vacuum full command takes an access exclusive lock", answer)
    assert answer[start:end] == "VACUUM FULL** command takes an ACCESS EXCLUSIVE lock" and score == 100
    assert locate("takes an access exclusiv lock, so writes block", answer)[2] >= 90  # a typo is tolerated
    assert locate("writes never block during the run", answer) is None
    assert locate("the lock", answer) is None  # too short to prove anything
    assert locate("True", "True.") is not None  # unless it is the whole answer


def test_batch_rows_count_unverified_attributions(emulator):
    emulator.script(JUDGE, Reply(misattribute=True))
    frame = panel_fusion().map(["First question?", "Second question?"], progress=False)
    assert list(frame["unverified"]) == [2, 2]


@pytest.mark.parametrize("shape", ["ours", "nested", "near_json"])
def test_quotes_survive_every_reply_shape_the_judge_may_use(emulator, shape):
    emulator.script(JUDGE, Reply(misattribute=True, judge_shape=shape))
    analysis = panel_fusion().run("Which database should we use?").analysis
    wrong, right = analysis.contradictions[0].stances
    assert (wrong.found_in, right.verified) == ("b/beta", True)
    assert analysis.items("consensus")[0].support == "3/3" and analysis.partial_coverage[0].quotes[0].verified
    assert analysis.unverified == 2


def test_fusions_own_shape_has_no_quotes_and_stays_readable(emulator):
    emulator.script(JUDGE, Reply(judge_shape="fusion"))
    result = panel_fusion().run("Which database should we use?")
    assert result.analysis.contradictions and result.analysis.items("consensus")[0].support is None
    assert result.analysis.unverified == 5  # two stances, two partial-coverage members, one insight
