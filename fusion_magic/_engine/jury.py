"""A jury of judges: several judges analyse the same panel answers, their analyses are merged.

Every judge runs concurrently with the single-judge prompt (each call cached like any other), and
its quotes are checked against the answers. Items that say the same thing are matched across
judges (`similar.match`), and each merged item records which judges produced it (``agreement``,
k of the n judges that returned an analysis: a judge that failed did not disagree). The
synthesized answer comes from the chair, the first judge, in one more call that is given the
panel answers and the merged analysis; if that call fails, the chair's own answer is used.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._base.config import Member
from .._judge import prompt as judging
from .._judge.similar import cluster
from .._judge.unscaffold import unscaffold
from .._render.progress import JUDGE, juror_key
from .._values.result import Agreement, Analysis, Contradiction, PartialCoverage, Point, Quote, Response, UniqueInsight
from .._values.sections import SECTIONS
from . import followup
from .outcomes import Judgement
from .panel import ask
from .pricing import ModelPrice, estimate

if TYPE_CHECKING:
    from .context import RunContext

__all__ = ["extra_estimate", "merge", "run_jury", "synthesis_messages"]

CHAIR = """\
You chair a jury of judges who analysed a panel's answers to one question. The answers are \
below, each inside an answer tag whose member attribute is an anonymous label, followed by the \
jury's merged analysis (each item says how many judges found it).
Write the best possible answer to the question in Markdown: keep what is right, fix what is \
wrong, give most weight to what most judges found, fill the blind spots. The answer must stand \
on its own: do not mention members, labels, judges or this analysis. Reply with the answer only."""


async def run_jury(
    ctx: RunContext,
    responses: Sequence[Response],
    history: Sequence[dict[str, Any]],
    prompt: str,
    jurors: Sequence[Member],
    judge_one: Callable[[Member, str], Awaitable[Judgement]],
) -> Judgement:
    """A jury's verdict on ``responses``: each juror judged by ``judge_one(juror, progress key)``,
    their analyses merged, the chair's synthesis as the seat's call (each juror's in ``jury``)."""
    verdicts = await asyncio.gather(*(judge_one(j, juror_key(i)) for i, j in enumerate(jurors)))
    calls = tuple(v.judge for v in verdicts if v.judge is not None)
    notes: list[str] = []
    for v in verdicts:
        notes += [note for note in v.notes if note not in notes]
    done = [(j, v) for j, v in zip(jurors, verdicts, strict=True) if v.ok]
    if not done:
        return Judgement(
            jury=calls,
            notes=tuple(notes),
            raw=next((v.raw for v in verdicts if v.raw), None),
            error=f"all {len(jurors)} judges failed: " + "; ".join(v.error or "?" for v in verdicts),
            failure_reason=next((v.failure_reason for v in verdicts if v.failure_reason), None),
        )
    analysis = merge([(j.name, v.analysis or Analysis()) for j, v in done])
    answered = [r for r in responses if r.ok]
    chair = jurors[0]
    question = followup.judge_question(list(history), prompt) if history else prompt
    messages = synthesis_messages(question, {r.model: r.content for r in answered}, analysis)
    temperature = 0.0 if chair.temperature is None else chair.temperature
    synthesis, _ = await ask(
        ctx, chair, messages, key=JUDGE, accept=lambda text: bool(text.strip()), temperature=temperature
    )
    fallback = done[0][1].answer  # the chair's own answer when it has one
    written = unscaffold(synthesis.content) if synthesis.ok else ""
    answer = written or fallback
    return Judgement(judge=synthesis, jury=calls, answer=answer, analysis=analysis, notes=tuple(notes))


def synthesis_messages(question: str, answers: dict[str, str], analysis: Analysis) -> list[dict[str, str]]:
    "The chair's messages: the panel answers under labels, then the merged analysis in the same labels."
    labels = {name: label for label, name in judging.labels_for(list(answers)).items()}

    def anon(text: str) -> str:
        for name, label in labels.items():
            text = text.replace(name, f"member {label}")
        return text

    items = [
        {
            "section": row["section"],
            "members": [labels.get(m, m) for m in row["models"]],
            "point": anon(row["text"]),
            "judges": row["agreement"],
        }
        for row in analysis.rows()
    ]
    # The panel answers exactly as a judge sees them (fenced, defanged), then the merged analysis.
    judged = judging.build_messages(question, {labels[name]: text for name, text in answers.items()})[-1]["content"]
    merged = judging._defang(json.dumps(items, ensure_ascii=False, indent=1))
    return [
        {"role": "system", "content": CHAIR},
        {"role": "user", "content": f"{judged}\n\n<analysis>\n{merged}\n</analysis>"},
    ]


# -- merging --------------------------------------------------------------------------------------


def merge(analyses: list[tuple[str, Analysis]]) -> Analysis:
    """One analysis from several judges' (judge name, analysis), each item with its ``agreement``.

    The first judge's wording is kept; attributions are united per member, a verified quote
    preferred over an unverified one.
    """
    n = len(analyses)

    def groups(section: str) -> list[tuple[Agreement, list[Any]]]:
        found = [(judge, item) for judge, analysis in analyses for item in analysis.items(section)]
        merged = cluster(section, found)
        out = [(Agreement(judges=list(dict.fromkeys(j for j, _ in g)), of=n), [i for _, i in g]) for g in merged]
        return sorted(out, key=lambda g: -len(g[0].judges))  # stable: the chair's order among equals

    consensus = [_point(items, agree) for agree, items in groups("consensus")]
    blind = [(items[0].point, agree) for agree, items in groups("blind_spots")]
    # Sections added to the table as text: merged the same way (their agreement is not kept).
    extra = {
        s.name: [items[0].point for _, items in groups(s.name)]
        for s in SECTIONS
        if s.shape == "text" and s.name != "blind_spots"
    }
    return Analysis(
        **extra,
        consensus=[p.point for p in consensus],
        consensus_support=consensus,
        contradictions=[_contradiction(items, agree) for agree, items in groups("contradictions")],
        partial_coverage=[_partial(items, agree) for agree, items in groups("partial_coverage")],
        unique_insights=[_unique(items, agree) for agree, items in groups("unique_insights")],
        blind_spots=[text for text, _ in blind],
        blind_spots_agreement=[agree for _, agree in blind],
    )


def _united(quotes: list[Quote]) -> list[Quote]:
    "One attribution per member, in first-seen order, a verified one when any judge's was."
    best: dict[str, Quote] = {}
    for q in quotes:
        if q.model not in best or (q.verified and not best[q.model].verified):
            best[q.model] = q
    return list(best.values())


def _point(items: list[Point], agree: Agreement) -> Point:
    members = _united([q for p in items for q in p.members])
    return Point(point=items[0].point, members=members, of=max(p.of for p in items), agreement=agree)


def _contradiction(items: list[Contradiction], agree: Agreement) -> Contradiction:
    stances = _united([s for c in items for s in c.stances])
    return Contradiction(topic=items[0].topic, stances=stances, agreement=agree)  # type: ignore[arg-type]


def _partial(items: list[PartialCoverage], agree: Agreement) -> PartialCoverage:
    quotes = _united([q for p in items for q in p.quotes])
    models = list(dict.fromkeys(m for p in items for m in p.models))
    return PartialCoverage(models=models, point=items[0].point, quotes=quotes, agreement=agree)


def _unique(items: list[UniqueInsight], agree: Agreement) -> UniqueInsight:
    chosen = next((u for u in items if u.verified), items[0])
    return items[0].model_copy(
        update={"quote": chosen.quote, "verified": chosen.verified, "match": chosen.match, "agreement": agree}
    )


# -- cost -----------------------------------------------------------------------------------------


def extra_estimate(
    prompt_tokens: int,
    members: list[str],
    jurors: Sequence[Member],
    prices: dict[str, ModelPrice],
    *,
    max_tokens: int | None = None,
) -> tuple[float, list[str]]:
    """USD a jury adds to a one-judge estimate: every judge after the first, and the chair's synthesis.

    The synthesis reads what a judge reads plus the merged analysis and writes about as much.
    Returns (USD, models whose price is unknown).
    """
    total, unknown = 0.0, []
    for juror in jurors[1:]:
        est = estimate(prompt_tokens, members, juror.model, prices, max_tokens=max_tokens)
        total += est.judge[1] or 0.0
        unknown += est.unknown[-1:] if est.judge[1] is None else []
    chair = estimate(prompt_tokens, members, jurors[0].model, prices, max_tokens=max_tokens)
    total += chair.judge[1] or 0.0  # analysis in (about what a judge writes), an answer out
    return total, list(dict.fromkeys(unknown))
