"""The judge seat over real HTTP: Fusion-shaped judges, format negotiation, deadline, fallbacks, outcomes."""

from __future__ import annotations

import time

import pytest
from helpers import JUDGE, PANEL, panel_fusion

from fusion_magic._engine.judge_seat import forget_formats
from fusion_magic._render import to_html, to_markdown, to_text
from fusion_magic.emulator import Reply


@pytest.fixture(autouse=True)
def fresh_formats():
    forget_formats()
    yield
    forget_formats()


def fmt_of(request) -> str:
    fmt = request.body.get("response_format")
    return fmt["type"] if fmt else "prompt"


def test_a_fusion_shaped_judge_is_kept_asked_once_and_cached(emulator):
    emulator.script(JUDGE, Reply(judge_shape="fusion"))
    result = panel_fusion().run("Which database?")
    assert result.status == "ok" and result.failure_reason is None
    a = result.analysis
    assert a.consensus and a.contradictions and a.partial_coverage and a.unique_insights and a.blind_spots
    assert result.answer == "" and "the judge gave an analysis but no synthesized answer" in result.notes
    assert len(emulator.chats(JUDGE)) == 1
    assert "no synthesized answer" in to_html(result) and "the judge returned no answer" not in to_html(result)
    again = panel_fusion().run("Which database?")  # a re-run pays for nothing: the verdict was cached
    assert again.judge.cached and len(emulator.chats(JUDGE)) == 1
    assert again.analysis == result.analysis


@pytest.mark.parametrize("shape", ["nested", "tool_result", "near_json"])
def test_other_judge_shapes_keep_every_section(emulator, shape):
    emulator.script(JUDGE, Reply(judge_shape=shape))
    result = panel_fusion(cache=False).run("Which database?")
    assert result.status == "ok", result.error
    assert all(getattr(result.analysis, s) for s in result.analysis.SECTIONS)
    assert bool(result.answer) == (shape != "tool_result")
    assert len(emulator.chats(JUDGE)) == 1


@pytest.mark.parametrize("status", [400, 422, 500])
def test_a_server_rejecting_json_schema_gets_json_object_and_it_is_remembered(emulator, status):
    emulator.script(JUDGE, Reply(rejects=["json_schema"], reject_status=status))
    result = panel_fusion(cache=False).run("Q1?")
    assert result.status == "ok" and result.answer
    assert [fmt_of(r) for r in emulator.chats(JUDGE)] == ["json_schema", "json_object"]  # a 500 is not retried
    since = len(emulator.requests)
    assert panel_fusion(cache=False).run("Q2?").status == "ok"
    assert [fmt_of(r) for r in emulator.chats(JUDGE, since=since)] == ["json_object"]


def test_a_server_without_structured_output_is_asked_by_prompt_alone(emulator):
    emulator.script(JUDGE, Reply(rejects=["json_schema", "json_object"], reject_status=400))
    result = panel_fusion(cache=False).run("Q?")
    assert result.status == "ok" and result.analysis.consensus
    assert [fmt_of(r) for r in emulator.chats(JUDGE)] == ["json_schema", "json_object", "prompt"]
    assert '"answer": "..."' in emulator.chats(JUDGE)[-1].body["messages"][0]["content"]  # the shape is in the prompt


def test_the_judge_has_a_deadline_and_the_panel_is_kept(emulator):
    emulator.script(JUDGE, Reply(hang=True))
    started = time.monotonic()
    result = panel_fusion(timeout=1, cache=False).run("Q?")
    assert time.monotonic() - started < 30  # not minutes: the deadline cancelled the judge
    assert result.status == "judge_failed" and result.failure_reason == "judge_upstream_error"
    assert result.judge.status == "timed_out" and "no answer within 1s" in result.error
    assert [r.status for r in result.responses] == ["ok", "ok", "ok"]
    assert emulator.chats(JUDGE)[0].cancelled or len(emulator.chats(JUDGE)) == 1


def test_judge_timeout_can_differ_from_the_member_deadline(emulator):
    emulator.script(JUDGE, Reply(latency=1.5))
    result = panel_fusion(timeout=0.5, judge_timeout=30, cache=False).run("Q?")
    assert result.status == "ok" and result.answer


def test_judge_fallback_when_the_first_judge_fails(emulator):
    emulator.script(JUDGE, Reply(status=402))
    result = panel_fusion(judge=f"{JUDGE}|k/backup", cache=False).run("Q?")
    assert result.status == "ok" and result.answer.startswith("Synthesis by k/backup")
    assert result.judge.served_by == "k/backup" and result.judge.model == f"{JUDGE}|k/backup"
    assert any(n.startswith("judge fallback used: ") and "402" in n for n in result.notes)


