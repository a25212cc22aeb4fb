"""OpenRouter's wire shapes, built the way the recordings in shared/fixtures/openrouter show them."""

from __future__ import annotations

import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DONE",
    "KEEPALIVE",
    "PAD",
    "Generation",
    "chunk",
    "completion",
    "error_body",
    "sse",
    "tool_call_chunks",
    "url_citations",
    "usage_block",
]

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
PAD = b"\n         \n"  # the whitespace OpenRouter sends before a slow non-stream JSON body

_PROVIDERS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google",
    "mistralai": "Mistral",
    "x-ai": "xAI",
    "deepseek": "DeepSeek",
    "meta-llama": "Together",
    "qwen": "Alibaba",
    "minimax": "Minimax",
    "moonshotai": "Moonshot AI",
    "cohere": "Cohere",
    "z-ai": "Z.AI",
}
_ALNUM = string.ascii_letters + string.digits


def provider_for(model: str) -> str:
    "The upstream provider name OpenRouter would report for this model id."
    vendor = model.lstrip("~").split("/", 1)[0]
    return _PROVIDERS.get(vendor, vendor.replace("-", " ").title() or "OpenRouter")


@dataclass
class Generation:
    """The identity shared by every chunk of one response."""

    model: str
    provider: str
    created: int = field(default_factory=lambda: int(time.time()))
    id: str = ""
    fingerprint: str = field(default_factory=lambda: "fp_" + secrets.token_hex(5))

    def __post_init__(self) -> None:
        if not self.id:
            self.id = f"gen-{self.created}-" + "".join(secrets.choice(_ALNUM) for _ in range(20))

    def head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "provider": self.provider, "model": self.model, "object": obj, "created": self.created}


def sse(obj: dict[str, Any]) -> bytes:
    "One SSE data event with compact JSON, as on the wire."
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def chunk(
    gen: Generation,
    content: str | None = "",
    *,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    annotations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    "A chat.completion.chunk; role is repeated on every delta, as recorded."
    delta: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    if annotations:
        delta["annotations"] = annotations
    out = gen.head("chat.completion.chunk")
    if error is not None:
        # The recorded mid-stream error puts `error` right after `provider`.
        out = {"id": gen.id, "provider": gen.provider, "error": error, **out}
    out["choices"] = [
        {"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish, "logprobs": None}
    ]
    out["system_fingerprint"] = gen.fingerprint
    if usage is not None:
        out["usage"] = usage
    return out


def tool_call_chunks(gen: Generation, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    "Streamed tool calls: id + name with empty arguments, then the arguments, per call."
    out = []
    for i, call in enumerate(calls):
        head = {"index": i, "id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": ""}}
        out.append(chunk(gen, None, tool_calls=[head]))
        args = {"index": i, "function": {"arguments": call["arguments"]}, "type": "function"}
        out.append(chunk(gen, None, tool_calls=[args]))
    return out


def url_citations(sources: list[dict[str, str]] | None) -> list[dict[str, Any]]:
    "Web-search annotations as in or_chat_web_search_annotations.json, from [{url, title}]."
    return [
        {
            "type": "url_citation",
            "url_citation": {
                "content": "",
                "end_index": 0,
                "start_index": 0,
                "title": s.get("title", ""),
                "url": s["url"],
            },
        }
        for s in sources or []
    ]


def usage_block(
    prompt_tokens: int, completion_tokens: int, prompt_cost: float, completion_cost: float
) -> dict[str, Any]:
    "A full usage object with cost and the detail blocks OpenRouter sends today."
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost": round(prompt_cost + completion_cost, 12),
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0, "video_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": None,
            "upstream_inference_prompt_cost": round(prompt_cost, 12),
            "upstream_inference_completions_cost": round(completion_cost, 12),
        },
        "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
    }


def completion(
    gen: Generation,
    content: str,
    usage: dict[str, Any],
    *,
    finish: str = "stop",
    error: dict[str, Any] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    annotations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    "A non-streaming chat.completion body."
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "reasoning": None}
    if annotations:
        message["annotations"] = annotations
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "index": i,
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for i, c in enumerate(tool_calls)
        ]
    choice: dict[str, Any] = {
        "logprobs": None,
        "finish_reason": finish,
        "native_finish_reason": finish,
        "index": 0,
        "message": message,
    }
    if error is not None:
        choice["error"] = error
    out = gen.head("chat.completion")
    out.update(choices=[choice], system_fingerprint=gen.fingerprint, usage=usage)
    return out


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Provider returned error", "invalid_request"),
    401: ("User not found.", "authentication"),
    402: ("Insufficient credits. Add more using https://openrouter.ai/credits", "payment_required"),
    403: (
        '{model} requires moderation on {provider}. Your input was flagged for "harassment". No credits were charged.',
        "permission_denied",
    ),
    404: ("No endpoints found for {model}.", "not_found"),
    408: ("Operation timed out. Please try again later.", "timeout"),
    413: ("Request payload too large", "payload_too_large"),
    422: ("Unprocessable entity", "unprocessable"),
    429: ("Provider returned error", "rate_limit_exceeded"),
    500: ("Internal Server Error", "server"),
    502: ("Provider returned error", "provider_unavailable"),
    503: ("Service temporarily unavailable", "provider_overloaded"),
    504: ("Operation timed out. Please try again later.", "timeout"),
    524: ("Provider timed out", "timeout"),
    529: ("Provider overloaded", "provider_overloaded"),
}
# Upstream error bodies, passed through as a string in metadata.raw (as in the 400 and 429 recordings).
_RAW = {
    400: '{"type":"error","error":{"type":"invalid_request_error","message":"invalid request"}}',
    429: "{model} is temporarily rate-limited upstream. Please retry shortly, or add your own key to "
    "accumulate your rate limits: https://openrouter.ai/settings/integrations",
    502: '{"error":{"message":"upstream connect error","code":502}}',
}


def error_body(
    status: int, *, model: str = "", provider: str = "", message: str | None = None, flagged: str = ""
) -> dict[str, Any]:
    "An OpenRouter error JSON {error:{code, message, metadata}} with a realistic message per status."
    default, error_type = _ERRORS.get(
        status, ("Internal Server Error" if status >= 500 else "Bad request", "server" if status >= 500 else "unmapped")
    )
    meta: dict[str, Any] = {"error_type": error_type}
    if status in _RAW:
        meta.update(provider_name=provider, raw=_RAW[status].replace("{model}", model))
    elif status == 403:
        meta.update(reasons=["harassment"], flagged_input=flagged[:100], provider_name=provider, model_slug=model)
    elif status in (503, 524, 529):
        meta["provider_name"] = provider
    text = message if message is not None else default.format(model=model, provider=provider)
    body: dict[str, Any] = {"error": {"code": status, "message": text, "metadata": meta}}
    if "provider_name" in meta:
        body["user_id"] = "user_emulator"
    return body
