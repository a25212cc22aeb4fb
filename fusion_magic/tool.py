"""Server-tool mode: a primary model gets a `fusion` function tool and decides whether to call it.

If it calls the tool, the panel and judge run on the question it asked, and the primary writes
the final answer from the analysis; if not, its own answer is the result. Either way the result
records whether the tool was called. The panel never gets the tool, so fusion cannot nest.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .config import Member
from .panel import Call, ask, merge_calls
from .result import FusionResult

if TYPE_CHECKING:
    from .pipeline import Fusion

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
    fusion: Fusion,
    call: Call,
    result: FusionResult,
    *,
    messages: list[dict[str, Any]] | None = None,
    tools: list[dict[str, Any]] | None = None,
    context: list[dict[str, Any]] | None = None,
    tool_choice: Any = "auto",
) -> None:
    """Fill ``result`` by letting ``fusion.tool`` decide whether to deliberate.

    ``messages`` is the primary's conversation (default: the prompt alone) and ``context`` the
    turns the panel sees. ``tools`` are the caller's own function tools: the primary may call
    them too; those calls are not run here but returned in ``result.tool["tool_calls"]``.
    ``tool_choice`` is the primary's first choice (``{"type": "function", "function": {"name":
    "fusion"}}`` forces the panel).
    """
    primary = Member(fusion.tool or "")
    tools = list(tools or [])
    messages = list(messages) if messages is not None else [{"role": "user", "content": result.prompt}]
    first, done = await ask(
        call, primary, messages, key=primary.name, tools=[FUSION_TOOL, *tools], tool_choice=tool_choice
    )
    calls = [first]
    tool_calls = [c for c in (done.tool_calls if done else []) if c.get("name") == "fusion"]
    result.tool = {"primary": primary.model, "called": bool(tool_calls), "question": None}
    if not first.ok:
        result.status, result.error = "error", f"primary {primary.model} failed: {first.error}"
    elif not tool_calls:
        result.answer = first.content
        _hand_back(result, done)
    else:
        question = _question(tool_calls[0], result.prompt)
        result.tool["question"] = question
        await fusion._deliberate(call, result, question, context)
        if result.status in ("ok", "partial"):
            payload = {"status": result.status, "answer": result.answer, "analysis": result.analysis.model_dump()}
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
            final, final_done = await ask(
                call,
                primary,
                follow,
                key=primary.name,
                tools=tools or [FUSION_TOOL],
                tool_choice="auto" if tools else "none",
            )
            calls.append(final)
            if final.ok:
                result.answer = final.content
                _hand_back(result, final_done)
    result.primary = merge_calls(primary.model, calls)


def _hand_back(result: FusionResult, done: Any) -> None:
    "Record the primary's calls to the caller's tools (OpenAI shape) for the caller to run."
    calls = [c for c in (done.tool_calls if done else []) if c.get("name") != "fusion"]
    if calls and result.tool is not None:
        result.tool["tool_calls"] = [
            {
                "id": c.get("id") or f"call_{i}",
                "type": "function",
                "function": {"name": c.get("name") or "", "arguments": c.get("arguments") or "{}"},
            }
            for i, c in enumerate(calls)
        ]


def _question(tool_call: dict[str, Any], fallback: str) -> str:
    try:
        question = json.loads(tool_call.get("arguments") or "{}").get("question")
    except (ValueError, AttributeError):
        question = None
    return question.strip() if isinstance(question, str) and question.strip() else fallback
