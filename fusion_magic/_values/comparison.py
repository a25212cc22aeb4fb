"""What `Fusion.compare` returns: per-prompt answers and grades, and the per-approach summary.

Plain data (JSON round trip with `save` / `load`); the views are `to_frame` (one row per
approach), `per_prompt` (one row per prompt and approach), and a text table and an HTML table
with a cost-vs-quality scatter (drawn by `_render.comparison` and `_render.chart`). Money is what
an answer costs, whether it was paid in this run or came from the cache (`paid_usd` is what this
run paid).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .._base.errors import ConfigError, FusionError
from .._base.method_words import is_method
from .interval import wilson

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["Answer", "Comparison", "Grade", "Pairing", "PromptRun"]

FORMAT = "fusion_magic.Comparison"
VERSION = 1
CI_METHOD = "Wilson score interval, 95 %"


@dataclass
class Answer:
    """One approach's answer to one prompt."""

    approach: str
    status: str = "ok"  # ok, or why there is no answer: failed, timed_out, judge_failed, error, ...
    answer: str = ""
    error: str | None = None
    cost_usd: float = 0.0  # what this answer costs (paid now, or when it was first paid for)
    paid_usd: float = 0.0  # paid in this run (0 for an answer from the cache)
    cost_known: bool = True  # False: part of the cost is unknown, the figures above are a lower bound
    latency_s: float | None = None  # model time as first measured (fusion: slowest member + judge)
    cached: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    score: float | None = None  # reference grading: in [0, 1] (a failed answer scores 0)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class Grade:
    """One pairwise grader call, in one order."""

    order: str  # "fusion_first" (fusion is answer A) or "baseline_first"
    winner: str | None = None  # "fusion", "baseline", "tie"; None when the grader gave no verdict
    reason: str = ""
    error: str | None = None
    cost_usd: float = 0.0
    paid_usd: float = 0.0
    cached: bool = False


@dataclass
class Pairing:
    """Fusion against one baseline on one prompt: both orders and the outcome (fusion's side)."""

    baseline: str
    outcome: str | None = None  # "win", "tie", "loss"; None when not graded (both failed, no verdict)
    grades: list[Grade] = field(default_factory=list)
    note: str | None = None  # e.g. why no grader was asked


@dataclass
class PromptRun:
    """One prompt: its label (the index of the input), answers (fusion first) and pairings."""

    label: Any
    prompt: str
    reference: Any = None
    answers: list[Answer] = field(default_factory=list)
    pairings: list[Pairing] = field(default_factory=list)

    def answer(self, approach: str) -> Answer:
        return next(a for a in self.answers if a.approach == approach)


