"""`Fusion.map`: deliberate over many prompts, a bounded number at a time, one row each.

Every prompt gets a row, failures included (status and error say why). Each panel answer is
cached as it arrives, so an interrupted batch resumes where it stopped when run again.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, FusionError
from .result import Analysis, FusionResult
from .runner import run_sync

if TYPE_CHECKING:
    import pandas as pd

    from .pipeline import Fusion

__all__ = ["COLUMNS", "run_map"]

COLUMNS = ["prompt", "answer", "status", "error", "cost_usd", "saved_usd", "elapsed_s", "cache_hits",
           "failed_models", *Analysis.SECTIONS, "unverified"]


def run_map(fusion: Fusion, prompts: Any, *, concurrency: int = 8, progress: bool = True) -> pd.DataFrame:
    "Run ``fusion`` over ``prompts`` (list, Series or other iterable of str); see `Fusion.map`."
    import pandas as pd

    if isinstance(prompts, pd.DataFrame):
        raise ConfigError("map() takes one column of prompts, e.g. fusion.map(df['question'])")
    if isinstance(prompts, str):
        raise ConfigError("map() takes a list of prompts; for one prompt use run()")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive whole number, got {concurrency!r}")
    index = prompts.index if isinstance(prompts, pd.Series) else None
    items = list(prompts)
    rows: list[dict[str, Any] | None] = [None] * len(items)
    bar = _Progress(len(items)) if progress else None

    async def one(i: int, prompt: Any, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                rows[i] = row(await fusion.arun(prompt), prompt)
            except FusionError as exc:
                rows[i] = failed_row(prompt, str(exc))
            except Exception as exc:  # noqa: BLE001 - one bad row must not lose the rows already paid for
                rows[i] = failed_row(prompt, f"{type(exc).__name__}: {exc}")
        if bar:
            bar.add(rows[i])

    async def every() -> None:
        gate = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(one(i, p, gate) for i, p in enumerate(items)))

    try:
        run_sync(every(), on_tick=bar.show if bar else None)
    finally:
        if bar:
            bar.show(final=True)
    filled = [r or failed_row(p, "interrupted") for r, p in zip(rows, items, strict=True)]
    return pd.DataFrame(filled, columns=COLUMNS, index=index)


def failed_row(prompt: Any, error: str) -> dict[str, Any]:
    "The row of a prompt that got no result: its list columns are empty lists, so they iterate like the rest."
    return {"prompt": prompt, "status": "error", "error": error, "failed_models": [],
            **{s: [] for s in Analysis.SECTIONS}}


def row(result: FusionResult, prompt: Any) -> dict[str, Any]:
    "One batch row for ``result``."
    analysis = result.analysis.model_dump()
    return {
        # A partial row says which members failed and why, not just that some did.
        "prompt": prompt, "answer": result.answer, "status": result.status,
        "error": result.error or "; ".join(r.reason for r in result.failed) or None,
        "cost_usd": result.cost_usd, "saved_usd": result.saved_usd, "elapsed_s": result.elapsed_s,
        "cache_hits": result.cache_hits, "failed_models": [r.model for r in result.failed],
        **{s: analysis[s] for s in Analysis.SECTIONS},
        "unverified": result.analysis.unverified,  # attributions whose quote was not found (see evidence)
    }


class _Progress:
    """A one-line progress bar: updated in place in a notebook, on stderr elsewhere."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.failed, self.cost = total, 0, 0, 0.0
        self.started = time.perf_counter()
        self._shown = -1
        self._handle: Any = None
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None and "IPKernelApp" in get_ipython().config:
                self._handle = display({"text/plain": self.text()}, raw=True, display_id=True)
        except ImportError:
            pass

    def add(self, row: dict[str, Any] | None) -> None:
        self.done += 1
        if row and row.get("status") not in ("ok", "partial"):
            self.failed += 1
        self.cost += (row or {}).get("cost_usd") or 0.0

    def text(self) -> str:
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  failed {self.failed}  "
                f"${self.cost:.4f}  {time.perf_counter() - self.started:.1f}s")

    def show(self, final: bool = False) -> None:
        if self.done == self._shown and not final:
            return
        self._shown = self.done
        if self._handle is not None:
            self._handle.update({"text/plain": self.text()}, raw=True)
        else:
            sys.stderr.write("\r" + self.text() + ("\n" if final else ""))
            sys.stderr.flush()
