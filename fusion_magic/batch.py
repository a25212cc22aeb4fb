"""`Fusion.map`: deliberate over many prompts, a bounded number at a time, one row each.

Every prompt gets a row, failures included (status and error say why). Each panel answer is
cached as it arrives, so an interrupted batch resumes where it stopped when run again.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any

from .budget import check_batch
from .errors import ConfigError, FusionError
from .result import Analysis, FusionResult
from .runner import run_sync
from .settings import setting

if TYPE_CHECKING:
    import pandas as pd

    from .pipeline import Fusion

__all__ = ["COLUMNS", "arun_map", "run_map"]

COLUMNS = [
    "prompt",
    "answer",
    "status",
    "error",
    "cost_usd",
    "saved_usd",
    "elapsed_s",
    "cache_hits",
    "failed_models",
    *Analysis.SECTIONS,
    "unverified",
]


def run_map(
    fusion: Fusion, prompts: Any, *, concurrency: int = 8, progress: bool = True, max_cost: float | None = None
) -> pd.DataFrame:
    "Run ``fusion`` over ``prompts`` (list, Series or other iterable of str); see `Fusion.map`."
    batch = _Batch(fusion, prompts, concurrency, progress, max_cost)
    try:
        run_sync(batch.run(), on_tick=batch.bar.show if batch.bar else None)
    finally:
        if batch.bar:
            batch.bar.show(final=True)
    return batch.frame()


async def arun_map(
    fusion: Fusion, prompts: Any, *, concurrency: int = 8, progress: bool = False, max_cost: float | None = None
) -> pd.DataFrame:
    "The async form of `run_map`, on the running loop."
    batch = _Batch(fusion, prompts, concurrency, progress, max_cost)
    try:
        await batch.run()
    finally:
        if batch.bar:
            batch.bar.show(final=True)
    return batch.frame()


class _Batch:
    """One batch: its prompts, one client, cache and price list for all of them, and its rows."""

    def __init__(self, fusion: Fusion, prompts: Any, concurrency: int, progress: bool, max_cost: float | None) -> None:
        pd = _pandas()
        if isinstance(prompts, pd.DataFrame):
            raise ConfigError("map() takes one column of prompts, e.g. fusion.map(df['question'])")
        if isinstance(prompts, str):
            raise ConfigError("map() takes a list of prompts; for one prompt use run()")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be a positive whole number, got {concurrency!r}")
        setting("max_cost").check(max_cost)
        self.fusion, self.concurrency, self.max_cost = fusion, concurrency, max_cost
        self.index = prompts.index if isinstance(prompts, pd.Series) else None
        self.items = list(prompts)
        self.rows: list[dict[str, Any] | None] = [None] * len(self.items)
        self.bar = _Progress(len(self.items)) if progress else None

    async def run(self) -> None:
        fusion = self.fusion
        shared = await fusion._call(None)
        await check_batch(fusion, shared, self.items, self.max_cost)  # and loads the prices for every run
        gate = asyncio.Semaphore(self.concurrency)

        async def one(i: int, prompt: Any) -> None:
            async with gate:
                try:
                    self.rows[i] = row(await fusion.arun(prompt, _shared=shared), prompt)
                except FusionError as exc:
                    self.rows[i] = failed_row(prompt, str(exc))
                except Exception as exc:  # noqa: BLE001 - one bad row must not lose the rows already paid for
                    self.rows[i] = failed_row(prompt, f"{type(exc).__name__}: {exc}")
            if self.bar:
                self.bar.add(self.rows[i])

        await asyncio.gather(*(one(i, p) for i, p in enumerate(self.items)))

    def frame(self) -> pd.DataFrame:
        filled = [r or failed_row(p, "interrupted") for r, p in zip(self.rows, self.items, strict=True)]
        return _pandas().DataFrame(filled, columns=COLUMNS, index=self.index)


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError("map() returns a DataFrame and needs pandas: pip install pandas") from None
    return pd


def failed_row(prompt: Any, error: str) -> dict[str, Any]:
    "The row of a prompt that got no result: its list columns are empty lists, so they iterate like the rest."
    return {
        "prompt": prompt,
        "status": "error",
        "error": error,
        "failed_models": [],
        **{s: [] for s in Analysis.SECTIONS},
    }


def row(result: FusionResult, prompt: Any) -> dict[str, Any]:
    "One batch row for ``result``."
    analysis = result.analysis.model_dump()
    return {
        # A partial row says which members failed and why, not just that some did.
        "prompt": prompt,
        "answer": result.answer,
        "status": result.status,
        "error": result.error or "; ".join(r.reason for r in result.failed) or None,
        "cost_usd": result.cost_usd,
        "saved_usd": result.saved_usd,
        "elapsed_s": result.elapsed_s,
        "cache_hits": result.cache_hits,
        "failed_models": [r.model for r in result.failed],
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
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  failed {self.failed}  "
            f"${self.cost:.4f}  {time.perf_counter() - self.started:.1f}s"
        )

    def show(self, final: bool = False) -> None:
        if self.done == self._shown and not final:
            return
        self._shown = self.done
        if self._handle is not None:
            self._handle.update({"text/plain": self.text()}, raw=True)
        else:
            sys.stderr.write("\r" + self.text() + ("\n" if final else ""))
            sys.stderr.flush()
