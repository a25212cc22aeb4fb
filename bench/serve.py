"""What `fusion-magic serve` adds over an in-process `Fusion.run` on the same panel.

    python bench/serve.py [--runs 15] [--clients 32]

The emulator and the server each run in their own process. Members answer after 0.1/0.2/0.3 s
and the judge after 0.1 s; the cache is off, so every run pays for every call. One client: the
median wall time of `Fusion.run` against the same deliberation through the server with the
OpenAI SDK (plain and streamed), runs interleaved so drift hits both alike. N clients: N
deliberations at once through the server (AsyncOpenAI) against N at once in-process
(`asyncio.gather` of `Fusion.arun`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import openai
from _common import ROOT, emulator_process, isolated_cache, median_ms

from fusion_magic import Fusion

PANEL = ["bench/m0", "bench/m1", "bench/m2"]
LATENCIES = [0.1, 0.2, 0.3]
JUDGE, JUDGE_LATENCY = "bench/judge", 0.1
OVERRIDES = {"fusion": {"panel": PANEL, "judge": JUDGE, "cache": False}}


@contextmanager
def server_process(base_url: str) -> Iterator[str]:
    "`fusion-magic serve --port 0` in its own process; yields its /v1 URL."
    env = {**os.environ, "FUSION_BASE_URL": base_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fusion_magic", "serve", "--port", "0", "--preset", "budget"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        line = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not line.startswith("serving on "):
            raise RuntimeError("the server did not start")
        yield line.removeprefix("serving on ")
    finally:
        proc.terminate()
        proc.wait(10)


def one_client(base_url: str, url: str, runs: int) -> dict[str, list[float]]:
    fusion = Fusion(panel=PANEL, judge=JUDGE, base_url=base_url, cache=False)
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": "warm-up"}]
    fusion.run("warm-up")
    client.chat.completions.create(model="fusion", messages=messages, extra_body=OVERRIDES)
    times: dict[str, list[float]] = {
        "in-process Fusion.run": [],
        "serve, OpenAI SDK": [],
        "serve, OpenAI SDK, stream": [],
    }
    for i in range(runs):
        question = [{"role": "user", "content": f"benchmark question {i}"}]
        started = time.perf_counter()
        assert fusion.run(f"benchmark question {i}").status == "ok"
        times["in-process Fusion.run"].append(time.perf_counter() - started)
        started = time.perf_counter()
        reply = client.chat.completions.create(model="fusion", messages=question, extra_body=OVERRIDES)
        times["serve, OpenAI SDK"].append(time.perf_counter() - started)
        assert reply.model_extra["fusion"]["status"] == "ok"
        started = time.perf_counter()
        chunks = list(
            client.chat.completions.create(model="fusion", messages=question, extra_body=OVERRIDES, stream=True)
        )
        times["serve, OpenAI SDK, stream"].append(time.perf_counter() - started)
        assert chunks[-1].model_extra["fusion"]["status"] == "ok"
    client.close()
    return times


async def many_clients(base_url: str, url: str, n: int) -> dict[str, tuple[float, list[float]]]:
    fusion = Fusion(panel=PANEL, judge=JUDGE, base_url=base_url, cache=False)

    async def timed(coro):
        started = time.perf_counter()
        await coro
        return time.perf_counter() - started

    out = {}
    await fusion.arun("warm-up")
    started = time.perf_counter()
    each = await asyncio.gather(*(timed(fusion.arun(f"in-process question {i}")) for i in range(n)))
    out["in-process, asyncio.gather"] = (time.perf_counter() - started, list(each))
    async with openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60) as client:

        def ask(i: int):
            return client.chat.completions.create(
                model="fusion", messages=[{"role": "user", "content": f"served question {i}"}], extra_body=OVERRIDES
            )

        await ask(-1)
        started = time.perf_counter()
        each = await asyncio.gather(*(timed(ask(i)) for i in range(n)))
        out["serve, AsyncOpenAI"] = (time.perf_counter() - started, list(each))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    isolated_cache()
    script = {m: [{"latency": s}] for m, s in zip(PANEL, LATENCIES, strict=True)}
    script[JUDGE] = [{"latency": JUDGE_LATENCY}]
    nominal = (max(LATENCIES) + JUDGE_LATENCY) * 1000
    with emulator_process(script) as base_url, server_process(base_url) as url:
        times = one_client(base_url, url, args.runs)
        crowd = asyncio.run(many_clients(base_url, url, args.clients))
    base = median_ms(times["in-process Fusion.run"])
    print(f"1 client, {args.runs} runs each (nominal {nominal:.0f} ms: slowest member + judge)")
    print(f"{'scenario':<28}{'median':>9}{'p90':>9}{'added':>9}  target")
    for name, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1] * 1000
        added = median_ms(values) - base
        verdict = "" if name.startswith("in-process") else ("<5ms ok" if added < 5 else "<5ms MISSED")
        print(f"{name:<28}{median_ms(values):>7.1f}ms{p90:>7.1f}ms{added:>7.1f}ms  {verdict}")
    print(f"\n{args.clients} clients at once, each one deliberation of {len(PANEL)} members + judge")
    print(f"{'scenario':<28}{'wall':>9}{'median':>9}{'max':>9}")
    for name, (wall, each) in crowd.items():
        print(f"{name:<28}{wall * 1000:>7.0f}ms{median_ms(each):>7.0f}ms{max(each) * 1000:>7.0f}ms")


if __name__ == "__main__":
    main()
