"""The session ledger: what this kernel spent, call by call, and what the cache saved.

One entry per call: a deliberation (``kind="fusion"``, summing its members and judge) or a
single model call (``kind="call"``: a rejudge, a ``--tool`` primary that answered alone). Each
entry keeps one detail row per model call. Cached answers cost nothing; they count as money
saved, at the price paid when that answer was first bought. A `Response` is counted once: the
panel answers a rejudged result carries over are not billed again.

    from fusion_magic import ledger
    ledger()            # table + totals in a notebook
    ledger().totals()   # {"cost_usd": ..., "saved_usd": ..., "calls": ..., ...}
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._base.errors import FusionError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from .result import FusionResult, Response

__all__ = ["Ledger", "LedgerEntry", "ledger"]

SUMMARY_COLUMNS = [
    "time",
    "kind",
    "label",
    "models",
    "status",
    "calls",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "saved_usd",
    "elapsed_s",
]
DETAIL_COLUMNS = [
    "entry",
    "time",
    "kind",
    "role",
    "model",
    "status",
    "cached",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "saved_usd",
    "latency_s",
]


@dataclass
class LedgerEntry:
    """One call in the ledger; ``details`` holds one dict per model call (see DETAIL_COLUMNS)."""

    time: datetime
    kind: str  # "fusion" or "call"
    label: str
    status: str
    details: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float | None = None

    @property
    def models(self) -> str:
        "The models involved, panel first, then the judge after an arrow."
        panel = [d["model"] for d in self.details if d["role"] == "member"]
        others = [d["model"] for d in self.details if d["role"] != "member"]
        return " → ".join(p for p in (", ".join(panel), ", ".join(others)) if p)

    @property
    def cost_usd(self) -> float | None:
        "What was spent (the known part when ``cost_complete`` is False); None when nothing is known."
        return _known_sum([d["cost_usd"] for d in self.details])

    @property
    def cost_complete(self) -> bool:
        "False when a model call may have been billed but its cost is unknown."
        return all(d["cost_usd"] is not None for d in self.details)

    @property
    def saved_usd(self) -> float:
        return sum(d["saved_usd"] for d in self.details)

    @property
    def cache_hits(self) -> int:
        return sum(1 for d in self.details if d["cached"])

    def tokens(self, which: str) -> int:
        "Tokens billed (cached answers excluded) for ``which`` = 'prompt' or 'completion'."
        return sum(d[f"{which}_tokens"] or 0 for d in self.details if not d["cached"])

    def summary(self) -> dict[str, Any]:
        "This entry as one row (SUMMARY_COLUMNS)."
        return {
            "time": self.time,
            "kind": self.kind,
            "label": self.label,
            "models": self.models,
            "status": self.status,
            "calls": len(self.details),
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.tokens("prompt"),
            "completion_tokens": self.tokens("completion"),
            "cost_usd": self.cost_usd,
            "saved_usd": self.saved_usd,
            "elapsed_s": self.elapsed_s,
        }


def _known_sum(values: list[float | None]) -> float | None:
    "The sum of the known values; None when there are values and none is known."
    known = [v for v in values if v is not None]
    return sum(known, 0.0) if known or not values else None


def _detail(
    role: str,
    model: str,
    status: str,
    cached: bool,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    cost_usd: float | None,
    latency_s: float | None,
    saved_usd: float | None = None,
) -> dict[str, Any]:
    # A cache hit was not paid for again: its first price is money saved, not spent. Callers may
    # pass that price as saved_usd (Response convention) or as cost_usd of a cached call.
    # Unknown stays unknown (None), never $0: a call that reached the model may have been billed.
    billed = status not in ("skipped", "failed") or bool(prompt_tokens or completion_tokens)
    unknown = cost_usd is None and not cached and billed
    cost = None if unknown else float(cost_usd or 0.0)
    saved = float(saved_usd or 0.0) or ((cost or 0.0) if cached else 0.0)
    return {
        "role": role,
        "model": model,
        "status": status,
        "cached": cached,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": 0.0 if cached else cost,
        "saved_usd": saved if cached else 0.0,
        "latency_s": latency_s,
    }


def _label(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


class Ledger:
    """Every call of this session with its cost, tokens and cache hits. Thread-safe."""

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()
        # Responses already counted, by identity. An id leaves the set when its object dies (so a
        # reused id is never mistaken for a counted call); objects without weakrefs are kept alive.
        self._seen: set[int] = set()
        self._kept: list[Response] = []

    # -- recording -------------------------------------------------------------------------------
    def record_fusion(self, result: FusionResult, *, label: str | None = None) -> LedgerEntry | None:
        """Add a deliberation: one entry, a detail row per panel member, jury judge, the judge and a ``--tool`` primary.

        Responses already in the ledger are skipped: recording a rejudged result (same panel
        Response objects, new judge) adds a single "rejudge" call; recording a result twice adds
        nothing and returns None.
        """
        primary = getattr(result, "primary", None)
        jury = getattr(result, "jury", None) or []
        calls = [
            *((r, "member") for r in result.responses),
            *((r, "juror") for r in jury),
            *((r, role) for r, role in ((result.judge, "judge"), (primary, "primary")) if r is not None),
            *((r, "method") for r in getattr(result, "method_calls", None) or []),  # cross-examination, a round
        ]
        fresh = self._claim(calls)
        if calls and not fresh:
            return None
        panel = any(role == "member" for _, role in fresh)
        if not panel and result.responses:  # a rejudge: the panel was paid for by the original entry
            fresh = [(r, "rejudge" if role == "judge" else role) for r, role in fresh]
        details = [self._from_response(r, role) for r, role in fresh]
        kind = "fusion" if panel or not calls else "call"  # a --tool primary that answered alone is one call
        text = label if label is not None else result.prompt
        entry = LedgerEntry(datetime.now(), kind, _label(text), result.status, details, result.elapsed_s)
        return self._add(entry)

    def _claim(self, calls: list[tuple[Response, str]]) -> list[tuple[Response, str]]:
        "The calls not counted yet, now marked as counted."
        with self._lock:
            fresh = [(r, role) for r, role in calls if id(r) not in self._seen]
            for r, _ in fresh:
                self._seen.add(id(r))
                try:
                    weakref.finalize(r, self._seen.discard, id(r))
                except TypeError:
                    self._kept.append(r)
        return fresh

    def record_call(
        self,
        model: str,
        *,
        purpose: str = "call",
        label: str = "",
        status: str = "ok",
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        cost_usd: float | None = None,
        cached: bool = False,
        saved_usd: float | None = None,
        latency_s: float | None = None,
    ) -> LedgerEntry:
        """Add a single model call (``purpose``: "rejudge", "tool", ...) as its own entry.

        For a cache hit pass ``cached=True`` and the first price as ``saved_usd`` (or ``cost_usd``).
        """
        detail = _detail(
            purpose, model, status, cached, prompt_tokens, completion_tokens, cost_usd, latency_s, saved_usd
        )
        entry = LedgerEntry(datetime.now(), "call", _label(label or purpose), status, [detail], latency_s)
        return self._add(entry)

    def record_response(self, response: Response, *, purpose: str = "call", label: str = "") -> LedgerEntry | None:
        """Add a single call from a `Response` (e.g. a rejudge's judge); None if it was already counted."""
        if not self._claim([(response, purpose)]):
            return None
        return self.record_call(
            response.model,
            purpose=purpose,
            label=label,
            status=response.status,
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            cost_usd=response.cost_usd,
            cached=response.cached,
            saved_usd=getattr(response, "saved_usd", None),
            latency_s=response.latency_s,
        )

    @staticmethod
    def _from_response(r: Response, role: str) -> dict[str, Any]:
        return _detail(
            role,
            r.model,
            r.status,
            r.cached,
            r.prompt_tokens,
            r.completion_tokens,
            r.cost_usd,
            r.latency_s,
            getattr(r, "saved_usd", None),
        )

    def _add(self, entry: LedgerEntry) -> LedgerEntry:
        with self._lock:
            self._entries.append(entry)
        return entry

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._entries.clear()
            self._seen.clear()
            self._kept.clear()

    # -- reading ---------------------------------------------------------------------------------
    @property
    def entries(self) -> list[LedgerEntry]:
        "A snapshot of the entries, oldest first."
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def totals(self) -> dict[str, Any]:
        """Session totals: cost_usd, saved_usd, calls (fusion_calls + single_calls), cache_hits, tokens."""
        entries = self.entries
        prompt = sum(e.tokens("prompt") for e in entries)
        completion = sum(e.tokens("completion") for e in entries)
        return {
            "cost_usd": _known_sum([e.cost_usd for e in entries]) if entries else 0.0,
            "cost_complete": all(e.cost_complete for e in entries),
            "saved_usd": sum(e.saved_usd for e in entries),
            "calls": len(entries),
            "fusion_calls": sum(1 for e in entries if e.kind == "fusion"),
            "single_calls": sum(1 for e in entries if e.kind != "fusion"),
            "model_calls": sum(len(e.details) for e in entries),
            "cache_hits": sum(e.cache_hits for e in entries),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "tokens": prompt + completion,
        }

    def to_frame(self, detail: bool = False) -> pd.DataFrame:
        """A DataFrame with one row per call, or with ``detail=True`` one row per model call."""
        try:
            import pandas as pd
        except ImportError:
            raise FusionError("the ledger table needs pandas: pip install pandas") from None
        entries = self.entries
        if not detail:
            return pd.DataFrame([e.summary() for e in entries], columns=SUMMARY_COLUMNS)
        rows = [{"entry": i, "time": e.time, "kind": e.kind, **d} for i, e in enumerate(entries) for d in e.details]
        return pd.DataFrame(rows, columns=DETAIL_COLUMNS)

    def chart(self) -> Figure:
        """A matplotlib Figure of cumulative cost (and cache savings) over the session."""
        from .._render.ledger import chart

        return chart(self)

    # -- display ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from .._render.ledger import totals_line

        return f"<Ledger: {totals_line(self)}>"

    def _repr_html_(self) -> str:
        from .._render.ledger import to_html

        return to_html(self)


_SESSION = Ledger()


def ledger() -> Ledger:
    """The ledger of this Python session (one per kernel)."""
    return _SESSION
