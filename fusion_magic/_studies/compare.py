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
from typing import Any

from .._base.config import Member
from .._base.errors import ConfigError, FusionError
from .._engine.context import RunContext, open_context
from .._engine.deliberation import panel_messages
from .._engine.panel import ask, ask_panel
from .._engine.run import arun_prompt
from .._engine.run_settings import RunSettings
from .._engine.runner import run_sync
from .._engine.toolloop import ask_member
from .._values.comparison import Answer, Comparison, Grade, Pairing, PromptRun
from .._values.result import FusionResult, Response
from . import grading
from .compare_methods import method_latency
from .compare_plan import Plan, estimate_batch, estimate_line, make_plan

__all__ = ["acompare", "run_compare"]

GRADE = "grade"


def run_compare(
    fusion: RunSettings, prompts: Any, baselines: Any = None, *, progress: bool = True, **options: Any
) -> Comparison:
    "The blocking form of `acompare` (works inside Jupyter); shows the estimate, then a progress bar."
    from .._render.live import BatchBar

    plan = make_plan(fusion, prompts, baselines, **options)
    ready = run_sync(_prepare(fusion, plan))
    bar = None
    if progress:
        print(estimate_line(fusion, plan, ready.total, ready.new, ready.unknown))
        bar = BatchBar(len(plan.prompts), desc="compare")
    try:
        return run_sync(_execute(fusion, plan, ready, done=bar.add if bar else None), on_tick=bar.show if bar else None)
    finally:
        if bar:
            bar.show(final=True)


async def acompare(fusion: RunSettings, prompts: Any, baselines: Any = None, **options: Any) -> Comparison:
    "Compare ``fusion`` with each baseline on ``prompts`` (see `Fusion.compare`); no display."
    from .._engine.runner import on_background

    plan = make_plan(fusion, prompts, baselines, **options)
    ready = await on_background(_prepare(fusion, plan))
    return await on_background(_execute(fusion, plan, ready))


# -- running -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Ready:
    """The shared call and the batch estimate, made before anything is sent."""

    call: RunContext
    began: float
    total: float | None
    new: float | None
    unknown: list[str]


async def _prepare(fusion: RunSettings, plan: Plan) -> _Ready:
    began = time.perf_counter()
    call = await open_context(fusion, None)
    return _Ready(call, began, *(await estimate_batch(fusion, call, plan)))


async def _execute(
    fusion: RunSettings, plan: Plan, ready: _Ready, *, done: Callable[[dict[str, Any]], None] | None = None
) -> Comparison:
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

    try:
        runs = list(await asyncio.gather(*(one(i) for i in range(len(plan.prompts)))))
    finally:
        call.close()  # the cache connection this comparison opened
    if plan.mode == "reference":
        _score(plan, runs)
    settings = {
        "preset": fusion.preset_label,
        "panel": [m.name for m in fusion.panel],
        "judge": fusion.judge.name,
        "endpoint": call.client.endpoint.label,
        "temperature": fusion.temperature,
        "max_tokens": fusion.max_tokens,
        "system": fusion.system,
    }
    return Comparison(
        fusion=label,
        baselines=plan.names,
        runs=runs,
        grading=plan.mode,
        grader=plan.grader_name,
        estimate_usd=ready.total,
        estimate_new_usd=ready.new,
        elapsed_s=round(time.perf_counter() - ready.began, 4),
        settings=settings,
    )


async def _one(fusion: RunSettings, call: RunContext, plan: Plan, i: int, label: str) -> PromptRun:
    prompt = plan.prompts[i]
    later = tuple(m for m in plan.baselines if m in fusion.panel)  # answered from the panel's cache
    now = tuple(m for m in plan.baselines if m not in later)
    # gather: an interrupt cancels the deliberation and the baselines alike.
    fused, early = await asyncio.gather(_fuse(fusion, prompt, label), _ask_baselines(fusion, call, now, prompt))
    answers = {**early, **(await _ask_baselines(fusion, call, later, prompt))}
    # Methods after the deliberation and one after another: a method over a panel already asked
    # (this one, or `m*3` before `m*3+vote`) reads its answers from the cache instead of paying twice.
    for approach in plan.methods:
        answers[approach.name] = await _fuse(approach.fusion, prompt, approach.name)
    run = PromptRun(
        label=plan.labels[i],
        prompt=prompt,
        reference=plan.references[i] if plan.references is not None else None,
        answers=[fused, *(answers[name] for name in plan.names)],
    )
    if plan.mode == "pairwise" and plan.grader is not None:
        run.pairings = list(
            await asyncio.gather(*(_pair(fusion, call, plan.grader, prompt, fused, answers[n]) for n in plan.names))
        )
    return run


