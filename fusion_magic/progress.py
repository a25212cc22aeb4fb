"""Live state of a running deliberation: one line per panel member, then the judge.

The pipeline updates a `Tracker` from the event loop; displays read it (never write it) from
whichever thread owns them, so nothing here touches IPython.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Literal

__all__ = ["JUDGE", "MemberState", "Tracker"]

JUDGE = "<judge>"  # the judge's key: it may be the same model as a panel member

State = Literal["waiting", "streaming", "retrying", "done", "cached", "failed", "timed_out", "cancelled", "skipped"]
FINAL = frozenset({"done", "cached", "failed", "timed_out", "cancelled", "skipped"})
# One colour per state, shared by the live progress and the widget's status lines.
STATE_COLORS = {
    "waiting": "#9e9e9e",
    "retrying": "#d4a017",
    "streaming": "#2e78dc",
    "done": "#2ea043",
    "cached": "#1f9e89",
    "failed": "#dc3232",
    "timed_out": "#e07b00",
    "cancelled": "#9e9e9e",
    "skipped": "#9e9e9e",
}


@dataclass(frozen=True)
class MemberState:
    """What one call is doing right now."""

    name: str
    state: State = "waiting"
    chunks: int = 0  # streamed text fragments so far (about one token each)
    started: float = 0.0
    latency_s: float | None = None
    cost_usd: float | None = None
    note: str = ""  # failure reason, retry reason, fallback in use...

    def line(self, now: float | None = None) -> str:
        "One human line, e.g. 'openai/gpt-4o  streaming 120 tokens'."
        now = time.perf_counter() if now is None else now
        cost = f", ${self.cost_usd:.4f}" if self.cost_usd else ""
        if self.state == "waiting":
            text = f"waiting {now - self.started:.1f}s" if self.started else "waiting"
        elif self.state == "streaming":
            text = f"streaming {self.chunks} tokens"
        elif self.state == "retrying":
            text = f"retrying: {self.note}"
        elif self.state == "done":
            text = f"done in {self.latency_s or 0:.1f}s{cost}"
        elif self.state == "cached":
            text = "cached (free)"
        else:
            text = f"{self.state.replace('_', ' ')}: {self.note}" if self.note else self.state
        return f"{self.name}  {text}"


class Tracker:
    """Thread-safe states of the panel members and the judge, with a change counter."""

    def __init__(self, members: list[str], judge: str, estimate_usd: float | None = None) -> None:
        self._lock = threading.Lock()
        self.judge_name = judge
        self.members = list(members)
        self.estimate_usd = estimate_usd
        self.version = 0
        self._states = {n: MemberState(n) for n in members}
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

    def delta(self, name: str) -> None:
        "Count one streamed fragment."
        with self._lock:
            state = self._states.get(name) or MemberState(name)
            self._states[name] = replace(state, state="streaming", chunks=state.chunks + 1)
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
