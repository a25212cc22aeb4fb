"""Live state of a running deliberation, one line per panel member then the judge, and how it is drawn.

The pipeline updates a `Tracker` from the event loop; displays read it (never write it) from
whichever thread owns them, so nothing here touches IPython. The drawing is here too, once, for
every display: `MemberState.line` / `Tracker.lines` as text (the terminal, text/plain, `serve`'s
progress comments) and `progress_html` (the cell's live block and the widget's status).
"""

from __future__ import annotations

import html
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Literal

from ._render.facts import NO_MATH
from ._status import PROGRESS_STATES

__all__ = ["FINAL", "JUDGE", "STATE_COLORS", "MemberState", "Tracker", "juror_key", "progress_html"]

JUDGE = "<judge>"  # the judge's key: it may be the same model as a panel member


def juror_key(i: int) -> str:
    "The progress key of the i-th judge of a jury: the chair (0) is the judge line."
    return JUDGE if i == 0 else f"{JUDGE}{i + 1}"


State = Literal["waiting", "streaming", "retrying", "done", "cached", "failed", "timed_out", "cancelled", "skipped"]
FINAL = frozenset(s.word for s in PROGRESS_STATES if s.final)
# One colour per state, shared by the live progress and the widget's status lines.
STATE_COLORS = {s.word: s.color for s in PROGRESS_STATES}


@dataclass(frozen=True)
class MemberState:
    """What one call is doing right now."""

    name: str
    state: State = "waiting"
    chunks: int = 0  # streamed text fragments so far
    chars: int = 0  # streamed characters so far
    tokens: int | None = None  # the provider's completion token count, once the call is done
    started: float = 0.0
    latency_s: float | None = None
    cost_usd: float | None = None
    note: str = ""  # failure reason, retry reason, fallback in use...

    @property
    def token_count(self) -> int:
        "Completion tokens: the provider's count when known, else estimated from the streamed text."
        if self.tokens is not None:
            return self.tokens
        return math.ceil(self.chars / CHARS_PER_TOKEN)

    def elapsed(self, now: float | None = None) -> float:
        "Seconds this call has taken so far (its latency once it is done)."
        if self.state in FINAL and self.latency_s is not None:
            return self.latency_s
        if not self.started:
            return 0.0
        return (time.perf_counter() if now is None else now) - self.started

    def status_text(self, now: float | None = None) -> str:
        "What the call is doing, e.g. 'streaming ~120 tokens' or 'done in 2.1s, $0.0012'."
        cost = f", ${self.cost_usd:.4f}" if self.cost_usd else ""
        note = _unnamed(self.note, self.name)
        if self.state == "waiting":
            return f"waiting {self.elapsed(now):.1f}s" if self.started else "waiting"
        if self.state == "streaming":
            return f"streaming ~{self.token_count:,} tokens"
        if self.state == "retrying":
            return f"retrying: {note}"
        if self.state == "done":
            tokens = f", {self.tokens:,} tokens" if self.tokens is not None else ""
            return f"done in {self.latency_s or 0:.1f}s{tokens}{cost}"
        if self.state == "cached":
            return "cached (free)"
        return f"{self.state.replace('_', ' ')}: {note}" if note else self.state.replace("_", " ")

    def line(self, now: float | None = None) -> str:
        "One human line, e.g. 'openai/gpt-4o  streaming ~120 tokens'."
        return f"{self.name}  {self.status_text(now)}"


CHARS_PER_TOKEN = 4  # the same rough rule as pricing.count_tokens


def _unnamed(text: str, name: str) -> str:
    "``text`` without a leading 'NAME: ' (provider errors name their model; the row already does)."
    return text[len(name) + 2 :] if text.startswith(f"{name}: ") else text


class Tracker:
    """Thread-safe states of the panel members and the judge, with a change counter."""

    def __init__(
        self,
        members: list[str],
        judge: str,
        estimate_usd: float | None = None,
        deadline_s: float | None = None,
        jurors: list[str] | tuple[str, ...] = (),
    ) -> None:
        self._lock = threading.Lock()
        self.judge_name = judge
        self.members = list(members)
        self.estimate_usd = estimate_usd
        self.deadline_s = deadline_s  # the per-member deadline, if any: a full progress bar
        self.version = 0
        self._states = {n: MemberState(n) for n in members}
        # A jury's other judges get a line each after the panel; the chair is the judge line.
        for i, name in enumerate(jurors[1:], start=1):
            self.members.append(juror_key(i))
            self._states[juror_key(i)] = MemberState(f"judge · {name}")
        self._states[JUDGE] = MemberState(judge)

    def update(self, name: str, **changes: object) -> None:
        with self._lock:
            if name not in self._states:  # a seat outside the panel, e.g. the --tool primary
                self._states[name] = MemberState(name)
                self.members.insert(0, name)
            state = self._states[name]
            if "state" in changes and changes["state"] == "waiting" and not state.started:
                changes.setdefault("started", time.perf_counter())
            self._states[name] = replace(state, **changes)  # type: ignore[arg-type]
            self.version += 1

    def delta(self, name: str, text: str = "") -> None:
        "Count one streamed fragment of ``text``."
        with self._lock:
            state = self._states.get(name) or MemberState(name)
            self._states[name] = replace(
                state, state="streaming", chunks=state.chunks + 1, chars=state.chars + len(text)
            )
            self.version += 1

    def cancel_pending(self, note: str) -> None:
        "Mark every call that has not ended (the judge that never started, too) as cancelled."
        with self._lock:
            for name, state in self._states.items():
                if state.state not in FINAL:
                    self._states[name] = replace(state, state="cancelled", note=note)
            self.version += 1

    def snapshot(self) -> list[MemberState]:
        "Panel members in order, then the judge."
        with self._lock:
            return [self._states[n] for n in [*self.members, JUDGE]]

    def lines(self) -> list[str]:
        now = time.perf_counter()
        *panel, judge = self.snapshot()
        return [s.line(now) for s in panel] + [f"judge: {judge.line(now)}"]

    @property
    def finished(self) -> bool:
        return all(s.state in FINAL for s in self.snapshot())


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
    unknown = any(s.state == "done" and s.cost_usd is None for s in panel + [judge])  # answered, cost not known
    facts = [f"{elapsed_s:.1f} s"] if elapsed_s is not None else []
    if tracker.estimate_usd is not None:
        facts.append(f"estimate ${tracker.estimate_usd:.4f}")
    if spent:
        facts.append(f"spent {'≥ ' if unknown else ''}${spent:.4f}")
    elif unknown:
        facts.append("spent: unknown")
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
