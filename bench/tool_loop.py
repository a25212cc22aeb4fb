"""What the member tool loop adds per step, beyond the model's own time.

    python bench/tool_loop.py [--runs 7] [--calls 4]

One member calls a tool ``--calls`` times, one call per step, then answers: ``calls + 1`` requests,
each answered by the emulator (its own process) after 0.2 s. The tool itself returns at once, so
what is left beyond the ideal is the loop's own work per step: reading the tool call, running the
tool, building the next request, the cache writes of the step and of its results, the progress
notes. The ideal is measured in the same run: as many bare HTTP requests to a member with the same
latency, plus the judge. A member that answers at once is measured the same way; the difference of
the two overheads, divided by the calls, is the figure per tool step. The cache is on (each step is
written to SQLite, as in real use); every prompt is new, so nothing comes from it.
"""

from __future__ import annotations

import argparse
import time

import httpx
from _common import emulator_process, isolated_cache, median_ms, timed_request

from fusion_magic import Fusion
from fusion_magic._tools.base import Tool

STEP_S = 0.2  # the model's own time per step
JUDGE_S = 0.2
SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}


async def _instant(args: dict) -> str:
    return "total\n1234.5"


def run(runs: int, calls: int) -> dict[str, float]:
    "Median wall and ideal times of a run whose member makes ``calls`` tool calls (0: it only answers)."
    rounds = [[{"name": "sql", "arguments": {"query": f"SELECT {i}"}}] for i in range(calls)] or None
    script = {
        "bench/member": [{"latency": STEP_S, "tool_rounds": rounds, "content": "The total is {number}."}],
        "bench/bare": [{"latency": STEP_S}],
        "bench/judge": [{"latency": JUDGE_S}],
    }
    tool = Tool("sql", "Run one read-only SQL query.", SCHEMA, _instant, identity="bench")
    with emulator_process(script) as base_url, httpx.Client() as http:
        fusion = Fusion(
            panel=["bench/member"], judge="bench/judge", base_url=base_url, tools=[tool], max_tool_calls=max(calls, 1)
        )
        fusion.run("warm-up")  # connections, /models prices, imports
        walls, ideals = [], []
        for i in range(runs):
            started = time.perf_counter()
            result = fusion.run(f"benchmark question {i}")
            walls.append(time.perf_counter() - started)
            member = result.responses[0]
            assert member.ok and len(member.tool_calls) == calls, member.error
            ideal = sum(timed_request(base_url, "bench/bare", http) for _ in range(calls + 1))
            ideals.append(ideal + timed_request(base_url, "bench/judge", http))
    wall, ideal = median_ms(walls), median_ms(ideals)
    return {"wall_ms": wall, "ideal_ms": ideal, "overhead_ms": wall - ideal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=4)
    args = parser.parse_args()
    isolated_cache()
    plain, looped = run(args.runs, 0), run(args.runs, args.calls)
    # The run's own overhead (judge, result, ledger) is in both; what the tool steps add, per step:
    per_step = (looped["overhead_ms"] - plain["overhead_ms"]) / args.calls
    print(f"{'member':<22}{'ideal':>9}{'median':>9}{'overhead':>10}")
    for name, r in (("answers at once", plain), (f"{args.calls} tool calls", looped)):
        print(f"{name:<22}{r['ideal_ms']:>7.0f}ms{r['wall_ms']:>7.0f}ms{r['overhead_ms']:>8.1f}ms")
    print(f"per tool step: {per_step:.1f} ms (target under 5 ms: {'ok' if per_step < 5 else 'MISSED'})")


if __name__ == "__main__":
    main()
