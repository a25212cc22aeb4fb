"""The member tool loop against the emulator: calls, results, the bound, the cache, costs, failures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fusion_magic import Fusion
from fusion_magic._tools.base import Tool, ToolError
from fusion_magic.emulator import Reply

FIXTURES = Path(__file__).parent / "fixtures" / "tool_calls"
SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
QUERY = "SELECT sum(amount) AS total FROM sales"


def sql_like(output: str = "total\n1234.5", *, runs: list | None = None, identity: str = "frames-v1", **kw) -> Tool:
    "A stand-in for the `sql` tool: records each run's arguments, returns ``output``."

    async def run(args: dict) -> str:
        if runs is not None:
            runs.append(args)
        if kw.get("delay"):
            await asyncio.sleep(kw["delay"])
        return output

    return Tool("sql", "Run one read-only SQL query over the user's tables.", SCHEMA, run, identity)


def sql_member(*rounds: str, answer: str = "The total is {number}.") -> Reply:
    "A member that runs each query in turn, then answers quoting the first number of the last result."
    return Reply(tool_rounds=[[{"name": "sql", "arguments": {"query": q}}] for q in rounds], content=answer)


def fusion(tools, **kw) -> Fusion:
    kw.setdefault("panel", ["a/alpha", "b/beta"])
    kw.setdefault("judge", "j/judge")
    return Fusion(tools=tools, **kw)


def test_a_member_calls_the_tool_reads_its_result_and_answers_with_it(emulator):
    runs: list = []
    emulator.script("a/alpha", sql_member(QUERY))
    result = fusion([sql_like(runs=runs)]).run("What is the total of sales?")
    alpha = result.responses[0]
    assert alpha.content == "The total is 1234.5."
    assert runs == [{"query": QUERY}]
    [call] = alpha.tool_calls
    assert (call.name, json.loads(call.arguments), call.output, call.error) == (
        "sql",
        {"query": QUERY},
        "total\n1234.5",
        None,
    )
    assert call.elapsed_s is not None and call.elapsed_s >= 0
    first, second = emulator.chats("a/alpha")
    assert first.body["tools"][0]["function"]["name"] == "sql" and first.body["tool_choice"] == "auto"
    # The second request repeats the assistant's call and gives its result, as OpenAI's API wants it.
    assistant, tool = second.body["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["function"]["name"] == "sql"
    assert tool == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": "total\n1234.5"}
    # The judge gets no tools; it sees the member's trace next to its answer.
    [judge] = emulator.chats("j/judge")
    assert "tools" not in judge.body
    user = judge.body["messages"][-1]["content"]
    assert '<tools member="A">' in user and QUERY in user and "1234.5" in user
    assert "tools" not in json.dumps(emulator.chats("b/beta")[0].body["messages"])


def test_every_step_is_paid_for_in_the_member_the_result_and_the_ledger(emulator):
    from fusion_magic import ledger

    emulator.script("a/alpha", sql_member(QUERY, "SELECT 2"))
    result = fusion([sql_like()]).run("Q?")
    alpha = result.responses[0]
    charged = sum(cost for model, cost in emulator.charges if model == "a/alpha")
    assert len(emulator.chats("a/alpha")) == 3
    assert alpha.cost_usd == pytest.approx(charged)
    usage = [r.body for r in emulator.chats("a/alpha")]
    assert alpha.prompt_tokens > 0 and len(usage) == 3
    assert result.cost_usd == pytest.approx(sum(c for _, c in emulator.charges))
    totals = ledger().totals()
    assert totals["cost_usd"] == pytest.approx(result.cost_usd)
    assert totals["prompt_tokens"] == result.usage["prompt_tokens"]
    assert result.estimate_floor is True  # tools may run: the estimate is a lower bound


def test_a_rerun_replays_the_whole_loop_from_the_cache_without_requests_or_tool_runs(emulator):
    runs: list = []
    emulator.script("a/alpha", sql_member(QUERY, "SELECT 2"))
    first = fusion([sql_like(runs=runs)]).run("Q?")
    sent, ran = len(emulator.requests), len(runs)
    again = fusion([sql_like(runs=runs)]).run("Q?")
    assert len(emulator.requests) == sent and len(runs) == ran  # 0 requests, 0 tool runs
    alpha = again.responses[0]
    assert alpha.cached and alpha.cost_usd == 0
    assert alpha.saved_usd == pytest.approx(first.responses[0].cost_usd)
    assert [vars(c) for c in alpha.tool_calls] == [vars(c) for c in first.responses[0].tool_calls]
    assert alpha.content == first.responses[0].content


def test_changed_data_is_a_cache_miss(emulator):
    emulator.script("a/alpha", sql_member(QUERY))
    fusion([sql_like(identity="v1")]).run("Q?")
    sent = len(emulator.requests)
    fusion([sql_like("total\n99", identity="v2")]).run("Q?")
    assert len(emulator.requests) > sent


def test_the_bound_asks_for_an_answer_without_tools(emulator):
    runs: list = []
    emulator.script("a/alpha", sql_member("SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"))
    result = fusion([sql_like(runs=runs)], max_tool_calls=2).run("Q?")
    assert [r["query"] for r in runs] == ["SELECT 1", "SELECT 2"]
    chats = emulator.chats("a/alpha")
    assert [c.body.get("tool_choice") for c in chats] == ["auto", "auto", "none"]
    assert result.responses[0].ok and len(result.responses[0].tool_calls) == 2


def test_calls_past_the_bound_in_one_step_are_refused_each_with_a_result(emulator):
    runs: list = []
    calls = [{"name": "sql", "arguments": {"query": f"SELECT {i}"}} for i in range(3)]
    emulator.script("a/alpha", Reply(tool_rounds=[calls], content="Done: {result}"))
    result = fusion([sql_like(runs=runs)], max_tool_calls=2).run("Q?")
    assert len(runs) == 2
    trace = result.responses[0].tool_calls
    assert [c.error is None for c in trace] == [True, True, False]
    assert "max_tool_calls" in trace[2].error
    # Every call got a tool message (OpenAI refuses a conversation that leaves one unanswered).
    last = emulator.chats("a/alpha")[-1].body["messages"]
    assert sum(m["role"] == "tool" for m in last) == 3


@pytest.mark.parametrize(
    ("arguments", "words"), [('{"query": "SELECT 1"', "not valid JSON"), ("[1, 2]", "must be a JSON object")]
)
def test_malformed_arguments_become_a_tool_error_the_model_sees(emulator, arguments, words):
    runs: list = []
    emulator.script("a/alpha", Reply(tool_rounds=[[{"name": "sql", "arguments": arguments}]], content="Saw: {result}"))
    result = fusion([sql_like(runs=runs)]).run("Q?")
    assert runs == []
    [call] = result.responses[0].tool_calls
    assert words in call.error and call.output.startswith("Error:")
    assert result.responses[0].ok and words in result.responses[0].content  # the model read the error


def test_refusals_crashes_and_unknown_tools_are_tool_errors_and_the_member_goes_on(emulator):
    async def refuse(args: dict) -> str:
        raise ToolError("Permission Error: file system access is disabled")

    async def crash(args: dict) -> str:
        raise RuntimeError("boom")

    tools = [Tool("sql", "q", SCHEMA, refuse), Tool("calc", "c", SCHEMA, crash)]
    rounds = [[{"name": "sql", "arguments": {"query": "COPY t TO '/tmp/x'"}}], [{"name": "calc", "arguments": {}}]]
    rounds.append([{"name": "shell", "arguments": {"cmd": "ls"}}])
    emulator.script("a/alpha", Reply(tool_rounds=rounds, content="Answer anyway."))
    result = fusion(tools).run("Q?")
    alpha = result.responses[0]
    assert alpha.ok and alpha.content == "Answer anyway."
    errors = [c.error for c in alpha.tool_calls]
    assert "file system access is disabled" in errors[0]
    assert "RuntimeError: boom" in errors[1]
    assert "no tool named 'shell'" in errors[2]


def test_non_streamed_tool_calls_work_the_same(emulator):
    emulator.script("a/alpha", sql_member(QUERY))
    result = fusion([sql_like()], stream=False).run("Q?")
    assert result.responses[0].content == "The total is 1234.5." and not emulator.chats("a/alpha")[0].body.get("stream")


def test_tool_output_is_capped(emulator):
    emulator.script("a/alpha", sql_member(QUERY, answer="ok"))
    result = fusion([sql_like("x" * 50_000)]).run("Q?")
    [call] = result.responses[0].tool_calls
    assert len(call.output) <= 8_000 and "cut: 50,000 characters" in call.output
    sent = emulator.chats("a/alpha")[1].body["messages"][-1]["content"]
    assert sent == call.output


def test_a_tool_past_the_deadline_times_the_member_out_and_counts_what_it_spent(emulator):
    emulator.script("a/alpha", sql_member(QUERY))
    result = fusion([sql_like(delay=5)], timeout=1).run("Q?")
    alpha = result.responses[0]
    assert alpha.status == "timed_out"
    paid = sum(cost for model, cost in emulator.charges if model == "a/alpha")
    assert paid > 0 and alpha.cost_usd == pytest.approx(paid)  # the first step was billed


def test_the_live_view_names_the_tool_running_and_the_calls_used(emulator):
    seen: list[str] = []
    emulator.script("a/alpha", sql_member(QUERY))
    f = fusion([sql_like(delay=0.6)])

    def tick(tracker) -> None:
        seen.extend(s.status_text() for s in tracker.snapshot() if s.state == "tool")

    f.run("Q?", on_tick=tick)
    assert "sql (1/4)" in seen


def test_recorded_openrouter_tool_call_then_answer(emulator):
    "OpenRouter's own bytes for both steps; our second request repeats the call as the recorded client did."
    emulator.script(
        "openai/gpt-4.1-mini",
        Reply(raw=(FIXTURES / "or_stream_tool_call.sse").read_bytes()),
        Reply(raw=(FIXTURES / "or_stream_after_tool_result.sse").read_bytes()),
    )

    async def version(args: dict) -> str:
        return "0.0+test"

    tool = Tool("llm_version", "Return the installed version of llm", {"properties": {}, "type": "object"}, version)
    result = fusion([tool], panel=["openai/gpt-4.1-mini"]).run("What is the current llm version?")
    member = result.responses[0]
    assert member.ok and "0.0+test" in member.content
    assert member.cost_usd == pytest.approx(sum(c for m, c in emulator.charges if m == "openai/gpt-4.1-mini"))
    recorded = json.loads((FIXTURES / "or_stream_after_tool_result.request.json").read_text())["body"]
    sent = emulator.chats("openai/gpt-4.1-mini")[1].body
    assert sent["messages"] == recorded["messages"]
    assert sent["tools"] == recorded["tools"]


def test_a_member_without_tool_calls_answers_in_one_step(emulator):
    result = fusion([sql_like()]).run("Q?")
    assert all(r.ok and r.tool_calls == [] for r in result.responses)
    assert len(emulator.chats("a/alpha")) == 1


def test_tool_calls_survive_save_and_load(emulator, tmp_path):
    from fusion_magic import FusionResult

    emulator.script("a/alpha", sql_member(QUERY))
    result = fusion([sql_like()]).run("Q?")
    back = FusionResult.load(result.save(tmp_path / "r.json"))
    assert back.responses[0].tool_calls == result.responses[0].tool_calls
    assert back.estimate_floor == result.estimate_floor
    frame = result.to_frame()
    assert frame.loc[0, "tool_calls"][0]["output"] == "total\n1234.5" and frame.loc[1, "tool_calls"] == []


def test_the_api_key_in_a_tool_output_never_reaches_a_model_the_record_or_the_cache(emulator):
    key = "sk-or-v1-" + "k" * 40
    emulator.script("a/alpha", sql_member(QUERY, answer="Saw: {result}"))
    result = fusion([sql_like(f"leaked {key} here")], api_key=key).run("Q?")
    [call] = result.responses[0].tool_calls
    assert call.output == "leaked *** here"
    assert key not in json.dumps([r.body for r in emulator.chats()])
    assert key not in result.to_json()


def test_the_budget_estimate_is_a_lower_bound_when_members_have_tools(emulator):
    from fusion_magic._base.errors import BudgetError

    for model in ("a/alpha", "j/judge"):
        emulator.models[model] = {"prompt": "0.01", "completion": "0.02"}
    with pytest.raises(BudgetError, match=r"estimated cost at least \$[0-9.]+ exceeds --max-cost"):
        fusion([sql_like()], panel=["a/alpha"], max_cost=0.001).run("An expensive question")
    with pytest.raises(BudgetError, match=r"estimated cost \$"):
        Fusion(panel=["a/alpha"], judge="j/judge", max_cost=0.001).run("An expensive question")
    assert emulator.chats() == []


def test_a_model_that_ignores_tool_choice_none_is_stopped_and_says_why(emulator):
    runs: list = []
    # Reply.tool_calls: it calls on every request, whatever the request allows.
    emulator.script("a/alpha", Reply(tool_calls=[{"name": "sql", "arguments": {"query": "SELECT 1"}}]))
    result = fusion([sql_like(runs=runs)], max_tool_calls=2).run("Q?")
    alpha = result.responses[0]
    assert len(runs) == 2 and len(emulator.chats("a/alpha")) == 4  # 2 calls, the "none" step, one more
    assert alpha.status == "failed" and "kept calling tools past max_tool_calls" in alpha.error
    assert [c.error is None for c in alpha.tool_calls] == [True, True, False]
    assert alpha.cost_usd == pytest.approx(sum(c for m, c in emulator.charges if m == "a/alpha"))
    assert result.status == "partial"