def test_judge_fallback_when_the_first_judge_gives_no_analysis(emulator):
    emulator.script(JUDGE, Reply(json_valid=False))
    result = panel_fusion(judge=f"{JUDGE}|k/backup", cache=False).run("Q?")
    assert result.status == "ok" and result.analysis.consensus
    assert len(emulator.chats(JUDGE)) == 2 and len(emulator.chats("k/backup")) == 1  # one re-ask, then b


def test_both_judges_failing_names_both(emulator):
    emulator.script(JUDGE, Reply(status=402))
    emulator.script("k/backup", Reply(status=402))
    result = panel_fusion(judge=f"{JUDGE}|k/backup", cache=False).run("Q?")
    assert result.status == "judge_failed" and result.failure_reason == "insufficient_credits"
    assert JUDGE in result.error and "k/backup" in result.error
    assert result.to_dict()["failure_reason"] == "insufficient_credits"


def test_an_empty_judge_completion_has_its_code(emulator):
    emulator.script(JUDGE, Reply(empty=True))
    result = panel_fusion(cache=False, max_retries=0).run("Q?")
    assert result.status == "judge_failed" and result.failure_reason == "judge_empty_completion"


@pytest.mark.parametrize(
    ("replies", "code"),
    [
        ([Reply(status=429)] * 3, "rate_limited"),
        ([Reply(status=402), Reply(status=429), Reply(status=429)], "insufficient_credits"),
        ([Reply(status=404)] * 3, "invalid_model"),
        ([Reply(status=429), Reply(status=500), Reply(status=403)], "all_panels_failed"),
    ],
)
def test_a_panel_that_all_failed_gives_fusions_code(emulator, replies, code):
    for model, reply in zip(PANEL, replies, strict=True):
        emulator.script(model, reply)
    result = panel_fusion(cache=False, max_retries=0).run("Q?")
    assert result.status == "error" and result.failure_reason == code
    data = result.to_dict()
    assert [f["status_code"] for f in data["failed_models"]] == [r.status for r in replies]
    assert {"model", "error", "status_code"} <= set(data["failed_models"][0])


def test_sources_are_the_deduplicated_citations_of_the_members(emulator):
    page = {"url": "https://example.org/a", "title": "A page"}
    emulator.script(PANEL[0], Reply(citations=[page, {"url": "https://example.org/b", "title": ""}]))
    emulator.script(PANEL[1], Reply(citations=[{"url": "https://example.org/a", "title": ""}]))
    for stream in (True, False):
        result = panel_fusion(cache=False, stream=stream).run("Sources?")
        assert result.sources == [page, {"url": "https://example.org/b", "title": ""}]
        assert result.to_dict()["sources"] == result.sources
        assert result.responses[1].sources == [{"url": "https://example.org/a", "title": ""}]


def test_to_dict_is_a_superset_of_fusions_tool_result(emulator):
    emulator.script(PANEL[2], Reply(status=429))
    data = panel_fusion(cache=False, max_retries=0).run("Q?").to_dict()
    assert {"status", "analysis", "responses", "failed_models", "failure_reason", "error", "sources"} <= set(data)
    # Fusion's five lists, plus the evidence behind consensus and blind spots (support, jury agreement).
    assert {"consensus", "contradictions", "partial_coverage", "unique_insights", "blind_spots"} <= set(
        data["analysis"]
    ) and all(isinstance(c, str) for c in data["analysis"]["consensus"])
    assert data["failed_models"] == [
        {"model": PANEL[2], "error": data["failed_models"][0]["error"], "status_code": 429, "status": "failed"}
    ]
    assert all({"model", "content"} <= set(r) for r in data["responses"])


def test_notes_are_shown_in_every_view(emulator):
    emulator.script(JUDGE, '{"consensus": ["A", "Small steps work."], "answer": "Go small."}')
    result = panel_fusion(cache=False).run("Q?")
    note = "dropped 1 degenerate analysis items"
    assert any(n.startswith(note) for n in result.notes)
    assert note in to_html(result) and note in to_markdown(result) and note in to_text(result)


def test_the_typed_outcome_survives_save_and_load(emulator, tmp_path):
    emulator.script(PANEL[0], Reply(citations=[{"url": "https://example.org/a", "title": "A page"}]))
    emulator.script(PANEL[2], Reply(status=429))
    emulator.script(JUDGE, Reply(judge_shape="fusion"))
    result = panel_fusion(cache=False, max_retries=0).run("Saved?")
    assert result.notes and result.sources and result.failed_models[0]["status_code"] == 429
    back = type(result).load(result.save(tmp_path / "r.json"))
    assert back == result and back.to_dict() == result.to_dict()
