"""The views of a `Comparison`: a text table and an HTML table with the cost-vs-quality scatter."""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

from .._values.comparison import CI_METHOD
from . import facts as f

if TYPE_CHECKING:
    from .._values.comparison import Comparison

__all__ = ["comparison_html", "comparison_text", "headline"]


def headline(comparison: Comparison) -> str:
    "One line: what was compared with what, how it was graded, and what it cost."
    grading = {
        "reference": f"scored against references ({comparison.grader})",
        "pairwise": f"graded pairwise by {comparison.grader}, both orders",
        "none": "not graded",
    }[comparison.grading]
    n = len(comparison.runs)
    return (
        f"Comparison: {n} prompt{'s' * (n != 1)}, {comparison.fusion} vs {', '.join(comparison.baselines)}; "
        f"{grading}; grading cost {f.fmt_cost(comparison.grading_cost_usd)}; "
        f"paid {f.fmt_cost(comparison.paid_usd)} in this run"
    )


def _cells(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    head = ["approach", "cost/prompt", "relative cost", "latency p50", "p95", "failures"]
    if comparison.grading == "reference":
        head.append("score [95% CI]")
    elif comparison.grading == "pairwise":
        head.append("fusion wins [95% CI] (w/t/l)")
    rows = []
    for r in comparison.summary():
        cells = [
            r["approach"],
            ("" if r.get("cost_complete", True) else "≥ ") + f.fmt_cost(r["cost_mean_usd"]),
            "–" if r["relative_cost"] is None else f"{r['relative_cost']:.2f}×",
            f.fmt_secs(r["latency_p50_s"]),
            f.fmt_secs(r["latency_p95_s"]),
            f"{r['failures']}/{r['prompts']}",
        ]
        if comparison.grading == "reference":
            cells.append(_rate(r["score"], r["score_ci_low"], r["score_ci_high"]))
        elif comparison.grading == "pairwise":
            rate = _rate(r["fusion_win_rate"], r["win_ci_low"], r["win_ci_high"])
            cells.append("–" if r["kind"] == "fusion" else f"{rate} ({r['wins']}/{r['ties']}/{r['losses']})")
        rows.append(cells)
    return head, rows


def comparison_text(comparison: Comparison) -> str:
    "The headline, then one aligned row per approach."
    head, rows = _cells(comparison)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in (head, *rows)]
    return "\n".join([headline(comparison), *lines])


def comparison_html(comparison: Comparison) -> str:
    "The headline, the table, how the intervals are computed and the cost-vs-quality scatter as a PNG."
    head, rows = _cells(comparison)
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    note = f"Intervals: {CI_METHOD}." + (
        " Pairwise: ties count half; each prompt is graded in both orders and an inconsistent pair is a tie."
        if comparison.grading == "pairwise"
        else ""
    )
    chart = ""
    try:
        buffer = io.BytesIO()
        comparison.chart().savefig(buffer, format="png", dpi=96)
        data = base64.b64encode(buffer.getvalue()).decode()
        chart = f'<img alt="cost vs quality" src="data:image/png;base64,{data}" style="max-width:560px">'
    except Exception:  # noqa: BLE001 - no matplotlib, or a figure that fails: the table says it all
        pass
    return (
        f'<div class="fm-compare"><p><b>{html.escape(headline(comparison))}</b></p>'
        f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"
        f"<p><small>{html.escape(note)}</small></p>{chart}</div>"
    )


def _rate(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "–"
    text = f"{value:.0%}"
    return f"{text} [{low:.0%}, {high:.0%}]" if low is not None and high is not None else text
