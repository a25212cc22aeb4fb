"""Whole deliberations over real loopback HTTP against the emulator."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from helpers import JUDGE, PANEL, interrupt_when, panel_fusion

from fusion_magic import Analysis, DeliberationCancelled, Fusion, FusionInterrupted, FusionResult
from fusion_magic._base.errors import ConfigError
from fusion_magic._engine.context import open_context
from fusion_magic._engine.runner import run_sync
from fusion_magic.emulator import Reply

fusion = panel_fusion


def test_deliberation_end_to_end(emulator):
    result = fusion().run("Should we use SQLite or Postgres for a small web app?")
    assert result.status == "ok"
    assert [r.model for r in result.responses] == PANEL
    assert all(r.ok and r.content for r in result.responses)
    assert result.answer.strip()
    # Every model named in the analysis is a panel member, mapped back from the anonymous labels.
    named = {m for row in result.analysis.rows() for m in row["models"]}
    assert named and named <= set(PANEL)
    assert result.analysis.contradictions and result.analysis.unique_insights
    # Costs in the result are the costs the server reported.
    assert result.cost_usd == pytest.approx(emulator.total_cost)
    assert result.judge is not None and result.judge.cost_usd > 0
    # Every request carries the depth header; panel members ran concurrently.
    chats = emulator.chats()
    assert len(chats) == 4 and all(r.headers.get("x-fusion-depth") == "1" for r in chats)


def test_judge_sees_anonymous_labels_not_model_ids(emulator):
    emulator.script("a/alpha", "Use Postgres.")
    emulator.script("b/beta", "Use SQLite.")
    emulator.script("c/gamma", "Either works.")
    fusion().run("Which database?")
    (judged,) = emulator.chats(JUDGE)
    text = json.dumps(judged.body["messages"])
    assert '<answer member=\\"A\\">' in text and '<answer member=\\"C\\">' in text
    assert not any(model in text for model in PANEL)
    assert judged.body["response_format"]["type"] == "json_schema"


def test_to_dict_has_the_seed_shape(emulator):
    data = json.loads(fusion().run("Hello?").to_json())
    assert data["status"] == "ok"
    assert set(Analysis.SECTIONS) <= set(data["analysis"])  # plus the evidence (support, agreement)
    assert Analysis.SECTIONS == ("consensus", "contradictions", "partial_coverage", "unique_insights", "blind_spots")
    assert all({"model", "content"} <= set(r) for r in data["responses"])
    for c in data["analysis"]["contradictions"]:
        assert {"topic", "stances"} <= set(c) and all({"model", "stance"} <= set(s) for s in c["stances"])


def test_frames(emulator):
    result = fusion().run("Hello?")
    frame = result.to_frame()
    assert list(frame["model"]) == PANEL
    assert {"content", "status", "latency_s", "prompt_tokens", "completion_tokens", "cost_usd", "cached"} <= set(frame)
    long = result.analysis.to_frame()
    assert list(long.columns)[:3] == ["section", "models", "text"] and len(long) == len(result.analysis.rows())
    assert {"support", "quote", "verified", "agreement"} <= set(long.columns)


def test_unknown_names_from_the_judge_are_dropped(emulator):
    verdict = {
        "answer": "Member A is right.",
        "consensus": ["All of them say so."],
        "blind_spots": [],
        "contradictions": [
            {
                "topic": "Is it safe?",  # a topic: a contradiction without one is dropped (tests/test_unscaffold.py)
                "stances": [
                    {"model": "A", "stance": "yes"},
                    {"model": "gpt-9", "stance": "no"},
                    {"model": "member B", "stance": "no"},
                ],
            }
        ],
        "partial_coverage": [{"models": ["Z", "C"], "point": "Measure twice."}],
        "unique_insights": [{"model": "Q", "insight": "invented"}, {"model": "c/gamma", "insight": "real"}],
    }
    emulator.script(JUDGE, json.dumps(verdict))
    result = fusion().run("Q?")
    assert result.status == "ok"
    assert [s.model for s in result.analysis.contradictions[0].stances] == ["a/alpha", "b/beta"]
    assert result.analysis.partial_coverage[0].models == ["c/gamma"]
    assert [u.model for u in result.analysis.unique_insights] == ["c/gamma"]
    assert result.answer == "a/alpha is right."
    assert "dropped 1 analysis items naming no panel member" in result.notes  # the invented "Q"


def test_judge_reask_fixes_bad_json(emulator):
    emulator.script(JUDGE, Reply(json_valid=False), Reply())
    result = fusion().run("Q?")
    assert result.status == "ok"
    calls = emulator.chats(JUDGE)
    assert len(calls) == 2
    assert "not valid JSON" in calls[1].body["messages"][-1]["content"]
    assert result.judge.cost_usd == pytest.approx(sum(c for m, c in emulator.charges if m == JUDGE))


def test_judge_failing_twice_keeps_panel_and_rejudge_runs_only_the_judge(emulator):
    emulator.script(JUDGE, Reply(json_valid=False))
    f = fusion()
    result = f.run("Q?")
    assert result.status == "judge_failed"
    assert result.judge_raw and "{" not in result.judge_raw[:1]
    assert all(r.ok for r in result.responses)
    before = len(emulator.chats())
    fixed = f.rejudge(result, judge="k/other-judge")
    assert fixed.status == "ok" and fixed.answer
    new = emulator.chats()[before:]
    assert [r.model for r in new] == ["k/other-judge"]
    assert [r.content for r in fixed.responses] == [r.content for r in result.responses]


def test_failed_member_gives_partial(emulator):
    emulator.script("b/beta", Reply(status=400, error_message="bad things"))
    result = fusion().run("Q?")
    assert result.status == "partial"
    (failed,) = result.failed
    assert failed.model == "b/beta" and "400" in failed.error and "bad things" in failed.error
    assert "\n" not in failed.error
    assert result.to_dict()["failed_models"] == [
        {"model": "b/beta", "status": "failed", "error": failed.error, "status_code": 400}
    ]


def test_all_members_failing_names_each(emulator):
    for model in PANEL:
        emulator.script(model, Reply(status=403))
    result = fusion().run("Q?")
    assert result.status == "error"
    assert all(m in result.error for m in PANEL)
    assert not emulator.chats(JUDGE)


def test_timeout_cancels_only_the_late_member(emulator):
    emulator.script("c/gamma", Reply(hang=True))
    started = time.perf_counter()
    result = fusion(timeout=0.6).run("Q?")
    assert time.perf_counter() - started < 3
    assert result.status == "partial"
    late = result.responses[2]
    assert late.status == "timed_out" and "0.6" in late.error
    time.sleep(0.2)
    (hung,) = emulator.chats("c/gamma")
    assert hung.cancelled


def test_quorum_starts_the_judge_early(emulator):
    emulator.script("c/gamma", Reply(latency=5))
    started = time.perf_counter()
    result = fusion(quorum=2).run("Q?")
    assert time.perf_counter() - started < 2.5
    assert [r.status for r in result.responses] == ["ok", "ok", "cancelled"]
    assert "quorum of 2" in result.responses[2].error
    assert result.status == "partial"


def test_fallback_member(emulator):
    emulator.script("a/alpha", Reply(status=404))
    result = fusion(panel=["a/alpha|d/delta", "b/beta"]).run("Q?")
    first = result.responses[0]
    assert first.ok and first.model == "a/alpha|d/delta" and first.served_by == "d/delta"


def test_rerun_is_served_from_cache_with_zero_requests(emulator):
    first = fusion().run("Cache me")
    paid = emulator.total_cost
    n = len(emulator.requests)
    again = fusion().run("Cache me")
    assert len(emulator.requests) == n
    assert all(r.cached for r in again.calls)
    assert again.cost_usd == 0 and again.saved_usd == pytest.approx(paid)
    assert again.answer == first.answer
    refreshed = fusion(refresh=True).run("Cache me")
    assert not any(r.cached for r in refreshed.calls) and len(emulator.requests) > n


def test_run_inside_a_running_event_loop(emulator):
    # As in a Jupyter cell: an event loop is already running in this thread.
    async def cell() -> FusionResult:
        return fusion().run("Q?")

    assert asyncio.run(cell()).status == "ok"


def test_arun_in_the_callers_loop(emulator):
    assert asyncio.run(fusion().arun("Q?")).status == "ok"


def test_interrupt_cancels_in_flight_and_keeps_answers(emulator):
    emulator.script("c/gamma", Reply(latency=30))
    f = fusion(cache=True)
    interrupt_when(lambda: True, after=0.8)
    started = time.perf_counter()
    with pytest.raises(FusionInterrupted) as stopped:
        f.run("Q?")
    assert time.perf_counter() - started < 0.8 + 1.0
    assert isinstance(stopped.value, KeyboardInterrupt)  # what IPython and scripts treat as an interrupt
    kept = stopped.value.result
    assert kept.interrupted and [r.status for r in kept.responses] == ["ok", "ok", "cancelled"]
    assert kept.status == "interrupted" and kept.failure_reason == "cancelled"
    assert kept.error == "interrupted: the 2 answers that arrived are kept (and cached)"
    time.sleep(0.2)
    assert emulator.chats("c/gamma")[0].cancelled
    # The answers that arrived were cached: resuming pays only for the missing member and the judge.
    emulator.script("c/gamma", Reply())
    n = len(emulator.chats())
    resumed = fusion().run("Q?")
    assert resumed.status == "ok"
    assert sorted(r.model for r in emulator.chats()[n:]) == ["c/gamma", JUDGE]


@pytest.mark.parametrize(
    ("kwargs", "prompt", "words"),
    [
        ({}, "   ", "empty prompt"),
        ({"preset": "nope", "panel": None, "judge": None}, "Q", "unknown preset 'nope'"),
        ({"panel": ["no slash here"]}, "Q", "malformed model id"),
        ({"panel": ["a/x", "a/x"]}, "Q", "duplicate panel member"),
        ({"panel": []}, "Q", "panel is empty"),
        ({"panel": [f"v/m{i}" for i in range(17)]}, "Q", "at most 16"),
        ({"timeout": -1}, "Q", "timeout must be a positive number"),
        ({"quorum": 4}, "Q", "quorum must be between 1 and the panel size (3)"),
        ({"panel": ["openrouter/fusion"]}, "Q", "does not nest"),
        ({"tool": "openrouter/fusion"}, "Q", "does not nest"),
        ({"max_tool_calls": 17}, "Q", "max_tool_calls must be a whole number from 1 to 16"),
        ({"python": "maybe"}, "Q", 'python must be False, True or "unsandboxed"'),
    ],
)
def test_bad_input_is_one_clear_error_and_sends_nothing(emulator, kwargs, prompt, words):
    with pytest.raises(ConfigError) as info:
        kw = {"base_url": "https://openrouter.ai/api/v1", "api_key": "sk-or-v1-x", **kwargs}
        if kw.get("panel") is None:
            kw.pop("panel", None)
        fusion(**kw).run(prompt)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert emulator.requests == []


def test_missing_key_for_openrouter(monkeypatch):
    monkeypatch.setenv("FUSION_BASE_URL", "https://openrouter.ai/api/v1")
    with pytest.raises(ConfigError, match="OPENROUTER_API_KEY"):
        Fusion()


def test_nested_deliberation_is_refused(emulator):
    async def nested():
        f = fusion()
        from fusion_magic._engine import nesting

        token = nesting.depth.set(1)  # as inside a running deliberation
        try:
            await f.arun("Q?")
        finally:
            nesting.depth.reset(token)

    with pytest.raises(ConfigError, match="inside another"):
        asyncio.run(nested())
    assert emulator.requests == []


def test_tool_mode_primary_calls_fusion(emulator):
    emulator.script(
        "p/primary",
        Reply(tool_calls=[{"name": "fusion", "arguments": {"question": "Is Rust safe?"}}]),
        Reply(content="Final answer from the primary."),
    )
    result = fusion(tool="p/primary").run("Tell me: is Rust safe?")
    assert result.tool == {"primary": "p/primary", "called": True, "question": "Is Rust safe?"}
    assert result.answer == "Final answer from the primary."
    assert all(r.ok for r in result.responses) and not result.analysis.is_empty()
    first, *_, last = emulator.chats("p/primary")
    assert first.body["tools"][0]["function"]["name"] == "fusion"
    assert last.body["messages"][-1]["role"] == "tool"
    assert json.loads(last.body["messages"][-1]["content"])["analysis"]["consensus"]
    # The panel was asked the primary's question and never got the tool itself.
    for model in PANEL:
        (asked,) = emulator.chats(model)
        assert "tools" not in asked.body and asked.body["messages"][-1]["content"] == "Is Rust safe?"
    assert result.cost_usd == pytest.approx(emulator.total_cost)


def test_tool_mode_primary_answers_alone(emulator):
    emulator.script("p/primary", "Just 4.")
    result = fusion(tool="p/primary").run("2+2?")
    assert result.tool["called"] is False and result.answer == "Just 4."
    assert result.responses == [] and [r.model for r in emulator.chats()] == ["p/primary"]


def test_tool_mode_rerun_from_cache_keeps_the_tool_call(emulator):
    emulator.script(
        "p/primary", Reply(tool_calls=[{"name": "fusion", "arguments": {"question": "Q2"}}]), Reply(content="Final.")
    )
    first = fusion(tool="p/primary").run("Q")
    n = len(emulator.requests)
    again = fusion(tool="p/primary").run("Q")
    assert len(emulator.requests) == n
    assert again.tool == first.tool and again.answer == "Final." and again.cost_usd == 0


def test_web_gives_the_members_openrouters_search_and_fetch_tools_and_the_judge_none():
    f = Fusion(preset="budget", base_url="https://openrouter.ai/api/v1", api_key="sk-or-v1-x", web=True)
    ctx = run_sync(open_context(f.run_settings(), f.tracker(), prices=False))
    # Fusion's defaults, run by OpenRouter; the members' tools, not every call's parameters (the judge gets none).
    assert ctx.tools is not None and [t["type"] for t in ctx.tools.specs()] == [
        "openrouter:web_search",
        "openrouter:web_fetch",
    ]
    assert "tools" not in ctx.params


def test_interrupt_after_an_answer_is_complete_keeps_it(emulator):
    # b/beta's body stays open after [DONE]: its answer is complete and billed when the interrupt lands.
    emulator.script("b/beta", Reply(linger=5))
    emulator.script("c/gamma", Reply(latency=30))
    interrupt_when(lambda: len(emulator.charges) >= 2, after=0.3)
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        fusion().run("Q?")
    assert time.perf_counter() - started < 2.5
    emulator.script("b/beta", Reply())
    emulator.script("c/gamma", Reply())
    n = len(emulator.requests)
    resumed = fusion().run("Q?")
    assert resumed.status == "ok"
    assert sorted(r.model for r in emulator.chats(since=n)) == ["c/gamma", JUDGE]  # b/beta was kept


def test_users_add_their_own_presets(emulator):
    from fusion_magic import PRESETS, add_preset

    try:
        preset = add_preset("mine", ["a/alpha", "b/beta|z/zeta"], "j/judge", "two members and a fallback")
        assert PRESETS["mine"] is preset and preset.panel[1].fallbacks == ("z/zeta",)
        result = Fusion(preset="mine").run("Q?")
        assert result.status == "ok" and result.preset == "mine"
        assert [r.model for r in result.responses] == ["a/alpha", "b/beta|z/zeta"]
        with pytest.raises(ConfigError, match="malformed model id"):
            add_preset("broken", ["not an id"], "j/judge")
        with pytest.raises(ConfigError, match="preset name"):
            add_preset("two words", ["a/alpha"], "j/judge")
        assert "broken" not in PRESETS
    finally:
        PRESETS.pop("mine", None)


def test_arun_with_a_conversation_and_caller_tools(emulator):
    import asyncio

    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    emulator.script("p/primary", Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    result = asyncio.run(fusion(tool="p/primary").arun("Weather?", tools=[weather]))
    assert result.tool["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    history = [
        {"role": "user", "content": "I live in Oslo."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Coat today?"},
    ]
    asyncio.run(fusion().arun("Coat today?", messages=history))
    for model in PANEL:
        assert emulator.chats(model)[-1].body["messages"] == history


def test_a_cancelled_arun_raises_a_cancellation_carrying_the_answers(emulator):
    # An async caller on the loop (the widget, serve) reads what arrived from the exception.
    emulator.script("c/gamma", Reply(latency=30))
    f = fusion()
    tracker = f.tracker()
    seen: list[DeliberationCancelled] = []

    async def deliberation() -> FusionResult:
        try:
            return await f.arun("Q?", tracker=tracker)
        except DeliberationCancelled as exc:
            seen.append(exc)
            raise

    async def stop_after_two() -> None:
        task = asyncio.ensure_future(deliberation())
        while sum(s.state == "done" for s in tracker.snapshot()) < 2:
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()

    run_sync(stop_after_two())
    (stopped,) = seen
    assert isinstance(stopped, asyncio.CancelledError) and not isinstance(stopped, KeyboardInterrupt)
    assert stopped.result.status == "interrupted"
    assert [r.status for r in stopped.result.responses] == ["ok", "ok", "cancelled"]
    assert all(r.content for r in stopped.result.responses[:2])


def test_an_interrupt_before_the_run_starts_carries_no_result():
    async def never() -> None:
        await asyncio.sleep(30)

    interrupt_when(lambda: True, after=0.2)
    with pytest.raises(FusionInterrupted) as stopped:
        run_sync(never())
    assert stopped.value.result is None


def test_an_interrupted_tool_mode_run_keeps_the_primary_turn_and_the_answers(emulator):
    emulator.script("p/primary", Reply(tool_calls=[{"name": "fusion", "arguments": {"question": "Q2"}}]))
    emulator.script("c/gamma", Reply(latency=30))
    interrupt_when(lambda: len(emulator.charges) >= 3, after=0.3)  # the primary and two members billed
    with pytest.raises(FusionInterrupted) as stopped:
        fusion(tool="p/primary").run("Q")
    kept = stopped.value.result
    assert kept.status == "interrupted" and kept.tool == {"primary": "p/primary", "called": True, "question": "Q2"}
    assert kept.primary is not None and kept.primary.ok
    assert [r.status for r in kept.responses] == ["ok", "ok", "cancelled"]
