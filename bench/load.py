"""Reliability under load: a 200-prompt batch with 10% of replies failing with 429 or 500.

    python bench/load.py [--prompts 200] [--concurrency 32] [--error-rate 0.1] [--seed 7]

Three members answer after 0.2..0.6 s (seeded), the judge after 0.2 s; a seeded 10% of all
replies are a 429 (Retry-After 0.2 s) or a 500. The emulator runs in its own process and reports
what it served. Checked: every prompt has its row, in order, and any failure is marked with its
reason (a run with retries off shows some). The wall time is compared with the nominal ideal,
ceil(prompts / concurrency) x (slowest member + judge), and with a plain aiohttp gather of the
same requests (same concurrency, same simple retries) against an identically scripted emulator.
Then the batch runs twice with the cache on: the second run must ask only for what the first one
missed (nothing, when it got every answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from _common import ROOT, isolated_cache

from fusion_magic import Fusion

MEMBERS = ["load/m0", "load/m1", "load/m2"]
JUDGE = "load/judge"
MEMBER_LATENCY = (0.2, 0.6)
JUDGE_LATENCY = 0.2
RERUN_TARGET_S = 0.25  # a fully cached re-run of the batch is CPU only: parse, check, build, once each
Script = dict[str, list[dict[str, Any]]]  # model -> Reply fields, in the order requests arrive

# The emulator in a child process that answers "stats" on stdin with what it has served so far.
_SERVER = r"""
import json, sys
from collections import Counter
from fusion_magic.emulator import Emulator
emu = Emulator()
with open(sys.argv[1], encoding="utf-8") as f:
    for model, replies in json.load(f).items():
        emu.script(model, *replies)
emu.start()
print(emu.base_url, flush=True)
for _ in sys.stdin:
    chats = [r for r in list(emu.requests) if r.path.endswith("/chat/completions")]
    print(json.dumps({"requests": len(emu.requests), "chats": len(chats), "cost": emu.total_cost,
                      "status": dict(Counter(str(r.status) for r in chats))}), flush=True)
emu.stop()
"""


class Server:
    """A running emulator process: its base URL and a live count of what it served."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str) -> None:
        self.proc, self.base_url = proc, base_url

    def stats(self) -> dict[str, Any]:
        "Requests, chat requests by status and USD charged so far."
        self.proc.stdin.write("stats\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(self.proc.stdout.readline())  # type: ignore[union-attr]


@contextmanager
def counting_emulator(script: Script) -> Iterator[Server]:
    "An emulator in its own process (own GIL), scripted with ``script``, that can report its counts."
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(script, f)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, f.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        base_url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not base_url.startswith("http"):
            raise RuntimeError("the emulator did not start")
        yield Server(proc, base_url)
    finally:
        proc.stdin.close()  # type: ignore[union-attr]  (EOF: the server stops)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        os.unlink(f.name)


def make_script(prompts: int, error_rate: float, seed: int, members: int = 3) -> Script:
    """Per model, the replies in the order requests arrive: seeded latencies and injected failures."""
    rng = random.Random(seed)

    def replies(latency: Any) -> list[dict[str, Any]]:
        out = []
        for _ in range(int(prompts * 1.5) + 20):  # room for the retries; the last reply repeats
            if rng.random() < error_rate:
                out.append(
                    {"status": 429, "retry_after": 0.2, "latency": 0.02}
                    if rng.random() < 0.5
                    else {"status": 500, "latency": 0.02}
                )
            else:
                out.append({"latency": round(latency(), 3)})
        return [*out, {"latency": round(latency(), 3)}]

    script = {m: replies(lambda: rng.uniform(*MEMBER_LATENCY)) for m in MEMBERS[:members]}
    script[JUDGE] = replies(lambda: JUDGE_LATENCY)
    return script


def nominal_ideal(prompts: int, concurrency: int) -> float:
    "ceil(prompts / concurrency) waves of the slowest member plus the judge."
    return math.ceil(prompts / concurrency) * (MEMBER_LATENCY[1] + JUDGE_LATENCY)


async def _plain_batch(base_url: str, prompts: list[str], members: list[str], concurrency: int) -> int:
    "The same requests as a batch, with bare aiohttp: what a minimal hand-written script would do."
    gate = asyncio.Semaphore(concurrency)
    requests = 0

    async def ask(http: aiohttp.ClientSession, model: str, content: str) -> str:
        nonlocal requests
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": content}]}
        for attempt in range(4):
            requests += 1
            async with http.post(base_url + "/chat/completions", json=body) as resp:
                data = await resp.read()
                if resp.status == 200:
                    return data.decode()
                wait = resp.headers.get("Retry-After")
            await asyncio.sleep(float(wait) if wait else 0.5 * 2**attempt * (0.5 + random.random() / 2))
        return ""

    async def one(http: aiohttp.ClientSession, prompt: str) -> None:
        async with gate:
            answers = await asyncio.gather(*(ask(http, m, prompt) for m in members))
            await ask(http, JUDGE, prompt + "\n\n" + "\n\n".join(a[:2000] for a in answers))

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(one(http, p) for p in prompts))
    return requests


