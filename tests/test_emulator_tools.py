"""The emulator's scripted tool-calling members, on the wire (raw HTTP, no fusion_magic client)."""

from __future__ import annotations

import json

import httpx

from fusion_magic.emulator import Reply
from fusion_magic.emulator.tools import tool_round, with_results

TOOLS = [{"type": "function", "function": {"name": "sql", "parameters": {"type": "object"}}}]
ROUNDS = [[{"name": "sql", "arguments": {"query": "SELECT 1"}}, {"name": "sql", "arguments": {"query": "SELECT 2"}}]]


def _post(emulator, messages, **extra) -> dict:
    body = {"model": "a/x", "messages": messages, "tools": TOOLS, **extra}
    return httpx.post(emulator.base_url + "/chat/completions", json=body, timeout=10).json()


def test_a_member_asks_for_its_calls_then_answers_from_the_results(emulator):
    emulator.script("a/x", Reply(tool_rounds=ROUNDS, content="Total {number} from: {result}"))
    question = [{"role": "user", "content": "Total?"}]
    first = _post(emulator, question)["choices"][0]
    assert first["finish_reason"] == "tool_calls"
    calls = first["message"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"query": "SELECT 1"}, {"query": "SELECT 2"}]
    assert len({c["id"] for c in calls}) == 2
    turn = {"role": "assistant", "tool_calls": calls}
    results = [{"role": "tool", "tool_call_id": c["id"], "content": f"n | {40 + i}.5"} for i, c in enumerate(calls)]
    second = _post(emulator, [*question, turn, *results])["choices"][0]
    assert second["finish_reason"] == "stop"
    assert second["message"]["content"] == "Total 41.5 from: n | 41.5"


def test_no_tools_offered_or_tool_choice_none_means_it_answers_now(emulator):
    emulator.script("a/x", Reply(tool_rounds=ROUNDS, content="No tools: {number}"))
    question = [{"role": "user", "content": "Total?"}]
    done = _post(emulator, question, tool_choice="none")["choices"][0]
    assert done["finish_reason"] == "stop" and done["message"]["content"] == "No tools: ?"
    assert tool_round(ROUNDS, {"messages": question}) == []  # no `tools` in the request


def test_streamed_calls_come_as_deltas(emulator):
    emulator.script("a/x", Reply(tool_rounds=ROUNDS))
    body = {"model": "a/x", "messages": [{"role": "user", "content": "Q"}], "tools": TOOLS, "stream": True}
    text = httpx.post(emulator.base_url + "/chat/completions", json=body, timeout=10).text
    chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"].get("tool_calls") for c in chunks if c.get("choices")]
    assert sorted({d[0]["index"] for d in deltas if d}) == [0, 1]
    assert any(c["choices"][0].get("finish_reason") == "tool_calls" for c in chunks if c.get("choices"))


def test_a_default_answer_quotes_the_results_and_placeholders_need_results():
    body = {"messages": [{"role": "user", "content": "Q"}, {"role": "tool", "content": "revenue_2024 | 12.5"}]}
    assert with_results("{number} / {result}", body) == "12.5 / revenue_2024 | 12.5"  # not the 2024 in a name
    assert with_results("{number}", {"messages": [{"role": "user", "content": "Q"}]}) == "?"
