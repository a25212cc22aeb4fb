"""`fusion-magic serve` and what it cannot pass on: non-text content parts and ``n > 1`` are refused
with a 400 naming the field, before anything is sent upstream; the usage chunk comes only when
``stream_options.include_usage`` asks (OpenAI's documented behaviour). Driven by the official SDK.

OpenAI documents the parts (https://platform.openai.com/docs/api-reference/chat/create:
``messages[].content`` is a string or an array of parts typed ``text``, ``image_url``,
``input_audio``, ``file``) and the stream (``stream_options.include_usage``: "an additional chunk
will be streamed before the data: [DONE] message ... the choices field will always be an empty
array. All other chunks will also include a usage field, but with a null value").
"""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from helpers import JUDGE, PANEL

from fusion_magic._fronts.serve import FusionServer

OURS = {"fusion": {"panel": PANEL, "judge": JUDGE}}
PNG = (  # a 1x1 PNG, as a data URL (OpenAI's documented base64 form)
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PARTS = {
    "image_url": {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
    "input_audio": {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}},
    "file": {"type": "file", "file": {"filename": "notes.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
}


@pytest.fixture
def server(emulator):
    srv = FusionServer(port=0, preset="budget").start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0) as c:
        yield c


def ask(client, messages=None, **kw):
    messages = messages or [{"role": "user", "content": "Should we shard the database?"}]
    return client.chat.completions.create(model=kw.pop("model", "fusion"), messages=messages, extra_body=OURS, **kw)


def refused(client, **kw) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, **kw)
    return caught.value


# -- content parts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(PARTS))
def test_a_non_text_part_is_refused_naming_it(client, emulator, kind):
    question = [{"type": "text", "text": "What does this show?"}, PARTS[kind]]
    error = refused(client, messages=[{"role": "user", "content": question}])
    assert error.status_code == 400 and error.code == "unsupported_content"
    assert error.param == "messages[0].content[1]"
    assert str(error.body["message"]).startswith(f"messages[0].content[1]: {kind} parts are not supported")
    assert error.body["type"] == "invalid_request_error"
    assert emulator.chats() == []  # no member answered a question it never saw in full


def test_an_image_in_an_earlier_turn_is_refused_too(client, emulator):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Here is our schema."}, PARTS["image_url"]]},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Shard or not?"},
    ]
    error = refused(client, messages=messages)
    assert error.param == "messages[1].content[1]" and "image_url parts are not supported" in error.message
    assert emulator.chats() == []


def test_an_image_only_question_names_the_part_not_a_missing_question(client, emulator):
    error = refused(client, messages=[{"role": "user", "content": [PARTS["image_url"]]}])
    assert error.param == "messages[0].content[0]" and error.code == "unsupported_content"


def test_tool_mode_refuses_an_image_as_well(client, emulator):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="p/primary",
            messages=[{"role": "user", "content": [{"type": "text", "text": "Look:"}, PARTS["image_url"]]}],
            tools=[{"type": "fusion"}],
            extra_body=OURS,
        )
    assert caught.value.param == "messages[0].content[1]" and emulator.chats() == []


def test_text_parts_are_passed_on(client, emulator):
    question = [{"type": "text", "text": "Shard"}, {"type": "text", "text": "or replicate?"}]
    reply = ask(client, messages=[{"role": "user", "content": question}])
    assert reply.choices[0].message.content
    assert reply.model_extra["fusion"]["prompt"] == "Shard\nor replicate?"
    assert len(emulator.chats()) == len(PANEL) + 1


@pytest.mark.parametrize(
    ("content", "param", "words"),
    [
        ({"text": "a dict, not a list"}, "messages[0].content", "must be a string or a list of content parts"),
        (["bare string part"], "messages[0].content[0]", 'a content part must be an object with a "type"'),
        ([{"text": "no type"}], "messages[0].content[0]", 'a content part must be an object with a "type"'),
        ([{"type": "text", "text": 42}], "messages[0].content[0].text", "a text part needs a string `text`"),
    ],
)
def test_malformed_content_is_a_400_naming_the_field(server, emulator, content, param, words):
    body = {"model": "fusion", "messages": [{"role": "user", "content": content}]}
    resp = httpx.post(server.url + "/chat/completions", json=body, timeout=30)
    error = resp.json()["error"]
    assert resp.status_code == 400 and error["param"] == param and words in error["message"]
    assert emulator.chats() == []


# -- n ----------------------------------------------------------------------------------------------


