"""The exceptions fusion_magic raises.

    FusionError                  anything fusion_magic reports to the user
    ├── ConfigError              a usage mistake: bad flag, preset, model id, prompt...  nothing was sent
    │   ├── MissingKeyError      no API key for an endpoint that needs one
    │   └── BudgetError          the cost estimate exceeds ``max_cost``
    ├── ProviderError            one HTTP call failed for good (after retries, or not retryable)
    ├── PanelError               every panel member failed; names each one and why
    └── JudgeError               the judge gave no valid analysis (raw text kept)

A failing panel member is data (``Response.error``), not an exception: a deliberation
raises only when nobody answered or the configuration is wrong.
"""

from __future__ import annotations

__all__ = [
    "BudgetError",
    "ConfigError",
    "FusionError",
    "JudgeError",
    "MissingKeyError",
    "PanelError",
    "ProviderError",
]


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
    ) -> None:
        super().__init__(message)
        self.model = model
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after


class PanelError(FusionError):
    "Every panel member failed; the message names each member and its reason."

    def __init__(self, message: str, *, result: object = None) -> None:
        super().__init__(message)
        self.result = result


class JudgeError(FusionError):
    "The judge did not return a valid analysis, even after one re-ask."

    def __init__(self, message: str, *, raw: str = "", errors: str = "") -> None:
        super().__init__(message)
        self.raw = raw
        self.errors = errors
