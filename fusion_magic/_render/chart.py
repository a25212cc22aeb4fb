"""The cost-vs-quality scatter of a `Comparison` (matplotlib, imported only when drawn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._base.errors import FusionError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._values.comparison import Comparison

__all__ = ["cost_quality_figure"]


def cost_quality_figure(comparison: Comparison) -> Figure:
    "Mean cost per prompt against quality, one point per approach, with the 95 % intervals."
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise FusionError("the chart needs matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    rows = comparison.summary()
    seen: dict[tuple[int, int], int] = {}  # labels of points at (nearly) the same spot are stacked
    widest = max((r["cost_mean_usd"] or 0.0 for r in rows), default=0.0) or 1.0
    for r in rows:
        y, lo, hi = _quality(comparison.grading, r)
        if y is None or r["cost_mean_usd"] is None:
            continue
        spot = (round(30 * r["cost_mean_usd"] / widest), round(30 * y))
        stack = seen[spot] = seen.get(spot, -1) + 1
        err = [[max(0.0, y - lo)], [max(0.0, hi - y)]] if lo is not None and hi is not None else None
        ax.errorbar(
            [r["cost_mean_usd"]],
            [y],
            yerr=err,
            fmt="o",
            capsize=3,
            color="tab:orange" if r["kind"] == "fusion" else "tab:blue",
        )
        ax.annotate(
            r["approach"], (r["cost_mean_usd"], y), textcoords="offset points", xytext=(6, 3 - 11 * stack), fontsize=8
        )
    ax.set_xlabel("mean cost per prompt (USD)")
    ax.set_ylabel(
        {"reference": "score", "pairwise": "win rate against fusion (fusion = 0.5)", "none": "latency p50 (s)"}[
            comparison.grading
        ]
    )
    if comparison.grading != "none":
        ax.set_ylim(-0.05, 1.05)
    if comparison.grading == "pairwise":
        ax.axhline(0.5, linestyle="--", linewidth=0.8, color="grey")
    ax.set_xlim(left=0)
    ax.set_title("fusion_magic: cost vs quality", fontsize=10)
    return fig


def _quality(grading: str, row: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    if grading == "reference":
        return row["score"], row["score_ci_low"], row["score_ci_high"]
    if grading == "pairwise":
        if row["kind"] == "fusion":
            return 0.5, None, None
        rate, lo, hi = row["fusion_win_rate"], row["win_ci_low"], row["win_ci_high"]
        if rate is None:
            return None, None, None
        return 1 - rate, (1 - hi if hi is not None else None), (1 - lo if lo is not None else None)
    return row["latency_p50_s"], None, None
