"""The member tool loop (OpenAI function calling): ask, run the tools it calls, give it the results, repeat.

Each step is one `fusion_magic._engine.panel.ask` call, so each step is cached, retried and falls back like
any answer; its cache key is the conversation so far (tool results included), the tools' specs and
their identities (a changed frame never replays an old step). What the tools returned is cached too,
under the step that asked for it: a re-run replays the whole loop from the cache with no request
and no tool run. The calls are bounded by the toolset's ``max_calls``; past the bound the model is
asked to answer with ``tool_choice: "none"``. Calls of one step run in order, one at a time (the
trace reads in the order the model wrote them; the live view names the one running).

A member's `Response` is its last step's answer with every step's tokens, cost and saved cost
summed, its tool calls in order (`Response.tool_calls`, outputs capped) and its web sources.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from .._base.config import Member
from .._tools.base import MAX_OUTPUT_CHARS, ToolError
from .._values.result import Response, ToolCall
from .cache import cache_key
from .client import Billing, Completion
from .context import RunContext
from .panel import ask
from .toolset import Toolset, first_step

__all__ = ["ask_member", "cap", "run_call"]

_NOTE_LEN = 60  # a tool's arguments in the live view


async def ask_member(
    ctx: RunContext,
    member: Member,
    messages: list[dict[str, Any]],
    *,
    deadline: float | None = None,
    billing: Billing | None = None,
) -> tuple[Response, Completion | None]:
    """One panel member's answer: with the context's tools, through the loop; else one `ask`.

    ``billing`` collects, as each step ends, what the finished steps cost, so a member cancelled
    mid-loop (its deadline, a quorum, an interrupt) still counts what it spent.
    """
    toolset = ctx.tools
    if not toolset:
        return await ask(ctx, member, messages, deadline=deadline, billing=billing)
    return await _loop(ctx, member, list(messages), toolset, deadline, billing if billing is not None else Billing())


async def _loop(
    ctx: RunContext,
    member: Member,
    convo: list[dict[str, Any]],
    toolset: Toolset,
    deadline: float | None,
    spent: Billing,
) -> tuple[Response, Completion | None]:
    key = member.name
    params, salt = first_step(toolset)
    started = time.perf_counter()
    steps: list[Response] = []
    trace: list[ToolCall] = []
    used = 0
    # The bound: max_calls calls, then one answer without tools; a model that keeps calling past
    # "none" gets its calls refused once more, then ends with what it wrote.
    for step in range(toolset.max_calls + 2):
        if used >= toolset.max_calls and toolset.tools:
            params["tool_choice"] = "none"  # the bound: answer with what the tools gave
        step_bill = Billing()  # what this step's failed attempts cost: lost with it if it is cancelled
        try:
            response, done = await ask(
                ctx, member, convo, deadline=deadline, billing=step_bill, note_done=False, key_extra=salt, **params
            )
        except asyncio.CancelledError:
            spent.add(step_bill.cost_usd, step_bill.prompt_tokens, step_bill.completion_tokens)
            raise
        steps.append(response)
        calls = _function_calls(done)
        if not response.ok or not calls or step == toolset.max_calls + 1:
            break
        spent.add(response.cost_usd, response.prompt_tokens, response.completion_tokens)
        turn = _assistant_turn(response.content, calls, step)
        results, ran = await _results(ctx, key, toolset, turn, used, response.cached)
        used += ran
        trace.extend(results)
        convo = [*convo, turn, *_tool_turns(turn, results)]
    final = _merged(member.name, steps, trace)
    if final.ok and not final.content.strip() and _function_calls(done):
        final.status, final.error = "failed", f"{member.name}: kept calling tools past max_tool_calls without answering"
        ctx.note(key, state="failed", note=final.error)
    if len(steps) > 1:
        spent.onto(final)  # the earlier steps, counted once: the last step's own figures are in it
        if not final.cached:
            final.latency_s = round(time.perf_counter() - started, 4)
    _note_end(ctx, key, final)
    return final, done


def _function_calls(done: Completion | None) -> list[dict[str, Any]]:
    "The function calls of a step (server tools never appear: the server ran them)."
    return [c for c in (done.tool_calls if done is not None else []) if isinstance(c, dict) and c.get("name")]


def _assistant_turn(content: str, calls: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """The assistant message that asked for ``calls``, as the next request repeats it.

    A call without an id (some servers omit it) gets one from its place, so the key stays stable.
    """
    turn: dict[str, Any] = {"role": "assistant"}
    if content:
        turn["content"] = content
    turn["tool_calls"] = [
        {
            "id": c.get("id") or f"call_{step}_{i}",
            "type": "function",
            "function": {"name": str(c["name"]), "arguments": _text(c.get("arguments"))},
        }
        for i, c in enumerate(calls)
    ]
    return turn


def _text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def _tool_turns(turn: dict[str, Any], results: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [
        {"role": "tool", "tool_call_id": call["id"], "content": result.output}
        for call, result in zip(turn["tool_calls"], results, strict=True)
    ]


async def _results(
    ctx: RunContext, key: str, toolset: Toolset, turn: dict[str, Any], used: int, replay: bool
) -> tuple[list[ToolCall], int]:
    """What each call of ``turn`` returned, and how many ran. A step replayed from the cache gives
    back what its tools returned then (stored under the step); otherwise they run now, in order."""
    rkey = _results_key(ctx, key, toolset, turn)
    if replay and ctx.cache is not None and not ctx.refresh:
        stored = ctx.cache.get(rkey, hit=False)
        if stored is not None and len(stored.get("results") or []) == len(turn["tool_calls"]):
            kept = [ToolCall(**r) for r in stored["results"]]
            return kept, sum(r.error != _OVER_BOUND for r in kept)
    results: list[ToolCall] = []
    for call in turn["tool_calls"]:
        fn = call["function"]
        if used >= toolset.max_calls:
            results.append(ToolCall(fn["name"], fn["arguments"], f"Error: {_OVER_BOUND}", _OVER_BOUND, 0.0))
            continue
        used += 1
        ctx.note(key, state="tool", note=f"{fn['name']} ({used}/{toolset.max_calls})", chars=0, chunks=0)
        results.append(_scrubbed(await run_call(toolset, fn["name"], fn["arguments"]), ctx.client.secrets()))
    if ctx.cache is not None:
        record = {"content": "", "results": [vars(r) for r in results], "created_at": time.time()}
        ctx.cache.put(rkey, record, secrets=ctx.client.secrets())
    return results, sum(r.error != _OVER_BOUND for r in results)


def _scrubbed(call: ToolCall, secrets: tuple[str, ...]) -> ToolCall:
    "``call`` with the API key removed from what it returned: never shown to a model, stored or judged."
    for secret in (s for s in secrets if s):
        call.output = call.output.replace(secret, "***")
        call.error = call.error.replace(secret, "***") if call.error else call.error
    return call


_OVER_BOUND = "not run: the tool-call budget (max_tool_calls) is spent; answer with what you have"


def _results_key(ctx: RunContext, key: str, toolset: Toolset, turn: dict[str, Any]) -> str:
    "Where the results of ``turn``'s calls are kept: the calls themselves and the tools' identities."
    return cache_key("tool-results:" + ctx.endpoint.cache_base, key, [turn], {"_tools": toolset.identity()})


async def run_call(toolset: Toolset, name: str, arguments: str) -> ToolCall:
    """Run one call; every failure (unknown tool, arguments that are not a JSON object, a refusal,
    a crash) becomes an error the model reads as the tool's result, and the member goes on."""
    started = time.perf_counter()
    tool = toolset.find(name)
    error: str | None = None
    output = ""
    try:
        if tool is None:
            raise ToolError(f"no tool named {name!r}; the tools are: {', '.join(t.name for t in toolset.tools)}")
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise ToolError(f"the arguments are not valid JSON ({exc}); send a JSON object") from None
        if not isinstance(args, dict):
            raise ToolError(f"the arguments must be a JSON object, got {type(args).__name__}")
        output = cap(str(await tool.run(args)))
    except ToolError as exc:
        error = cap(str(exc) or type(exc).__name__)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a defect in a tool is the model's tool result, not a crash
        error = cap(f"the tool failed: {type(exc).__name__}: {exc}")
    if error is not None:
        output = f"Error: {error}"
    return ToolCall(name, arguments, output, error, round(time.perf_counter() - started, 4))


