"""Other servers' shapes, modelled on their documentation (see shared/reference/providers.md):

- ``spec`` mode, OpenAI's contract: a stream carries usage only when the request asks with
  ``stream_options: {"include_usage": true}``, in one last chunk with ``choices: []``; usage has no
  ``cost``; chunks have no ``provider`` or ``native_finish_reason``; errors are
  ``{"error": {"message", "type", "param", "code"}}`` with ``code`` a string or null.
- Reasoning where each server puts it: ``reasoning`` (OpenRouter, Ollama, vLLM), ``reasoning_content``
  (llama.cpp, DeepSeek), ``reasoning_details[]`` (OpenRouter), a ``<think>`` block in content, or
  only the closing ``</think>`` (DeepSeek-R1 templates).
- Azure's content filter: ``content_filter_results`` on the choice, ``finish_reason: "content_filter"``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FILTER_CATEGORIES",
    "inline_thoughts",
    "openai_error",
    "reasoning_part",
    "retry_after_value",
    "spec_frame",
    "filter_results",
]

FILTER_CATEGORIES = ("hate", "self_harm", "sexual", "violence")
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def reasoning_part(field: str, text: str) -> dict[str, Any]:
    "The message or delta fields that carry ``text`` as reasoning in ``field``'s dialect."
    if field == "reasoning_details":
        return {"reasoning_details": [{"type": "reasoning.text", "text": text, "format": "unknown", "index": 0}]}
    return {field: text}


def inline_thoughts(field: str, reasoning: str, text: str) -> str:
    "Content with the thoughts inline: a whole ``<think>`` block, or only the closing tag."
    if field == "think":
        return f"<think>\n{reasoning}\n</think>\n\n{text}"
    return f"{reasoning}\n</think>\n\n{text}"


def filter_results(fired: dict[str, str] | None) -> dict[str, Any]:
    "Azure's ``content_filter_results``: every category, the ``fired`` ones filtered at their severity."
    fired = fired or {"violence": "medium"}
    out: dict[str, Any] = {c: {"filtered": False, "severity": "safe"} for c in FILTER_CATEGORIES}
    out.update({c: {"filtered": True, "severity": s} for c, s in fired.items()})
    return out


def spec_frame(obj: dict[str, Any], *, streamed: bool) -> dict[str, Any]:
    "A chunk or body as OpenAI sends it: no OpenRouter fields; usage without money."
    out = {k: v for k, v in obj.items() if k not in ("provider", "usage")}
    out["id"] = "chatcmpl-" + str(obj.get("id", "")).removeprefix("gen-")
    out["choices"] = [{k: v for k, v in c.items() if k != "native_finish_reason"} for c in obj.get("choices") or []]
    for choice in out["choices"]:
        part = choice.get("delta" if streamed else "message")
        if isinstance(part, dict) and part.get("reasoning") is None:
            part.pop("reasoning", None)
    usage = obj.get("usage")
    if isinstance(usage, dict):
        keep = ("prompt_tokens", "completion_tokens", "total_tokens", "completion_tokens_details")
        out["usage"] = {k: usage[k] for k in keep if k in usage}
        out["usage"]["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
    elif not streamed:
        out["usage"] = usage
    return out


_MESSAGES = {  # OpenAI's wording where OpenRouter's default ("Provider returned error") would not fit
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
}


def openai_error(status: int, message: str) -> dict[str, Any]:
    "OpenAI's error body for ``status``."
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    if message == "Provider returned error":
        message = _MESSAGES.get(status, "Bad request.")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def retry_after_value(value: float | str) -> str:
    "The Retry-After header: delay-seconds, or an HTTP date given as text (RFC 9110 §10.2.3)."
    return value if isinstance(value, str) else f"{value:g}"
