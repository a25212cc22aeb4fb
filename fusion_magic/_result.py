"""What a deliberation returns: plain data with pandas export and rich display.

Rendering lives in `fusion_magic._render`; this module only holds data. The analysis types live in
`fusion_magic._analysis` and are re-exported here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ._analysis import Analysis, Contradiction, PartialCoverage, Stance, UniqueInsight
from ._quotes import Agreement, Point, Quote, QuoteMatch

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Agreement",
    "Analysis",
    "Contradiction",
    "FAILURE_REASONS",
    "FusionResult",
    "PartialCoverage",
    "Point",
    "Quote",
    "QuoteMatch",
    "Response",
    "Stance",
    "ToolCall",
    "UniqueInsight",
]

Status = Literal["ok", "partial", "judge_failed", "error", "interrupted"]
# OpenRouter Fusion's failure codes (its tool result's `failure_reason`), as `FusionResult.failure_reason`.
FAILURE_REASONS = (
    "all_panels_failed",
    "rate_limited",
    "insufficient_credits",
    "invalid_model",
    "cancelled",
    "judge_not_valid_json",
    "judge_schema_mismatch",
    "judge_upstream_error",
    "judge_empty_completion",
    "unexpected_error",
)
ResponseStatus = Literal[
    "ok", "failed", "timed_out", "cancelled", "skipped", "refused", "filtered", "truncated", "reasoning_only"
]


@dataclass
class ToolCall:
    """One tool a panel member called before answering: what it asked, what it got back."""

    name: str
    arguments: str = ""  # the JSON text the model wrote
    output: str = ""  # what the model was given back (capped)
    error: str | None = None  # the tool failed or refused; ``output`` then holds what the model saw
    elapsed_s: float | None = None

    @property
    def elapsed(self) -> float | None:
        return self.elapsed_s


@dataclass
class Response:
    """One model call: a panel member's answer, or the judge's."""

    model: str  # the member's name as shown everywhere (the model id unless the preset names it)
    content: str = ""
    status: ResponseStatus = "ok"
    error: str | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    served_by: str | None = None  # the model that actually answered (fallback, alias, router)
    cost_estimated: bool = False  # True when cost_usd comes from /models prices, not usage.cost
    saved_usd: float = 0.0  # a cache hit: what this answer cost when it was first paid for
    first_latency_s: float | None = None  # a cache hit: how long this answer took when first paid for
    status_code: int | None = None  # the HTTP status of the failure, when a server gave one
    sources: list[dict[str, str]] = field(default_factory=list)  # web citations: [{url, title}]
    reasoning: str = ""  # what the model thought before answering; shown collapsed, never judged
    reasoning_tokens: int | None = None
    finish_reason: str | None = None  # the server's word for why the answer ended ("stop", "length", ...)
    tool_calls: list[ToolCall] = field(default_factory=list)  # the tools it ran before answering, in order

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cost_unknown(self) -> bool:
        "True when this call may have been billed but its cost is not known (shown as unknown, never $0)."
        if self.cost_usd is not None or self.cached or self.status == "skipped":
            return False
        # A failed request is not billed unless the server said so: tokens reported without a cost.
        return bool(self.prompt_tokens or self.completion_tokens) if self.status == "failed" else True

    @property
    def reason(self) -> str:
        "One line naming the member and why it has no answer (its error already names it, mostly)."
        why = self.error or self.status
        return why if why.startswith(self.model) else f"{self.model}: {why}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Response:
        "The inverse of `to_dict`."
        from ._saved import from_fields

        return from_fields(cls, data)


@dataclass
class FusionResult:
    """The outcome of one deliberation.

    ``status`` is "ok", "partial" (some members failed), "judge_failed" (panel answers kept,
    raw judge text in ``judge_raw``), "error" (nobody answered) or "interrupted" (stopped by the
    user; the answers that arrived are kept). ``failure_reason`` gives OpenRouter Fusion's code
    for what went wrong (None when nothing did); ``notes`` says what the judge's reply lacked or
    what was dropped from it.
    """

    prompt: str
    status: Status
    answer: str = ""
    analysis: Analysis = field(default_factory=Analysis)
    responses: list[Response] = field(default_factory=list)
    judge: Response | None = None
    elapsed_s: float = 0.0
    error: str | None = None
    judge_raw: str | None = None
    preset: str | None = None
    estimate_usd: float | None = None
    tool: dict[str, Any] | None = None  # --tool mode: {"primary": id, "called": bool, "question": str}
    primary: Response | None = None  # --tool mode: the primary model's call(s)
    interrupted: bool = False
    failure_reason: str | None = None  # one of FAILURE_REASONS
    notes: list[str] = field(default_factory=list)
    # A follow-up: the earlier turns, oldest first, each {"prompt", "answer", "responses": {member: text}}.
    history: list[dict[str, Any]] = field(default_factory=list)
    jury: list[Response] = field(default_factory=list)  # --judges: each judge's analysis call, chair first
    verified_only: bool = False  # views hide unverified attributions (the analysis keeps them all)

    # -- conversation -------------------------------------------------------------------------
    def follow_up(self, question: str, **settings: Any) -> FusionResult:
        """Ask the same panel ``question`` with this result as context, judged again (cached like any call).

        Each member sees the earlier questions, its own earlier answers and the synthesized answers.
        ``settings`` change the `Fusion` that made this result (e.g. ``judge=...``, ``timeout=...``).
        """
        from ._pipeline import fusion_for

        return fusion_for(self, **settings).follow_up(self, question)

    # -- totals -------------------------------------------------------------------------------
    @property
    def calls(self) -> list[Response]:
        return [*self.responses, *self.jury, *(r for r in (self.judge, self.primary) if r is not None)]

    @property
    def cost_usd(self) -> float | None:
        """Total cost of this deliberation in USD (cache hits cost nothing); None when unknown.

        When some calls' costs are unknown (a server that reports no cost, a model without a price),
        this is the sum of the known ones, a lower bound, and ``cost_complete`` is False.
        """
        known = [r.cost_usd for r in self.calls if r.cost_usd is not None]
        if not known and not self.cost_complete:
            return None
        return sum(known, 0.0)

    @property
    def cost_complete(self) -> bool:
        "False when a call that may have been billed has no known cost (the total is then a lower bound)."
        return not any(r.cost_unknown for r in self.calls)

    @property
    def saved_usd(self) -> float:
        "What the cache hits in this deliberation would have cost."
        return sum(r.saved_usd for r in self.calls)

    @property
    def cache_hits(self) -> int:
        return sum(r.cached for r in self.calls)

    @property
    def usage(self) -> dict[str, int]:
        prompt = sum(r.prompt_tokens or 0 for r in self.calls)
        completion = sum(r.completion_tokens or 0 for r in self.calls)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @property
    def shown_analysis(self) -> Analysis:
        "The analysis as the views show it: without unverified attributions when ``verified_only``."
        return self.analysis.verified() if self.verified_only else self.analysis

    @property
    def failed(self) -> list[Response]:
        return [r for r in self.responses if not r.ok]

    @property
    def failed_models(self) -> list[dict[str, Any]]:
        "Fusion's `failed_models`: one {model, error, status_code} per member without an answer."
        return [
            {"model": r.model, "error": r.error or r.status, "status_code": r.status_code, "status": r.status}
            for r in self.failed
        ]

    @property
    def sources(self) -> list[dict[str, str]]:
        "The web pages the members cited (``--web``), deduplicated by URL: [{url, title}]."
        seen: dict[str, dict[str, str]] = {}
        for r in self.responses:
            for source in r.sources:
                url = source.get("url")
                if url and (url not in seen or not seen[url].get("title")):
                    seen[url] = {"url": url, "title": source.get("title") or ""}
        return list(seen.values())

    # -- export -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        "JSON-ready dict: status, answer, analysis (five lists), responses, judge, totals."
        return {
            "status": self.status,
            "prompt": self.prompt,
            "answer": self.answer,
            "analysis": self.analysis.model_dump(),
            "responses": [r.to_dict() for r in self.responses],
            "failed_models": self.failed_models,
            "failure_reason": self.failure_reason,
            "sources": self.sources,
            "notes": list(self.notes),
            "judge": self.judge.to_dict() if self.judge else None,
            "jury": [r.to_dict() for r in self.jury],
            "unverified": self.analysis.unverified,
            "verified_only": self.verified_only,
            "primary": self.primary.to_dict() if self.primary else None,
            "judge_raw": self.judge_raw,
            "error": self.error,
            "preset": self.preset,
            "tool": self.tool,
            "interrupted": self.interrupted,
            "history": self.history,
            "cost_usd": self.cost_usd,
            "cost_complete": self.cost_complete,
            "saved_usd": self.saved_usd,
            "estimate_usd": self.estimate_usd,
            "elapsed_s": self.elapsed_s,
            "usage": self.usage,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FusionResult:
        "The exact inverse of `to_dict` (derived totals are recomputed); `ConfigError` if it is not one."
        from ._saved import result_from_dict

        return result_from_dict(cls, data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        "Write `to_json()` to ``path`` (replacing it); `FusionResult.load(path)` gives this result back."
        from ._saved import save_result

        return save_result(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FusionResult:
        "A result saved with `save`: no network, no key; displays exactly as it did."
        from ._saved import load_result

        return load_result(cls, path)

    def to_frame(self) -> pd.DataFrame:
        "One row per panel member: model, content, status, error, latency_s, tokens, cost_usd, cached."
        import pandas as pd

        columns = [
            "model",
            "content",
            "status",
            "error",
            "latency_s",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "cached",
            "served_by",
        ]
        return pd.DataFrame([{c: getattr(r, c) for c in columns} for r in self.responses], columns=columns)

    # -- display ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from ._render import to_text

        return to_text(self)

    def _repr_html_(self) -> str:
        from ._render import to_html

        return to_html(self)

    def _repr_markdown_(self) -> str:
        from ._render import to_markdown

        return to_markdown(self)
