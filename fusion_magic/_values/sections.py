"""The analysis sections, one table: the judge's prompt and schema, the lenient reader, `Analysis`,
its long-form rows, the HTML / Markdown views, the widget and the emulator's judge all read it.

A row gives a section's name (its JSON key, the `Analysis` field, the ``section`` column of
`Analysis.to_frame()`), its title, its item shape, the field description in the JSON schema, the
judge's instruction, an example of its items (for the one-line shape in the prompt) and the other
keys a judge may use for it. The shape says what one item is:

    text       a string                                            ("blind_spots")
    supported  a string, with the members stating it and quotes    ("consensus")
    stances    {topic, stances: [{model, quote, stance}]}          ("contradictions")
    members    {models, point, quotes}: some members' point        ("partial_coverage")
    member     {model, quote, insight}: one member's point         ("unique_insights")

Adding a section is one row here. This module loads nothing heavy (``%load_ext`` stays cheap).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SECTIONS", "Section", "Shape", "shape_of", "titles"]

Shape = Literal["text", "supported", "stances", "members", "member"]


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    shape: Shape
    description: str  # the field's description in the JSON schema
    prompt: str  # the judge's instruction: `- "<name>": <prompt>` in its system prompt
    example: str = '["..."]'  # the section's value in the prompt's one-line example of a reply
    aliases: tuple[str, ...] = ()  # other (normalised) keys a judge may write for it


SECTIONS: tuple[Section, ...] = (
    Section(
        "consensus",
        "Consensus",
        "supported",
        "claims every member agrees on",
        'claims all members agree on, each with its "support": every member that states it',
        '[{"point": "...", "support": [{"model": "A", "quote": "..."}]}]',
        ("agreement", "agreements", "agreed", "consensus_points", "common_ground", "shared_points", "agreed_points"),
    ),
    Section(
        "contradictions",
        "Contradictions",
        "stances",
        "points of disagreement",
        "points where members disagree, each with the stance of every member involved",
        '[{"topic": "...", "stances": [{"model": "A", "quote": "...", "stance": "..."}]}]',
        ("contradiction", "disagreements", "disagreement", "conflicts", "disputes", "conflicting_points"),
    ),
    Section(
        "partial_coverage",
        "Partial coverage",
        "members",
        "points covered by some members but not all",
        "points covered by some members but not all, with those members' labels and one quote per member",
        '[{"models": ["A"], "point": "...", "quotes": [{"model": "A", "quote": "..."}]}]',
        ("partial", "partially_covered", "partial_coverages", "partial_agreement", "partial_overlap", "coverage"),
    ),
    Section(
        "unique_insights",
        "Unique insights",
        "member",
        "valuable points made by exactly one member",
        "valuable points made by exactly one member",
        '[{"model": "A", "quote": "...", "insight": "..."}]',
        ("unique_insight", "unique", "insights", "unique_points", "distinct_insights", "unique_contributions"),
    ),
    Section(
        "blind_spots",
        "Blind spots",
        "text",
        "what every member missed that matters for the question",
        "what every member missed that matters",
        '["..."]',
        ("blind_spot", "blindspots", "gaps", "missing", "omissions", "oversights", "missed_points", "missed"),
    ),
)


def titles() -> dict[str, str]:
    "Section name -> title, in table order."
    return {s.name: s.title for s in SECTIONS}


def shape_of(name: str) -> Shape:
    "The item shape of section ``name``."
    for s in SECTIONS:
        if s.name == name:
            return s.shape
    raise KeyError(f"no analysis section {name!r}")
