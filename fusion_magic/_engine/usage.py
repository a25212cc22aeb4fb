"""Read a chat response's ``usage`` block and money headers as every provider spells them.

- ``cost`` is a number or a numeric string (``"0.00042"``); anything else is unknown (None), never 0.
- BYOK (``is_byok: true``): OpenRouter's ``cost`` is only its fee; the provider billed the user's own
  key ``cost_details.upstream_inference_cost`` on top, so the spend is the sum of the two.
- Reasoning tokens: ``completion_tokens_details.reasoning_tokens`` (OpenAI, OpenRouter, DeepSeek,
  Groq: already inside ``completion_tokens``). Gemini's layout bills them outside: ``total_tokens``
  is larger than prompt + completion, and the output billed is ``total_tokens - prompt_tokens``.
- ``Retry-After`` is seconds or an HTTP date (RFC 9110 §10.2.3); ``retry-after-ms`` wins when sent.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["Usage", "money", "read_usage", "retry_after_seconds"]


def money(value: Any) -> float | None:
    "USD from a number or a numeric string; None for anything else (absent, null, text, NaN, negative)."
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out >= 0 else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return int(out) if math.isfinite(out) and out >= 0 else None


@dataclass(frozen=True)
class Usage:
    """What one usage block says was used and billed (None: not said)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None  # every output token billed (reasoning included)
    reasoning_tokens: int | None = None
    cost_usd: float | None = None  # the whole spend: OpenRouter's cost plus a BYOK upstream cost


def read_usage(usage: Any) -> Usage | None:
    "The figures of a ``usage`` object; None when there is none (``null``, absent, not an object)."
    if not isinstance(usage, dict) or not usage:
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    total = _count(usage.get("total_tokens"))
    details = usage.get("completion_tokens_details")
    reasoning = _count(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    if total is not None and prompt is not None and total - prompt > (completion or 0):
        # Gemini's layout: thoughts are billed but kept out of completion_tokens.
        hidden = total - prompt - (completion or 0)
        reasoning = hidden if not reasoning else reasoning + hidden
        completion = total - prompt
    cost = money(usage.get("cost"))
    if usage.get("is_byok") is True:
        cost_details = usage.get("cost_details")
        upstream = money(cost_details.get("upstream_inference_cost")) if isinstance(cost_details, dict) else None
        if upstream is not None:
            cost = upstream + (cost or 0.0)
    return Usage(prompt, completion, reasoning, cost)


def retry_after_seconds(headers: Any, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date; None if absent or bad."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = money(millis)
        if seconds is not None:
            return seconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = money(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(str(value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None  # RFC 9110 dates are GMT; a date without a zone is not one
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
