"""The panel tools themselves: `sql` on a 1-million-row frame, and the `python` sandbox's start.

    python bench/tools.py [--runs 7] [--rows 1000000]

1. `sql`: building the tool over a 1M-row frame (the description's DESCRIBE/count/sample and the data
   fingerprint), the fixed cost of a call (`SELECT 1`: a new locked connection with the frame
   registered), a GROUP BY over all rows, and a filtered top-10.
2. `python`: the time from a call to its result for trivial code (`1 + 1`), i.e. the sandbox's
   start: cold (a new bubblewrap sandbox and interpreter, no frame), cold with a frame (pandas is
   imported and the frame unpickled inside), and warm (the ready sandbox the tool keeps, which is
   the case of every call but a burst's first). Target: under 300 ms for a call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np
import pandas as pd

from fusion_magic._tools import sandbox
from fusion_magic._tools.python import python_tool
from fusion_magic._tools.sql import sql_tool


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "region": rng.choice(["EMEA", "AMER", "APAC", "LATAM"], rows),
            "product": rng.integers(0, 500, rows),
            "amount": rng.gamma(2.0, 50.0, rows).round(2),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D"),
        }
    )


def timed(fn, runs: int) -> tuple[float, float]:
    "Median and min in ms of ``runs`` calls of ``fn``."
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        walls.append((time.perf_counter() - started) * 1000)
    return statistics.median(walls), min(walls)


def bench_sql(rows: int, runs: int) -> None:
    sales = frame(rows)
    started = time.perf_counter()
    tool = sql_tool({"sales": sales})
    build = (time.perf_counter() - started) * 1000
    print(f"sql over a {rows:,}-row frame ({runs} runs each)")
    print(f"{'step':<44}{'median':>10}{'min':>10}")
    print(f"{'build the tool (describe + fingerprint)':<44}{build:>8.1f}ms{'':>10}")
    queries = {
        "SELECT 1 (connection + registration)": "SELECT 1",
        "GROUP BY region, all rows": "SELECT region, count(*), sum(amount), avg(amount) FROM sales GROUP BY 1",
        "filter + top 10": "SELECT product, sum(amount) s FROM sales WHERE region='EMEA' "
        "GROUP BY 1 ORDER BY s DESC LIMIT 10",
    }
    for name, query in queries.items():
        median, low = timed(lambda q=query: asyncio.run(tool.run({"query": q})), runs)
        print(f"{name:<44}{median:>8.1f}ms{low:>8.1f}ms")


def bench_python(runs: int) -> None:
    why = sandbox.unavailable()
    if why:
        print(f"python sandbox: skipped ({why})")
        return
    print(f"\npython sandbox: a call of `1 + 1`, {runs} runs each (target < 300 ms)")
    print(f"{'scenario':<44}{'median':>10}{'min':>10}  verdict")
    small = frame(1000)
    cases = [
        ("cold: new sandbox, no frame", python_tool({}, prewarm=False)),
        ("cold: new sandbox, a frame (pandas loads)", python_tool({"sales": small}, prewarm=False)),
    ]
    for name, tool in cases:
        median, low = timed(lambda t=tool: asyncio.run(t.run({"code": "1 + 1"})), runs)
        print(f"{name:<44}{median:>8.1f}ms{low:>8.1f}ms  {'ok' if median < 300 else 'over'}")
    warm = python_tool({"sales": small}, prewarm=True)
    walls = []
    for _ in range(runs):
        time.sleep(4)  # a member's next call comes after a model turn: the spare is ready by then
        started = time.perf_counter()
        asyncio.run(warm.run({"code": "1 + 1"}))
        walls.append((time.perf_counter() - started) * 1000)
    median = statistics.median(walls)
    name = "warm: the ready sandbox, a frame"
    print(f"{name:<44}{median:>8.1f}ms{min(walls):>8.1f}ms  {'ok' if median < 300 else 'over'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    bench_sql(args.rows, args.runs)
    bench_python(args.runs)


if __name__ == "__main__":
    main()
