"""Server-tool mode: a primary model gets a `fusion` function tool and decides whether to call it.

If it calls the tool, the panel and judge run on the question it asked (the same `deliberate` a
plain run uses), and the primary writes the final answer from the analysis; if not, its own
answer is the result. Either way the outcome records whether the tool was called. The panel
never gets the tool, so fusion cannot nest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from .._base.config import Member
from .context import RunContext
from .deliberation import deliberate, status_of
from .outcomes import PanelCancelled, ToolOutcome
from .panel import ask, merge_calls
from .run_settings import RunSettings

__all__ = ["FUSION_TOOL", "run_tool_mode"]

FUSION_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "fusion",
        "description": (
            "Ask a panel of different AI models the question and have a judge compare their answers. "
            "Returns consensus, contradictions, unique insights, blind spots and a synthesized answer. "
            "Worth it for hard, contested or high-stakes questions; costs several model calls."
        ),
        "parameters": {
            "type": "object",
            "properties": {"question": {"type": "string", "description": "the question for the panel"}},
            "required": ["question"],
        },
    },
}


async def run_tool_mode(
    ctx: RunContext,
    fusion: RunSettings,
    prompt: str,
    *,
    history: Sequence[dict[str, Any]] = (),
    messages: list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
    context: list[dict[str, Any]] | None = None,
    tool_choice: Any = "auto",
) -> ToolOutcome:
    """Let ``fusion.tool`` decide whether to deliberate on ``prompt``; what it did, as an outcome.

    ``messages`` is the primary's conversation (default: the prompt alone) and ``context`` the
    turns the panel sees. ``tools`` are the caller's own function tools: the primary may call
    them too; those calls are not run here but returned in ``tool["tool_calls"]``.
    ``tool_choice`` is the primary's first choice (``{"type": "function", "function": {"name":
    "fusion"}}`` forces the panel).
    """
    primary = Member(fusion.tool or "")
    tools = list(tools or [])
    messages = list(messages) if messages is not None else [{"role": "user", "content": prompt}]
    first, done = await ask(
        ctx, primary, messages, key=primary.name, tools=[FUSION_TOOL, *tools], tool_choice=tool_choice
    )
    calls = [first]
    tool_calls = [c for c in (done.tool_calls if done else []) if c.get("name") == "fusion"]
    record: dict[str, Any] = {"primary": primary.model, "called": bool(tool_calls), "question": None}
    if not first.ok:
        error = f"primary {primary.model} failed: {first.error}"
        return ToolOutcome(record, merge_calls(primary.model, calls), error=error)
    if not tool_calls:
        return ToolOutcome(_hand_back(record, done), merge_calls(primary.model, calls), answer=first.content)
    question = record["question"] = _question(tool_calls[0], prompt)
    try:
        panel, judgement = await deliberate(ctx, fusion, question, history=history, context=context or [])
    except PanelCancelled as exc:  # the primary's turn so far is kept with the panel's answers
        raise PanelCancelled(exc.responses, ToolOutcome(record, merge_calls(primary.model, calls))) from None
    answer = judgement.answer if judgement is not None else ""
    if judgement is not None and judgement.analysis is not None:  # the judge gave a verdict
        status = status_of(panel, judgement)
        payload = {"status": status, "answer": judgement.answer, "analysis": judgement.analysis.model_dump()}
        follow = [
            *messages,
            {
                "role": "assistant",
                "content": first.content or None,
                "tool_calls": [
                    {
                        "id": tool_calls[0].get("id") or "call_fusion",
                        "type": "function",
                        "function": {"name": "fusion", "arguments": tool_calls[0].get("arguments") or "{}"},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": tool_calls[0].get("id") or "call_fusion",
                "content": json.dumps(payload, ensure_ascii=False),
            },
        ]
        # The panel has spoken: the caller's tools stay available, `fusion` is not offered again.
        try:
            final, final_done = await ask(
                ctx,
                primary,
                follow,
                key=primary.name,
                tools=tools or [FUSION_TOOL],
                tool_choice="auto" if tools else "none",
            )
        except asyncio.CancelledError:
            kept = ToolOutcome(record, merge_calls(primary.model, calls))
            raise PanelCancelled(panel.responses, kept) from None  # the panel's answers are kept
        calls.append(final)
        if final.ok:
            answer = final.content
            record = _hand_back(record, final_done)
    return ToolOutcome(record, merge_calls(primary.model, calls), answer=answer, panel=panel, judgement=judgement)


def _hand_back(record: dict[str, Any], done: Any) -> dict[str, Any]:
    "``record`` with the primary's calls to the caller's tools (OpenAI shape) for the caller to run."
    calls = [c for c in (done.tool_calls if done else []) if c.get("name") != "fusion"]
    if not calls:
        return record
    handed = [
        {
            "id": c.get("id") or f"call_{i}",
            "type": "function",
            "function": {"name": c.get("name") or "", "arguments": c.get("arguments") or "{}"},
        }
        for i, c in enumerate(calls)
    ]
    return {**record, "tool_calls": handed}


def _question(tool_call: dict[str, Any], fallback: str) -> str:
    try:
        question = json.loads(tool_call.get("arguments") or "{}").get("question")
    except (ValueError, AttributeError):
        question = None
    return question.strip() if isinstance(question, str) and question.strip() else fallback