def plain_gather(prompts: list[str], script: Script, concurrency: int) -> dict[str, Any]:
    "Wall time and requests of the bare aiohttp batch against a freshly scripted emulator."
    with counting_emulator(script) as server:
        members = [m for m in script if m != JUDGE]
        started = time.perf_counter()
        asyncio.run(_plain_batch(server.base_url, prompts, members, concurrency))
        wall = time.perf_counter() - started
        return {"wall_s": wall, **server.stats()}


def fusion_batch(
    server: Server, prompts: list[str], members: list[str], concurrency: int, cache: bool, max_retries: int = 3
) -> dict[str, Any]:
    "Run `Fusion.map` once; check every row is present and every failure marked; wall time and counts."
    before = server.stats()
    fusion = Fusion(panel=members, judge=JUDGE, base_url=server.base_url, cache=cache, max_retries=max_retries)
    started = time.perf_counter()
    frame = fusion.map(prompts, concurrency=concurrency, progress=False)
    wall = time.perf_counter() - started
    after = server.stats()
    assert len(frame) == len(prompts), f"{len(frame)} rows for {len(prompts)} prompts"
    assert list(frame["prompt"]) == prompts, "rows lost or out of order"
    assert frame["status"].notna().all(), "a row without a status"
    failed = frame[frame["status"] != "ok"]
    assert all(bool(r.error) or bool(r.failed_models) for r in failed.itertuples()), "an unmarked failure"
    counts = frame["status"].value_counts().to_dict()
    status = {k: after["status"].get(k, 0) - before["status"].get(k, 0) for k in after["status"]}
    return {
        "wall_s": wall,
        "rows": len(frame),
        "ok": counts.get("ok", 0),
        "partial": counts.get("partial", 0),
        "judge_failed": counts.get("judge_failed", 0),
        "error": counts.get("error", 0),
        "requests": after["requests"] - before["requests"],
        "chats": after["chats"] - before["chats"],
        "status": status,
        "cost": frame["cost_usd"].sum(),
        "charged": after["cost"] - before["cost"],
        "cache_hits": int(frame["cache_hits"].sum()),
        "reasons": Counter(_kind(e) for e in failed["error"] for e in str(e).split("; ")),
        # Calls a re-run must still make: failed members, and a judge wherever the verdict is missing
        # or was made without them.
        "missing": int(failed["failed_models"].map(len).sum()) + len(failed),
    }


def _kind(error: str) -> str:
    "A failure reason without the model name and retry details, so that alike failures count together."
    text = re.sub(r"[\w.~-]+/[\w.:-]*\w", "<model>", error)
    return re.sub(r"\d+\.\d+s|#\d+|\b\d{4,}\b", "…", text)[:100]


