"""What fusion_magic adds on top of the ideal wall time (slowest member + judge).

    python bench/overhead.py [--runs 7]

Members answer after 0.3/0.5/0.8/1.2 s and the judge after 0.4 s, so the ideal is 1.6 s; with
--quorum 3 the ideal is the third member plus the judge, 1.2 s. The ideal is also measured in
the same run with bare HTTP requests to the slowest member and the judge, so the overhead
excludes the emulator's own costs. A 30-member panel (latencies spread over 0.3..1.2 s) checks
that overhead does not grow with the panel. The "Fusion judge" row has the judge answer in
OpenRouter Fusion's shape (the five lists, no answer): it is salvaged as it is, with no second call.
"""

from __future__ import annotations

import argparse
import time

import httpx
from _common import emulator_process, isolated_cache, median_ms, timed_request

from fusion_magic import Fusion

JUDGE_LATENCY = 0.4


def scenario(
    latencies: list[float], runs: int, quorum: int | None = None, judge_shape: str = "ours"
) -> dict[str, float]:
    panel = [f"bench/m{i:02d}" for i in range(len(latencies))]
    script = {m: [{"latency": s}] for m, s in zip(panel, latencies, strict=True)}
    script["bench/judge"] = [{"latency": JUDGE_LATENCY, "judge_shape": judge_shape}]
    kth = sorted(latencies)[(quorum or len(latencies)) - 1]
    with emulator_process(script) as base_url, httpx.Client() as http:
        fusion = Fusion(
            panel=panel, judge="bench/judge", base_url=base_url, cache=False, quorum=quorum, max_panel=len(panel)
        )
        fusion.run("warm-up")  # connections, /models prices, imports
        walls, ideals = [], []
        for i in range(runs):
            started = time.perf_counter()
            result = fusion.run(f"benchmark question {i}")
            walls.append(time.perf_counter() - started)
            assert result.status in ("ok", "partial"), result.error
            assert not result.analysis.is_empty()
            slowest = panel[latencies.index(kth)]
            ideals.append(timed_request(base_url, slowest, http) + timed_request(base_url, "bench/judge", http))
    wall, ideal = median_ms(walls), median_ms(ideals)
    return {"wall_ms": wall, "ideal_ms": ideal, "nominal_ms": (kth + JUDGE_LATENCY) * 1000, "overhead_ms": wall - ideal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    isolated_cache()
    four = [0.3, 0.5, 0.8, 1.2]
    thirty = [0.3 + 0.9 * i / 29 for i in range(30)]
    rows = [
        ("4 members", scenario(four, args.runs), 20),
        ("4 members, quorum=3", scenario(four, args.runs, quorum=3), 20),
        ("4 members, Fusion judge", scenario(four, args.runs, judge_shape="fusion"), 20),
        ("30 members", scenario(thirty, args.runs), 50),
    ]
    print(f"{'scenario':<25}{'nominal':>9}{'ideal':>9}{'median':>9}{'overhead':>10}  target")
    for name, r, target in rows:
        verdict = "ok" if r["overhead_ms"] < target else "MISSED"
        print(
            f"{name:<25}{r['nominal_ms']:>7.0f}ms{r['ideal_ms']:>7.0f}ms{r['wall_ms']:>7.0f}ms"
            f"{r['overhead_ms']:>8.1f}ms  <{target}ms {verdict}"
        )


if __name__ == "__main__":
    main()
