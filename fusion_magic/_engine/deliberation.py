"""Deliberate over messages, and build the `FusionResult` from what each step returned.

`deliberate` asks the panel and then the judge (or jury), returning their outcomes; the plain run
and tool mode both call it. `build_result` is the one place that turns outcomes into a result
and decides its ``status``, ``error``, ``failure_reason`` and ``answer``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from .._base.config import Member
from .._judge import evidence
from .._judge.order import judge_order
from .._render.progress import JUDGE
from .._values.result import Analysis, FusionResult, Response, Status
from . import conversation, followup
from .context import RunContext
from .judge_seat import merged, run_judge
from .outcomes import Judgement, PanelCancelled, PanelOutcome, ToolOutcome
from .panel import ask_panel
from .run_settings import RunSettings
from .toolloop import ask_member

__all__ = [
    "LOCAL_JUDGE_NOTE",
    "build_result",
    "deliberate",
    "judge_answers",
    "panel_failure",
    "panel_messages",
    "status_of",
]

LOCAL_JUDGE_NOTE = "the local judge is a tiny model (SmolLM2-135M): read its analysis as a demo, not a verdict"
Turns = Sequence[dict[str, Any]]


def panel_messages(
    fusion: RunSettings, member: Member, prompt: str, turns: Turns = (), context: Turns = ()
) -> list[dict[str, Any]]:
    "A member's chat: a follow-up's turns, else the caller's context turns, then the prompt."
    system = member.system if member.system is not None else fusion.system
    if turns:
        return followup.member_messages(member.name, system, list(turns), prompt)
    return [*([{"role": "system", "content": system}] if system else []), *context, {"role": "user", "content": prompt}]


async def deliberate(
    ctx: RunContext, fusion: RunSettings, question: str, *, history: Turns = (), context: Turns = ()
) -> tuple[PanelOutcome, Judgement | None]:
    """The panel's answers to ``question`` (after ``context``, or a follow-up's ``history``), then
    the judge's verdict on them (None when nobody answered).

    Cancelled, it raises `PanelCancelled` with the answers that arrived.
    """
    messages = {m.name: panel_messages(fusion, m, question, history, context) for m in fusion.panel}
    panel = await ask_panel(ctx, fusion.panel, messages, timeout=fusion.timeout, quorum=fusion.quorum, asker=ask_member)
    if not panel.answered:
        ctx.note(JUDGE, state="skipped", note="no panel answers")
        return panel, None
    try:
        judgement = await judge_answers(
            ctx, fusion, panel.responses, conversation.judge_question(question, list(context)), history=history
        )
    except asyncio.CancelledError:
        raise PanelCancelled(panel.responses) from None
    return panel, judgement


async def judge_answers(
    ctx: RunContext,
    fusion: RunSettings,
    responses: Sequence[Response],
    prompt: str,
    *,
    history: Turns = (),
    judge: Member | None = None,
    jury: tuple[Member, ...] | None = None,
) -> Judgement:
    """The verdict of ``judge`` (default: the Fusion's), of a jury (see `fusion_magic._engine.jury`), or the
    members' vote (``judge="vote"``, no call). Answers are read in `judge_order` (recorded)."""
    answered = [r for r in responses if r.ok]
    if fusion.vote:
        from .vote import vote

        ctx.note(JUDGE, state="done", note="vote: no judge call", latency_s=0.0)
        return vote(answered)
    order = judge_order(prompt, [r.model for r in answered], fusion.order)
    seen = sorted(answered, key=lambda r: order.index(r.model))
    jury = fusion.jury if jury is None and judge is None else (jury or ())
    if jury:
        from .jury import run_jury

        async def juror(member: Member, key: str) -> Judgement:
            return await _judge_one(ctx, fusion, seen, prompt, member, history=history, key=key)

        judged = await run_jury(ctx, seen, history, prompt, jury, juror)
    else:
        judged = await _judge_one(ctx, fusion, seen, prompt, judge or fusion.judge, history=history)
    return dataclasses.replace(judged, order=tuple(order))


async def _judge_one(
    ctx: RunContext,
    fusion: RunSettings,
    responses: Sequence[Response],
    prompt: str,
    judge: Member,
    *,
    history: Turns = (),
    key: str = JUDGE,
) -> Judgement:
    answered = [r for r in responses if r.ok]
    # Names a judge may use for a member besides its label: its model ids and the model that served it.
    # A model id asked by several seats (`model*N` samples) names none of them.
    aliases = _unique([(model, m.name) for m in fusion.panel for model in m.models])
    aliases |= _unique([(r.served_by, r.model) for r in answered if r.served_by])
    timeout = fusion.judge_timeout if fusion.judge_timeout is not None else fusion.timeout
    question = followup.judge_question(list(history), prompt) if history else prompt
    cap = fusion.judge_max_tokens if judge == fusion.judge else None
    outcome = await run_judge(
        ctx, judge, question, answered, timeout=timeout, max_tokens=fusion.max_tokens, cap=cap, aliases=aliases, key=key
    )
    seat = merged(judge.name, outcome)
    notes = (*outcome.notes, *((LOCAL_JUDGE_NOTE,) if fusion.is_local else ()))
    if not outcome.ok:
        return Judgement(
            judge=seat, notes=notes, raw=outcome.raw or None, error=outcome.error, failure_reason=outcome.failure_reason
        )
    outputs = {r.model: [c.output if not c.error else "" for c in r.tool_calls] for r in answered if r.tool_calls}
    analysis = evidence.verify(outcome.analysis or Analysis(), {r.model: r.content for r in answered}, outputs)
    return Judgement(judge=seat, answer=outcome.answer, analysis=analysis, notes=notes)


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str]:
    names: dict[str, set[str]] = {}
    for alias, name in pairs:
        names.setdefault(alias, set()).add(name)
    return {alias: next(iter(found)) for alias, found in names.items() if len(found) == 1}


