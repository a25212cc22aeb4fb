"""How long one `local` deliberation takes: the quickstart's questions on SmolLM2-135M (no cache).

    python bench/local.py [--runs 3] [--uncapped]

Also printed: the CPU time the server processes used, which does not depend on other work on the
machine (the wall time does). The servers are started (and warmed by one request) before timing,
as in a notebook where the first cell pays the start. Each run is a fresh
`Fusion(preset="local", cache=False)` asking one of
the quickstart notebook's two questions. Target: median under 20 s on a 2-core machine.
``--uncapped`` lets the judge write as much as it likes (up to 2048 tokens), as before the cap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from fusion_magic import Fusion
from fusion_magic._local import server as local
from fusion_magic._local.server import local_base_urls, pool_size

TICK = os.sysconf("SC_CLK_TCK")


def server_cpu_s() -> float:
    "CPU seconds (user + system) the local server processes have used so far."
    total = 0
    for server in [local._server, *local._replicas]:
        if server is not None and server.alive:
            with open(f"/proc/{server.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


QUESTIONS = [  # the quickstart notebook's two %%fusion cells
    "In two sentences: when should a small team choose SQLite over Postgres?",
    "Tabs or spaces for indenting Python? One sentence.",
]


def one(question: str, uncapped: bool) -> dict[str, float | int | str]:
    fusion = Fusion(preset="local", cache=False, timeout=300)
    if uncapped:
        fusion.judge_max_tokens = None
    started, cpu = time.perf_counter(), server_cpu_s()
    result = fusion.run(question)
    wall, cpu = time.perf_counter() - started, server_cpu_s() - cpu
    members = [r for r in result.responses if r.ok]
    return {
        "wall": wall,
        "cpu": cpu,
        "slowest member": max((r.latency_s or 0.0) for r in members) if members else float("nan"),
        "judge": result.judge.latency_s or 0.0 if result.judge else float("nan"),
        "judge tokens": (result.judge.completion_tokens or 0) if result.judge else 0,
        "judge prompt": (result.judge.prompt_tokens or 0) if result.judge else 0,
        "member tokens": sum(r.completion_tokens or 0 for r in members),
        "status": result.status,
        "answer": (result.answer or "")[:70].replace("\n", " "),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per question")
    parser.add_argument("--uncapped", action="store_true", help="no cap on what the judge writes")
    args = parser.parse_args()
    started = time.perf_counter()
    local_base_urls(pool_size(3))
    print(f"{pool_size(3)} local servers ready in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs")
    Fusion(preset="local", cache=False).run("Say hi.")  # warm: weights paged in, first allocations done
    rows = []
    for i in range(args.runs):
        for q, question in enumerate(QUESTIONS):
            row = one(question, args.uncapped)
            rows.append(row)
            print(
                f"q{q + 1} run {i + 1}: {row['wall']:5.1f} s (servers' CPU {row['cpu']:5.1f} s)  "
                f"members {row['slowest member']:5.1f} s "
                f"({row['member tokens']} tok)  judge {row['judge']:5.1f} s "
                f"({row['judge prompt']} in, {row['judge tokens']} out)  "
                f"{row['status']}: {row['answer']}",
                flush=True,
            )
    walls = [float(r["wall"]) for r in rows]
    cpus = [float(r["cpu"]) for r in rows]
    judge = [int(r["judge tokens"]) for r in rows]
    verdict = "ok" if statistics.median(walls) < 20 else "OVER"
    print(
        f"local deliberation ({'uncapped judge' if args.uncapped else 'capped judge'}), {len(rows)} runs: "
        f"median {statistics.median(walls):.1f} s, min {min(walls):.1f} s, max {max(walls):.1f} s; "
        f"judge writes median {statistics.median(judge):.0f} tokens; target < 20 s {verdict}"
    )
    # On a machine shared with other work the wall time says more about the others than about us;
    # the CPU time the servers used does not depend on them (on an idle 2-core machine, the wall
    # time is at most that, and at least half of it).
    print(
        f"servers' CPU per deliberation: median {statistics.median(cpus):.1f} s; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
