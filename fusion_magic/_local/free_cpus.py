"""How many CPUs other processes leave free, measured while the local server runs (Linux).

The local server reads prompts and writes tokens on as many threads as there are CPUs nobody else is
using. llama.cpp's threads wait for each other at every step, so a thread on a busy core slows all of
them: on a busy 2-core machine two threads were 2-3x slower than one, while on a quiet one two threads
write ~35% faster than one. `FreeCpus` reads ``/proc/stat`` (only the CPUs this process may run on)
and this process's own CPU time every quarter second, so the server's own work never counts as
someone else's. Where there is no ``/proc`` it keeps the count it was given.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

__all__ = ["FreeCpus", "usable_cpus"]

PERIOD_S = 0.25


class FreeCpus:
    """``free``: CPUs (of those this process may use) that other processes left idle in the last period."""

    def __init__(self, cpus: set[int], *, stat: Path = Path("/proc/stat"), own: Path = Path("/proc/self/stat")):
        self.cpus, self._stat, self._own = cpus, stat, own
        self.free = float(len(cpus))
        self._last = self._read()

    def start(self) -> FreeCpus:
        "Sample every `PERIOD_S` seconds on a daemon thread (nothing to sample without /proc)."
        if self._last is not None:
            threading.Thread(target=self._watch, name="free-cpus", daemon=True).start()
        return self

    def threads(self, most: int) -> int:
        "How many threads to run now: the free CPUs, rounded, from 1 to ``most``."
        return max(1, min(most, int(self.free + 0.25)))

    def sample(self) -> None:
        "Update `free` from what the CPUs did since the last sample."
        now = self._read()
        if now is None or self._last is None:
            return
        total, idle, own = (a - b for a, b in zip(now, self._last, strict=True))
        self._last = now
        if total > 0:
            others = min(total, max(0, total - idle - own))
            self.free = len(self.cpus) * (1 - others / total)

    def _watch(self) -> None:
        while True:
            time.sleep(PERIOD_S)
            self.sample()

    def _read(self) -> tuple[int, int, int] | None:
        "(all ticks, idle ticks) of our CPUs and this process's own ticks, or None where unreadable."
        try:
            lines = self._stat.read_text().splitlines()
            own = self._own.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total = idle = 0
        for line in lines:
            name, *fields = line.split()
            if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in self.cpus):
                continue
            ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            total += sum(ticks)
            idle += ticks[3] + ticks[4]
        return total, idle, int(own[11]) + int(own[12])  # utime + stime


def usable_cpus() -> set[int]:
    "The CPUs this process may run on."
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))
