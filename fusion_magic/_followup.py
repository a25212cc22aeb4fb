"""Follow-up questions: the same panel asked again, with the conversation so far as context.

Each member sees the earlier questions, its own earlier answers and the synthesized answer of each
turn; the judge sees the earlier questions and synthesized answers, then judges the new answers.
The messages differ from a fresh question's, so the cache keys do too; asking the same follow-up
again is answered from the cache like any call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import ConfigError

if TYPE_CHECKING:
    from ._result import FusionResult

__all__ = ["judge_question", "member_messages", "turns_of"]


def turns_of(previous: FusionResult) -> list[dict[str, Any]]:
    """The conversation up to and including ``previous``: one dict per turn, oldest first.

    Each turn is ``{"prompt", "answer", "responses": {member name: its answer}}`` (failed members
    have no entry).
    """
    if not str(previous.answer or "").strip():
        raise ConfigError(
            "nothing to follow up: that result has no synthesized answer "
            f"(status {previous.status!r}); rejudge it first"
        )
    turn = {
        "prompt": previous.prompt,
        "answer": previous.answer,
        "responses": {r.model: r.content for r in previous.responses if r.ok},
    }
    return [*previous.history, turn]


def _after(answer: str, question: str) -> str:
    return (
        "A judge read every panel member's answer and synthesized this answer:\n\n"
        f"{answer}\n\nFollow-up question: {question}"
    )


def member_messages(name: str, system: str | None, turns: list[dict[str, Any]], question: str) -> list[dict[str, Any]]:
    "The chat for member ``name``: each earlier question with its own answer, then the synthesis and the follow-up."
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for i, turn in enumerate(turns):
        text = turn["prompt"] if i == 0 else _after(turns[i - 1]["answer"], turn["prompt"])
        messages.append({"role": "user", "content": text})
        own = (turn.get("responses") or {}).get(name)
        if own:
            messages.append({"role": "assistant", "content": own})
        else:  # it had no answer then: say so rather than put two questions in a row
            messages.append({"role": "assistant", "content": "(no answer)"})
    messages.append({"role": "user", "content": _after(turns[-1]["answer"], question)})
    return messages


def judge_question(turns: list[dict[str, Any]], question: str) -> str:
    "What the judge is told was asked: the conversation so far, then the follow-up to judge."
    lines = ["This is a follow-up in a conversation with the panel. Earlier:"]
    for i, turn in enumerate(turns, 1):
        lines += [f"Question {i}: {turn['prompt']}", f"Synthesized answer {i}: {turn['answer']}", ""]
    lines.append(f"The follow-up question, whose answers you judge now: {question}")
    return "\n".join(lines)