def test_n_above_one_is_refused(client, emulator):
    error = refused(client, n=2)
    assert error.code == "unsupported_value" and error.param == "n" and "one answer" in error.message
    error = refused(client, n=3, stream=True)  # refused before the stream starts: a plain 400
    assert error.code == "unsupported_value"
    assert emulator.chats() == []


@pytest.mark.parametrize(("n", "code"), [(0, "integer_below_min_value"), ("2", "invalid_type"), (1.5, "invalid_type")])
def test_a_bad_n_is_refused(server, emulator, n, code):
    body = {"model": "fusion", "n": n, "messages": [{"role": "user", "content": "Shard?"}]}
    resp = httpx.post(server.url + "/chat/completions", json=body, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == code and resp.json()["error"]["param"] == "n"


def test_n_of_one_is_answered(client):
    reply = ask(client, n=1)
    assert len(reply.choices) == 1 and reply.choices[0].message.content


# -- the usage chunk --------------------------------------------------------------------------------


def test_the_documented_loop_works_without_include_usage(client, emulator):
    stream = ask(client, stream=True)
    text = ""
    chunks = []
    for chunk in stream:  # OpenAI's documented loop: every chunk has a choice
        text += chunk.choices[0].delta.content or ""
        chunks.append(chunk)
    assert all(c.usage is None for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    fusion = last.model_extra["fusion"]  # the full result rides on the last chunk
    assert text == fusion["answer"] and fusion["status"] == "ok"


@pytest.mark.parametrize("options", [None, {}, {"include_usage": False}])
def test_no_empty_choices_chunk_unless_asked(server, emulator, options):
    body = {"model": "fusion", "stream": True, "messages": [{"role": "user", "content": "Shard?"}], **OURS}
    if options is not None:
        body["stream_options"] = options
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=30) as resp:
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks and all(len(c["choices"]) == 1 for c in chunks)
    assert all("usage" not in c for c in chunks)


def test_include_usage_ends_with_the_usage_chunk(client, emulator):
    chunks = list(ask(client, stream=True, stream_options={"include_usage": True}))
    *body, last = chunks
    assert last.choices == [] and last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.usage.model_extra["cost"] == pytest.approx(emulator.total_cost)
    assert all(len(c.choices) == 1 and c.usage is None for c in body)
    assert body[-1].choices[0].finish_reason == "stop" and "fusion" in last.model_extra


def test_include_usage_chunks_carry_usage_null_on_the_wire(server, emulator):
    body = {
        "model": "fusion",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Shard?"}],
        **OURS,
    }
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=30) as resp:
        chunks = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    *rest, last = chunks
    assert all(c["usage"] is None and len(c["choices"]) == 1 for c in rest)
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0


def test_the_async_loop_works_without_include_usage(server, emulator):
    async def go():
        async with openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0) as aclient:
            stream = await aclient.chat.completions.create(
                model="fusion", messages=[{"role": "user", "content": "Async?"}], stream=True, extra_body=OURS
            )
            return [chunk.choices[0].delta.content or "" async for chunk in stream]

    assert "".join(asyncio.run(go()))


@pytest.mark.parametrize(
    ("options", "param"), [("yes", "stream_options"), ({"include_usage": "true"}, "stream_options.include_usage")]
)
def test_malformed_stream_options_are_refused(server, emulator, options, param):
    body = {
        "model": "fusion",
        "stream": True,
        "stream_options": options,
        "messages": [{"role": "user", "content": "?"}],
    }
    resp = httpx.post(server.url + "/chat/completions", json=body, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == param
    assert emulator.chats() == []


def test_stream_options_without_stream_change_nothing(client):
    reply = ask(client, stream_options={"include_usage": True})  # lenient: ignored outside a stream
    assert reply.object == "chat.completion" and reply.usage.total_tokens > 0


# -- what nothing would honour ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": {"type": "object"}}}},
            "response_format",
        ),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
    ],
)
def test_formats_and_logprobs_it_cannot_give_are_refused(client, emulator, extra, param):
    error = refused(client, **extra)
    assert error.code == "unsupported_value" and error.param == param
    assert emulator.chats() == []


def test_text_response_format_and_no_logprobs_are_fine(client):
    reply = ask(client, response_format={"type": "text"}, logprobs=False)
    assert reply.choices[0].message.content and reply.choices[0].logprobs is None


@pytest.mark.parametrize("options", [None, {"include_usage": True}])
def test_the_sdks_stream_helper_assembles_the_completion(client, options):
    kw = {"stream_options": options} if options else {}
    messages = [{"role": "user", "content": "Shard?"}]
    with client.chat.completions.stream(model="fusion", messages=messages, extra_body=OURS, **kw) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content == "".join(deltas)
    assert (final.usage is not None) == bool(options)
