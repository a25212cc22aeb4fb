"""`Fusion.map`: deliberate over many prompts, a bounded number at a time, one row each.

Every prompt gets a row, failures included (status and error say why). Each panel answer is
cached as it arrives, so an interrupted batch resumes where it stopped when run again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._base.errors import ConfigError, FusionError
from .._base.settings import setting
from .._render.live import BatchBar
from .._values.result import Analysis, FusionResult
from .._values.saved import python_strings
from .budget import check_batch
from .context import open_context
from .run import arun_prompt
from .run_settings import RunSettings
from .runner import run_sync

if TYPE_CHECKING:
    import pandas as pd


__all__ = ["COLUMNS", "arun_map", "run_map"]

COLUMNS = [
    "prompt",
    "answer",
    "status",
    "error",
    "cost_usd",  # None: unknown; with cost_complete False, the known part (a lower bound)
    "cost_complete",
    "saved_usd",
    "elapsed_s",
    "cache_hits",
    "failed_models",
    *Analysis.SECTIONS,
    "unverified",
]


def run_map(
    fusion: RunSettings, prompts: Any, *, concurrency: int = 8, progress: bool = True, max_cost: float | None = None
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
    fusion: RunSettings, prompts: Any, *, concurrency: int = 8, progress: bool = False, max_cost: float | None = None
) -> pd.DataFrame:
    "The async form of `run_map`, on the running loop (its bar, if any, draws as each prompt ends)."
    batch = _Batch(fusion, prompts, concurrency, progress, max_cost)
    if batch.bar:
        batch.bar.eager = True  # no ticker runs on the caller's loop: draw as each prompt ends
    try:
        await batch.run()
    finally:
        if batch.bar:
            batch.bar.show(final=True)
    return batch.frame()


class _Batch:
    """One batch: its prompts, one client, cache and price list for all of them, and its rows."""

    def __init__(
        self, fusion: RunSettings, prompts: Any, concurrency: int, progress: bool, max_cost: float | None
    ) -> None:
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
        self.bar = BatchBar(len(self.items)) if progress else None

    async def run(self) -> None:
        fusion = self.fusion
        shared = await open_context(fusion, None)  # its prices serve every run
        check_batch(fusion, shared, self.items, self.max_cost)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(i: int, prompt: Any) -> None:
            async with gate:
                try:
                    self.rows[i] = row(await arun_prompt(fusion, prompt, shared=shared), prompt)
                except FusionError as exc:
                    self.rows[i] = failed_row(prompt, str(exc))
                except Exception as exc:  # noqa: BLE001 - one bad row must not lose the rows already paid for
                    self.rows[i] = failed_row(prompt, f"{type(exc).__name__}: {exc}")
            if self.bar:
                self.bar.add(self.rows[i])

        try:
            await asyncio.gather(*(one(i, p) for i, p in enumerate(self.items)))
        except asyncio.CancelledError:
            # Stopped: the rows are the batch's partial outcome; no one row's result stands for it.
            raise asyncio.CancelledError from None
        finally:
            shared.close()  # the batch's one cache connection

    def frame(self) -> pd.DataFrame:
        filled = [r or failed_row(p, "interrupted") for r, p in zip(self.rows, self.items, strict=True)]
        pd = _pandas()
        try:
            return pd.DataFrame(filled, columns=COLUMNS, index=self.index)
        except UnicodeEncodeError:  # a prompt Arrow's strings refuse (a lone surrogate) is kept as given
            with python_strings():
                return pd.DataFrame(filled, columns=COLUMNS, index=self.index)


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
        "cost_complete": result.cost_complete,
        "saved_usd": result.saved_usd,
        "elapsed_s": result.elapsed_s,
        "cache_hits": result.cache_hits,
        "failed_models": [r.model for r in result.failed],
        **{s: analysis[s] for s in Analysis.SECTIONS},
        "unverified": result.analysis.unverified,  # attributions whose quote was not found (see evidence)
    }
