"""The evidence on analysis items: a member's quote and where it matched, jury agreement, a supported point.

Plain data; `fusion_magic._judge.evidence` fills it in, `fusion_magic._engine.jury` adds the agreement.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

__all__ = ["Agreement", "Point", "Quote", "QuoteMatch"]


class QuoteMatch(BaseModel):
    """Where a quote was found: a span of one member's answer (100 = exact once case and spacing are normalised).

    ``source`` is "tool" when the span is in the output of that member's own tool call number ``call``
    (0-based, in `Response.tool_calls`): the quote is backed by execution, not only by what it wrote.
    """

    model: str
    start: int
    end: int
    score: float
    source: Literal["answer", "tool"] = "answer"
    call: int | None = None


class Agreement(BaseModel):
    """How many judges of a jury produced an item: ``len(judges)`` of ``of``, shown as "2/3"."""

    judges: list[str]
    of: int

    def __str__(self) -> str:
        return f"{len(self.judges)}/{self.of}"


class Quote(BaseModel):
    """One attribution: a member, the judge's verbatim quote from its answer, and whether the answer holds it.

    ``verified`` is set by fusion_magic, never by the judge. A quote found only in another member's
    answer stays attributed as the judge said, unverified, with ``match.model`` naming where it was found.
    """

    model: str = Field(description="the panel member")
    quote: str = Field(default="", description="a short verbatim quote from THIS member's answer that shows it")
    verified: SkipJsonSchema[bool] = False
    match: SkipJsonSchema[QuoteMatch | None] = None

    @property
    def found_in(self) -> str | None:
        "The other member whose answer holds the quote, when it is not the attributed one."
        return self.match.model if self.match and self.match.model != self.model else None


class Point(BaseModel):
    """A consensus point (or blind spot) with its evidence: the members supporting it, of ``of`` answers."""

    point: str
    members: list[Quote] = Field(default_factory=list)
    of: int = 0
    agreement: Agreement | None = None
    # cross_examine(): ``members`` are then the members who marked it "agree" themselves, and
    # ``disputed_by`` those who marked it "disagree" (a false consensus: the judge's claim, not theirs).
    marked: bool = False
    disputed_by: list[Quote] = Field(default_factory=list)

    @property
    def false_consensus(self) -> bool:
        "True when a member disputes this consensus point in its own marks."
        return bool(self.disputed_by)

    @property
    def support(self) -> str | None:
        "k of n, e.g. '3/3'; None when the judge named no supporters."
        return f"{len(self.members)}/{self.of}" if self.members and self.of else None
