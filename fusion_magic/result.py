"""What a deliberation returns: plain data with pandas export and rich display.

Rendering lives in `fusion_magic._render`; this module only holds data.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field, create_model, model_validator
from pydantic.json_schema import SkipJsonSchema

from .quotes import Agreement, Point, Quote, QuoteMatch
from .sections import SECTIONS as TABLE
from .sections import Shape, shape_of

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
ResponseStatus = Literal["ok", "failed", "timed_out", "cancelled", "skipped"]


class Stance(Quote):
    stance: str = Field(description="what that member claims, in one or two sentences")


class Contradiction(BaseModel):
    topic: str = Field(description="the point on which members disagree")
    stances: list[Stance] = Field(description="one entry per member that took a position")
    agreement: SkipJsonSchema[Agreement | None] = None


class PartialCoverage(BaseModel):
    models: list[str] = Field(description="the members that covered this point (not all of them)")
    point: str = Field(description="the point only some members covered")
    quotes: list[Quote] = Field(default_factory=list, description="one quote per member in models")
    agreement: SkipJsonSchema[Agreement | None] = None


class UniqueInsight(Quote):
    insight: str = Field(description="the point, in one or two sentences")
    agreement: SkipJsonSchema[Agreement | None] = None


def quotes_of(item: Any) -> list[Quote]:
    "The attributions an analysis item makes (a stance, an insight, partial-coverage members, supporters)."
    if isinstance(item, Contradiction):
        return list(item.stances)
    if isinstance(item, PartialCoverage):
        return list(item.quotes)
    if isinstance(item, Point):
        return list(item.members)
    return [item] if isinstance(item, Quote) else []


class _Analysis(BaseModel):
    """The judge's structured reading of the panel answers.

    ``consensus`` and ``blind_spots`` stay lists of text; their evidence (supporters, jury
    agreement) is in ``consensus_support`` and ``blind_spots_agreement``, in the same order.
    ``items(section)`` gives every section as objects.
    """

    if TYPE_CHECKING:  # the fields, as `Analysis` gets them from the section table
        consensus: list[str] = Field(default_factory=list)
        contradictions: list[Contradiction] = Field(default_factory=list)
        partial_coverage: list[PartialCoverage] = Field(default_factory=list)
        unique_insights: list[UniqueInsight] = Field(default_factory=list)
        blind_spots: list[str] = Field(default_factory=list)
        consensus_support: list[Point] = Field(default_factory=list)
        blind_spots_agreement: list[Agreement | None] = Field(default_factory=list)

    SECTIONS: ClassVar[tuple[str, ...]] = tuple(s.name for s in TABLE)
    SPLIT_CONSENSUS: ClassVar[bool] = True  # read {point, support} consensus items as text + support

    @model_validator(mode="before")
    @classmethod
    def _consensus_objects(cls, data: Any) -> Any:
        # A judge's consensus items ({"point", "support": [{model, quote}]}) become text plus support.
        items = data.get("consensus") if isinstance(data, dict) and cls.SPLIT_CONSENSUS else None
        if not isinstance(items, list) or not any(isinstance(i, dict) for i in items):
            return data
        points = [
            Point(point=i, members=[])
            if isinstance(i, str)
            else Point(point=str(i.get("point") or i.get("text") or ""), members=i.get("support") or [])
            for i in items
            if isinstance(i, (str, dict))
        ]
        return {**data, "consensus": [p.point for p in points], "consensus_support": points}

    def items(self, section: str) -> list[Any]:
        "The items of ``section`` as objects: consensus points and blind spots as `Point`."
        if section == "consensus":
            support = self.consensus_support
            return [
                support[i] if i < len(support) and support[i].point == text else Point(point=text)
                for i, text in enumerate(self.consensus)
            ]
        if shape_of(section) == "text":  # text items as points, with their jury agreement if any
            agree = self.blind_spots_agreement if section == "blind_spots" else []
            return [
                Point(point=text, agreement=agree[i] if i < len(agree) else None)
                for i, text in enumerate(getattr(self, section))
            ]
        return list(getattr(self, section))

    @property
    def unverified(self) -> int:
        "How many attributions (stances, insights, partial-coverage members, supporters) are not verified."
        return sum(not q.verified for s in self.SECTIONS for item in self.items(s) for q in quotes_of(item))

    def verified(self) -> Analysis:
        "A copy without unverified attributions; items left with no verified evidence are dropped."

        def keep(quotes: list[Any]) -> list[Any]:
            return [q for q in quotes if q.verified]

        # A point whose supporters were named but none verified goes; one that names nobody stays.
        support = [
            p.model_copy(update={"members": keep(p.members)})
            for p in self.items("consensus")
            if not p.members or keep(p.members)
        ]
        contradictions = [c.model_copy(update={"stances": keep(c.stances)}) for c in self.contradictions]
        partial = []
        for p in self.partial_coverage:
            quotes = keep(p.quotes)
            if quotes:
                partial.append(p.model_copy(update={"quotes": quotes, "models": [q.model for q in quotes]}))
        changed = dict(
            consensus=[p.point for p in support],
            consensus_support=support,
            contradictions=[c for c in contradictions if len(c.stances) >= 2],
            partial_coverage=partial,
            unique_insights=keep(self.unique_insights),
            blind_spots=list(self.blind_spots),
            blind_spots_agreement=list(self.blind_spots_agreement),
        )
        # Sections without attributions (any added to the table) are kept as they are.
        return Analysis(**{**{name: list(getattr(self, name)) for name in self.SECTIONS}, **changed})

    COLUMNS: ClassVar[tuple[str, ...]] = ("section", "models", "text", "support", "quote", "verified", "agreement")

    def rows(self) -> list[dict[str, Any]]:
        """Long form: one dict per item with `section`, `models`, `text` and its evidence.

        `support` is k/n for consensus (and partial coverage), `quote` the quote (``model: quote``
        lines for several members), `verified` whether every attribution was found (None when the
        item attributes nothing), `agreement` k/n judges in a jury.
        """
        rows: list[dict[str, Any]] = []
        for section in self.SECTIONS:
            for item in self.items(section):
                quotes = quotes_of(item)
                if isinstance(item, Contradiction):
                    stances = "; ".join(f"{s.model}: {s.stance}" for s in item.stances)
                    models = [s.model for s in item.stances]
                    text = f"{item.topic} ({stances})" if stances else item.topic
                elif isinstance(item, PartialCoverage):
                    models, text = list(item.models), item.point
                elif isinstance(item, UniqueInsight):
                    models, text = [item.model], item.insight
                else:
                    models, text = [q.model for q in item.members], item.point
                support = item.support if isinstance(item, Point) else None
                if len(quotes) == 1:
                    quote = quotes[0].quote
                else:
                    quote = "\n".join(f"{q.model}: {q.quote}" for q in quotes if q.quote)
                agreement = getattr(item, "agreement", None)
                rows.append(
                    {
                        "section": section,
                        "models": models,
                        "text": text,
                        "support": support,
                        "quote": quote or None,
                        "verified": all(q.verified for q in quotes) if quotes else None,
                        "agreement": str(agreement) if agreement else None,
                    }
                )
        return rows

    def to_frame(self, verified_only: bool = False) -> pd.DataFrame:
        "A pandas DataFrame in long form: section, models, text, support, quote, verified, agreement."
        import pandas as pd

        source = self.verified() if verified_only else self
        return pd.DataFrame(source.rows(), columns=list(self.COLUMNS))

    def is_empty(self) -> bool:
        return not any(getattr(self, s) for s in self.SECTIONS)


# What one item of a section is, by its shape (`fusion_magic.sections`).
ITEM_TYPES: dict[Shape, Any] = {
    "text": str,
    "supported": str,
    "stances": Contradiction,
    "members": PartialCoverage,
    "member": UniqueInsight,
}

if TYPE_CHECKING:
    Analysis = _Analysis
else:
    # One list field per row of the section table (a new section needs no edit here), then the
    # evidence kept alongside the text sections (not part of the judge's schema).
    Analysis = create_model(
        "Analysis",
        __base__=_Analysis,
        __module__=__name__,
        **{s.name: (list[ITEM_TYPES[s.shape]], Field(default_factory=list, description=s.description)) for s in TABLE},
        consensus_support=(SkipJsonSchema[list[Point]], Field(default_factory=list)),
        blind_spots_agreement=(SkipJsonSchema[list[Agreement | None]], Field(default_factory=list)),
    )
    Analysis.__doc__ = _Analysis.__doc__
    Analysis.__qualname__ = "Analysis"


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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

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
        from .saved import from_fields

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
        from .followup import fusion_for

        return fusion_for(self, **settings).follow_up(self, question)

    # -- totals -------------------------------------------------------------------------------
    @property
    def calls(self) -> list[Response]:
        return [*self.responses, *self.jury, *(r for r in (self.judge, self.primary) if r is not None)]

    @property
    def cost_usd(self) -> float:
        "Total cost of this deliberation in USD (cache hits cost nothing)."
        return sum(r.cost_usd or 0.0 for r in self.calls)

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
        from .saved import result_from_dict

        return result_from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        "Write `to_json()` to ``path`` (replacing it); `FusionResult.load(path)` gives this result back."
        from .saved import save_result

        return save_result(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FusionResult:
        "A result saved with `save`: no network, no key; displays exactly as it did."
        from .saved import load_result

        return load_result(path)

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
