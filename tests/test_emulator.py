"""The emulator over real loopback HTTP: wire shapes, failure modes, scripting, costs, replay."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fusion_magic._values.result import Analysis
from fusion_magic.emulator import Emulator, Reply

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "openrouter"
MESSAGES = [{"role": "user", "content": "Which database should a small team pick for analytics?"}]


def chat(
    emu: Emulator, model: str = "a/x", *, timeout: float = 5.0, headers: dict | None = None, **body
) -> httpx.Response:
    body = {"model": model, "messages": MESSAGES, **body}
    return httpx.post(f"{emu.base_url}/chat/completions", json=body, headers=headers, timeout=timeout)


def events(raw: bytes) -> tuple[list[str], list]:
    "Split an SSE body into comment lines and data payloads (JSON, or the literal [DONE])."
    comments, data = [], []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith("data: "):
                payload = line[6:]
                data.append(payload if payload == "[DONE]" else json.loads(payload))
    return comments, data


def text_of(chunks: list) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if isinstance(c, dict))


def wait_for(predicate, timeout: float = 2.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_stream_separate_usage_layout_matches_the_recordings(emulator):
    emulator.script("a/x", Reply(content="Pebbles and Skipper.", latency=0.25, keepalive=0.05))
    r = chat(emulator, stream=True)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    comments, data = events(r.content)
    assert len(comments) >= 4 and set(comments) == {": OPENROUTER PROCESSING"}
    assert r.content.startswith(b": OPENROUTER PROCESSING\n\n")
    assert data[-1] == "[DONE]"
    chunks = data[:-1]
    assert text_of(chunks) == "Pebbles and Skipper."
    first = chunks[0]
    assert list(first) == ["id", "provider", "model", "object", "created", "choices", "system_fingerprint"]
    assert first["id"].startswith("gen-") and first["object"] == "chat.completion.chunk"
    assert r.headers["x-generation-id"] == first["id"]
    assert {c["id"] for c in chunks} == {first["id"]}
    for c in chunks:
        choice = c["choices"][0]
        assert set(choice) == {"index", "delta", "finish_reason", "native_finish_reason", "logprobs"}
        assert choice["delta"]["role"] == "assistant"
    finish, usage = chunks[-2], chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "stop" and "usage" not in finish
    assert usage["choices"][0]["finish_reason"] is None
    u = usage["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert {"cost", "is_byok", "prompt_tokens_details", "cost_details", "completion_tokens_details"} <= set(u)
    assert emulator.charges == [("a/x", u["cost"])]
    assert sum(1 for c in chunks if "usage" in c) == 1


def test_stream_usage_on_the_finish_chunk(emulator):
    emulator.script(
        "a/x", Reply(content="one two", usage_layout="finish", prompt_tokens=10, completion_tokens=4, cost=0.5)
    )
    _, data = events(chat(emulator, stream=True).content)
    last = data[-2]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["cost"] == 0.5 and last["usage"]["prompt_tokens"] == 10
    assert [c for c in data[:-2] if "usage" in c or c["choices"][0]["finish_reason"]] == []
    assert emulator.total_cost == 0.5


def test_nonstream_body_with_padding_and_default_content(emulator):
    emulator.script("a/x", Reply(pad=True, latency=0.15, keepalive=0.05))
    r = chat(emulator)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content[:1] == b"\n" and r.content.count(b"\n") >= 4
    body = json.loads(r.content)  # json.loads skips the padding, as a lenient client must
    assert body["object"] == "chat.completion" and body["id"].startswith("gen-")
    assert {"provider", "model", "created", "choices", "usage"} <= set(body)
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["native_finish_reason"] == "stop"
    assert set(choice["message"]) == {"role", "content", "refusal", "reasoning"}
    content = choice["message"]["content"]
    assert "a/x" in content and "Which database should a small team pick" in content
    assert content != chat(emulator, "b/y").json()["choices"][0]["message"]["content"].replace("b/y", "a/x")
    assert emulator.total_cost == pytest.approx(sum(c for _, c in emulator.charges)) and len(emulator.charges) == 2


def test_prices_drive_the_default_cost(emulator):
    with Emulator(models={"p/x": {"prompt": "0.000003", "completion": "0.000015"}}) as emu:
        emu.script("p/x", Reply(content="hi", prompt_tokens=1000, completion_tokens=100))
        usage = chat(emu, "p/x").json()["usage"]
        assert usage["cost"] == pytest.approx(1000 * 3e-6 + 100 * 15e-6)
        assert usage["cost_details"]["upstream_inference_prompt_cost"] == pytest.approx(0.003)
        assert chat(emu, "q/free:free").json()["usage"]["cost"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_error_status_is_json_with_retry_after(emulator, stream):
    emulator.script("a/x", Reply(status=429, retry_after=0.5))
    r = chat(emulator, stream=stream)
    assert r.status_code == 429 and r.headers["retry-after"] == "0.5"
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert err["code"] == 429 and err["message"] == "Provider returned error"
    assert err["metadata"]["error_type"] == "rate_limit_exceeded" and "rate-limited upstream" in err["metadata"]["raw"]
    assert emulator.charges == []


@pytest.mark.parametrize("status", [400, 403, 404, 408, 500, 502, 503])
def test_each_error_status_has_a_realistic_message(emulator, status):
    emulator.script("a/x", Reply(status=status))
    r = chat(emulator)
    assert r.status_code == status and "retry-after" not in r.headers
    err = r.json()["error"]
    assert err["code"] == status and err["message"] and isinstance(err["metadata"], dict)


def test_script_sequence_then_last_reply_repeats(emulator):
    emulator.script("a/x", Reply(status=429), "first", "again")
    assert [chat(emulator).status_code for _ in range(2)] == [429, 200]
    contents = [chat(emulator).json()["choices"][0]["message"]["content"] for _ in range(3)]
    assert contents == ["again"] * 3
    assert [r.status for r in emulator.chats("a/x")] == [429, 200, 200, 200, 200]
    emulator.reset()
    assert emulator.requests == [] and emulator.charges == []
    assert "a/x here" in chat(emulator).json()["choices"][0]["message"]["content"]


def test_hang_times_out_and_is_logged_cancelled(emulator):
    emulator.script("a/x", Reply(hang=True))
    with pytest.raises(httpx.ReadTimeout):
        chat(emulator, timeout=0.3)
    (rec,) = emulator.requests
    assert wait_for(lambda: rec.cancelled) and rec.status is None and rec.t_end is not None
    assert emulator.charges == []


def test_stall_sends_n_chunks_then_silence(emulator):
    emulator.script("a/x", Reply(content="a b c d e f", stall_after=2))
    got = []
    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream(
            "POST",
            f"{emulator.base_url}/chat/completions",
            timeout=0.4,
            json={"model": "a/x", "messages": MESSAGES, "stream": True},
        ) as r:
            for line in r.iter_lines():
                got.append(line)
    _, data = events("\n\n".join(got).encode())
    assert text_of(data) == "a b"
    assert wait_for(lambda: emulator.requests[0].cancelled) and emulator.charges == []


@pytest.mark.parametrize("stream", [False, True])
def test_cut_closes_the_connection_mid_body(emulator, stream):
    emulator.script("a/x", Reply(content="a b c d e f", cut_after=3))
    with pytest.raises(httpx.RemoteProtocolError):
        chat(emulator, stream=stream)
    assert emulator.charges == [] and emulator.requests[0].cancelled is False


def test_malformed_bodies(emulator):
    emulator.script("a/x", Reply(malformed=True))
    r = chat(emulator)
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    r = chat(emulator, stream=True)
    lines = [x for x in r.text.split("\n\n") if x.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[-2][6:])
    assert emulator.charges == []


def test_midstream_error_chunk_then_done(emulator):
    emulator.script(
        "a/x", Reply(content="one two three four", midstream_error={"code": 429, "message": "Rate limit exceeded"})
    )
    r = chat(emulator, stream=True)
    assert r.status_code == 200
    _, data = events(r.content)
    assert data[-1] == "[DONE]"
    bad = data[-2]
    assert bad["error"] == {"code": 429, "message": "Rate limit exceeded"}
    assert list(bad)[:3] == ["id", "provider", "error"] and bad["usage"]["cost"] == 0
    assert text_of(data[:-2]) == "one two"
    body = chat(emulator).json()  # non-stream: partial content, finish_reason error
    assert body["choices"][0]["finish_reason"] == "error" and body["choices"][0]["error"]["code"] == 429
    assert emulator.charges == [("a/x", 0), ("a/x", 0)]


def test_empty_content(emulator):
    emulator.script("a/x", Reply(empty=True))
    _, data = events(chat(emulator, stream=True).content)
    assert text_of(data) == "" and data[-2]["usage"]["completion_tokens"] == 0
    assert chat(emulator).json()["choices"][0]["message"]["content"] == ""


def test_tokens_per_second_paces_the_stream(emulator):
    emulator.script("a/x", Reply(content="w " * 20, completion_tokens=20, tokens_per_s=100, latency=0.1))
    t = time.monotonic()
    with httpx.stream(
        "POST", f"{emulator.base_url}/chat/completions", json={"model": "a/x", "messages": MESSAGES, "stream": True}
    ) as r:
        first = None
        for line in r.iter_lines():
            if first is None and '"content":"w"' in line:
                first = time.monotonic() - t
    total = time.monotonic() - t
    # Lower bounds only: a busy machine can make anything slower, nothing can make pacing faster.
    assert first >= 0.09  # the latency before the first token
    assert total - first >= 0.15  # 20 tokens at 100/s after it: spread out, not sent in one burst


def test_served_model_provider_and_tool_calls(emulator):
    emulator.script("a/x", Reply(served_model="x-ai/grok-4", tool_calls=[{"name": "fusion", "arguments": {"q": "hi"}}]))
    body = chat(emulator).json()
    assert body["model"] == "x-ai/grok-4" and body["provider"] == "xAI"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"] == {"name": "fusion", "arguments": '{"q": "hi"}'} and call["type"] == "function"
    _, data = events(chat(emulator, stream=True).content)
    deltas = [c["choices"][0]["delta"] for c in data[:-1]]
    assert deltas[0]["tool_calls"][0]["function"] == {"name": "fusion", "arguments": ""}
    assert deltas[1]["tool_calls"][0]["function"]["arguments"] == '{"q": "hi"}'
    assert data[-3]["choices"][0]["finish_reason"] == "tool_calls"


def test_auth_and_credits():
    with Emulator(api_key="sk-or-v1-secret", credits=0.0002) as emu:
        missing = chat(emu)
        assert missing.status_code == 401
        assert missing.json()["error"]["message"] == "Missing Authentication header"
        wrong = chat(emu, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == 401
        ok_headers = {"Authorization": "Bearer sk-or-v1-secret", "X-Fusion-Depth": "1"}
        emu.script("a/x", Reply(content="hi", cost=0.0002))
        assert chat(emu, headers=ok_headers).status_code == 200
        broke = chat(emu, headers=ok_headers)
        assert broke.status_code == 402
        err = broke.json()["error"]
        assert err["code"] == 402 and "credits" in err["message"].lower()
        assert "retry-after" not in broke.headers
        key = httpx.get(f"{emu.base_url}/key", headers=ok_headers).json()["data"]
        assert key["limit"] == 0.0002 and key["limit_remaining"] == 0 and key["usage"] == pytest.approx(0.0002)
        assert httpx.get(f"{emu.base_url}/auth/key").status_code == 401
        logged = emu.requests[2]
        assert logged.headers["authorization"] == "REDACTED" and logged.headers["x-fusion-depth"] == "1"
        assert "sk-or-v1-secret" not in repr(emu.requests) and "sk-or-v1-secret" not in repr(emu)


def test_models_listing_has_decimal_string_prices():
    models = {"a/x": {"prompt": "0.000003", "completion": 0.000015, "context_length": 200000}}
    with Emulator(models=models) as emu:
        emu.script("b/y", "hello")
        listing = httpx.get(f"{emu.base_url}/models").json()
        assert listing["total_count"] == 2 and listing["links"] == {"next": None}
        a, b = listing["data"]
        sample = json.loads((FIXTURES / "or_models_list_trimmed.json").read_text())["data"][0]
        assert set(a) <= set(sample) and {
            "id",
            "name",
            "context_length",
            "architecture",
            "pricing",
            "top_provider",
            "supported_parameters",
        } <= set(a)
        assert (a["id"], a["context_length"]) == ("a/x", 200000)
        assert (a["pricing"]["prompt"], a["pricing"]["completion"]) == ("0.000003", "0.000015")
        assert (b["pricing"]["prompt"], b["pricing"]["completion"]) == ("0.000001", "0.000002")
        assert httpx.get(f"{emu.base_url.replace('/api/v1', '/v1')}/models").status_code == 200


JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, **Analysis.model_json_schema()["properties"]},
    "required": ["answer", *Analysis.SECTIONS],
}


def judge_body(labels: list[str], **extra) -> dict:
    answers = "\n".join(f'<answer member="{label}">Answer from {label}.</answer>' for label in labels)
    return {
        "model": "j/judge",
        "messages": [
            {"role": "system", "content": "You are the judge. Reply with a JSON object."},
            {"role": "user", "content": f"<question>Pick a database</question>\n{answers}"},
        ],
        **extra,
    }


@pytest.mark.parametrize("stream", [False, True])
def test_judge_json_matches_the_schema_and_uses_the_labels(emulator, stream):
    fmt = {"type": "json_schema", "json_schema": {"name": "analysis", "strict": True, "schema": JUDGE_SCHEMA}}
    r = httpx.post(
        f"{emulator.base_url}/chat/completions", json=judge_body(["A", "B", "C"], response_format=fmt, stream=stream)
    )
    if stream:
        _, data = events(r.content)
        content = text_of(data)
    else:
        content = r.json()["choices"][0]["message"]["content"]
    obj = json.loads(content)
    assert list(obj) == list(JUDGE_SCHEMA["properties"])
    assert "Pick a database" in obj.pop("answer")
    analysis = Analysis.model_validate(obj)
    assert [s.model for s in analysis.contradictions[0].stances] == ["A", "B"]
    assert analysis.partial_coverage[0].models == ["A", "B"]
    assert analysis.unique_insights[0].model == "C"
    assert analysis.consensus and analysis.blind_spots


def test_judge_without_schema_and_invalid_prose(emulator):
    emulator.script("j/judge", Reply(), Reply(json_valid=False))
    chat_body = httpx.post(f"{emulator.base_url}/chat/completions", json=judge_body(["A", "B"])).json()
    content = chat_body["choices"][0]["message"]["content"]
    analysis = Analysis.model_validate(json.loads(content))
    assert analysis.partial_coverage[0].models == ["A"]  # "partial" with two members: not both
    assert {s.model for c in analysis.contradictions for s in c.stances} == {"A", "B"}
    prose = httpx.post(f"{emulator.base_url}/chat/completions", json=judge_body(["A", "B"])).json()
    with pytest.raises(json.JSONDecodeError):
        json.loads(prose["choices"][0]["message"]["content"])


def test_client_disconnect_is_logged_and_stops_charging(emulator):
    emulator.script("a/x", Reply(latency=3, keepalive=0.05))
    with httpx.stream(
        "POST", f"{emulator.base_url}/chat/completions", json={"model": "a/x", "messages": MESSAGES, "stream": True}
    ) as r:
        assert next(r.iter_lines()) == ": OPENROUTER PROCESSING"
    (rec,) = emulator.requests
    assert wait_for(lambda: rec.cancelled)
    assert rec.status == 200 and rec.t_end - rec.t_start < 1
    assert emulator.charges == [] and emulator.total_cost == 0


def test_hundreds_of_concurrent_streams_keep_their_timing(emulator):
    # aiohttp's client here: httpx's own pool gets slow past ~100 new connections at once,
    # which would measure the client rather than the server.
    import aiohttp

    emulator.script("a/x", Reply(content="a short answer in a few chunks", latency=0.4))

    async def main() -> list[bytes]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one() -> bytes:
                async with session.post(
                    f"{emulator.base_url}/chat/completions", json={"model": "a/x", "messages": MESSAGES, "stream": True}
                ) as r:
                    return await r.read()

            return await asyncio.gather(*(one() for _ in range(300)))

    bodies = asyncio.run(main())
    assert all(b.endswith(b"data: [DONE]\n\n") for b in bodies)
    served = [r.t_end - r.t_start for r in emulator.requests]
    assert len(served) == 300 and 0.4 <= min(served) and max(served) < 1.0
    assert len(emulator.charges) == 300


def test_replaying_every_fixture_returns_the_exact_bytes(emulator):
    index = json.loads((FIXTURES / "index.json").read_text())
    assert len(index) >= 20
    for item in index:
        raw = (FIXTURES / item["response_file"]).read_bytes()
        model = f"rec/{item['name']}"
        emulator.script(model, Reply(raw=raw, status=item["status"], raw_content_type=item["content_type"]))
        request = json.loads((FIXTURES / item["request_file"]).read_text())
        body = {**(request.get("body") or {}), "model": model, "messages": MESSAGES}
        r = httpx.post(f"{emulator.base_url}/chat/completions", json=body)
        assert (r.status_code, r.headers["content-type"], r.content) == (item["status"], item["content_type"], raw)
    charged = dict(emulator.charges)
    assert charged["rec/or_stream_basic_usage_cost"] == 0.0001025
    assert charged["rec/or_chat_basic_cost_raw"] == 0.00813
    assert "rec/or_error_429_upstream_ratelimit" not in charged


def test_standalone_server_serves_a_script_file(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"a/x": [{"status": 503}, {"content": "from the file"}]}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fusion_magic.emulator", "--port", "0", "--script", str(script)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1")
        post = lambda: httpx.post(f"{base_url}/chat/completions", json={"model": "a/x", "messages": MESSAGES})  # noqa: E731
        assert post().status_code == 503
        assert post().json()["choices"][0]["message"]["content"] == "from the file"
    finally:
        proc.terminate()
        proc.wait(5)
        proc.stdout.close()
