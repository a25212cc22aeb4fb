"""The exceptions fusion_magic raises.

    FusionError                  anything fusion_magic reports to the user
    ├── ConfigError              a usage mistake: bad flag, preset, model id, prompt...  nothing was sent
    │   ├── MissingKeyError      no API key for an endpoint that needs one
    │   └── BudgetError          the cost estimate exceeds ``max_cost``
    └── ProviderError            one HTTP call failed for good (after retries, or not retryable)

    KeyboardInterrupt
    └── FusionInterrupted        `Fusion.run` was interrupted; ``.result`` holds what arrived
    asyncio.CancelledError
    └── DeliberationCancelled    `Fusion.arun` was cancelled; ``.result`` holds what arrived
                                 (defined in `fusion_magic._engine.runner`, which loads asyncio)

A failing panel member is data (``Response.error``), not an exception, and so is a failing
judge (``status="judge_failed"``) or a panel where nobody answered (``status="error"``): a
deliberation raises only when the configuration is wrong, before anything is sent, or when
it is stopped: then the exception carries the partial result (the answers that arrived).
"""

from __future__ import annotations

from typing import Any

__all__ = ["BudgetError", "ConfigError", "FusionError", "FusionInterrupted", "MissingKeyError", "ProviderError"]


class FusionError(Exception):
    "Base class of every error fusion_magic reports; the message is meant for the user."


class ConfigError(FusionError, ValueError):
    "A usage mistake found before anything was sent."


class MissingKeyError(ConfigError):
    "No API key was found for an endpoint that needs one."


class BudgetError(ConfigError):
    "The cost estimate is above the configured ``max_cost``; nothing was sent."


class ProviderError(FusionError):
    "One HTTP call failed for good: not retryable, or out of retries."

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        cost_usd: float | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        outcome: str | None = None,
        partial: Any = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after
        # What the server billed for the failed call(s) (a 200 with no usable answer, an in-band error
        # after some output): paid for, so it is counted even though the answer is not kept.
        self.cost_usd = cost_usd
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        # The server answered, but not with an answer: a member outcome word of `_status` ("refused",
        # "filtered", "truncated", "reasoning_only"), never retried. ``partial`` is what came (a Completion).
        self.outcome = outcome
        self.partial = partial

    def reworded(self, message: str, *, retryable: bool | None = None) -> ProviderError:
        "The same failure (model, status, billing) under ``message``; ``retryable`` changed when given."
        return ProviderError(
            message,
            model=self.model,
            status_code=self.status_code,
            retryable=self.retryable if retryable is None else retryable,
            retry_after=self.retry_after,
            cost_usd=self.cost_usd,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            outcome=self.outcome,
            partial=self.partial,
        )


class FusionInterrupted(KeyboardInterrupt):
    """Ctrl-C or a kernel interrupt stopped `Fusion.run`: ``result`` is the partial result (status
    "interrupted", the answers that arrived kept and cached), or None when nothing had started.

    Typed `Any`: `FusionResult` is a value, a layer above the errors (see docs/ARCHITECTURE.md).
    """

    def __init__(self, result: Any) -> None:
        super().__init__("interrupted" if result is None else result.error)
        self.result = result
