"""Progress on screen: the cell's live block while a deliberation runs, and the batch bar of `map`/`compare`.

The cell's progress is redrawn from the thread that runs the cell (`Fusion.run(on_tick=...)` calls
back there), never from the background event loop: IPython's display machinery is not thread-safe.
In a kernel it is one HTML block updated in place through a display id, at most four times a
second however many members stream (each update is a message to the front end), showing each
call's line and what it has written so far; it is cleared at the end so the result is the only
thing left in the cell (and in the saved notebook); in a terminal it prints a line each time a member
finishes. What a block or a line says is drawn by `fusion_magic._render.progress`.

A batch shows prompts done out of the total, with failures and cost so far, through `tqdm.auto`:
a notebook bar in a kernel, a text bar on stderr in a terminal (tqdm loads when a bar is made).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .progress import FINAL, Tracker, draft_lines, progress_html

__all__ = ["BatchBar", "LiveProgress"]

REDRAW_S = 0.25  # at most four redraws a second: each one is a message to the front end
TIMER_S = 1.0  # redraw at least this often while something waits, so its clock moves


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
            "text/plain": "\n".join(draft_lines(tracker)),
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


class BatchBar:
    """How far a batch is: prompts done of ``total``, failed, dollars spent (a `tqdm.auto` bar).

    ``add`` counts a finished prompt from any thread; ``show`` draws, from the thread that owns
    the display (the cell's, through `run_sync(on_tick=...)`); with ``eager`` set every ``add`` draws
    at once (a batch awaited on the caller's own loop, where no ticker runs).
    """

    def __init__(self, total: int, desc: str = "map") -> None:
        from tqdm.auto import tqdm

        self.total, self.done, self.failed, self.cost = total, 0, 0, 0.0
        self.cost_complete = True  # False once a row's cost is unknown or partly unknown
        self.eager = False
        self._lock = threading.Lock()
        self._shown = 0
        self._drawn_at = time.perf_counter()
        self.bar = tqdm(total=total, desc=desc, unit="prompt", dynamic_ncols=True)
        self.bar.set_postfix_str(self._postfix(), refresh=False)

    def add(self, row: dict[str, Any] | None) -> None:
        "Count one finished prompt (its row: a status other than ok/partial is a failure)."
        with self._lock:
            self.done += 1
            if row and row.get("status") not in ("ok", "partial"):
                self.failed += 1
            self.cost += (row or {}).get("cost_usd") or 0.0
            if row and (row.get("cost_complete") is False or (row.get("cost_usd") is None and "cost_usd" in row)):
                self.cost_complete = False
        if self.eager:
            self.show()

    def _postfix(self) -> str:
        return f"failed {self.failed}, {'' if self.cost_complete else '≥ '}${self.cost:.4f}"

    def show(self, final: bool = False) -> None:
        "Draw what changed (and the clock, once a second); ``final`` draws the last state and closes."
        with self._lock:
            done, postfix = self.done, self._postfix()
        now = time.perf_counter()
        if done != self._shown or final or now - self._drawn_at >= TIMER_S:
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(done - self._shown)
            self.bar.refresh()
            self._shown, self._drawn_at = done, now
        if final:
            self.bar.close()


def _ipython_display(*args: Any, **kwargs: Any) -> Any:
    from IPython.display import display

    return display(*args, **kwargs)
