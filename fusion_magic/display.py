"""What `%%fusion` shows: live progress while the panel works, then the result in the chosen format.

Progress is redrawn from the thread that runs the cell (`Fusion.run(on_tick=...)` calls back there),
never from the background event loop: IPython's display machinery is not thread-safe. In a kernel it
is one HTML block updated in place through a display id, and cleared at the end so the result is
the only thing left in the cell; in a terminal it prints a line each time a member finishes.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._format import NO_MATH
from .progress import FINAL, STATE_COLORS, MemberState, Tracker

if TYPE_CHECKING:
    from .result import FusionResult

__all__ = ["FORMATS", "LiveProgress", "in_kernel", "present", "show"]

FORMATS = ("widget", "html", "markdown", "json", "none")
REDRAW_S = 0.25  # at most four redraws a second: each one is a message to the front end
TIMER_S = 1.0  # redraw at least this often while something waits, so its clock moves


def in_kernel(shell: Any) -> bool:
    "True inside a Jupyter kernel (rich, updatable displays); False in a terminal IPython."
    return getattr(shell, "kernel", None) is not None


class LiveProgress:
    """Per-member progress for one run: ``tick`` is the `Fusion.run` callback, ``close`` clears it.

    ``mode`` is "html" (a kernel: updated in place), "text" (a terminal: a line per finished
    member) or "off". ``display`` is IPython's, replaceable for tests.
    """

    def __init__(self, mode: str = "text", *, display: Callable[..., Any] | None = None, out: Any = None) -> None:
        self.mode = mode
        self._display = display
        self._out = out
        self._handle: Any = None
        self._version = -1
        self._drawn_at = 0.0
        self._printed: dict[str, str] = {}
        self._started = time.perf_counter()

    # -- the on_tick callback ---------------------------------------------------------------------
    def tick(self, tracker: Tracker) -> None:
        "Redraw if something changed (called about ten times a second from the cell's thread)."
        if self.mode == "html":
            self._tick_html(tracker)
        elif self.mode == "text":
            self._tick_text(tracker)

    def close(self) -> None:
        "Remove the progress block so the result is shown exactly once."
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
            self._handle = None

    # -- kernel -----------------------------------------------------------------------------------
    def _tick_html(self, tracker: Tracker) -> None:
        now = time.perf_counter()
        if self._handle is None:
            if tracker.finished:  # answered from the cache before the first tick: nothing to show
                return
            show = self._display or _ipython_display
            self._handle = show(self._bundle(tracker), raw=True, display_id=True)
            self._version, self._drawn_at = tracker.version, now
            return
        changed = tracker.version != self._version
        if (changed and now - self._drawn_at >= REDRAW_S) or now - self._drawn_at >= TIMER_S:
            self._handle.update(self._bundle(tracker), raw=True)
            self._version, self._drawn_at = tracker.version, now

    def _bundle(self, tracker: Tracker) -> dict[str, str]:
        return {
            "text/html": progress_html(tracker, time.perf_counter() - self._started),
            "text/plain": "\n".join(tracker.lines()),
        }

    # -- terminal ---------------------------------------------------------------------------------
    def _tick_text(self, tracker: Tracker) -> None:
        if tracker.version == self._version:
            return
        self._version = tracker.version
        out = self._out or sys.stdout
        *panel, judge = tracker.snapshot()
        if not self._printed:
            if tracker.finished:
                return
            print(f"fusion: asking {len(panel)} models, then the judge {judge.name}", file=out)
            self._printed["<header>"] = ""
        now = time.perf_counter()
        for key, state, prefix in [*((s.name, s, "  ") for s in panel), ("<judge>", judge, "  judge: ")]:
            # Print arrivals and failures, not every streamed token: a terminal cannot redraw.
            if state.state in FINAL and self._printed.get(key) != state.state:
                self._printed[key] = state.state
                print(prefix + state.line(now), file=out)
        out.flush()


def progress_html(tracker: Tracker, elapsed_s: float | None = None) -> str:
    """The live block: one row per member (name, time bar, state), the judge, then time and cost so far.

    A grid of divs, not a table, so the page's table style (right-aligned, zebra rows) cannot restyle
    it. A bar is the time a call has taken: full width is the deadline, or the slowest call so far
    plus a quarter when the deadline is further off, so a call still running never looks finished.
    """
    now = time.perf_counter()
    *panel, judge = tracker.snapshot()
    rows = [(s, s.name) for s in panel] + [(judge, f"judge: {judge.name}")]
    slowest = max(s.elapsed(now) for s, _ in rows)
    scale = max(1.0, slowest * 1.25)
    if tracker.deadline_s and tracker.deadline_s >= slowest:
        scale = min(scale, tracker.deadline_s)
    cells = "".join(_row(s, label, s.elapsed(now) / scale, now) for s, label in rows)
    spent = sum(s.cost_usd or 0.0 for s in panel + [judge])
    facts = [f"{elapsed_s:.1f} s"] if elapsed_s is not None else []
    if tracker.estimate_usd is not None:
        facts.append(f"estimate ${tracker.estimate_usd:.4f}")
    if spent:
        facts.append(f"spent ${spent:.4f}")
    foot = f'<div style="opacity:.7;margin-top:.2em">{html.escape(" · ".join(facts))}</div>' if facts else ""
    grid = "display:grid;grid-template-columns:max-content 64px auto;gap:.1em .8em;align-items:center"
    return (
        f'<div class="fusion-progress {NO_MATH}" style="font-family:var(--jp-code-font-family,monospace);'
        f'font-size:12px;text-align:left"><div style="{grid}">{cells}</div>{foot}</div>'
    )


def _row(state: MemberState, label: str, fraction: float, now: float) -> str:
    color = STATE_COLORS.get(state.state, STATE_COLORS["waiting"])
    fill = 0.0 if state.state == "skipped" else min(100.0, max(0.0, fraction * 100))
    if state.state in ("done", "cached"):
        fill = max(fill, 2.0)  # a finished call stays visible, however fast
    bar = (
        '<span style="display:block;width:64px;height:7px;background:rgba(128,128,128,.2);'
        f'border-radius:3px;overflow:hidden"><span style="display:block;height:100%;'
        f'width:{fill:.1f}%;background:{color}"></span></span>'
    )
    return (
        f'<div style="white-space:nowrap">{html.escape(label)}</div>{bar}'
        f'<div style="color:{color};overflow-wrap:anywhere">{html.escape(state.status_text(now))}</div>'
    )


def _ipython_display(*args: Any, **kwargs: Any) -> Any:
    from IPython.display import display

    return display(*args, **kwargs)


# -- the result -----------------------------------------------------------------------------------
def present(result: FusionResult, fmt: str) -> Any:
    """What the cell returns (and so shows once, as its Out) for ``--format fmt``; None shows nothing.

    Every format keeps the plain-text summary as its text/plain, for terminals and text-only viewers.
    """
    from IPython.display import HTML, JSON, Markdown

    if fmt == "none":
        return None
    if fmt == "json":
        shown: Any = _with_text(JSON, result.to_json())(result.to_dict(), expanded=False)
    elif fmt == "markdown":
        shown = _with_text(Markdown, repr(result))(result._repr_markdown_())
    elif fmt == "html":
        shown = _with_text(HTML, repr(result))(result._repr_html_())
    else:
        shown = result  # "widget": the result itself: collapsible HTML, Markdown and plain text in one bundle
    return shown


def show(result: FusionResult, fmt: str) -> None:
    "Display ``result`` now (used when the cell ends in an error and returns nothing)."
    shown = present(result, fmt)
    if shown is not None:
        _ipython_display(shown)


def _with_text(cls: type, text: str) -> type:
    "A subclass of the display class ``cls`` whose text/plain is ``text`` instead of '<... object>'."
    return type(cls.__name__, (cls,), {"__repr__": lambda self: text})
