"""The judge's text is never our scaffolding, and structurally empty items are dropped and counted.

The two leaks are the ones a local run produced (issue 21): the tiny judge's answer ran on into
made-up and echoed prompt tags under status "ok".
"""

from __future__ import annotations

import json

import pytest
from helpers import JUDGE, PANEL, panel_fusion

from fusion_magic._judge.prompt import fence_of
from fusion_magic._judge.unscaffold import unscaffold
from fusion_magic._judge.verdict import salvage
from fusion_magic._judge.verdict_prune import prune
from fusion_magic.emulator import Reply

ANSWER_A = "Postgres handles this load well; add a BRIN index on the timestamp column and partition by month."
ANSWER_B = "ClickHouse is the better fit for analytics over 40 GB: columnar storage compresses time series."


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("Indent with Spaces ( ) } </response> <output type=", "Indent with Spaces"),
        ("It also runs on mobile apps. | </answer id=", "It also runs on mobile apps."),
        ('<answer member="A">Paris is the capital.</answer id="0f3a">', "Paris is the capital."),
        ("Fine.<|im_end|>\n<|im_start|>assistant\nFine.", "Fine."),
        ("</question>\n\nUse a BRIN index.", "Use a BRIN index."),
        ("```markdown\nUse **Postgres**.\n```", "Use **Postgres**."),
        ("Use Postgres.\n```json", "Use Postgres."),
        ('Yes. < /Answer >\n<answer member="B">No.', "Yes."),  # spaced, any case
        ("Cut off at the limit <analysis", "Cut off at the limit"),
        ("Use WAL mode. <output type=\nmore prompt text", "Use WAL mode."),
    ],
)
def test_our_tags_fences_and_template_tokens_are_scrubbed(written, kept):
    assert unscaffold(written) == kept


@pytest.mark.parametrize(
    "text",
    [
        "Use the `<output>` element for a computed value.",  # inline code about HTML
        "An XML reply:\n```xml\n<response><answer>42</answer></response>\n```\nParse it with lxml.",
        "If a < b and c > d, swap them (see the notes).",
        "Escape it as &lt;answer&gt; in HTML.",
        "Keep (a) and [b] as written: f(x) = {y}",
    ],
)
def test_text_about_markup_is_left_alone(text):
    assert unscaffold(text) == text


def _verdict_with_degenerate_items() -> dict:
    return {
        "answer": "Pick Postgres with BRIN indexes for now. | </answer id=",
        "consensus": ["Both want an index on the timestamp column"],
        "contradictions": [
            {"topic": "", "stances": [{"model": "A", "stance": "Postgres"}, {"model": "B", "stance": "ClickHouse"}]},
            {"topic": "Which engine", "stances": [{"model": "A", "stance": "x y z"}, {"model": "A", "stance": "p q"}]},
            {"topic": "Storage layout", "stances": []},
            {
                "topic": "Engine choice",
                "stances": [{"model": "A", "stance": "Postgres"}, {"model": "B", "stance": "CH"}],
            },
        ],
        "partial_coverage": [{"models": [], "point": "Partitioning by month"}],
        "unique_insights": [{"model": "B", "insight": ANSWER_B}],
        "blind_spots": [ANSWER_A, "Nobody asked about the write rate"],
    }


def test_prune_drops_items_that_say_nothing_and_counts_them():
    found = salvage(json.dumps(_verdict_with_degenerate_items()), {"A": "a/alpha", "B": "b/beta"})
    prune(found, {"a/alpha": ANSWER_A, "b/beta": ANSWER_B})
    assert found.answer == "Pick Postgres with BRIN indexes for now."
    assert [c["topic"] for c in found.sections["contradictions"]] == ["Engine choice"]
    assert found.sections["partial_coverage"] == [] and found.sections["unique_insights"] == []
    assert found.sections["blind_spots"] == ["Nobody asked about the write rate"]
    assert found.dropped == {"no_topic": 1, "one_sided": 2, "no_members": 1, "copied": 2}
    notes = found.notes()
    assert "dropped 2 contradictions without the stances of two members" in notes
    assert "dropped 2 analysis items that copy a member's answer" in notes


