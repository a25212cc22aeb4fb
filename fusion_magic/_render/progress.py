"""Live state of a running deliberation, one line per panel member then the judge, and how it is drawn.

The pipeline updates a `Tracker` from the event loop; displays read it (never write it) from
whichever thread owns them, so nothing here touches IPython. The drawing is here too, once, for
every display: `MemberState.line` / `Tracker.lines` as text (the terminal, text/plain, `serve`'s
progress comments) and `progress_html` (the cell's live block and the widget's status).

The tracker also keeps what each call has written so far (`Tracker.draft`: a member's text, a
judge's answer read from its partial JSON), which the live block shows under the call's line.
"""

from __future__ import annotations

import html
import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Literal

from .._base.status import PROGRESS_STATES
from .._judge.partial import partial_answer
from .drafts import ANSWER_CHARS, DRAFT_CSS, OPEN_UP_TO, body_chars, draft_html, preview
from .facts import NO_MATH

__all__ = ["FINAL", "JUDGE", "STATE_COLORS", "MemberState", "Tracker", "draft_lines", "juror_key", "progress_html"]

JUDGE = "<judge>"  # the judge's key: it may be the same model as a panel member


def juror_key(i: int) -> str:
    "The progress key of the i-th judge of a jury: the chair (0) is the judge line."
    return JUDGE if i == 0 else f"{JUDGE}{i + 1}"


State = Literal[
    "waiting", "streaming", "retrying", "tool", "done", "cached", "failed", "timed_out", "cancelled", "skipped"
]
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
        """What the call is doing, e.g. 'streaming ~120 tokens out' or 'done in 2.1s, 80 tokens out, $0.0012'.

        Live counts are what the model wrote (completion tokens, "out"); a result's rows count in + out.
        """
        cost = f", ${self.cost_usd:.4f}" if self.cost_usd else ""
        note = _unnamed(self.note, self.name)
        if self.state == "waiting":
            return f"waiting {self.elapsed(now):.1f}s" if self.started else "waiting"
        if self.state == "streaming":
            return f"streaming ~{self.token_count:,} tokens out"
        if self.state == "retrying":
            return f"retrying: {note}"
        if self.state == "tool":  # e.g. "sql (2/4)": the tool running and the calls used of the bound
            return note or "running a tool"
        if self.state == "done":
            tokens = f", {self.tokens:,} tokens out" if self.tokens is not None else ""
            return f"done in {self.latency_s or 0:.1f}s{tokens}{cost}"
        if self.state == "cached":
            return "cached (free)"
        return f"{self.state.replace('_', ' ')}: {note}" if note else self.state.replace("_", " ")

    def line(self, now: float | None = None) -> str:
        "One human line, e.g. 'openai/gpt-4o  streaming ~120 tokens out'."
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
        self.estimate_floor = False  # members may call tools: the estimate is a lower bound
        self.deadline_s = deadline_s  # the per-member deadline, if any: a full progress bar
        self.version = 0
        self._states = {n: MemberState(n) for n in members}
        # A jury's other judges get a line each after the panel; the chair is the judge line.
        for i, name in enumerate(jurors[1:], start=1):
            self.members.append(juror_key(i))
            self._states[juror_key(i)] = MemberState(f"judge · {name}")
        self._states[JUDGE] = MemberState(judge)
        self._texts: dict[str, list[str]] = {}  # what each call has streamed so far, in pieces

    def update(self, name: str, **changes: object) -> None:
        "Change line ``name``; a new call (state waiting) or a restarted stream (chars=0) starts its text over."
        with self._lock:
            if changes.get("state") == "waiting" or changes.get("chars") == 0:
                self._texts.pop(name, None)
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
            self._texts.setdefault(name, []).append(text)
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

    def keyed(self) -> list[tuple[str, MemberState]]:
        "(key, state) of the panel members in order, then the judge's (`JUDGE`)."
        with self._lock:
            return [(n, self._states[n]) for n in [*self.members, JUDGE]]

    def text(self, key: str) -> str:
        "Everything call ``key`` has streamed so far ('' before its first fragment)."
        with self._lock:
            pieces = self._texts.get(key)
            if not pieces:
                return ""
            if len(pieces) > 1:
                pieces[:] = ["".join(pieces)]  # joined once; later fragments append to it
            return pieces[0]

    def draft(self, key: str) -> str:
        "What call ``key`` has written so far for a reader: a member's text, a judge's answer (from its JSON)."
        text = self.text(key)
        return partial_answer(text) if key.startswith(JUDGE) else text

    def lines(self) -> list[str]:
        now = time.perf_counter()
        *panel, judge = self.snapshot()
        return [s.line(now) for s in panel] + [f"judge: {judge.line(now)}"]

    @property
    def finished(self) -> bool:
        return all(s.state in FINAL for s in self.snapshot())


