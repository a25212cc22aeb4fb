"""The OpenAI chat-completions dialect of `fusion-magic serve`: requests in, completions out.

Plain functions over JSON-ready data; `fusion_magic._fronts.serve` puts them on HTTP. Reading a request
(its checks, presets and overrides) is `fusion_magic._fronts.openai_request`; this module holds the names,
the errors and the replies.

A request is answered by a deliberation in one of two modes:

- ``model: "fusion"`` (the server's default preset) or ``"fusion/<preset>"``: the last user
  message is the question, the earlier turns are context;
- any other model with ``tools: [{"type": "fusion"}]`` (or ``"openrouter:fusion"``): that model is
  the primary of server-tool mode and decides whether to ask the panel; the request's other tools
  reach it untouched, and its calls to them come back to the client as ``tool_calls``.

Overrides come from the body field ``fusion`` (and, in tool mode, the tool's ``parameters``),
in fusion_magic's names or Fusion's (``analysis_models``, ``model``, ``max_completion_tokens``).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from .._base.openai_shapes import chunk as _chunk
from .._base.openai_shapes import error_body
from .._values.result import FusionResult

__all__ = [
    "ALIASES",
    "FUSION_TOOL_TYPES",
    "MODEL",
    "ApiError",
    "answer_chunks",
    "closing_chunks",
    "completion",
    "completion_id",
    "error_body",
    "fusion_object",
    "outcome_error",
    "usage_chunk",
]

MODEL = "fusion"
ALIASES = ("openrouter/fusion",)  # the Fusion model alias, answered with the default preset
FUSION_TOOL_TYPES = frozenset({"fusion", "openrouter:fusion"})
# Fusion's preset names, mapped onto fusion_magic's presets.
_CHUNK_CHARS = 48  # answer text per streamed chunk


class ApiError(Exception):
    """An error answered in OpenAI's error JSON: ``{"error": {message, type, param, code}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str = "invalid_request_error",
        fusion: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.type = status, message, code, param, type
        self.fusion = fusion

    def body(self) -> dict[str, Any]:
        return error_body(self.message, code=self.code, param=self.param, type=self.type, fusion=self.fusion)


def completion_id() -> str:
    return "chatcmpl-fusion-" + uuid.uuid4().hex[:24]


def fusion_object(result: FusionResult) -> dict[str, Any]:
    "The result's `to_dict()`: Fusion's tool-result keys (status, analysis, responses, failed_models, ...) and more."
    return result.to_dict()


def outcome_error(result: FusionResult) -> ApiError | None:
    "None when the result has an answer; else the upstream failure as an `ApiError` carrying the result."
    if result.status in ("ok", "partial"):
        return None
    fusion = fusion_object(result)
    reason = fusion.get("failure_reason") or "unexpected_error"
    status = {"insufficient_credits": 402, "rate_limited": 429, "invalid_model": 400}.get(reason, 502)
    message = result.error or f"the deliberation failed ({reason})"
    return ApiError(status, message, code=reason, type="upstream_error", fusion=fusion)


def usage(result: FusionResult) -> dict[str, Any]:
    "The totals of every call of the deliberation (panel, judge, primary), with ``cost`` in USD."
    cost = result.cost_usd
    return {**result.usage, "cost": None if cost is None else round(cost, 10)}  # None: unknown, never 0


def _tool_calls(result: FusionResult) -> list[dict[str, Any]]:
    return list((result.tool or {}).get("tool_calls") or [])


def completion(result: FusionResult, model: str, cid: str | None = None) -> dict[str, Any]:
    "A ``chat.completion`` whose content is the synthesized answer, plus the top-level ``fusion`` object."
    calls = _tool_calls(result)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": result.answer or (None if calls else ""),
        "refusal": None,  # as OpenAI's replies carry it; the synthesized answer is never a refusal
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": cid or completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop", "logprobs": None}
        ],
        "usage": usage(result),
        "fusion": fusion_object(result),
    }


def answer_chunks(result: FusionResult, model: str, cid: str, *, include_usage: bool = False) -> list[dict[str, Any]]:
    """The whole stream of a result: the role, the text in pieces, then `closing_chunks`.

    ``include_usage`` is the request's ``stream_options.include_usage``, as in OpenAI's API."""
    created = int(time.time())
    chunks = [_chunk(cid, model, created, {"role": "assistant", "content": ""}, include_usage=include_usage)]
    pieces, current = [], ""
    for word in re.findall(r"\s*\S+\s*", result.answer or "") or ([result.answer] if result.answer else []):
        current += word
        if len(current) >= _CHUNK_CHARS:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    chunks += [_chunk(cid, model, created, {"content": piece}, include_usage=include_usage) for piece in pieces]
    return chunks + closing_chunks(result, model, cid, include_usage=include_usage)


def closing_chunks(result: FusionResult, model: str, cid: str, *, include_usage: bool = False) -> list[dict[str, Any]]:
    """The end of a stream: the tool calls (if any), the ``finish_reason`` chunk, and with ``include_usage``
    the ``choices: []`` usage chunk. The full ``fusion`` object rides on the last of them."""
    created = int(time.time())
    calls = _tool_calls(result)
    chunks = []
    if calls:
        delta = {"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]}
        chunks.append(_chunk(cid, model, created, delta, include_usage=include_usage))
    chunks.append(_chunk(cid, model, created, {}, "tool_calls" if calls else "stop", include_usage=include_usage))
    if include_usage:
        chunks.append(usage_chunk(result, model, cid))
    else:
        chunks[-1]["fusion"] = fusion_object(result)
    return chunks


def usage_chunk(result: FusionResult, model: str, cid: str) -> dict[str, Any]:
    "The last chunk when usage was asked for: no choices, the ``usage`` totals and the full ``fusion`` object."
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": usage(result),
        "fusion": fusion_object(result),
    }
