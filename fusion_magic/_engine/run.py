"""One run of a `Fusion`, from context to recorded result: the plain deliberation or tool mode,
and a re-judge. Each step returns its outcome; `build_result` makes the result once.

A cancelled run ends with `DeliberationCancelled` carrying the partial result (the answers that
arrived, status "interrupted"), recorded in the ledger like any other: what arrived was paid for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from .._base.config import Member, check_prompt
from .._render.progress import Tracker
from .._values.result import FusionResult
from . import conversation
from .budget import guard_run
from .context import RunContext, open_context
from .deliberation import build_result, deliberate, judge_answers
from .method_steps import after_run
from .nesting import nested, refuse_nesting
from .outcomes import Judgement, PanelCancelled, PanelOutcome, ToolOutcome
from .run_settings import RunSettings
from .runner import DeliberationCancelled, on_background
from .tool_mode import run_tool_mode

__all__ = ["Chat", "arun_prompt", "rejudge", "run"]


@dataclasses.dataclass(frozen=True)
class Chat:
    "A caller's conversation around the prompt: context for the panel; messages and tools for a primary."

    context: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    messages: list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tool_choice: Any = "auto"

    @classmethod
    def of(cls, messages: list[dict[str, Any]] | None, tools: Any = None, tool_choice: Any = None) -> Chat:
        "The chat around a prompt: the turns before ``messages``' last user message are the panel's context."
        context = (
            conversation.panel_context(messages[: conversation.question_index(messages)])
            if messages is not None
            else []
        )
        return cls(context, list(messages) if messages is not None else None, list(tools or []), tool_choice or "auto")


async def arun_prompt(
    fusion: RunSettings,
    prompt: str,
    *,
    tracker: Tracker | None = None,
    turns: Sequence[dict[str, Any]] = (),
    chat: Chat | None = None,
    shared: RunContext | None = None,
) -> FusionResult:
    """The engine's entry: deliberate on ``prompt`` with ``fusion``'s settings, on fusion_magic's loop.

    `Fusion.arun`, `map`'s rows and `compare` come here; so can a caller without the facade.
    """
    prompt = check_prompt(prompt)
    refuse_nesting()
    steps = run(fusion, prompt, tracker or fusion.tracker(), list(turns), chat or Chat(), shared)
    return await on_background(nested(steps))


async def run(
    fusion: RunSettings,
    prompt: str,
    tracker: Tracker,
    turns: list[dict[str, Any]],
    chat: Chat,
    shared: RunContext | None = None,
) -> FusionResult:
    """Deliberate on ``prompt`` (a batch passes its ``shared`` context; this run gets ``tracker``)."""
    started = time.perf_counter()
    ctx: RunContext | None = None
    estimate: float | None = None
    panel: PanelOutcome | None = None
    judgement: Judgement | None = None
    tool: ToolOutcome | None = None
    methods: FusionResult | None = None  # the result after --cross-examine / --rounds 2
    try:
        ctx = dataclasses.replace(shared, tracker=tracker) if shared else await open_context(fusion, tracker)
        estimate = tracker.estimate_usd = guard_run(fusion, ctx, prompt)
        tracker.estimate_floor = bool(fusion.toolset)
        if fusion.tool:
            tool = await run_tool_mode(
                ctx,
                fusion,
                prompt,
                history=turns,
                messages=chat.messages,
                tools=chat.tools,
                context=chat.context,
                tool_choice=chat.tool_choice,
            )
        else:
            panel, judgement = await deliberate(ctx, fusion, prompt, history=turns, context=chat.context)
            if fusion.cross_examine or fusion.rounds > 1:  # the methods asked for run on the same context
                made = _result(fusion, prompt, turns, started, estimate, panel=panel, judgement=judgement)
                methods = await after_run(ctx, fusion, made)
    except asyncio.CancelledError as exc:
        tracker.cancel_pending("interrupted")  # the judge too: it will not start now
        kept, turn = (exc.responses, exc.tool) if isinstance(exc, PanelCancelled) else ((), None)
        kept = kept or (panel.responses if panel is not None else ())  # stopped during --cross-examine / a round
        stopped = PanelOutcome(kept, interrupted=True)
        partial = _result(fusion, prompt, turns, started, estimate, panel=stopped, tool=turn)
        raise DeliberationCancelled(_record(fusion, ctx, partial)) from None
    finally:
        if ctx is not None and shared is None:
            # A run's own SQLite connection ends with it (a replaced cache file is reopened at once);
            # a batch's shared one serves every run and is closed by the batch.
            ctx.close()
    result = _result(fusion, prompt, turns, started, estimate, panel=panel, judgement=judgement, tool=tool)
    if methods is not None:
        result = dataclasses.replace(methods, elapsed_s=result.elapsed_s)
    return _record(fusion, ctx, result)


async def rejudge(
    fusion: RunSettings, result: FusionResult, member: Member, tracker: Tracker, jury: tuple[Member, ...] = ()
) -> FusionResult:
    "A new result: ``result``'s panel answers judged again by ``member`` (or ``jury``)."
    ctx = await open_context(fusion, tracker, prices=False)
    started = time.perf_counter()
    try:
        judgement = await judge_answers(
            ctx, fusion, result.responses, result.prompt, history=result.history, judge=member, jury=jury
        )
    finally:
        ctx.close()
    fresh = build_result(
        result.prompt,
        preset=result.preset,
        history=result.history,
        verified_only=fusion.verified_only,
        panel=PanelOutcome(tuple(result.responses)),
        judgement=judgement,
        elapsed_s=round(time.perf_counter() - started, 4),
    )
    return _record(fusion, ctx, fresh)


def _result(
    fusion: RunSettings,
    prompt: str,
    turns: list[dict[str, Any]],
    started: float,
    estimate: float | None,
    **outcomes: Any,
) -> FusionResult:
    return build_result(
        prompt,
        preset=fusion.preset_label,
        history=turns,
        verified_only=fusion.verified_only,
        estimate_usd=estimate,
        estimate_floor=bool(fusion.toolset),
        elapsed_s=round(time.perf_counter() - started, 4),
        **outcomes,
    )


def _record(fusion: RunSettings, ctx: RunContext | None, result: FusionResult) -> FusionResult:
    "Hand ``result`` to the settings' ``on_result`` (the facade keeps it), record what the run spent."
    if fusion.on_result is not None:
        fusion.on_result(result)
    ledger = ctx.ledger if ctx is not None and ctx.ledger is not None else fusion.ledger
    ledger.record_fusion(result)
    return result