async def _fuse(fusion: RunSettings, prompt: str, label: str) -> Answer:
    try:
        result = await arun_prompt(fusion, prompt)
    except FusionError as exc:
        return Answer(label, status="error", error=str(exc))
    usable = result.status in ("ok", "partial") and bool(result.answer.strip())
    return Answer(
        label,
        status="ok" if usable else result.status,
        answer=result.answer,
        error=None if usable else result.error,
        cost_usd=(result.cost_usd or 0.0) + result.saved_usd,  # Answer's figures are known parts only
        paid_usd=result.cost_usd or 0.0,
        cost_known=result.cost_complete,
        latency_s=_fusion_latency(result, fusion.quorum),
        cached=bool(result.calls) and all(r.cached for r in result.calls),
        prompt_tokens=result.usage["prompt_tokens"],
        completion_tokens=result.usage["completion_tokens"],
    )


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
    return round(panel + (judge or 0.0) + method_latency(result), 4)


async def _ask_baselines(
    fusion: RunSettings, call: RunContext, members: tuple[Member, ...], prompt: str
) -> dict[str, Answer]:
    if not members:
        return {}
    messages = {m.name: panel_messages(fusion, m, prompt) for m in members}
    # A baseline has the panel's tools too: the comparison is of deliberation, not of tools.
    asked = await ask_panel(call, members, messages, timeout=fusion.timeout, quorum=None, asker=ask_member)
    responses = asked.responses
    out = {}
    for r in responses:
        fusion.ledger.record_response(r, purpose="baseline", label=prompt)
        out[r.model] = Answer(
            r.model,
            status=r.status,
            answer=r.content if r.ok else "",
            error=r.error,
            cost_usd=(r.cost_usd or 0.0) + r.saved_usd,
            paid_usd=0.0 if r.cached else (r.cost_usd or 0.0),
            cost_known=not r.cost_unknown,
            latency_s=_latency(r) if r.ok else None,
            cached=r.cached,
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
        )
    return out


async def _pair(
    fusion: RunSettings, call: RunContext, grader: Member, prompt: str, fused: Answer, base: Answer
) -> Pairing:
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


async def _grade(
    fusion: RunSettings, call: RunContext, grader: Member, prompt: str, order: str, first: str, second: str
) -> Grade:
    messages = grading.grade_messages(prompt, first, second)
    params: dict[str, Any] = {
        "response_format": grading.grade_format(),
        "tools": None,
        "temperature": 0.0 if grader.temperature is None else grader.temperature,
        "max_tokens": max(fusion.max_tokens, 1024) if fusion.max_tokens else None,
    }
    response, _ = await ask(call, grader, messages, key=GRADE, accept=_readable, **params)
    fusion.ledger.record_response(response, purpose="grade", label=prompt)
    if not response.ok:  # e.g. a server without structured output: the instructions alone ask for the JSON
        refused = response
        response, _ = await ask(
            call, grader, messages, key=GRADE, accept=_readable, **{**params, "response_format": None}
        )
        fusion.ledger.record_response(response, purpose="grade", label=prompt)
        if not response.ok:
            response.error = f"{refused.error}; without response_format: {response.error}"
    grade = Grade(
        order,
        cost_usd=(response.cost_usd or 0.0) + response.saved_usd,
        paid_usd=0.0 if response.cached else (response.cost_usd or 0.0),
        cached=response.cached,
    )
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


def _score(plan: Plan, runs: list[PromptRun]) -> None:
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
                raise ConfigError(
                    f"the grader failed on prompt {run.label!r} ({a.approach}): "
                    f"{type(exc).__name__}: {exc}; every answer is cached, so a re-run with a "
                    "fixed grader costs nothing"
                ) from None