@dataclass
class Comparison:
    """Fusion against single models on a list of prompts: cost, latency and quality per approach.

    comparison.to_frame()     # one row per approach
    comparison.per_prompt()   # one row per prompt and approach
    comparison.save("cmp.json"); Comparison.load("cmp.json")
    """

    fusion: str  # the fusion approach's name, e.g. "fusion (budget)"
    baselines: list[str]
    runs: list[PromptRun] = field(default_factory=list)
    grading: str = "none"  # "reference", "pairwise" or "none"
    grader: str | None = None  # the scorer's name or the grader model
    estimate_usd: float | None = None  # the batch estimate, everything counted
    estimate_new_usd: float | None = None  # the part not in the cache, which max_cost limits
    elapsed_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    # -- figures -----------------------------------------------------------------------------------
    @property
    def approaches(self) -> list[str]:
        return [self.fusion, *self.baselines]

    @property
    def grades(self) -> list[Grade]:
        return [g for run in self.runs for p in run.pairings for g in p.grades]

    @property
    def grading_cost_usd(self) -> float:
        "What the grader calls cost (paid now or before)."
        return sum(g.cost_usd for g in self.grades)

    @property
    def paid_usd(self) -> float:
        "What this run paid, answers and grader together."
        return sum(a.paid_usd for run in self.runs for a in run.answers) + sum(g.paid_usd for g in self.grades)

    def summary(self) -> list[dict[str, Any]]:
        "One dict per approach (the rows of `to_frame`)."
        rows = [self._row(name) for name in self.approaches]
        base = rows[0]["cost_mean_usd"] if rows else None
        for row in rows:
            row["relative_cost"] = row["cost_mean_usd"] / base if base else None
        return rows

    def _row(self, name: str) -> dict[str, Any]:
        answers = [run.answer(name) for run in self.runs]
        n = len(answers)
        total = sum(a.cost_usd for a in answers)
        latencies = sorted(a.latency_s for a in answers if a.ok and a.latency_s is not None)
        row: dict[str, Any] = {
            "approach": name,
            "kind": "fusion" if name == self.fusion else "method" if is_method(name) else "baseline",
            "prompts": n,
            "failures": sum(not a.ok for a in answers),
            "cost_mean_usd": total / n if n else None,
            "cost_total_usd": total,
            "cost_complete": all(a.cost_known for a in answers),
            "relative_cost": None,
            "paid_usd": sum(a.paid_usd for a in answers),
            "latency_p50_s": _quantile(latencies, 0.5),
            "latency_p95_s": _quantile(latencies, 0.95),
        }
        if self.grading == "reference":
            scores = [a.score for a in answers if a.score is not None]
            ci = wilson(sum(scores), len(scores))
            row.update(
                score=sum(scores) / len(scores) if scores else None,
                score_ci_low=ci[0] if ci else None,
                score_ci_high=ci[1] if ci else None,
            )
        elif self.grading == "pairwise":
            outcomes = [p.outcome for run in self.runs for p in run.pairings if p.baseline == name]
            wins, ties, losses = (outcomes.count(o) for o in ("win", "tie", "loss"))
            graded = wins + ties + losses
            ci = wilson(wins + ties / 2, graded) if name != self.fusion else None
            row.update(
                fusion_win_rate=(wins + ties / 2) / graded if graded else None,
                win_ci_low=ci[0] if ci else None,
                win_ci_high=ci[1] if ci else None,
                wins=wins if name != self.fusion else None,
                ties=ties if name != self.fusion else None,
                losses=losses if name != self.fusion else None,
            )
        return row

    # -- tables ------------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per approach: cost per prompt (mean, total, relative to fusion), latency p50/p95,
        failures, and the score (with references) or fusion's win rate against it (pairwise), each
        with a 95 % Wilson interval."""
        pd = _pandas()
        return pd.DataFrame(self.summary()).set_index("approach")

    def per_prompt(self) -> pd.DataFrame:
        "The long table: one row per prompt and approach, with the answer, its cost, latency and grade."
        pd = _pandas()
        rows = []
        for run in self.runs:
            pairings = {p.baseline: p for p in run.pairings}
            for a in run.answers:
                row = {
                    "prompt_id": run.label,
                    "prompt": run.prompt,
                    "approach": a.approach,
                    "status": a.status,
                    "answer": a.answer,
                    "error": a.error,
                    "cost_usd": a.cost_usd,
                    "paid_usd": a.paid_usd,
                    "latency_s": a.latency_s,
                    "cached": a.cached,
                }
                if self.grading == "reference":
                    row.update(reference=run.reference, score=a.score)
                elif self.grading == "pairwise":
                    p = pairings.get(a.approach)
                    by_order = {g.order: g for g in p.grades} if p else {}
                    row.update(
                        outcome=p.outcome if p else None,
                        fusion_first=_winner(by_order.get("fusion_first")),
                        baseline_first=_winner(by_order.get("baseline_first")),
                        reasons=" | ".join(g.reason for g in p.grades if g.reason) if p else None,
                        grading_cost_usd=sum(g.cost_usd for g in p.grades) if p else None,
                        note=p.note if p else None,
                    )
                rows.append(row)
        return pd.DataFrame(rows)

    # -- save and load -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        "Write this comparison as JSON; `Comparison.load(path)` gives it back unchanged."
        text = self.to_json()
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError("not a saved fusion_magic comparison (no 'format': 'fusion_magic.Comparison')")
        if data.get("version") != VERSION:
            found = data.get("version")
            raise ConfigError(f"saved comparison has version {found!r}; this fusion_magic reads {VERSION}")
        body = {k: v for k, v in data.items() if k not in ("format", "version")}
        runs = [
            PromptRun(
                **{
                    **r,
                    "answers": [Answer(**a) for a in r["answers"]],
                    "pairings": [Pairing(**{**p, "grades": [Grade(**g) for g in p["grades"]]}) for p in r["pairings"]],
                }
            )
            for r in body.pop("runs")
        ]
        return cls(**body, runs=runs)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Comparison:
        "Read a comparison written by `save`."
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read a comparison from {os.fspath(path)}: {exc}") from None
        try:
            return cls.from_dict(data)
        except (TypeError, KeyError) as exc:
            raise ConfigError(f"{os.fspath(path)} is not a complete saved comparison ({exc})") from None

    # -- display -----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        from .._render.comparison import comparison_text

        return comparison_text(self)

    def _repr_html_(self) -> str:
        from .._render.comparison import comparison_html

        return comparison_html(self)

    def chart(self) -> Figure:
        """A matplotlib Figure: mean cost per prompt against quality, one point per approach.

        Quality is the score with references; pairwise it is each approach's win rate against
        fusion (fusion itself sits at 0.5); ungraded, the median latency.
        """
        from .._render.chart import cost_quality_figure

        return cost_quality_figure(self)


def _quantile(values: list[float], q: float) -> float | None:
    "Linear interpolation between order statistics (numpy's and pandas' default method)."
    if not values:
        return None
    pos = (len(values) - 1) * q
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


def _winner(grade: Grade | None) -> str | None:
    return None if grade is None else grade.winner


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise FusionError("this table needs pandas: pip install pandas") from None
    return pd
