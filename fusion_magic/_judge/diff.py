"""Two judges' analyses of the same panel, side by side: what only A found, only B found, and both.

    fixed = fusion.rejudge(result, judge="openai/gpt-4.1-mini")
    diff = compare_analyses(result, fixed)   # rich view in a notebook
    diff.to_frame()                          # section, found_by, text_a, text_b, models, similarity

Items are matched within each section with the same text similarity as a jury merge
(`fusion_magic._judge.similar`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._base.errors import ConfigError
from .._values.result import Analysis, FusionResult
from .similar import cluster, score, text_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AnalysisDiff", "compare_analyses"]

COLUMNS = ["section", "found_by", "text_a", "text_b", "models", "similarity"]


@dataclass
class AnalysisDiff:
    """Per section: ``only_a`` and ``only_b`` (items), ``both`` ((item of A, item of B) pairs)."""

    a: str  # what A is (its judge), for headings
    b: str
    only_a: dict[str, list[Any]] = field(default_factory=dict)
    only_b: dict[str, list[Any]] = field(default_factory=dict)
    both: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        "One dict per item (a pair counts once), sections in order: both first, then only A, only B."
        rows = []
        for section in Analysis.SECTIONS:
            for x, y in self.both.get(section, []):
                rows.append(_row(section, "both", x, y))
            rows += [_row(section, "only A", x, None) for x in self.only_a.get(section, [])]
            rows += [_row(section, "only B", None, y) for y in self.only_b.get(section, [])]
        return rows

    def counts(self) -> dict[str, int]:
        "How many items only A, only B and both found, over all sections."
        return {
            "only A": sum(map(len, self.only_a.values())),
            "only B": sum(map(len, self.only_b.values())),
            "both": sum(map(len, self.both.values())),
        }

    def to_frame(self) -> pd.DataFrame:
        "A DataFrame: section, found_by ('both' | 'only A' | 'only B'), text_a, text_b, models, similarity."
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=COLUMNS)

    # -- display: the views are in `_render.diff` ----------------------------------------------
    def __repr__(self) -> str:
        from .._render.diff import diff_text

        return diff_text(self)

    def _repr_markdown_(self) -> str:
        from .._render.diff import diff_markdown

        return diff_markdown(self)

    def _repr_html_(self) -> str:
        from .._render.diff import diff_html

        return diff_html(self)


def compare_analyses(a: FusionResult | Analysis, b: FusionResult | Analysis) -> AnalysisDiff:
    """What only ``a`` found, only ``b`` found, and both, per section, for two analyses of the same panel.

    Results must answer the same prompt with the same panel members (e.g. a result and its
    ``rejudge``); plain `Analysis` objects are compared as given.
    """
    if isinstance(a, FusionResult) and isinstance(b, FusionResult):
        _same_panel(a, b)
    analyses = [_analysis_of(a, "A"), _analysis_of(b, "B")]
    diff = AnalysisDiff(a=_label(a, "A"), b=_label(b, "B"))
    if diff.a == diff.b:
        diff.a, diff.b = f"{diff.a} (A)", f"{diff.b} (B)"
    for section in Analysis.SECTIONS:
        found = [(src, item) for src, analysis in zip("AB", analyses, strict=True) for item in analysis.items(section)]
        for group in cluster(section, found):
            items = dict(group)
            if "A" in items and "B" in items:
                diff.both.setdefault(section, []).append((items["A"], items["B"]))
            elif "A" in items:
                diff.only_a.setdefault(section, []).append(items["A"])
            else:
                diff.only_b.setdefault(section, []).append(items["B"])
    return diff


def _analysis_of(value: Any, which: str) -> Analysis:
    if isinstance(value, FusionResult):
        return value.analysis
    if isinstance(value, Analysis):
        return value
    raise ConfigError(f"compare_analyses: {which} must be a FusionResult or an Analysis, got {type(value).__name__}")


def _same_panel(a: FusionResult, b: FusionResult) -> None:
    panel_a, panel_b = [r.model for r in a.responses if r.ok], [r.model for r in b.responses if r.ok]
    if a.prompt != b.prompt or sorted(panel_a) != sorted(panel_b):
        raise ConfigError(
            "compare_analyses needs two analyses of the same panel answers (e.g. a result and "
            "its rejudge); these differ in " + ("prompt" if a.prompt != b.prompt else "panel")
        )


def _label(value: Any, which: str) -> str:
    if not isinstance(value, FusionResult):
        return which
    if value.jury:
        return f"jury of {len(value.jury)} (chair {value.jury[0].model})"
    return value.judge.model if value.judge is not None else which


def _row(section: str, found_by: str, x: Any, y: Any) -> dict[str, Any]:
    models = sorted({m for item in (x, y) if item is not None for m in _models(item)})
    return {
        "section": section,
        "found_by": found_by,
        "text_a": _text(x),
        "text_b": _text(y),
        "models": models,
        "similarity": round(score(x, y), 1) if x is not None and y is not None else None,
    }


def _models(item: Any) -> list[str]:
    if hasattr(item, "stances"):
        return [s.model for s in item.stances]
    if hasattr(item, "models"):
        return list(item.models)
    if hasattr(item, "members"):
        return [q.model for q in item.members]
    model = getattr(item, "model", None)
    return [model] if model else []


def _text(item: Any) -> str | None:
    if item is None:
        return None
    if hasattr(item, "stances"):
        stances = "; ".join(f"{s.model}: {s.stance}" for s in item.stances)
        return f"{item.topic} ({stances})" if stances else item.topic
    if hasattr(item, "insight"):
        return f"{item.model}: {item.insight}"
    return text_of(item)