def progress_html(tracker: Tracker, elapsed_s: float | None = None, *, drafts: bool = True) -> str:
    """The live block: one row per member (name, time bar, state), the judge, then time and cost so far.

    A grid of divs, not a table, so the page's table style (right-aligned, zebra rows) cannot restyle
    it. A bar is the time a call has taken: full width is the deadline, or the slowest call so far
    plus a quarter when the deadline is further off, so a call still running never looks finished.
    With ``drafts``, what each call has written so far is a collapsible row under its line
    (`_render.drafts`): members' text, open while it streams in a small panel, and the judge's
    answer, open.
    """
    now = time.perf_counter()
    keyed = tracker.keyed()
    panel = [s for key, s in keyed if key != JUDGE]
    rows = [(key, s, s.name if key != JUDGE else f"judge: {s.name}") for key, s in keyed]
    slowest = max(s.elapsed(now) for _, s, _ in rows)
    scale = max(1.0, slowest * 1.25)
    if tracker.deadline_s and tracker.deadline_s >= slowest:
        scale = min(scale, tracker.deadline_s)
    texts = {key: tracker.draft(key) for key, _, _ in rows} if drafts else {}
    limit = body_chars(sum(bool(t) for k, t in texts.items() if not k.startswith(JUDGE)))
    cells = []
    for key, s, label in rows:
        cells.append(_row(s, label, s.elapsed(now) / scale, now))
        if text := texts.get(key):
            judge_like = key.startswith(JUDGE)
            open_ = judge_like or (s.state == "streaming" and len(panel) <= OPEN_UP_TO)
            name = "answer so far" if judge_like else "text so far"
            cells.append(draft_html(text, label=name, open_=open_, limit=ANSWER_CHARS if judge_like else limit))
    spent = sum(s.cost_usd or 0.0 for _, s in keyed)
    unknown = any(s.state == "done" and s.cost_usd is None for _, s in keyed)  # answered, cost not known
    facts = [f"{elapsed_s:.1f} s"] if elapsed_s is not None else []
    if tracker.estimate_usd is not None:
        facts.append(f"estimate {'≥ ' if tracker.estimate_floor else ''}${tracker.estimate_usd:.4f}")
    if spent:
        facts.append(f"spent {'≥ ' if unknown else ''}${spent:.4f}")
    elif unknown:
        facts.append("spent: unknown")
    foot = f'<div style="opacity:.7;margin-top:.2em">{html.escape(" · ".join(facts))}</div>' if facts else ""
    grid = "display:grid;grid-template-columns:max-content 64px auto;gap:.1em .8em;align-items:center"
    return (
        f'<div class="fusion-progress {NO_MATH}" style="font-family:var(--jp-code-font-family,monospace);'
        f'font-size:12px;text-align:left">{DRAFT_CSS if texts else ""}<div style="{grid}">{"".join(cells)}</div>'
        f"{foot}</div>"
    )


def draft_lines(tracker: Tracker, width: int = 100) -> list[str]:
    "Text lines of the progress with the latest words of each call under its line (text/plain)."
    now = time.perf_counter()
    out = []
    for key, state in tracker.keyed():
        out.append(("judge: " if key == JUDGE else "") + state.line(now))
        if text := tracker.draft(key):
            out.append("    › " + preview(text, width))
    return out


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