def cap(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    "``text`` cut to ``limit`` characters, saying so."
    if len(text) <= limit:
        return text
    note = f"\n… (cut: {len(text):,} characters, {limit:,} shown)"
    return text[: limit - len(note)] + note


def _merged(name: str, steps: list[Response], trace: list[ToolCall]) -> Response:
    "The member's answer: its last step, with the earlier steps' saved cost and the whole trace."
    final = steps[-1]
    final.model = name
    final.saved_usd = sum(s.saved_usd for s in steps)
    final.cached = all(s.cached for s in steps)
    final.tool_calls = trace
    sources = {s["url"]: s for r in steps for s in r.sources if s.get("url")}
    final.sources = list(sources.values())
    firsts = [s.first_latency_s for s in steps if s.first_latency_s is not None]
    final.first_latency_s = sum(firsts) if firsts else None  # a replay: what the steps took when paid for
    return final


def _note_end(ctx: RunContext, key: str, response: Response) -> None:
    if response.ok and response.cached:
        ctx.note(key, state="cached", latency_s=0.0, tokens=response.completion_tokens, note="")
    elif response.ok:
        ctx.note(
            key,
            state="done",
            latency_s=response.latency_s,
            cost_usd=response.cost_usd,
            tokens=response.completion_tokens,
            note="",
        )
