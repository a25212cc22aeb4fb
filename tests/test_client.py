"""The client against recorded OpenRouter/OpenAI bytes, replayed over real loopback HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusion_magic._base.endpoint import resolve_endpoint
from fusion_magic._base.errors import ProviderError
from fusion_magic._engine.client import ChatClient
from fusion_magic._engine.runner import run_sync
from fusion_magic.emulator import Reply

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "openrouter"
INDEX = {item["response_file"]: item for item in json.loads((FIXTURES / "index.json").read_text())}

# What each recorded answer holds: content prefix, prompt/completion tokens, cost, tool calls.
ANSWERS = {
    "openai_chat_json_schema.json": ('{"title":"THE NAME OF THE WIND"', 172, 29, None, 0),
    "openai_stream_json_schema.sse": ('{"title":"THE NAME OF THE WIND"', 172, 29, None, 0),
    "or_chat_basic_cost_raw.json": ("I'll check the delivery status", 555, 431, 0.00813, 0),
    "or_chat_models_fallback_provider_only.json": ("I'm Grok, a helpful", 687, 240, None, 0),
    "or_chat_reasoning_gpt5mini.json": ("Brief summary\n- Venus", 17, 1515, None, 0),
    "or_chat_server_tool_advisor.json": ("Consider naming your Python retry library", 900, 69, 0.0160614, 0),
    "or_chat_server_tool_web_search.json": ("https://github.com/pydantic/pydantic-ai", 8174, 30, 0.0133176, 0),
    "or_chat_small_raw.json": ("Google logo", 163, 5, 0.000564, 0),
    "or_chat_structured_via_required_tool.json": ("", 280, 40, 4e-05, 1),
    "or_chat_tool_call_mistral.json": ("", 134, 43, None, 1),
    "or_chat_web_search_annotations.json": ("https://github.com/pydantic/pydantic-ai", 2315, 40, 0.007637029, 0),
    "or_stream_after_tool_result.sse": ("The current LLM version is 0.0+test.", 73, 14, 5.16e-05, 0),
    "or_stream_basic_usage_cost.sse": ("Pebbles and Skipper.", 17, 6, 0.0001025, 0),
    "or_stream_reasoning_thinking.sse": ("The capital of France is Paris.", 43, 134, 0.002139, 0),
    "or_stream_server_tool_web_search.sse": ("https://github.com/pydantic/pydantic-ai", 8174, 30, 0.0133176, 0),
    "or_stream_tool_call.sse": ("", 48, 11, 3.68e-05, 1),
}
# Recorded failures: status, words the error must carry, retryable?
FAILURES = {
    "openai_error_401.json": (401, ["401", "Incorrect API key", "check the API key"], False),
    "or_error_400_provider_raw.json": (400, ["400", "Provider returned error"], False),
    "or_error_400_stream_prestream.json": (400, ["Input must have at least 1 token"], False),
    "or_error_429_upstream_ratelimit.json": (429, ["429", "rate-limited upstream"], True),
    "or_stream_midstream_error.sse": (400, ["Token limit reached"], False),
}


def test_every_recording_is_covered():
    covered = set(ANSWERS) | set(FAILURES) | {"or_models_list_trimmed.json"}  # /models: test_pricing
    assert covered == set(INDEX)


def _replay(emulator, name: str, model: str = "rec/model") -> ChatClient:
    item = INDEX[name]
    emulator.script(
        model, Reply(raw=(FIXTURES / name).read_bytes(), raw_content_type=item["content_type"], status=item["status"])
    )
    endpoint = resolve_endpoint(emulator.base_url, api_key="sk-test-not-a-real-key")
    return ChatClient(endpoint, max_retries=0)


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_recorded_answers_parse(emulator, name):
    prefix, prompt_tokens, completion_tokens, cost, tools = ANSWERS[name]
    client = _replay(emulator, name)
    stream = name.endswith(".sse")
    done = run_sync(client.chat("rec/model", [{"role": "user", "content": "hi"}], stream=stream))
    assert done.content.startswith(prefix)
    assert (done.prompt_tokens, done.completion_tokens) == (prompt_tokens, completion_tokens)
    assert done.cost_usd == cost
    assert len(done.tool_calls) == tools
    if tools:
        assert done.tool_calls[0]["name"]
        assert isinstance(json.loads(done.tool_calls[0]["arguments"]), dict)
    assert done.served_model  # every recording names the model that served it


def test_stream_recording_reassembles_exact_text(emulator):
    client = _replay(emulator, "or_stream_reasoning_thinking.sse")
    pieces: list[str] = []
    done = run_sync(client.chat("rec/model", [{"role": "user", "content": "hi"}], on_delta=pieces.append))
    assert "".join(pieces) == done.content and len(pieces) > 3
    assert done.reasoning  # thinking deltas are kept apart from the answer
    assert done.finish_reason == "stop"


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_recorded_errors(emulator, name):
    status, words, retryable = FAILURES[name]
    client = _replay(emulator, name)
    with pytest.raises(ProviderError) as info:
        run_sync(client.chat("rec/model", [{"role": "user", "content": "hi"}], stream=name.endswith(".sse")))
    assert info.value.status_code == status
    assert info.value.retryable is retryable
    for word in words:
        assert word in str(info.value)
    assert "sk-test-not-a-real-key" not in str(info.value)


def test_models_listing(emulator):
    emulator.script("a/x", Reply())
    client = ChatClient(resolve_endpoint(emulator.base_url, api_key="k"))
    data = run_sync(client.get_json("/models"))
    listed = {m["id"]: m for m in data["data"]}
    assert "a/x" in listed
    assert isinstance(listed["a/x"]["pricing"]["prompt"], str)  # decimal strings, as on the wire


def test_every_request_carries_depth_header_and_key(emulator):
    client = ChatClient(resolve_endpoint(emulator.base_url, api_key="sk-or-v1-abc"))
    run_sync(client.chat("a/x", [{"role": "user", "content": "hi"}]))
    (logged,) = emulator.requests
    assert logged.headers["x-fusion-depth"] == "1"
    assert logged.headers["authorization"] == "REDACTED"
    assert logged.body["stream"] is True and logged.body["model"] == "a/x"


def test_requests_spread_over_an_endpoints_replicas():
    "Concurrent calls go to the least busy of base_url and its replicas (the local model's processes)."
    import asyncio
    import dataclasses

    from fusion_magic._base.endpoint import resolve_endpoint
    from fusion_magic._engine.client import ChatClient, aclose_shared
    from fusion_magic.emulator import Emulator, Reply

    with Emulator() as one, Emulator() as two:
        for emu in (one, two):
            emu.script("m/x", Reply(latency=0.3))
        endpoint = dataclasses.replace(resolve_endpoint(one.base_url, api_key="", env={}), replicas=(two.base_url,))

        async def main() -> list[str]:
            client = ChatClient(endpoint)
            try:
                done = await asyncio.gather(
                    *(client.chat("m/x", [{"role": "user", "content": f"q{i}"}]) for i in range(4))
                )
            finally:
                await aclose_shared()
            return [d.content for d in done]

        answers = asyncio.run(main())
        assert len(answers) == 4 and all(answers)
        assert len(one.chats()) == 2 and len(two.chats()) == 2


def test_the_background_loops_shared_client_is_closed_at_exit():
    "The client registers its pool with the loop's `on_shutdown`; it closes before the loop stops."
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import asyncio, atexit
        from fusion_magic._engine import client, runner

        held = {}
        atexit.register(lambda: print("closed" if held["http"].is_closed else "open"))  # runs after the loop's

        async def grab():
            held["http"] = client.shared_http()

        asyncio.run(runner.on_background(grab()))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closed" and "Unclosed" not in done.stderr


def test_a_client_made_under_asyncio_run_closes_when_the_run_ends(emulator):
    "A caller's `asyncio.run(fusion.arun(...))`: its loop's shared client closes with the loop, not at GC."
    import asyncio

    from fusion_magic._engine import client

    made = []

    async def ask(i: int) -> str:
        done = await ChatClient(resolve_endpoint(emulator.base_url, api_key="k", env={})).chat(
            "m/x", [{"role": "user", "content": f"q{i}"}]
        )
        made.append(client.shared_http())
        assert client.shared_http() is made[-1] and not made[-1].is_closed  # one client for the whole run
        return done.content

    assert all(asyncio.run(ask(i)) for i in range(2))
    assert len(made) == 2 and made[0] is not made[1] and all(http.is_closed for http in made)