def run_load(
    prompts: int = 200,
    concurrency: int = 32,
    error_rate: float = 0.1,
    seed: int = 7,
    members: int = 3,
    cached_rerun: bool = True,
) -> list[tuple[str, dict[str, Any]]]:
    "Every scenario of this benchmark, as (name, figures) rows."
    isolated_cache()
    questions = [f"Load test question {i}: what is the trade-off number {i}?" for i in range(prompts)]
    script = make_script(prompts, error_rate, seed, members)
    panel = MEMBERS[:members]
    with counting_emulator(script) as warm:  # imports, first connections, /models on disk
        Fusion(panel=panel, judge=JUDGE, base_url=warm.base_url, cache=False).map(["warm-up"], progress=False)

    def batch(server: Server, **kw: Any) -> dict[str, Any]:
        return fusion_batch(server, questions, panel, concurrency, **kw)

    rows: list[tuple[str, dict[str, Any]]] = [("plain aiohttp gather", plain_gather(questions, script, concurrency))]
    with counting_emulator(script) as server:
        rows.append(("Fusion.map, cache off", batch(server, cache=False)))
    with counting_emulator(script) as server:  # the same faults, nothing retried: failures must show
        rows.append(("Fusion.map, no retries", batch(server, cache=False, max_retries=0)))
    if cached_rerun:
        with counting_emulator(script) as server:
            rows.append(("Fusion.map, cache on (1st)", batch(server, cache=True)))
            rows.append(("Fusion.map, cached re-run", batch(server, cache=True)))
    return rows


def print_table(rows: list[tuple[str, dict[str, Any]]], prompts: int, concurrency: int, members: int) -> None:
    "A compact table of the scenarios against the nominal ideal."
    ideal = nominal_ideal(prompts, concurrency)
    calls = prompts * (members + 1)
    print(
        f"{prompts} deliberations x {members} members + judge at concurrency {concurrency}; "
        f"nominal ideal {ideal:.2f} s = ceil({prompts}/{concurrency}) x "
        f"({MEMBER_LATENCY[1]} + {JUDGE_LATENCY}) s; "
        f"{calls} calls needed"
    )
    print(
        f"{'scenario':<28}{'wall':>8}{'/ideal':>8}{'chats':>7}{'429':>6}{'500':>6}"
        f"{'ok':>6}{'part':>6}{'jfail':>6}{'err':>5}{'hits':>6}  cost=charged"
    )
    for name, r in rows:
        status = r.get("status", {})
        rowish = "rows" in r
        cells = (
            f"{r['ok']:>6}{r['partial']:>6}{r['judge_failed']:>6}{r['error']:>5}{r['cache_hits']:>6}"
            if rowish
            else f"{'-':>6}{'-':>6}{'-':>6}{'-':>5}{'-':>6}"
        )
        money = "-"
        if rowish:
            same = abs(r["cost"] - r["charged"]) < 1e-9
            money = "yes" if same else f"NO ({r['cost']:.6f} vs {r['charged']:.6f})"
        print(
            f"{name:<28}{r['wall_s']:>7.2f}s{r['wall_s'] / ideal:>7.2f}x{r['chats']:>7}"
            f"{status.get('429', 0):>6}{status.get('500', 0):>6}{cells}  {money}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--error-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = run_load(args.prompts, args.concurrency, args.error_rate, args.seed)
    print_table(rows, args.prompts, args.concurrency, 3)
    for name, r in rows:
        for reason, n in r.get("reasons", Counter()).most_common(4):
            print(f"  {name}: {n} x {reason}")
    named = dict(rows)
    rerun, first = named.get("Fusion.map, cached re-run"), named.get("Fusion.map, cache on (1st)")
    if rerun is not None and first is not None:
        # Zero requests when the first run got everything; else only what it missed (e.g. a member
        # that failed all its retries), and nothing else.
        answered = rerun["status"].get("200", 0)
        fast = rerun["wall_s"] < RERUN_TARGET_S or first["missing"] > 0  # misses wait on the network again
        verdict = "ok" if answered == first["missing"] and fast else "MISSED"
        print(
            f"cached re-run: {rerun['requests']} requests ({answered} answers for the "
            f"{first['missing']} calls the first run missed), {rerun['wall_s'] * 1000:.0f} ms "
            f"(target < {RERUN_TARGET_S * 1000:.0f} ms when nothing was missed)  {verdict}"
        )


if __name__ == "__main__":
    main()
