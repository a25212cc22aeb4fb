"""The status words, one table each: a result's status, one call's status, a live progress state.

The `Literal` types in `result` and `progress` spell the same words for the type checker; a test
holds them equal to these tables. Labels, icons and colours are read from here by every view.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANSWERED_STATUSES", "PROGRESS_STATES", "RESPONSE_STATUSES", "RESULT_STATUSES", "ProgressState", "Word"]


@dataclass(frozen=True)
class Word:
    word: str  # the value of `status` (or the live state)
    label: str  # how it reads in a sentence
    meaning: str


@dataclass(frozen=True)
class ProgressState(Word):
    color: str = "#9e9e9e"  # the live progress and the widget's status lines
    final: bool = True  # the call will not change any more


RESULT_STATUSES: tuple[Word, ...] = (
    Word("ok", "ok", "every member answered and the judge's verdict parsed"),
    Word("partial", "partial", "some members failed; the judge worked on the answers that arrived"),
    Word("judge_failed", "judge failed", "the panel answers are kept; the judge's reply did not parse"),
    Word("error", "error", "nothing usable: no member answered, or the run was refused"),
    Word("interrupted", "interrupted", "stopped by the user; the answers that had arrived are kept"),
)

# A call's status, with the icon the HTML view shows next to it.
RESPONSE_STATUSES: tuple[tuple[Word, str], ...] = (
    (Word("ok", "ok", "answered"), "✓"),
    (Word("failed", "failed", "the provider or the connection failed, after retries and fallbacks"), "✗"),
    (Word("timed_out", "timed out", "no answer within the deadline"), "⏱"),
    (Word("cancelled", "cancelled", "stopped: the quorum was reached, or the run was interrupted"), "⊘"),
    (Word("skipped", "skipped", "not asked (the judge, when no member answered)"), "–"),
    # The server answered, but not with an answer: the model's outcome, never retried (a fallback is tried).
    (Word("refused", "refused", "the model declined to answer; its refusal is the reason"), "⛔"),
    (
        Word("filtered", "filtered", "the provider's content filter stopped it; a partial answer is kept, not judged"),
        "⚑",
    ),
    (Word("truncated", "out of tokens", "max_tokens ran out before any answer (often while reasoning)"), "✂"),
    (Word("reasoning_only", "only reasoning", "the model wrote its reasoning but no answer"), "…"),
)
# The statuses whose call reached the model and came back (billed like an answer).
ANSWERED_STATUSES = frozenset({"ok", "refused", "filtered", "truncated", "reasoning_only"})

PROGRESS_STATES: tuple[ProgressState, ...] = (
    ProgressState("waiting", "waiting", "sent, nothing back yet", final=False),
    ProgressState("streaming", "streaming", "tokens are arriving", "#2e78dc", final=False),
    ProgressState("retrying", "retrying", "a failed attempt is being retried", "#d4a017", final=False),
    ProgressState("tool", "running a tool", "a tool it called is running, e.g. sql (2/4)", "#8e5cc4", final=False),
    ProgressState("done", "done", "answered", "#2ea043"),
    ProgressState("cached", "cached", "answered from the cache", "#1f9e89"),
    ProgressState("failed", "failed", "failed", "#dc3232"),
    ProgressState("timed_out", "timed out", "no answer within the deadline", "#e07b00"),
    ProgressState("cancelled", "cancelled", "stopped before it answered"),
    ProgressState("skipped", "skipped", "not asked"),
)
