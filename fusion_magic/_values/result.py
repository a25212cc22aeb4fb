"""What a deliberation returns: plain data with pandas export and rich display.

Rendering lives in `fusion_magic._render`; this module only holds data. The analysis types live in
`fusion_magic._values.analysis` and are re-exported here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._base import hooks
from .analysis import Analysis, Contradiction, PartialCoverage, Stance, UniqueInsight
from .quotes import Agreement, Point, Quote, QuoteMatch
from .response import Response, ResponseStatus, ToolCall

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
    "ResponseStatus",
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
    estimate_floor: bool = False  # the estimate is a lower bound: members could call tools (more requests)
    tool: dict[str, Any] | None = None  # --tool mode: {"primary": id, "called": bool, "question": str}
    primary: Response | None = None  # --tool mode: the primary model's call(s)
    interrupted: bool = False
    failure_reason: str | None = None  # one of FAILURE_REASONS
    notes: list[str] = field(default_factory=list)
    # A follow-up: the earlier turns, oldest first, each {"prompt", "answer", "responses": {member: text}}.
    history: list[dict[str, Any]] = field(default_factory=list)
    jury: list[Response] = field(default_factory=list)  # --judges: each judge's analysis call, chair first
    verified_only: bool = False  # views hide unverified attributions (the analysis keeps them all)
    judge_order: list[str] = field(default_factory=list)  # the members in the order the judge read them
    vote: dict[str, Any] | None = None  # judge="vote": {answer, agree, of, support, groups, unreadable}
    marks: list[dict[str, Any]] = field(default_factory=list)  # cross_examine(): each member's marks
    rounds: list[dict[str, Any]] = field(default_factory=list)  # resolve(): per contradiction, before/after
    method_calls: list[Response] = field(default_factory=list)  # calls of cross_examine() and resolve()

    # -- conversation -------------------------------------------------------------------------
    def follow_up(self, question: str, **settings: Any) -> FusionResult:
        """Ask the same panel ``question`` with this result as context, judged again (cached like any call).

        Each member sees the earlier questions, its own earlier answers and the synthesized answers.
        ``settings`` change the `Fusion` that made this result (e.g. ``judge=...``, ``timeout=...``).
        """
        result: FusionResult = hooks.call("follow_up", self, question, **settings)
        return result

    def cross_examine(self, **settings: Any) -> FusionResult:
        "Each member marks the consensus and the items about the others (see `fusion_magic._engine.cross_exam`)."
        result: FusionResult = hooks.call("cross_examine", self, **settings)
        return result

    def resolve(self, **settings: Any) -> FusionResult:
        "One targeted round for the members of each contradiction (see `fusion_magic._engine.rounds`)."
        result: FusionResult = hooks.call("resolve", self, **settings)
        return result

    def ablate(self, judges: list[str] | None = None, **settings: Any) -> pd.DataFrame:
        "Leave each member out, and try each of ``judges``: what the analysis loses or gains (judge calls only)."
        frame: pd.DataFrame = hooks.call("ablate", self, judges, **settings)
        return frame

    # -- totals -------------------------------------------------------------------------------
    @property
    def calls(self) -> list[Response]:
        judged = (r for r in (self.judge, self.primary) if r is not None)
        return [*self.responses, *self.jury, *judged, *self.method_calls]

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
            "judge_order": list(self.judge_order),
            "vote": self.vote,
            "marks": self.marks,
            "rounds": self.rounds,
            "method_calls": [r.to_dict() for r in self.method_calls],
            "cost_usd": self.cost_usd,
            "cost_complete": self.cost_complete,
            "saved_usd": self.saved_usd,
            "estimate_usd": self.estimate_usd,
            "estimate_floor": self.estimate_floor,
            "elapsed_s": self.elapsed_s,
            "usage": self.usage,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FusionResult:
        "The exact inverse of `to_dict` (derived totals are recomputed); `ConfigError` if it is not one."
        from .saved import result_from_dict

        return result_from_dict(cls, data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        "Write `to_json()` to ``path`` (replacing it); `FusionResult.load(path)` gives this result back."
        from .saved import save_result

        return save_result(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FusionResult:
        "A result saved with `save`: no network, no key; displays exactly as it did."
        from .saved import load_result

        return load_result(cls, path)

    def to_frame(self) -> pd.DataFrame:
        """One row per panel member: model, content, status, error, latency_s, tokens, cost_usd, cached,
        served_by, reasoning (what the model thought before answering; "" when it said nothing),
        reasoning_tokens, finish_reason, and tool_calls (a list of {name, arguments, output, error,
        elapsed_s} per member)."""
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
            "reasoning",
            "reasoning_tokens",
            "finish_reason",
        ]
        rows = [
            {c: getattr(r, c) for c in columns} | {"tool_calls": [asdict(t) for t in r.tool_calls]}
            for r in self.responses
        ]
        columns += ["tool_calls"]
        if self.marks:  # cross_examine(): each member's marks, and the consensus points it disputes
            columns += ["agree", "disagree", "not_addressed", "disputes"]
            for row in rows:
                own = [m for m in self.marks if m["member"] == row["model"]]
                for column, word in (("agree", "agree"), ("disagree", "disagree"), ("not_addressed", "not addressed")):
                    row[column] = sum(m["mark"] == word for m in own)
                row["disputes"] = [m["text"] for m in own if m["section"] == "consensus" and m["mark"] == "disagree"]
        return pd.DataFrame(rows, columns=columns)

    # -- display ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from .._render import to_text

        return to_text(self)

    def _repr_html_(self) -> str:
        from .._render import to_html

        return to_html(self)

    def _repr_markdown_(self) -> str:
        from .._render import to_markdown

        return to_markdown(self)
