"""How many CPUs the local server may use: what other processes leave free (fake /proc files)."""

from __future__ import annotations

import threading
from pathlib import Path

from fusion_magic._local.free_cpus import FreeCpus, usable_cpus


def _write(folder: Path, cpus: dict[int, tuple[int, int]], own: int) -> None:
    "cpus: {n: (busy ticks, idle ticks)}; own: this process's ticks (utime, stime split in two)."
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]  # the all-CPU line, which must not be counted twice
    lines += [f"cpu{n} {busy} 0 0 {idle} 0 0 0 0 0 0" for n, (busy, idle) in cpus.items()]
    (folder / "stat").write_text("\n".join([*lines, "intr 1 2 3", "ctxt 9"]) + "\n")
    fields = ["S", *["0"] * 10, str(own // 2), str(own - own // 2), *["0"] * 10]
    (folder / "own").write_text(f"123 (python (with) parens) {' '.join(fields)}\n")


def _watch(tmp_path: Path, cpus: set[int]) -> FreeCpus:
    return FreeCpus(cpus, stat=tmp_path / "stat", own=tmp_path / "own")


def test_other_work_takes_cpus_away_and_our_own_work_does_not(tmp_path):
    _write(tmp_path, {0: (0, 0), 1: (0, 0)}, own=0)
    free = _watch(tmp_path, {0, 1})
    assert free.free == 2 and free.threads(4) == 2
    # 100 ticks per CPU: others kept one CPU busy the whole time.
    _write(tmp_path, {0: (100, 0), 1: (0, 100)}, own=0)
    free.sample()
    assert free.free == 1 and free.threads(4) == 1
    # Both CPUs busy, but all of it was this process (the server generating): both are free to it.
    _write(tmp_path, {0: (200, 0), 1: (100, 100)}, own=200)
    free.sample()
    assert free.free == 2 and free.threads(4) == 2 and free.threads(1) == 1
    # Everything busy with others: still one thread, never none.
    _write(tmp_path, {0: (300, 0), 1: (200, 100)}, own=200)
    free.sample()
    assert free.free == 0 and free.threads(4) == 1


def test_only_the_cpus_this_process_may_use_count(tmp_path):
    _write(tmp_path, {0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (0, 0)}, own=0)
    free = _watch(tmp_path, {2, 3})
    assert free.free == 2
    # CPUs 0 and 1 (not ours) are flat out; ours idle: both of ours are free.
    _write(tmp_path, {0: (100, 0), 1: (100, 0), 2: (0, 100), 3: (0, 100)}, own=0)
    free.sample()
    assert free.free == 2


def test_without_proc_it_keeps_the_count_and_starts_no_thread(tmp_path):
    free = _watch(tmp_path, {0, 1, 2})  # no files there
    before = threading.active_count()
    assert free.start() is free and threading.active_count() == before
    free.sample()
    assert free.free == 3 and free.threads(2) == 2


def test_on_this_machine_it_reads_and_samples():
    free = FreeCpus(usable_cpus()).start()
    free.sample()
    assert 0 <= free.free <= len(usable_cpus()) and 1 <= free.threads(8) <= len(usable_cpus())
