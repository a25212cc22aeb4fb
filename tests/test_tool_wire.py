"""Reading tool calls off the wire: recorded bodies, and stream shapes we did not produce.

Streamed tool calls arrive as `delta.tool_calls[]` fragments keyed by `index` (OpenAI's API reference,
"Chat Completions > The chat completion chunk object": `tool_calls[].index`, `id`, `function.name`,
`function.arguments` fragments). Some providers behind OpenAI-compatible servers differ: no `index`,
an index reused for each new call under a new id, the name repeated in every fragment, or the
arguments sent as an object; each is read as the calls the model meant.
"""

from __future__ import annotations

import json
from pathlib import Path

from fusion_magic._engine.wire import _Stream, read_body

FIXTURES = Path(__file__).parent / "fixtures" / "tool_calls"


def _stream(*deltas: dict) -> list[dict]:
    stream = _Stream("m/x", None, None)
    for delta in deltas:
        stream.take(json.dumps({"id": "gen-1", "choices": [{"index": 0, "delta": delta}]}))
    return stream.completion().tool_calls


def _call(index: int | None = None, id: str | None = None, name: str | None = None, args=None) -> dict:
    fn = {k: v for k, v in (("name", name), ("arguments", args)) if v is not None}
    call = {"type": "function", "function": fn}
    if index is not None:
        call["index"] = index
    if id is not None:
        call["id"] = id
    return {"tool_calls": [call]}


def test_recorded_streamed_tool_call():
    stream = _Stream("openai/gpt-4.1-mini", None, None)
    for line in (FIXTURES / "or_stream_tool_call.sse").read_text().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            stream.take(line[6:])
    done = stream.completion()
    assert done.tool_calls == [{"id": "call_o4OCgtJrNoZTmoCRvmlfoHfj", "name": "llm_version", "arguments": "{}"}]
    assert done.finish_reason == "tool_calls" and done.cost_usd is not None


def test_recorded_non_streamed_tool_call_mistral():
    done = read_body((FIXTURES / "or_chat_tool_call_mistral.json").read_text(), "mistralai/mistral-small")
    [call] = done.tool_calls
    assert call["id"] == "3sniiMddS" and call["name"] == "divide"
    assert json.loads(call["arguments"]) == {"numerator": 123, "denominator": 456, "on_inf": "infinity"}


def test_server_tools_bring_back_no_function_calls():
    done = read_body((FIXTURES / "or_chat_server_tool_web_search.json").read_text(), "m/x")
    assert done.tool_calls == [] and done.content


def test_parallel_calls_interleaved_by_index():
    calls = _stream(
        _call(0, "call_a", "sql", ""),
        _call(1, "call_b", "python", ""),
        _call(0, args='{"query": "SEL'),
        _call(1, args='{"code": "1+1"}'),
        _call(0, args='ECT 1"}'),
    )
    assert calls == [
        {"id": "call_a", "name": "sql", "arguments": '{"query": "SELECT 1"}'},
        {"id": "call_b", "name": "python", "arguments": '{"code": "1+1"}'},
    ]


def test_an_index_reused_under_a_new_id_is_a_new_call():
    calls = _stream(_call(0, "c1", "sql", '{"query": "a"}'), _call(0, "c2", "sql", '{"query": "b"}'))
    assert [(c["id"], c["arguments"]) for c in calls] == [("c1", '{"query": "a"}'), ("c2", '{"query": "b"}')]


def test_calls_without_an_index():
    calls = _stream(
        _call(None, "c1", "sql", '{"query":'), _call(None, None, None, ' "a"}'), _call(None, "c2", "fetch", "{}")
    )
    assert calls == [
        {"id": "c1", "name": "sql", "arguments": '{"query": "a"}'},
        {"id": "c2", "name": "fetch", "arguments": "{}"},
    ]


def test_a_name_repeated_in_every_fragment_is_not_doubled_and_object_arguments_become_json():
    calls = _stream(_call(0, "c1", "sql", ""), _call(0, None, "sql", {"query": "a"}))
    assert calls == [{"id": "c1", "name": "sql", "arguments": '{"query": "a"}'}]


def test_non_streamed_object_arguments_become_json_text():
    body = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [{"id": "x", "function": {"name": "sql", "arguments": {"q": 1}}}],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    [call] = read_body(json.dumps(body), "m/x").tool_calls
    assert json.loads(call["arguments"]) == {"q": 1}
