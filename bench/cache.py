"""What the cache buys: a fully cached re-run, and a batch against its ideal wall time.

    python bench/cache.py [--runs 20]

1. A 4-member deliberation is run once, then re-run ``--runs`` times from the cache, each time
   with a new `Fusion` (as a re-run notebook cell does). Target: median < 50 ms and zero requests
   of any kind (chat or /models), counted by an in-process emulator listing 400 priced models.
   The same is timed with the parsed price list dropped first, as in a fresh kernel reading it
   back from disk.
2. 200 deliberations x 3 members at concurrency 32, no faults (members 0.2..0.6 s, judge 0.2 s),
   against the nominal ideal and a bare aiohttp gather of the same requests (see bench/load.py).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import isolated_cache, median_ms
from load import JUDGE, MEMBERS, counting_emulator, fusion_batch, make_script, nominal_ideal, plain_gather, print_table

from fusion_magic import Fusion
from fusion_magic._engine import pricing
from fusion_magic.emulator import Emulator

PANEL = ["cache/m0", "cache/m1", "cache/m2", "cache/m3"]
PROMPT = "Compare three ways to invalidate a cache, with one failure mode each."
# As long a price list as OpenRouter's (~400 models, ~500 KB), so re-reading it is not free.
CATALOG = {
    f"vendor{i % 40}/model-{i}": {"prompt": f"0.00000{i % 9 + 1}", "completion": f"0.0000{i % 9 + 1}"}
    for i in range(400)
}


def cached_rerun(runs: int, cold: bool) -> dict[str, float]:
    "Median and spread of fully cached re-runs; requests the emulator saw during them."
    with Emulator(models=CATALOG) as emu:
        Fusion(panel=PANEL, judge="cache/judge", base_url=emu.base_url).run(PROMPT)  # pays, fills the cache
        before = len(emu.requests)
        walls = []
        for _ in range(runs):
            if cold:
                pricing._MEMO.clear()  # a new kernel has no parsed copy of the price list
            started = time.perf_counter()
            result = Fusion(panel=PANEL, judge="cache/judge", base_url=emu.base_url).run(PROMPT)
            walls.append(time.perf_counter() - started)
            assert result.cache_hits == len(PANEL) + 1 and result.cost_usd == 0, result
        requests = len(emu.requests) - before
    return {
        "median_ms": median_ms(walls),
        "min_ms": min(walls) * 1000,
        "p90_ms": statistics.quantiles(walls, n=10)[-1] * 1000,
        "requests": requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    isolated_cache()

    print(
        f"fully cached re-run of a {len(PANEL)}-member deliberation, {args.runs} runs "
        "(target: median < 50 ms, 0 requests)"
    )
    print(f"{'scenario':<28}{'median':>9}{'min':>9}{'p90':>9}{'requests':>10}  verdict")
    for name, cold in (("warm (same kernel)", False), ("prices re-read from disk", True)):
        r = cached_rerun(args.runs, cold)
        verdict = "ok" if r["median_ms"] < 50 and r["requests"] == 0 else "MISSED"
        print(
            f"{name:<28}{r['median_ms']:>7.1f}ms{r['min_ms']:>7.1f}ms{r['p90_ms']:>7.1f}ms"
            f"{r['requests']:>10}  {verdict}"
        )
    print()

    questions = [f"Batch question {i}: which index suits workload {i}?" for i in range(args.prompts)]
    script = make_script(args.prompts, 0.0, seed=11)
    with counting_emulator(script) as warm:  # imports, first connections, /models on disk
        Fusion(panel=MEMBERS, judge=JUDGE, base_url=warm.base_url, cache=False).map(["warm"], progress=False)
    rows = [("plain aiohttp gather", plain_gather(questions, script, args.concurrency))]
    with counting_emulator(script) as server:
        batch = fusion_batch(server, questions, MEMBERS, args.concurrency, cache=False)
        rows.append(("Fusion.map, cache off", batch))
    print_table(rows, args.prompts, args.concurrency, len(MEMBERS))
    ideal = nominal_ideal(args.prompts, args.concurrency)
    fusion_wall, plain_wall = rows[1][1]["wall_s"], rows[0][1]["wall_s"]
    print(
        f"Fusion.map vs nominal ideal: {fusion_wall - ideal:+.2f} s; vs plain gather: {fusion_wall - plain_wall:+.2f} s"
    )


if __name__ == "__main__":
    main()
