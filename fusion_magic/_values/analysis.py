"""The judge's analysis as data: its item types and `Analysis`, one list field per section of the table.

`fusion_magic._values.sections` names the sections; this module gives each item shape its type and builds
the model from the table, so a new section needs no edit here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, create_model, model_validator
from pydantic.json_schema import SkipJsonSchema

from .quotes import Agreement, Point, Quote
from .sections import SECTIONS as TABLE
from .sections import Shape, shape_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ITEM_TYPES", "Analysis", "Contradiction", "PartialCoverage", "Stance", "UniqueInsight", "quotes_of"]


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

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "section",
        "models",
        "text",
        "support",
        "quote",
        "verified",
        "agreement",
        "false_consensus",
        "disputed_by",
    )

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
                        # cross_examine(): a consensus point a member marked "disagree" (None: not examined)
                        "false_consensus": bool(item.disputed_by) if getattr(item, "marked", False) else None,
                        "disputed_by": [q.model for q in item.disputed_by] if getattr(item, "marked", False) else None,
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


# What one item of a section is, by its shape (`fusion_magic._values.sections`).
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
