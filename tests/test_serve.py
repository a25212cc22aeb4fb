"""`fusion-magic serve` driven by the official OpenAI SDK (sync, async, streaming, extra_body, tools).

The upstream is the emulator; the server runs in this process on the session's loop, as
`%fusion serve` does in a kernel (the command line is tested in test_serve_cli.py).
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
from helpers import JUDGE, PANEL

from fusion_magic._fronts.serve import FusionServer
from fusion_magic.emulator import Reply

BUDGET = ["openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat"]
BUDGET_JUDGE = "openai/gpt-4.1-mini"
OURS = {"fusion": {"panel": PANEL, "judge": JUDGE}}
SECTIONS = {"consensus", "contradictions", "partial_coverage", "unique_insights", "blind_spots"}


@pytest.fixture
def server(emulator):
    srv = FusionServer(port=0, preset="budget").start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0) as c:
        yield c


def ask(client, question="Should we shard the database?", **kw):
    return client.chat.completions.create(
        model=kw.pop("model", "fusion"), messages=kw.pop("messages", [{"role": "user", "content": question}]), **kw
    )


def test_models_lists_fusion_and_every_preset(client):
    from fusion_magic import PRESETS

    ids = [m.id for m in client.models.list()]
    assert ids == ["fusion", *(f"fusion/{p}" for p in PRESETS)]
    assert client.models.retrieve("fusion/budget").model_extra["panel"] == BUDGET
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("fusion/nope")


def test_completion_is_the_synthesis_with_usage_and_the_fusion_object(client, emulator):
    reply = ask(client)
    fusion = reply.model_extra["fusion"]
    assert reply.object == "chat.completion" and reply.model == "fusion"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == fusion["answer"] and fusion["answer"].startswith("Synthesis by")
    assert fusion["status"] == "ok" and set(fusion["analysis"]) >= SECTIONS
    assert [r["model"] for r in fusion["responses"]] == BUDGET and all(r["content"] for r in fusion["responses"])
    assert fusion["failed_models"] == [] and fusion["failure_reason"] is None and fusion["sources"] == []
    # Usage: the totals of every call, as the upstream reported them; cost is what it charged.
    sent = [r.body for r in emulator.chats()]
    assert len(sent) == 4 and {b["model"] for b in sent} == {*BUDGET, BUDGET_JUDGE}
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 0
    assert reply.usage.model_extra["cost"] == pytest.approx(emulator.total_cost)
    assert fusion["cost_usd"] == pytest.approx(emulator.total_cost)


def test_earlier_turns_are_context_every_member_sees(client, emulator):
    messages = [
        {"role": "system", "content": "Answer for a Postgres shop."},
        {"role": "user", "content": "We have 40 GB of time series."},
        {"role": "assistant", "content": "Noted: 40 GB."},
        {"role": "user", "content": "Timescale or ClickHouse?"},
    ]
    reply = ask(client, messages=messages, extra_body=OURS)
    assert reply.model_extra["fusion"]["prompt"] == "Timescale or ClickHouse?"
    for model in PANEL:
        (sent,) = emulator.chats(model)
        assert sent.body["messages"] == messages
    (judged,) = emulator.chats(JUDGE)
    text = judged.body["messages"][-1]["content"]
    assert "40 GB of time series" in text and "Timescale or ClickHouse?" in text


def test_extra_body_overrides_in_fusions_own_names(client, emulator):
    reply = ask(
        client,
        model="fusion/quality",
        extra_body={"fusion": {"analysis_models": ["a/alpha", "b/beta"], "model": JUDGE, "max_tool_calls": 4}},
    )
    assert {r.model for r in emulator.chats()} == {"a/alpha", "b/beta", JUDGE}
    assert [r["model"] for r in reply.model_extra["fusion"]["responses"]] == ["a/alpha", "b/beta"]
    assert reply.model_extra["fusion"]["preset"] == "custom"


def test_timeout_and_quorum_overrides(client, emulator):
    emulator.script("c/gamma", Reply(latency=10))
    started = time.perf_counter()
    reply = ask(client, extra_body={"fusion": {**OURS["fusion"], "timeout": 0.5}})
    fusion = reply.model_extra["fusion"]
    assert fusion["status"] == "partial" and time.perf_counter() - started < 8
    assert [(f["model"], f["status"]) for f in fusion["failed_models"]] == [("c/gamma", "timed_out")]
    assert fusion["failure_reason"] is None  # a partial panel is not a failure, as in Fusion
    reply = ask(client, "Another question", extra_body={"fusion": {**OURS["fusion"], "quorum": 2}})
    statuses = {r["model"]: r["status"] for r in reply.model_extra["fusion"]["responses"]}
    assert statuses == {"a/alpha": "ok", "b/beta": "ok", "c/gamma": "cancelled"}


def test_top_level_temperature_and_max_tokens_reach_the_panel(client, emulator):
    ask(client, temperature=0.3, max_tokens=200, extra_body=OURS)
    for model in PANEL:
        (sent,) = emulator.chats(model)
        assert sent.body["temperature"] == 0.3 and sent.body["max_tokens"] == 200


@pytest.mark.parametrize(
    ("fusion", "param", "words"),
    [
        ({"panel": "a/alpha", "quorum": 2}, None, "quorum must be between 1 and the panel size"),
        ({"timeout": "soon"}, "fusion.timeout", "must be a number"),
        ({"analysis_models": [1, 2]}, "fusion.analysis_models", "list of model ids"),
        ({"panel": PANEL, "colour": "blue"}, "fusion.colour", "unknown field"),
        ({"preset": "nope"}, "fusion.preset", "unknown preset"),
        ({"tools": [{"type": "bash"}]}, "fusion.tools", "must be a list of web tools"),
        ("budget", "fusion", "must be an object"),
    ],
)
def test_bad_overrides_are_400_naming_the_field(client, emulator, fusion, param, words):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, extra_body={"fusion": fusion})
    assert words in caught.value.message
    if param:
        assert caught.value.param == param
    assert emulator.chats() == []


def test_budget_refused_before_anything_is_sent(client, emulator):
    emulator.models.update({m: {} for m in [*PANEL, JUDGE]})  # listed in /models, so priced
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            ask(client, stream=stream, extra_body={"fusion": {**OURS["fusion"], "max_cost": 0}})
        assert caught.value.status_code == 402 and "max_cost" in caught.value.message
    assert emulator.chats() == []


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (b"{not json", 400, "invalid_json", "not valid JSON"),
        (b"[]", 400, "invalid_json", "JSON object"),
        (json.dumps({"model": "fusion"}).encode(), 400, "no_messages", "messages"),
        (json.dumps({"model": "fusion", "messages": []}).encode(), 400, "no_messages", "messages"),
        (
            json.dumps({"model": "fusion", "messages": [{"role": "assistant", "content": "hi"}]}).encode(),
            400,
            "no_question",
            "no user message",
        ),
        (
            json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            400,
            "model_not_found",
            "unknown model 'gpt-4o'",
        ),
        (
            json.dumps({"model": "fusion/nope", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            400,
            "model_not_found",
            "no preset 'nope'",
        ),
    ],
)
def test_malformed_requests_get_openai_error_json(server, emulator, body, status, code, words):
    resp = httpx.post(server.url + "/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == status
    error = resp.json()["error"]
    assert error["code"] == code and words in error["message"] and error["type"] == "invalid_request_error"
    assert emulator.chats() == []


def test_unknown_path_is_a_json_404(server):
    resp = httpx.get(server.url + "/embeddings")
    assert resp.status_code == 404 and "POST /v1/chat/completions" in resp.json()["error"]["message"]


def test_streaming_sends_chunks_usage_and_the_fusion_object(client, emulator):
    chunks = list(ask(client, stream=True, stream_options={"include_usage": True}, extra_body=OURS))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    *body, finish, last = chunks
    assert body[0].choices[0].delta.role == "assistant" and len(body) > 2
    assert finish.choices[0].finish_reason == "stop"
    assert last.choices == [] and last.usage.total_tokens > 0
    fusion = last.model_extra["fusion"]
    assert text == fusion["answer"] and fusion["status"] == "ok" and set(fusion["analysis"]) >= SECTIONS
    assert last.usage.model_extra["cost"] == pytest.approx(emulator.total_cost)


def test_stream_shows_progress_comments_while_the_panel_works(server, emulator):
    emulator.script("c/gamma", Reply(latency=1.6))
    body = {"model": "fusion", "stream": True, "messages": [{"role": "user", "content": "Slow one?"}], **OURS}
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=30) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    comments = [ln for ln in lines if ln.startswith(":")]
    assert comments[0].startswith(": fusion deliberating: a/alpha, b/beta, c/gamma")
    assert any(ln.startswith(": fusion a/alpha  done in") for ln in comments)
    assert lines[-1] == "data: [DONE]"
    assert all(ln.startswith((":", "data: ")) for ln in lines)


def test_async_client_streams_and_completes(server, emulator):
    async def both():
        async with openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0) as aclient:
            plain, streamed = await asyncio.gather(
                aclient.chat.completions.create(
                    model="fusion", messages=[{"role": "user", "content": "One?"}], extra_body=OURS
                ),
                aclient.chat.completions.create(
                    model="fusion", messages=[{"role": "user", "content": "Two?"}], extra_body=OURS, stream=True
                ),
            )
            return plain, [c.choices[0].delta.content or "" async for c in streamed if c.choices]

    plain, parts = asyncio.run(both())
    assert plain.model_extra["fusion"]["prompt"] == "One?" and plain.choices[0].message.content
    assert '"Two?"' in "".join(parts)
    assert len(emulator.chats()) == 8


def test_all_members_failing_is_an_upstream_error_with_the_result(client, emulator):
    for model in PANEL:
        emulator.script(model, Reply(status=401))
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, extra_body=OURS)
    assert caught.value.status_code == 502 and caught.value.code == "all_panels_failed"
    assert "all 3 panel members failed" in caught.value.message
    fusion = caught.value.response.json()["fusion"]
    assert fusion["status"] == "error" and fusion["failure_reason"] == "all_panels_failed"
    assert [(f["model"], f["status_code"]) for f in fusion["failed_models"]] == [(m, 401) for m in PANEL]
    # Streaming: the same error arrives in-band, which the SDK raises.
    with pytest.raises(openai.APIError, match="all 3 panel members failed"):
        list(ask(client, "Again?", stream=True, extra_body=OURS))


def test_tool_mode_primary_calls_fusion_and_client_tools_pass_through(client, emulator):
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather now",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    emulator.script(
        "p/primary",
        Reply(tool_calls=[{"name": "fusion", "arguments": {"question": "Is Rust safe?"}}]),
        Reply(content="Final answer from the primary."),
    )
    reply = ask(
        client,
        "Is Rust memory safe?",
        model="p/primary",
        tools=[{"type": "openrouter:fusion", "parameters": {"analysis_models": PANEL, "model": JUDGE}}, weather],
    )
    assert reply.choices[0].message.content == "Final answer from the primary."
    fusion = reply.model_extra["fusion"]
    assert fusion["tool"]["called"] is True and fusion["tool"]["question"] == "Is Rust safe?"
    assert [r["model"] for r in fusion["responses"]] == PANEL
    first, final = emulator.chats("p/primary")
    assert [t.get("function", {}).get("name") for t in first.body["tools"]] == ["fusion", "get_weather"]
    assert first.body["tools"][1] == weather  # untouched
    assert final.body["tools"] == [weather] and final.body["messages"][-1]["role"] == "tool"
    assert len(emulator.chats(JUDGE)) == 1


def test_tool_mode_hands_client_tool_calls_back(client, emulator):
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    emulator.script("p/primary", Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    for stream in (False, True):
        reply = ask(client, "Weather in Oslo?", model="p/primary", stream=stream, tools=[{"type": "fusion"}, weather])
        if stream:
            chunks = list(reply)
            (call,) = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
            finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
        else:
            (call,) = reply.choices[0].message.tool_calls
            finish = reply.choices[0].finish_reason
        assert finish == "tool_calls"
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}
    assert {r.model for r in emulator.chats()} == {"p/primary"}  # no panel ran


@pytest.mark.parametrize("header", ["X-Fusion-Depth", "x-openrouter-fusion-depth"])
def test_a_request_from_inside_a_deliberation_is_refused(server, emulator, header):
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, default_headers={header: "1"}) as nested:
        with pytest.raises(openai.BadRequestError) as caught:
            ask(nested)
    assert caught.value.code == "fusion_invocation_capped"
    assert emulator.chats() == []


def test_a_panel_pointed_back_at_the_server_cannot_loop(server, client, monkeypatch):
    monkeypatch.setenv("FUSION_BASE_URL", server.url)  # every member call comes back here
    before = server.requests
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, extra_body={"fusion": {"panel": PANEL, "judge": JUDGE, "timeout": 20}})
    assert caught.value.code == "all_panels_failed"
    assert "fusion_invocation_capped" in caught.value.message
    assert server.requests == before + 1  # the refused member calls never got to deliberate


def test_client_disconnect_cancels_and_keeps_what_arrived(server, emulator):
    emulator.script("c/gamma", Reply(hang=True))
    body = {"model": "fusion", "stream": True, "messages": [{"role": "user", "content": "Cancel me?"}], **OURS}
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=30) as resp:
        for line in resp.iter_lines():
            if line.startswith(": fusion b/beta  done"):
                break
    deadline = time.monotonic() + 10
    while not (emulator.chats("c/gamma") and emulator.chats("c/gamma")[0].cancelled):
        assert time.monotonic() < deadline, "the hanging member was not cancelled"
        time.sleep(0.05)
    assert emulator.chats(JUDGE) == []
    # Asked again, the two answers that arrived come from the cache.
    emulator.script("c/gamma", "Gamma after all.")
    reply = httpx.post(server.url + "/chat/completions", json={**body, "stream": False}, timeout=30).json()
    cached = {r["model"]: r["cached"] for r in reply["fusion"]["responses"]}
    assert cached == {"a/alpha": True, "b/beta": True, "c/gamma": False}
    assert len(emulator.chats("a/alpha")) == 1


def test_token_required_when_set(emulator):
    srv = FusionServer(port=0, preset="budget", token="s3cret-token").start()
    try:
        with openai.OpenAI(base_url=srv.url, api_key="wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError):
                bad.models.list()
        assert httpx.get(srv.url + "/models").status_code == 401
        with openai.OpenAI(base_url=srv.url, api_key="s3cret-token", max_retries=0) as good:
            assert ask(good, extra_body=OURS).choices[0].message.content
    finally:
        srv.stop()


def test_token_from_the_environment(emulator, monkeypatch):
    monkeypatch.setenv("FUSION_SERVE_TOKEN", "env-token")
    srv = FusionServer(port=0, preset="budget").start()
    try:
        assert httpx.get(srv.url + "/models").status_code == 401
        assert httpx.get(srv.url + "/models", headers={"Authorization": "Bearer env-token"}).status_code == 200
    finally:
        srv.stop()


def test_non_loopback_without_token_is_refused(emulator):
    from fusion_magic import ConfigError

    with pytest.raises(ConfigError, match="without a token"):
        FusionServer("0.0.0.0", 0, preset="budget")


def test_tool_choice_naming_fusion_forces_the_panel(client, emulator):
    # The primary calls the tool, then judges (a default reply: the analysis JSON), then answers.
    emulator.script(
        "p/primary", Reply(tool_calls=[{"name": "fusion", "arguments": {"question": "Q?"}}]), Reply(), "Done."
    )
    reply = ask(
        client,
        "Q?",
        model="p/primary",
        tools=[{"type": "fusion", "parameters": {"panel": PANEL}}],
        tool_choice={"type": "openrouter:fusion"},
    )
    assert reply.choices[0].message.content == "Done."
    first, judged, _ = emulator.chats("p/primary")
    assert first.body["tool_choice"] == {"type": "function", "function": {"name": "fusion"}}
    # Fusion's rule: in tool mode the judge is the primary unless `model` names one.
    assert "response_format" in judged.body and emulator.chats(JUDGE) == []
    assert reply.model_extra["fusion"]["judge"]["model"] == "p/primary"


def test_client_giving_up_on_a_plain_request_cancels_it_too(server, emulator):
    emulator.script("c/gamma", Reply(hang=True))
    body = {"model": "fusion", "messages": [{"role": "user", "content": "Plain cancel?"}], **OURS}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/chat/completions", json=body, timeout=httpx.Timeout(10, read=1.0))
    deadline = time.monotonic() + 10
    while not (emulator.chats("c/gamma") and emulator.chats("c/gamma")[0].cancelled):
        assert time.monotonic() < deadline, "the hanging member was not cancelled"
        time.sleep(0.05)
    assert emulator.chats(JUDGE) == []


def test_sources_and_failure_reasons_reach_the_client(client, emulator):
    page = {"url": "https://example.org/a", "title": "A page"}
    emulator.script("a/alpha", Reply(citations=[page]))
    reply = ask(client, "Cited?", extra_body=OURS)
    assert reply.model_extra["fusion"]["sources"] == [page]
    # A judge that fails: 502 with Fusion's judge code; the panel's answers ride along.
    emulator.script(JUDGE, Reply(status=401))
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "Judged?", extra_body=OURS)
    fusion = caught.value.response.json()["fusion"]
    assert caught.value.status_code == 502 and caught.value.code == fusion["failure_reason"]
    assert fusion["failure_reason"].startswith("judge_") and fusion["status"] == "judge_failed"
    assert all(r["content"] for r in fusion["responses"])
    # Every member rate-limited: 429, Fusion's rate_limited.
    for model in PANEL:
        emulator.script(model, Reply(status=429))
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client, "Busy?", extra_body={"fusion": {**OURS["fusion"], "timeout": 30}}, timeout=60)
    assert caught.value.code == "rate_limited"
