"""OpenAI's chat-completions shapes that more than one server here writes: the error body and a stream chunk.

`fusion-magic serve` (`fusion_magic._fronts.openai_api`) and the local model's server
(`fusion_magic._local.llama_child`) both answer in them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["chunk", "error_body"]


def error_body(
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    type: str = "invalid_request_error",
    fusion: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"error": {message, type, param, code}}``, with fusion_magic's ``fusion`` object beside it when given."""
    body: dict[str, Any] = {"error": {"message": message, "type": type, "param": param, "code": code}}
    if fusion is not None:
        body["fusion"] = fusion
    return body


def chunk(
    cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None, *, include_usage: bool = False
) -> dict[str, Any]:
    "One ``chat.completion.chunk``; when the client asked for usage, every chunk but the last has ``usage: null``."
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    if include_usage:
        body["usage"] = None
    return body
