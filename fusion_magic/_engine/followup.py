"""Follow-up questions: the same panel asked again, with the conversation so far as context.

Each member sees the earlier questions, its own earlier answers and what the judge made of each
turn; the judge sees the earlier questions and what it made of them, then judges the new answers.
A follow-up needs the conversation, not a synthesis: a turn whose judge gave only the analysis
(OpenRouter Fusion's documented shape has no answer) keeps an empty ``answer`` and a short digest
of the analysis as ``findings``, shown where the synthesized answer would be; a turn whose judge
gave nothing says so. Only a turn with neither a member's answer nor a synthesis is refused.
The messages differ from a fresh question's, so the cache keys do too; asking the same follow-up
again is answered from the cache like any call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._base.errors import ConfigError
from .._values.sections import titles

if TYPE_CHECKING:
    from .._values.analysis import Analysis
    from .._values.result import FusionResult

__all__ = ["findings", "judge_question", "member_messages", "turns_of"]

_FINDINGS_LIMIT = 4000  # characters of the analysis digest standing in for a missing synthesis
_NOTHING = "the judge gave no synthesized answer and no analysis for that question"


def turns_of(previous: FusionResult) -> list[dict[str, Any]]:
    """The conversation up to and including ``previous``: one dict per turn, oldest first.

    Each turn is ``{"prompt", "answer", "responses": {member name: its answer}}`` (failed members
    have no entry); a turn without a synthesized answer has ``answer == ""`` and ``findings``, the
    analysis as short text (empty when there was none).
    """
    answer = str(previous.answer or "")
    responses = {r.model: r.content for r in previous.responses if r.ok}
    if not answer.strip() and not responses:
        raise ConfigError(
            "nothing to follow up: no panel member answered that question and there is no synthesized answer "
            f"(status {previous.status!r}); run it again"
        )
    turn: dict[str, Any] = {"prompt": previous.prompt, "answer": answer, "responses": responses}
    if not answer.strip():
        turn["findings"] = findings(previous.analysis)
    return [*previous.history, turn]


def findings(analysis: Analysis) -> str:
    "The analysis as short text, one line per item (``- Consensus: ...``), cut at a line when long."
    names = titles()
    lines = [
        f"- {names.get(row['section'], row['section'])}: {' '.join(row['text'].split())}" for row in analysis.rows()
    ]
    text = "\n".join(lines)
    return text if len(text) <= _FINDINGS_LIMIT else text[:_FINDINGS_LIMIT].rsplit("\n", 1)[0] + "\n- …"


def _judged(turn: dict[str, Any]) -> str:
    "What the judge made of a turn: its synthesized answer, else its analysis, else a note."
    if str(turn.get("answer") or "").strip():
        return "A judge read every panel member's answer and synthesized this answer:\n\n" + turn["answer"]
    if str(turn.get("findings") or "").strip():
        return (
            "A judge read every panel member's answer; it gave no synthesized answer, only this analysis:\n\n"
            + (turn["findings"])
        )
    return f"({_NOTHING}.)"


def _after(turn: dict[str, Any], question: str) -> str:
    return f"{_judged(turn)}\n\nFollow-up question: {question}"


def member_messages(name: str, system: str | None, turns: list[dict[str, Any]], question: str) -> list[dict[str, Any]]:
    "The chat for member ``name``: each earlier question with its own answer, then the synthesis and the follow-up."
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for i, turn in enumerate(turns):
        text = turn["prompt"] if i == 0 else _after(turns[i - 1], turn["prompt"])
        messages.append({"role": "user", "content": text})
        own = (turn.get("responses") or {}).get(name)
        if own:
            messages.append({"role": "assistant", "content": own})
        else:  # it had no answer then: say so rather than put two questions in a row
            messages.append({"role": "assistant", "content": "(no answer)"})
    messages.append({"role": "user", "content": _after(turns[-1], question)})
    return messages


def judge_question(turns: list[dict[str, Any]], question: str) -> str:
    "What the judge is told was asked: the conversation so far, then the follow-up to judge."
    lines = ["This is a follow-up in a conversation with the panel. Earlier:"]
    for i, turn in enumerate(turns, 1):
        lines.append(f"Question {i}: {turn['prompt']}")
        if str(turn.get("answer") or "").strip():
            lines.append(f"Synthesized answer {i}: {turn['answer']}")
        elif str(turn.get("findings") or "").strip():
            lines.append(f"Analysis {i} (no synthesized answer was given):\n{turn['findings']}")
        else:
            lines.append(f"Synthesized answer {i}: ({_NOTHING})")
        lines.append("")
    lines.append(f"The follow-up question, whose answers you judge now: {question}")
    return "\n".join(lines)
