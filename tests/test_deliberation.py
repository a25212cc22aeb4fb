"""The result builder decides status, error, failure reason and answer from step outcomes (no HTTP)."""

from __future__ import annotations

import dataclasses

import pytest

from fusion_magic._engine.deliberation import build_result, status_of
from fusion_magic._engine.outcomes import Judgement, PanelOutcome, ToolOutcome
from fusion_magic._values.result import Analysis, Response

OK_A = Response("a/alpha", "Alpha's answer.")
OK_B = Response("b/beta", "Beta's answer.")
LATE = Response("c/gamma", status="timed_out", error="no answer within 5s (cancelled)")
SEAT = Response("j/judge", "{...}")
ANALYSIS = Analysis(consensus=["Both agree."], blind_spots=["Nobody checked the costs."])
VERDICT = Judgement(judge=SEAT, answer="The synthesis.", analysis=ANALYSIS, notes=("a note",))


def build(**outcomes):
    return build_result("Q?", preset="custom", estimate_usd=0.01, elapsed_s=1.5, **outcomes)


def test_every_member_and_the_judge_answering_is_ok():
    result = build(panel=PanelOutcome((OK_A, OK_B)), judgement=VERDICT)
    assert (result.status, result.error, result.failure_reason) == ("ok", None, None)
    assert result.answer == "The synthesis." and result.analysis == ANALYSIS and result.judge is SEAT
    assert result.notes == ["a note"] and not result.interrupted
    assert (result.prompt, result.preset, result.estimate_usd, result.elapsed_s) == ("Q?", "custom", 0.01, 1.5)


def test_a_failed_member_makes_it_partial():
    result = build(panel=PanelOutcome((OK_A, LATE)), judgement=VERDICT)
    assert (result.status, result.error, result.answer) == ("partial", None, "The synthesis.")
    assert [r.status for r in result.responses] == ["ok", "timed_out"]


def test_nobody_answering_is_an_error_with_every_reason():
    limited = [Response(m, status="failed", error=f"{m}: HTTP 429", status_code=429) for m in ("a/x", "b/y")]
    result = build(panel=PanelOutcome(tuple(limited)))
    assert result.status == "error" and result.failure_reason == "rate_limited"
    assert result.error == "all 2 panel members failed: a/x: HTTP 429; b/y: HTTP 429"
    assert result.judge is None and result.answer == ""
    mixed = build(panel=PanelOutcome((LATE,)))
    assert mixed.failure_reason == "all_panels_failed"


def test_a_judge_without_verdict_keeps_the_answers_and_its_raw_reply():
    failed = Judgement(
        judge=dataclasses.replace(SEAT, status="failed"),
        raw="not json",
        error="judge j/judge gave no analysis: reply not valid JSON",
        failure_reason="judge_schema_mismatch",
        notes=("n",),
    )
    result = build(panel=PanelOutcome((OK_A, OK_B)), judgement=failed)
    assert result.status == "judge_failed" and result.judge_raw == "not json"
    assert result.error == failed.error and result.failure_reason == "judge_schema_mismatch"
    assert result.answer == "" and result.analysis == Analysis() and len(result.responses) == 2
    assert result.notes == ["n"] and result.judge.status == "failed"


def test_a_jury_that_all_failed_has_no_seat_but_every_juror():
    jurors = (dataclasses.replace(SEAT, status="failed"), Response("k/other", status="timed_out"))
    result = build(panel=PanelOutcome((OK_A,)), judgement=Judgement(jury=jurors, error="all 2 judges failed: ?; ?"))
    assert result.status == "judge_failed" and result.judge is None and result.jury == list(jurors)


@pytest.mark.parametrize(
    ("kept", "error"),
    [
        ((OK_A, OK_B, Response("c/gamma", status="cancelled", error="interrupted")), "the 2 answers that arrived"),
        ((), "interrupted before any answer arrived"),
    ],
)
def test_an_interrupt_wins_over_everything_and_keeps_what_arrived(kept, error):
    result = build(panel=PanelOutcome(kept, interrupted=True), judgement=VERDICT)
    assert (result.status, result.failure_reason, result.interrupted) == ("interrupted", "cancelled", True)
    assert error in result.error and list(result.responses) == list(kept)
    assert result.answer == "" and result.judge is None  # the verdict of a stopped run is not shown
    before = build_result("Q?", preset=None, interrupted=True)
    assert before.status == "interrupted" and before.error == "interrupted before any answer arrived"


def test_tool_mode_outcomes():
    primary = Response("p/primary", "Final.")
    alone = build(tool=ToolOutcome({"primary": "p/primary", "called": False, "question": None}, primary, "Mine."))
    assert (alone.status, alone.answer, alone.tool["called"], alone.primary) == ("ok", "Mine.", False, primary)
    failed = build(tool=ToolOutcome({"called": False}, primary, error="primary p/primary failed: HTTP 500"))
    assert (failed.status, failed.error) == ("error", "primary p/primary failed: HTTP 500")
    called = ToolOutcome({"called": True}, primary, "Final.", panel=PanelOutcome((OK_A, LATE)), judgement=VERDICT)
    result = build(tool=called)
    assert (result.status, result.answer, result.analysis) == ("partial", "Final.", ANALYSIS)  # the primary's answer
    assert result.judge is SEAT and [r.model for r in result.responses] == ["a/alpha", "c/gamma"]


def test_an_interrupted_tool_mode_run_keeps_the_primary_and_the_answers():
    turn = ToolOutcome({"primary": "p/primary", "called": True, "question": "Q2"}, Response("p/primary", ""))
    result = build(panel=PanelOutcome((OK_A,), interrupted=True), tool=turn)
    assert (result.status, result.tool["question"], result.primary) == ("interrupted", "Q2", turn.primary)
    assert result.responses == [OK_A] and "the 1 answers that arrived" in result.error


def test_status_of_panel_and_judge():
    assert status_of(PanelOutcome((OK_A,)), VERDICT) == "ok"
    assert status_of(PanelOutcome((OK_A, LATE)), VERDICT) == "partial"
    assert status_of(PanelOutcome((LATE,)), None) == "error"
    assert status_of(PanelOutcome((OK_A,)), Judgement()) == "judge_failed"


def test_outcomes_are_values():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PanelOutcome((OK_A,)).interrupted = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        VERDICT.answer = "changed"  # type: ignore[misc]