def test_a_short_answer_may_be_what_a_point_says():
    found = salvage(json.dumps({"answer": "Paris.", "consensus": ["Paris"]}), {"A": "a/alpha"})
    prune(found, {"a/alpha": "Paris"})
    assert found.sections["consensus"] == ["Paris"] and not found.dropped


def test_a_deliberation_never_answers_with_scaffolding(emulator):
    emulator.script(PANEL[0], Reply(content=ANSWER_A))
    emulator.script(PANEL[1], Reply(content=ANSWER_B))
    emulator.script(PANEL[2], Reply(content="Either works; measure first with your own queries and data."))
    emulator.script(JUDGE, Reply(content=json.dumps(_verdict_with_degenerate_items())))
    result = panel_fusion().run("Postgres or ClickHouse for 40 GB of time series?")
    assert result.status == "ok"
    assert result.answer == "Pick Postgres with BRIN indexes for now."
    assert [c.topic for c in result.analysis.contradictions] == ["Engine choice"]
    assert result.analysis.blind_spots == ["Nobody asked about the write rate"]
    assert any("copy a member's answer" in note for note in result.notes)


def test_a_jurys_synthesis_is_scrubbed_too(emulator):
    verdict = {**_verdict_with_degenerate_items(), "answer": "Postgres."}
    emulator.script("j/one", Reply(content=json.dumps(verdict)), Reply(content="Use Postgres. </response> <output"))
    emulator.script("j/two", Reply(content=json.dumps(verdict)))
    result = panel_fusion(judge=None, judges=["j/one", "j/two"]).run("Postgres or ClickHouse?")
    assert result.answer == "Use Postgres."


def test_the_answers_closing_code_written_back_is_scaffolding(emulator):
    "The tiny judge answered with the code that closes each answer in its prompt (a real local run)."
    third = "Either works; measure first with your own queries and data."
    for model, text in zip(PANEL, (ANSWER_A, ANSWER_B, third), strict=True):
        emulator.script(model, Reply(content=text))
    question = "Postgres or ClickHouse?"
    fence = fence_of(question, {"A": ANSWER_A, "B": ANSWER_B, "C": third})
    verdict = {**_verdict_with_degenerate_items(), "answer": fence, "consensus": [f"Agreed {fence}", "Index it"]}
    emulator.script(JUDGE, Reply(content=json.dumps(verdict)))
    result = panel_fusion(order="fixed").run(question)  # labels A, B, C in panel order, as `fence` was made
    assert result.answer == "" and fence not in json.dumps(result.to_dict()["analysis"])
    assert result.analysis.consensus == ["Index it"]
    assert any("only our prompt's markup" in note for note in result.notes)
    assert "the judge gave an analysis but no synthesized answer" in result.notes


def test_pruning_leaves_the_shared_reading_as_it_was():
    # A reply read before for the same panel is not read again; pruning one reading must not
    # change what the next reader of the same reply gets (a cached re-run prunes it again).
    text, labels = json.dumps(_verdict_with_degenerate_items()), {"A": "a/alpha", "B": "b/beta"}
    first = salvage(text, labels)
    prune(first, {"a/alpha": ANSWER_A, "b/beta": ANSWER_B})
    again = salvage(text, labels)
    assert len(again.sections["contradictions"]) == 4 and not again.dropped
    prune(again, {"a/alpha": ANSWER_A, "b/beta": ANSWER_B})
    assert again.dropped == first.dropped and again.sections == first.sections


def test_a_cached_rerun_drops_and_notes_the_same_items(emulator):
    emulator.script(PANEL[0], Reply(content=ANSWER_A))
    emulator.script(PANEL[1], Reply(content=ANSWER_B))
    emulator.script(PANEL[2], Reply(content="Either works; measure first with your own queries and data."))
    emulator.script(JUDGE, Reply(content=json.dumps(_verdict_with_degenerate_items())))
    fusion = panel_fusion()
    first = fusion.run("Postgres or ClickHouse for 40 GB of time series, again?")
    again = fusion.run("Postgres or ClickHouse for 40 GB of time series, again?")
    assert again.judge is not None and again.judge.cached
    assert again.notes == first.notes and any("copy a member's answer" in n for n in again.notes)
    assert again.analysis == first.analysis
