"""Why a 200 response holds no answer: the member outcomes read from a finished `Completion`.

A refusal, a content filter, a budget spent before any answer (``finish_reason: "length"``) or a
reply that came only as reasoning is the model's outcome, not a transient failure: a retry costs
the same and ends the same, so these are never retried (a fallback member is still tried). Only a
plain empty answer, with nothing else said, is retried. Each outcome is one word of
`fusion_magic._base.status.RESPONSE_STATUSES` and carries what came (``partial``) and what was billed.
"""

from __future__ import annotations

from .._base.errors import ProviderError
from .wire import Completion

__all__ = ["outcome_of"]


def _line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def outcome_of(done: Completion, model: str) -> ProviderError | None:
    "None when ``done`` holds an answer; else the error naming the outcome and why."
    answered = bool(done.content.strip()) or bool(done.tool_calls)
    if done.refusal.strip():
        return _outcome(done, model, "refused", f"refused: {_line(done.refusal)}")
    if done.finish_reason == "content_filter" or done.filtered:
        why = "stopped by the provider's content filter"
        if done.filtered:
            why += f" ({', '.join(dict.fromkeys(done.filtered))})"
        if answered:
            why += f" after {len(done.content)} characters; the partial answer is kept but not judged"
        return _outcome(done, model, "filtered", why)
    if answered:
        return None
    thought = bool(done.reasoning.strip()) or bool(done.reasoning_tokens)
    if done.finish_reason == "length":
        where = "while reasoning" if thought else "before answering"
        return _outcome(done, model, "truncated", f"ran out of tokens {where}, no answer (raise max_tokens)")
    if thought:
        unclosed = " (its <think> block never closed)" if done.thinking_open else ""
        return _outcome(done, model, "reasoning_only", f"no answer, only reasoning{unclosed}")
    # Retried, but an empty answer may still have been billed: the error carries its cost.
    return _outcome(done, model, None, "empty answer")


def _outcome(done: Completion, model: str, word: str | None, why: str) -> ProviderError:
    "The error for ``done``, carrying what it was billed; with an outcome ``word`` final, without one retried."
    return ProviderError(
        f"{model}: {why}",
        model=model,
        retryable=word is None,
        cost_usd=done.cost_usd,
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        outcome=word,
        partial=done if word else None,
    )
