"""Shared pieces of the benchmarks: an emulator in its own process, timing helpers."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def emulator_process(script: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """Run the emulator in a separate process (so it does not share our GIL); yield its base URL."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(script, f)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fusion_magic.emulator", "--script", f.name], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        base_url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not base_url.startswith("http"):
            raise RuntimeError("the emulator did not start")
        yield base_url
    finally:
        proc.terminate()
        proc.wait(5)
        os.unlink(f.name)


def timed_request(base_url: str, model: str, http: httpx.Client) -> float:
    "Wall time of one bare streamed chat request: what a perfect client would wait."
    started = time.perf_counter()
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "ideal"}]}
    with http.stream("POST", base_url + "/chat/completions", json=body) as resp:
        for _ in resp.iter_bytes():
            pass
    return time.perf_counter() - started


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def isolated_cache() -> str:
    "A throwaway FUSION_CACHE_DIR so benchmarks never read or pollute the user's cache."
    path = tempfile.mkdtemp(prefix="fusion-bench-")
    os.environ["FUSION_CACHE_DIR"] = path
    return path