def panel_failure(responses: Sequence[Response]) -> str:
    "Fusion's failure code when no member answered: one shared cause, else all_panels_failed."
    codes = {r.status_code for r in responses}
    if codes == {429}:
        return "rate_limited"
    if 402 in codes:
        return "insufficient_credits"
    if codes <= {400, 404} and all("model" in (r.error or "").lower() for r in responses):
        return "invalid_model"
    return "all_panels_failed"


def status_of(panel: PanelOutcome, judgement: Judgement | None) -> Status:
    "The status a deliberation's panel and judge outcomes give (not counting an interrupt or tool mode)."
    if not panel.answered:
        return "error"
    if judgement is None or not judgement.ok:
        return "judge_failed"
    return "ok" if all(r.ok for r in panel.responses) else "partial"


def build_result(
    prompt: str,
    *,
    preset: str | None,
    history: Turns = (),
    verified_only: bool = False,
    estimate_usd: float | None = None,
    estimate_floor: bool = False,
    panel: PanelOutcome | None = None,
    judgement: Judgement | None = None,
    tool: ToolOutcome | None = None,
    interrupted: bool = False,
    elapsed_s: float = 0.0,
) -> FusionResult:
    """The `FusionResult` of these outcomes: the one place its status, error, failure reason and
    answer are decided. In tool mode ``tool`` carries the panel and judgement it asked for."""
    if tool is not None:
        panel, judgement = tool.panel or panel, tool.judgement or judgement
    responses = list(panel.responses) if panel is not None else []
    fields: dict[str, Any]
    if interrupted or (panel is not None and panel.interrupted):
        kept = sum(r.ok for r in responses)
        why = f"interrupted: the {kept} answers that arrived are kept (and cached)" if kept else ""
        fields = {"status": "interrupted", "interrupted": True, "failure_reason": "cancelled"}
        fields["error"] = why or "interrupted before any answer arrived"
    elif tool is not None and tool.error is not None:
        fields = {"status": "error", "error": tool.error}
    elif panel is None:  # tool mode without the panel: the primary answered alone
        fields = {"status": "ok", "answer": tool.answer if tool is not None else ""}
    elif (status := status_of(panel, judgement)) == "error":
        reasons = "; ".join(r.reason for r in responses)
        fields = {"status": status, "error": f"all {len(responses)} panel members failed: {reasons}"}
        fields["failure_reason"] = panel_failure(responses)
    else:
        seat = judgement or Judgement()
        fields = {"status": status, "judge": seat.judge, "jury": list(seat.jury), "notes": list(seat.notes)}
        fields |= {"judge_order": list(seat.order), "vote": seat.vote}
        if status == "judge_failed":
            fields |= {"judge_raw": seat.raw, "error": seat.error, "failure_reason": seat.failure_reason}
        else:
            fields |= {"answer": tool.answer if tool is not None else seat.answer, "analysis": seat.analysis}
    if tool is not None:
        fields |= {"tool": tool.tool, "primary": tool.primary}
    return FusionResult(
        prompt=prompt,
        preset=preset,
        responses=responses,
        history=list(history),
        verified_only=verified_only,
        estimate_usd=estimate_usd,
        estimate_floor=estimate_floor and estimate_usd is not None,
        elapsed_s=elapsed_s,
        **fields,
    )
