"""`Fusion.compare`: the deliberation against single models on the user's own prompts.

Every prompt goes to the deliberation and, as one plain call each, to every baseline (same
prompt, same system prompt, temperature and max_tokens as the panel). Every call goes through
the same client, answer cache, retries and ledger as a deliberation, so a re-run is free and one
more baseline pays only for its own calls. A batch estimate is made first; with ``max_cost``
nothing is sent when the part not yet cached would cost more.

A baseline that is also a panel member (with the same settings) is asked after the
deliberation, so its answer is the panel member's cached one and costs nothing more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import grading
from .comparison import Answer, Comparison, Grade, Pairing, PromptRun
from .config import Member, check_prompt, parse_members
from .errors import BudgetError, ConfigError, FusionError
from .ledger import ledger
from .panel import Call, ask, ask_panel, is_cached
from .pricing import JUDGE_OVERHEAD_TOKENS, cost_from_tokens, count_tokens, estimate, find_price, load_models
from .result import FusionResult, Response
from .runner import run_sync

if TYPE_CHECKING:
    from .pipeline import Fusion

__all__ = ["acompare", "run_compare"]

GRADER_OUT_TOKENS = 150  # a reason and a verdict
GRADE = "grade"


@dataclasses.dataclass
class _Plan:
    """The checked inputs of one comparison."""

    prompts: list[str]
    labels: list[Any]
    references: list[Any] | None
    baselines: tuple[Member, ...]
    mode: str  # reference | pairwise | none
    scorer: Callable[[str, Any], Any] | None
    grader: Member | None
    grader_name: str | None
    concurrency: int
    max_cost: float | None


def run_compare(fusion: Fusion, prompts: Any, baselines: Any = None, *, progress: bool = True,
                **options: Any) -> Comparison:
    "The blocking form of `acompare` (works inside Jupyter); shows the estimate, then a progress bar."
    from .batch import _Progress

    plan = _plan(fusion, prompts, baselines, **options)
    ready = run_sync(_prepare(fusion, plan))
    bar = None
    if progress:
        print(_estimate_line(fusion, plan, ready))
        bar = _Progress(len(plan.prompts))
    try:
        return run_sync(_execute(fusion, plan, ready, done=bar.add if bar else None),
                        on_tick=bar.show if bar else None)
    finally:
        if bar:
            bar.show(final=True)


async def acompare(fusion: Fusion, prompts: Any, baselines: Any = None, **options: Any) -> Comparison:
    "Compare ``fusion`` with each baseline on ``prompts`` (see `Fusion.compare`); no display."
    from .runner import on_background

    plan = _plan(fusion, prompts, baselines, **options)
    ready = await on_background(_prepare(fusion, plan))
    return await on_background(_execute(fusion, plan, ready))


# -- checking the inputs (nothing is sent before this passes) ----------------------------------------
def _plan(fusion: Fusion, prompts: Any, baselines: Any, *, reference: Any = None, grader: Any = None,
          concurrency: int = 8, max_cost: float | None = None) -> _Plan:
    from .pipeline import _check_number

    texts, labels = _sequence(prompts, "prompts")
    if not texts:
        raise ConfigError("compare() needs at least one prompt")
    for label, text in zip(labels, texts, strict=True):
        try:
            check_prompt(text)
        except ConfigError as exc:
            raise ConfigError(f"prompt {label!r}: {exc}") from None
    references = None
    if reference is not None:
        references, _ = _sequence(reference, "reference")
        if len(references) != len(texts):
            raise ConfigError(f"reference has {len(references)} entries for {len(texts)} prompts; give one each")
    members = fusion.panel if baselines is None else _baselines(fusion, baselines)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive whole number, got {concurrency!r}")
    _check_number("max_cost", max_cost, allow_none=True, allow_zero=True)
    mode, scorer, judge, name = _grading(fusion, references is not None, grader)
    return _Plan([t.strip() for t in texts], labels, references, members, mode, scorer, judge, name,
                 concurrency, max_cost)


def _sequence(values: Any, what: str) -> tuple[list[Any], list[Any]]:
    "The items and their labels (a Series keeps its index) of a list-like input."
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None and isinstance(values, pd.DataFrame):
        raise ConfigError(f"compare() takes one column as {what}, e.g. df['question']")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{what} must be a list or a column of text, got {type(values).__name__}")
    items = list(values)
    labels = list(values.index) if pd is not None and isinstance(values, pd.Series) else list(range(len(items)))
    return [_plain(v) for v in items], [_plain(v) for v in labels]


def _plain(value: Any) -> Any:
    "A JSON-ready copy of a label or reference (numpy scalars become Python numbers, the rest text)."
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _baselines(fusion: Fusion, baselines: Any) -> tuple[Member, ...]:
    if isinstance(baselines, (str, Member)):
        baselines = [baselines] if isinstance(baselines, Member) else baselines
    members = parse_members(baselines, what="baselines", openrouter=fusion._strict_ids)
    if not members:
        raise ConfigError("baselines is empty; name at least one model to compare with")
    names = [m.name for m in members]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"baseline {name!r} is listed twice")
    return members


def _grading(fusion: Fusion, has_reference: bool, grader: Any) -> tuple[str, Any, Member | None, str | None]:
    if has_reference:
        if grader is None:
            return "reference", grading.contains, None, "contains"
        if callable(grader):
            return "reference", grader, None, getattr(grader, "__name__", type(grader).__name__)
        if isinstance(grader, str) and grader in grading.SCORERS:
            return "reference", grading.SCORERS[grader], None, grader
        raise ConfigError("with reference=, grader is a scorer: 'exact', 'contains' or a function "
                          "(answer, reference) -> score in [0, 1]")
    if grader is False or grader == "none":
        return "none", None, None, None
    if callable(grader) or grader in grading.SCORERS:
        raise ConfigError("a scorer needs expected answers: pass reference=[...] (one per prompt)")
    if grader is None or grader == "judge":
        return "pairwise", None, fusion.judge, fusion.judge.name
    if isinstance(grader, (str, Member)):
        (member,) = parse_members([grader], what="grader", openrouter=fusion._strict_ids)
        return "pairwise", None, member, member.name
    raise ConfigError(f"grader must be 'judge', a model id, a scorer or None, got {type(grader).__name__}")


# -- running -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Ready:
    """The shared call and the batch estimate, made before anything is sent."""

    call: Call
    began: float
    total: float | None
    new: float | None
    unknown: list[str]


async def _prepare(fusion: Fusion, plan: _Plan) -> _Ready:
    began = time.perf_counter()
    call = await fusion._call(None)
    return _Ready(call, began, *(await _estimate(fusion, call, plan)))


async def _execute(fusion: Fusion, plan: _Plan, ready: _Ready, *,
                   done: Callable[[dict[str, Any]], None] | None = None) -> Comparison:
    call = ready.call
    gate = asyncio.Semaphore(plan.concurrency)
    label = f"fusion ({fusion.preset_label})"

    async def one(i: int) -> PromptRun:
        async with gate:
            run = await _one(fusion, call, plan, i, label)
        if done:
            paid = sum(a.paid_usd for a in run.answers) + sum(g.paid_usd for p in run.pairings for g in p.grades)
            done({"status": "ok" if run.answers[0].ok else "error", "cost_usd": paid})
        return run

    runs = list(await asyncio.gather(*(one(i) for i in range(len(plan.prompts)))))
    if plan.mode == "reference":
        _score(plan, runs)
    settings = {"preset": fusion.preset_label, "panel": [m.name for m in fusion.panel], "judge": fusion.judge.name,
                "endpoint": call.client.endpoint.label, "temperature": fusion.temperature,
                "max_tokens": fusion.max_tokens, "system": fusion.system}
    return Comparison(fusion=label, baselines=[m.name for m in plan.baselines], runs=runs, grading=plan.mode,
                      grader=plan.grader_name, estimate_usd=ready.total, estimate_new_usd=ready.new,
                      elapsed_s=round(time.perf_counter() - ready.began, 4), settings=settings)


async def _one(fusion: Fusion, call: Call, plan: _Plan, i: int, label: str) -> PromptRun:
    prompt = plan.prompts[i]
    later = tuple(m for m in plan.baselines if m in fusion.panel)  # answered from the panel's cache
    now = tuple(m for m in plan.baselines if m not in later)
    # gather: an interrupt cancels the deliberation and the baselines alike.
    fused, early = await asyncio.gather(_fuse(fusion, prompt, label), _ask_baselines(fusion, call, now, prompt))
    answers = {**early, **(await _ask_baselines(fusion, call, later, prompt))}
    run = PromptRun(label=plan.labels[i], prompt=prompt,
                    reference=plan.references[i] if plan.references is not None else None,
                    answers=[fused, *(answers[m.name] for m in plan.baselines)])
    if plan.mode == "pairwise" and plan.grader is not None:
        run.pairings = list(await asyncio.gather(
            *(_pair(fusion, call, plan.grader, prompt, fused, answers[m.name]) for m in plan.baselines)))
    return run


async def _fuse(fusion: Fusion, prompt: str, label: str) -> Answer:
    try:
        result = await fusion.arun(prompt)
    except FusionError as exc:
        return Answer(label, status="error", error=str(exc))
    usable = result.status in ("ok", "partial") and bool(result.answer.strip())
    return Answer(
        label, status="ok" if usable else result.status, answer=result.answer, error=None if usable else result.error,
        cost_usd=result.cost_usd + result.saved_usd, paid_usd=result.cost_usd,
        latency_s=_fusion_latency(result, fusion.quorum), cached=bool(result.calls) and all(
            r.cached for r in result.calls),
        prompt_tokens=result.usage["prompt_tokens"], completion_tokens=result.usage["completion_tokens"])


def _latency(r: Response) -> float | None:
    "How long the call took when it was paid for (a cache hit keeps its first latency)."
    return r.first_latency_s if r.cached else r.latency_s


def _fusion_latency(result: FusionResult, quorum: int | None) -> float | None:
    "The deliberation's model time: the slowest answering member (the K-th with a quorum) plus the judge."
    members = sorted(x for r in result.responses if r.ok and (x := _latency(r)) is not None)
    if not members:
        return None
    panel = members[min(quorum, len(members)) - 1] if quorum else members[-1]
    judge = _latency(result.judge) if result.judge is not None else None
    return round(panel + (judge or 0.0), 4)


async def _ask_baselines(fusion: Fusion, call: Call, members: tuple[Member, ...], prompt: str) -> dict[str, Answer]:
    if not members:
        return {}
    own = dataclasses.replace(call, partial=[])
    messages = {m.name: fusion._messages(m, prompt) for m in members}
    responses = await ask_panel(own, members, messages, timeout=fusion.timeout, quorum=None)
    out = {}
    for r in responses:
        ledger().record_response(r, purpose="baseline", label=prompt)
        out[r.model] = Answer(
            r.model, status=r.status, answer=r.content if r.ok else "", error=r.error,
            cost_usd=(r.cost_usd or 0.0) + r.saved_usd, paid_usd=0.0 if r.cached else (r.cost_usd or 0.0),
            latency_s=_latency(r) if r.ok else None, cached=r.cached,
            prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens)
    return out


async def _pair(fusion: Fusion, call: Call, grader: Member, prompt: str, fused: Answer, base: Answer) -> Pairing:
    "Fusion against one baseline on one prompt: both orders, unless a side has no answer."
    if not fused.ok or not base.ok:
        if not fused.ok and not base.ok:
            return Pairing(base.approach, None, note="neither answered: not graded")
        winner = "win" if fused.ok else "loss"
        side = "the baseline" if fused.ok else "fusion"
        return Pairing(base.approach, winner, note=f"{side} gave no answer: counted as a {winner}, no grader call")
    orders = (("fusion_first", fused.answer, base.answer), ("baseline_first", base.answer, fused.answer))
    grades = list(await asyncio.gather(*(_grade(fusion, call, grader, prompt, o, a, b) for o, a, b in orders)))
    points = [{"fusion": 1.0, "tie": 0.5, "baseline": 0.0}[g.winner] for g in grades if g.winner]
    note = None if len(points) == 2 else "one order had no verdict" if points else "the grader gave no verdict"
    return Pairing(base.approach, grading.outcome(points), grades, note)


async def _grade(fusion: Fusion, call: Call, grader: Member, prompt: str, order: str, first: str,
                 second: str) -> Grade:
    messages = grading.grade_messages(prompt, first, second)
    params = {"response_format": grading.grade_format(), "tools": None,
              "temperature": 0.0 if grader.temperature is None else grader.temperature,
              "max_tokens": max(fusion.max_tokens, 1024) if fusion.max_tokens else None}
    response, _ = await ask(call, grader, messages, key=GRADE, accept=_readable, **params)
    ledger().record_response(response, purpose="grade", label=prompt)
    if not response.ok:  # e.g. a server without structured output: the instructions alone ask for the JSON
        first = response
        response, _ = await ask(call, grader, messages, key=GRADE, accept=_readable,
                                **{**params, "response_format": None})
        ledger().record_response(response, purpose="grade", label=prompt)
        if not response.ok:
            response.error = f"{first.error}; without response_format: {response.error}"
    grade = Grade(order, cost_usd=(response.cost_usd or 0.0) + response.saved_usd,
                  paid_usd=0.0 if response.cached else (response.cost_usd or 0.0), cached=response.cached)
    if not response.ok:
        grade.error = response.error or "grader call failed"
        return grade
    try:
        label, grade.reason = grading.parse_grade(response.content)
    except ValueError as exc:
        grade.error = str(exc)
        return grade
    fusion_label = "A" if order == "fusion_first" else "B"
    grade.winner = "tie" if label == "tie" else "fusion" if label == fusion_label else "baseline"
    return grade


def _readable(text: str) -> bool:
    try:
        grading.parse_grade(text)
    except ValueError:
        return False
    return True


def _score(plan: _Plan, runs: list[PromptRun]) -> None:
    "Reference grading: every answer scored; a failed answer scores 0."
    assert plan.scorer is not None and plan.references is not None
    for run in runs:
        for a in run.answers:
            if not a.ok:
                a.score = 0.0
                continue
            try:
                a.score = grading.check_score(plan.scorer(a.answer, run.reference))
            except Exception as exc:  # noqa: BLE001 - the user's scorer: any failure is reported the same way
                raise ConfigError(f"the grader failed on prompt {run.label!r} ({a.approach}): "
                                  f"{type(exc).__name__}: {exc}; every answer is cached, so a re-run with a "
                                  "fixed grader costs nothing") from None


# -- the batch estimate ------------------------------------------------------------------------------
async def _estimate(fusion: Fusion, call: Call, plan: _Plan) -> tuple[float | None, float | None, list[str]]:
    """(everything, the part not in the cache) in USD; `BudgetError` when that part exceeds max_cost.

    A deliberation counts as new when a panel answer is not cached; a baseline when its answer
    is not; a grader call when either answer it reads is new (its own key depends on them).
    """
    try:
        call.prices = await load_models(call.client.http, call.client.endpoint.base_url, call.client.headers())
    except Exception as exc:  # noqa: BLE001 - no prices is not fatal unless a budget needs them
        if plan.max_cost is not None:
            raise BudgetError(f"cannot check max_cost: model prices unavailable ({exc})") from None
        return None, None, []
    total = new = 0.0
    unknown: set[str] = set()
    grader_price = find_price(call.prices, plan.grader.model) if plan.grader else None
    for prompt in plan.prompts:
        tokens = count_tokens(prompt)
        models = [m.model for m in fusion.panel]
        fused = estimate(tokens, models, fusion.judge.model, call.prices, max_tokens=fusion.max_tokens)
        solo = estimate(tokens, [m.model for m in plan.baselines], fusion.judge.model, call.prices,
                        max_tokens=fusion.max_tokens)
        unknown.update(fused.unknown, (m for m, c in solo.members if c is None))
        fused_new = not all(is_cached(call, m, fusion._messages(m, prompt)) for m in fusion.panel)
        total += fused.total
        new += fused.total if fused_new else 0.0
        for member, (_, cost) in zip(plan.baselines, solo.members, strict=True):
            base_new = not is_cached(call, member, fusion._messages(member, prompt))
            total += cost or 0.0
            if member not in fusion.panel:  # a panel member's answer is paid for once, by the deliberation
                new += (cost or 0.0) if base_new else 0.0
            if plan.grader is not None:
                reads = tokens + 2 * solo.completion_tokens + JUDGE_OVERHEAD_TOKENS // 2
                grade = 2 * (cost_from_tokens(grader_price, reads, GRADER_OUT_TOKENS) or 0.0)
                total += grade
                new += grade if fused_new or base_new else 0.0
    if plan.grader is not None and grader_price is None:
        unknown.add(plan.grader.model)
    if plan.max_cost is not None:
        priced = call.client.endpoint.is_openrouter or any(p.known for p in call.prices.values())
        if unknown and priced:
            raise BudgetError(f"cannot estimate the cost of {', '.join(sorted(unknown))} (not in /models); "
                              "drop max_cost or choose listed models")
        if new > plan.max_cost:
            raise BudgetError(f"estimated cost {_usd(new)} of what is not cached yet exceeds max_cost "
                              f"${plan.max_cost:g}; nothing was sent")
    return total, new, sorted(unknown)


def _estimate_line(fusion: Fusion, plan: _Plan, ready: _Ready) -> str:
    "The batch estimate as one line, shown before anything is sent."
    total, new, unknown = ready.total, ready.new, ready.unknown
    n, k = len(plan.prompts), len(plan.baselines)
    what = f"{n} prompt{'s' * (n != 1)} × ({fusion.preset_label} fusion + {k} baseline{'s' * (k != 1)})"
    if plan.mode == "pairwise":
        what += f" + {2 * n * k} grader calls"
    if total is None or new is None:
        return f"compare: {what}: cost unknown (the endpoint lists no prices)"
    text = f"compare: {what}: about {_usd(new)} to pay now"
    if total > new:
        text += f" ({_usd(total - new)} more is already cached)"
    if unknown:
        text += f"; price unknown for {', '.join(unknown)}"
    return text


def _usd(value: float | None) -> str:
    from ._format import fmt_cost

    return fmt_cost(value)
