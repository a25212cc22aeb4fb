"""The session ledger's views: its totals line (the repr), the notebook table and the cost chart."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .._base.errors import FusionError
from .facts import NO_MATH, UNKNOWN, fmt_cost, plural

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._values.ledger import Ledger

__all__ = ["HTML_ROWS", "NOTHING_SPENT", "chart", "nothing_spent", "to_html", "totals_line"]

HTML_ROWS = 20  # the notebook table shows the latest calls; to_frame() has them all
NOTHING_SPENT = "Nothing spent this session: every call was free"
_HEAD = ("time", "kind", "call", "models", "status", "cost", "saved", "hits", "tokens")


def totals_line(ledger: Ledger) -> str:
    "'3 calls (2 fusion, 1 single), $0.0123 spent, $0.0040 saved by 1 cache hit, 4,210 tokens'."
    t = ledger.totals()
    return (
        f"{plural(t['calls'], 'call')} ({t['fusion_calls']} fusion, {t['single_calls']} single), "
        f"{_spent(t['cost_usd'], t['cost_complete'])} spent, {fmt_cost(t['saved_usd'])} saved by "
        f"{plural(t['cache_hits'], 'cache hit')}, {plural(t['tokens'], 'token')}"
    )


def _spent(value: float | None, complete: bool) -> str:
    "'$0.0123', '≥ $0.0123' (some costs unknown) or 'unknown': an unknown cost is never $0."
    if value is None:
        return UNKNOWN
    return fmt_cost(value) if complete else f"≥ {fmt_cost(value)}"


def to_html(ledger: Ledger) -> str:
    "The latest calls as a table, then the totals (dollar amounts kept out of the notebook's maths)."
    entries = ledger.entries
    head = "".join(f"<th>{h}</th>" for h in _HEAD)
    rows = []
    for e in entries[-HTML_ROWS:]:
        cells = (
            e.time.strftime("%H:%M:%S"),
            e.kind,
            e.label,
            e.models,
            e.status,
            _spent(e.cost_usd, e.cost_complete),
            fmt_cost(e.saved_usd),
            str(e.cache_hits),
            f"{e.tokens('prompt') + e.tokens('completion'):,}",
        )
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    more = len(entries) - HTML_ROWS
    note = f"<p>{more} earlier calls not shown; see <code>to_frame()</code>.</p>" if more > 0 else ""
    table = (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if entries
        else "<p>No calls yet.</p>"
    )
    total = f"<p><b>Total:</b> {html.escape(totals_line(ledger))}</p>"
    return f'<div class="fusion-ledger {NO_MATH}">{note}{table}{total}</div>'


def nothing_spent(ledger: Ledger) -> bool:
    "True when there are calls and each cost and saved exactly nothing (an unknown cost is not nothing)."
    entries = ledger.entries
    return bool(entries) and all(e.cost_usd == 0 and e.saved_usd == 0 for e in entries)


def chart(ledger: Ledger) -> Figure:
    "Cumulative cost (and cache savings) over the session, as a matplotlib Figure."
    try:
        from matplotlib.dates import AutoDateLocator, DateFormatter
        from matplotlib.figure import Figure
    except ImportError:
        raise FusionError("the cost chart needs matplotlib: pip install matplotlib") from None
    entries = ledger.entries
    fig = Figure(figsize=(6.4, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.set_title("fusion_magic: session cost")
    ax.set_ylabel("USD (cumulative)")
    if not entries or nothing_spent(ledger):  # a flat line at zero on a made-up scale says nothing
        why = "no calls yet" if not entries else f"{NOTHING_SPENT}\n({plural(len(entries), 'call')})"
        ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return fig
    # matplotlib takes datetimes through its unit registry; its stubs list only numbers.
    times: list[Any] = [entries[0].time, *(e.time for e in entries)]
    spent, saved = [0.0], [0.0]
    for e in entries:
        spent.append(spent[-1] + (e.cost_usd or 0.0))  # the known part; the totals line says when incomplete
        saved.append(saved[-1] + e.saved_usd)
    ax.step(times, spent, where="post", label="spent", marker="o", markersize=3)
    if saved[-1] > 0:
        ax.step(times, saved, where="post", label="saved by cache", linestyle="--")
    ax.legend(loc="upper left")
    ax.set_ylim(bottom=0)
    # A session of one call (or a few in one minute) has no time span: give it a minute on each
    # side, or matplotlib widens the empty range to years.
    if times[-1] - times[0] < timedelta(minutes=2):
        span: tuple[Any, Any] = (times[0] - timedelta(minutes=1), times[-1] + timedelta(minutes=1))
        ax.set_xlim(*span)
    ax.xaxis.set_major_locator(AutoDateLocator(maxticks=6))
    ax.xaxis.set_major_formatter(
        DateFormatter("%H:%M:%S" if times[-1] - times[0] < timedelta(days=1) else "%m-%d %H:%M")
    )
    fig.autofmt_xdate()
    return fig
