"""The replies of `fusion-magic serve` have the shape of OpenAI's recorded replies.

The fixtures in tests/fixtures/serve_openai/ are real api.openai.com responses (see its README):
a completion, a stream asked with ``stream_options.include_usage`` and an error. Every field those
carry that a client reads (ids, choices, finish_reason, logprobs, usage, error fields) is in ours,
with the same JSON type, and the official SDK's types accept ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from helpers import JUDGE, PANEL
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from fusion_magic._fronts.serve import FusionServer

FIXTURES = Path(__file__).parent / "fixtures" / "serve_openai"
OURS = {"fusion": {"panel": PANEL, "judge": JUDGE}}
# Fields of OpenAI's replies that belong to OpenAI's own service, not to the chat-completions shape.
SERVICE_ONLY = {"service_tier", "system_fingerprint", "obfuscation", "annotations"}
USAGE = {"prompt_tokens", "completion_tokens", "total_tokens"}  # the SDK requires these three


def recorded_chunks() -> list[dict]:
    text = (FIXTURES / "openai_stream_include_usage.sse").read_text()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


@pytest.fixture
def server(emulator):
    srv = FusionServer(port=0, preset="budget").start()
    yield srv
    srv.stop()


def post(server, **body) -> httpx.Response:
    body = {"model": "fusion", "messages": [{"role": "user", "content": "Shard or replicate?"}], **OURS, **body}
    return httpx.post(server.url + "/chat/completions", json=body, timeout=60)


def same_shape(ours, theirs, path="$", optional=()):
    "Every key of ``theirs`` (recursively, but lists by their first item) is in ``ours`` with the same JSON type."
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        for key, value in theirs.items():
            if key in SERVICE_ONLY or f"{path}.{key}" in optional:
                continue
            assert key in ours, f"{path}.{key} missing"
            same_shape(ours[key], value, f"{path}.{key}", optional)
    elif isinstance(theirs, list):
        assert isinstance(ours, list), path
        if theirs and ours:
            same_shape(ours[0], theirs[0], f"{path}[0]", optional)
    elif theirs is None:
        assert ours is None, f"{path}: {ours!r} where OpenAI sends null"
    elif isinstance(theirs, bool):
        assert isinstance(ours, bool), f"{path}: {ours!r}"
    elif isinstance(theirs, (int, float)):
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), f"{path}: {ours!r}"
    else:
        assert isinstance(ours, type(theirs)), f"{path}: {ours!r}"


def test_a_completion_has_the_recorded_fields(server):
    resp = post(server)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    ours = resp.json()
    theirs = json.loads((FIXTURES / "openai_chat_completion.json").read_text())
    # Token details are optional in the SDK's types and OpenAI-specific; the three totals are required.
    same_shape(ours, theirs, optional={"$.usage.prompt_tokens_details", "$.usage.completion_tokens_details"})
    assert ours["object"] == "chat.completion" and ours["choices"][0]["finish_reason"] == "stop"
    assert set(ours["usage"]) >= USAGE and ours["usage"]["total_tokens"] > 0
    parsed = ChatCompletion.model_validate(ours)
    assert parsed.choices[0].message.content == ours["fusion"]["answer"]


def test_a_stream_with_include_usage_has_the_recorded_chunks(server):
    body = {
        "model": "fusion",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Shard?"}],
        **OURS,
    }
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=60) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    ours = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    theirs = recorded_chunks()
    details = {"$.usage.prompt_tokens_details", "$.usage.completion_tokens_details"}
    same_shape(ours[0], theirs[0], optional={"$.choices[0].delta.refusal"})  # role chunk
    same_shape(ours[1], theirs[1])  # a content chunk
    finish = next(c for c in theirs if c["choices"] and c["choices"][0]["finish_reason"])
    same_shape(ours[-2], finish)
    same_shape(ours[-1], theirs[-1], optional=details)  # the usage chunk
    assert ours[-1]["choices"] == [] == theirs[-1]["choices"]
    for chunk in ours:
        ChatCompletionChunk.model_validate(chunk)


def test_a_stream_without_include_usage_has_no_usage_field(server):
    body = {"model": "fusion", "stream": True, "messages": [{"role": "user", "content": "Shard?"}], **OURS}
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=60) as resp:
        ours = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    theirs = recorded_chunks()
    strip = [{k: v for k, v in c.items() if k != "usage"} for c in theirs if c["choices"]]
    for chunk in ours:
        assert "usage" not in chunk and len(chunk["choices"]) == 1
        ChatCompletionChunk.model_validate(chunk)
    same_shape(ours[1], strip[1])
    assert ours[-1]["choices"][0]["finish_reason"] == "stop"


def test_an_error_has_the_recorded_fields(server):
    resp = post(server, n=2)
    theirs = json.loads((FIXTURES / "openai_error_401.json").read_text())
    ours = resp.json()
    assert resp.status_code == 400 and set(ours["error"]) == set(theirs["error"])
    assert all(isinstance(ours["error"][k], str) for k in ("message", "type", "param", "code"))
