"""The OpenAI chat-completions dialect of `fusion-magic serve`: requests in, completions out.

Plain functions over JSON-ready data; `fusion_magic.serve` puts them on HTTP.

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

import json
import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .config import PRESETS
from .conversation import question_index, text_of
from .result import FusionResult

__all__ = [
    "ApiError",
    "ChatRequest",
    "answer_chunks",
    "completion",
    "error_body",
    "fusion_object",
    "model_list",
    "outcome_error",
    "parse_chat",
    "usage_chunk",
]

MODEL = "fusion"
ALIASES = ("openrouter/fusion",)  # the Fusion model alias, answered with the default preset
FUSION_TOOL_TYPES = frozenset({"fusion", "openrouter:fusion"})
# Fusion's preset names, mapped onto fusion_magic's presets.
FUSION_PRESETS = {"general-high": "quality", "general-budget": "budget", "general-fast": "budget"}
# Override name -> (Fusion keyword, expected JSON type).
OVERRIDES: dict[str, tuple[str, str]] = {
    "preset": ("preset", "string"),
    "panel": ("panel", "models"),
    "analysis_models": ("panel", "models"),
    "judge": ("judge", "string"),
    "model": ("judge", "string"),
    "timeout": ("timeout", "number"),
    "quorum": ("quorum", "integer"),
    "max_cost": ("max_cost", "number"),
    "judge_timeout": ("judge_timeout", "number"),
    "web": ("web", "boolean"),
    "temperature": ("temperature", "number"),
    "max_tokens": ("max_tokens", "integer"),
    "max_completion_tokens": ("max_tokens", "integer"),
    "system": ("system", "string"),
    "cache": ("cache", "boolean"),
}
# Fusion fields accepted for compatibility that change nothing here (web tools are `web`).
IGNORED = frozenset({"max_tool_calls", "tools", "reasoning", "enabled"})
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


def error_body(
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    type: str = "invalid_request_error",
    fusion: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"message": message, "type": type, "param": param, "code": code}}
    if fusion is not None:
        body["fusion"] = fusion
    return body


@dataclass
class ChatRequest:
    """A parsed `/v1/chat/completions` request, ready to become a `Fusion` and its `arun` call."""

    model: str
    question: str
    messages: list[dict[str, Any]]
    settings: dict[str, Any]  # `Fusion` keyword arguments
    stream: bool = False
    tools: list[dict[str, Any]] = field(default_factory=list)  # the client's own tools (tool mode)
    tool_choice: Any = None  # the primary's first tool_choice (tool mode)

    @property
    def tool_mode(self) -> bool:
        return bool(self.settings.get("tool"))


def model_list(default_preset: str) -> dict[str, Any]:
    "``GET /v1/models``: `fusion` (the default preset) and `fusion/<preset>` for every preset."

    def entry(model_id: str, preset: str) -> dict[str, Any]:
        p = PRESETS[preset]
        return {
            "id": model_id,
            "object": "model",
            "created": 0,
            "owned_by": "fusion_magic",
            "description": f"deliberation, preset {preset}: {p.description}".rstrip(": "),
            "panel": [m.name for m in p.panel],
            "judge": p.judge.name,
        }

    data = [entry(MODEL, default_preset), *(entry(f"{MODEL}/{name}", name) for name in PRESETS)]
    return {"object": "list", "data": data}


def parse_chat(raw: bytes, default_preset: str) -> ChatRequest:
    "Read and check a chat request body; every problem is an `ApiError` (400) naming the field."
    try:
        body = json.loads(raw or b"")
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc})", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ApiError(
            400,
            "`model` is required: 'fusion', 'fusion/<preset>' (see GET /v1/models), "
            'or a model with tools [{"type": "fusion"}]',
            param="model",
            code="model_required",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "`messages` must be a non-empty list", param="messages", code="no_messages")
    try:
        index = question_index(messages)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="messages", code="no_question") from None
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "`stream` must be true or false", param="stream")
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ApiError(400, "`tools` must be a list of objects", param="tools")
    fusion_tools = [t for t in tools if t.get("type") in FUSION_TOOL_TYPES]
    own_tools = [t for t in tools if t.get("type") not in FUSION_TOOL_TYPES]

    settings = _top_level(body)
    if model in (MODEL, *ALIASES) or model.startswith(MODEL + "/"):
        settings["preset"] = _preset_of(model, default_preset)
        if index != len(messages) - 1:
            raise ApiError(
                400,
                f"with model {model!r} the last message must be the user's question",
                param="messages",
                code="no_question",
            )
        own_tools = []  # no primary to call them: the answer is the panel's
    elif fusion_tools:
        settings.update({"preset": default_preset, "tool": model, "judge": model})
        parameters = fusion_tools[0].get("parameters") or {}
        settings.update(_overrides(parameters, "tools[].parameters"))
    else:
        raise ApiError(
            400,
            f"unknown model {model!r}: this server answers 'fusion', 'fusion/<preset>' "
            '(GET /v1/models lists them), or any model with tools [{"type": "fusion"}]',
            param="model",
            code="model_not_found",
        )
    settings.update(_overrides(body.get("fusion"), "fusion"))
    if settings.get("preset") in FUSION_PRESETS:
        settings["preset"] = FUSION_PRESETS[settings["preset"]]
    if settings.get("preset") not in PRESETS:
        raise ApiError(
            400,
            f"unknown preset {settings.get('preset')!r}; known: {', '.join(PRESETS)}",
            param="fusion.preset",
            code="model_not_found",
        )
    question = text_of(messages[index].get("content")).strip()
    return ChatRequest(
        model=model,
        question=question,
        messages=messages,
        settings=settings,
        stream=stream,
        tools=own_tools,
        tool_choice=_tool_choice(body.get("tool_choice")) if fusion_tools else None,
    )


def _tool_choice(choice: Any) -> Any:
    "The client's tool_choice for the primary; choosing the fusion tool names its function."
    if choice is None:
        return None
    if isinstance(choice, dict) and choice.get("type") in FUSION_TOOL_TYPES:
        return {"type": "function", "function": {"name": "fusion"}}
    if choice in ("auto", "none", "required") or (isinstance(choice, dict) and choice.get("type") == "function"):
        return choice
    raise ApiError(
        400, f"`tool_choice` must be auto, none, required or a tool, got {json.dumps(choice)[:80]}", param="tool_choice"
    )


def _preset_of(model: str, default_preset: str) -> str:
    if model in (MODEL, *ALIASES):
        return default_preset
    preset = model[len(MODEL) + 1 :]
    if preset not in PRESETS:
        raise ApiError(
            400,
            f"unknown model {model!r}: no preset {preset!r}; known: " + ", ".join(f"fusion/{p}" for p in PRESETS),
            param="model",
            code="model_not_found",
        )
    return preset


def _top_level(body: dict[str, Any]) -> dict[str, Any]:
    "The request's own sampling fields that apply to the panel."
    picked = {k: body[k] for k in ("temperature", "max_completion_tokens", "max_tokens") if body.get(k) is not None}
    return _overrides(picked, "")


def _overrides(value: Any, where: str) -> dict[str, Any]:
    "`Fusion` keyword arguments from an overrides object; 400 for unknown fields and wrong types."
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"`{where}` must be an object", param=where, code="invalid_overrides")
    settings: dict[str, Any] = {}
    for name, item in value.items():
        param = f"{where}.{name}" if where else name
        if name in IGNORED:
            if name == "enabled" and item is False:
                raise ApiError(
                    400,
                    f"`{param}` is false: this server only deliberates; call the model itself",
                    param=param,
                    code="invalid_overrides",
                )
            continue
        if name not in OVERRIDES:
            known = ", ".join(sorted(OVERRIDES))
            raise ApiError(400, f"unknown field `{param}`; known: {known}", param=param, code="invalid_overrides")
        keyword, kind = OVERRIDES[name]
        settings[keyword] = _typed(item, kind, param)
    return settings


def _typed(value: Any, kind: str, param: str) -> Any:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {
        "string": isinstance(value, str) and bool(value.strip()),
        "boolean": isinstance(value, bool),
        "number": number and math.isfinite(value),
        "integer": number and float(value).is_integer(),
        "models": (isinstance(value, str) and bool(value.strip()))
        or (isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)),
    }[kind]
    if not ok:
        wanted = {"models": "a list of model ids", "integer": "a whole number"}.get(kind, f"a {kind}")
        raise ApiError(
            400, f"`{param}` must be {wanted}, got {json.dumps(value)[:80]}", param=param, code="invalid_overrides"
        )
    return int(value) if kind == "integer" else value


# -- responses ------------------------------------------------------------------------------------
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
    return {**result.usage, "cost": round(result.cost_usd, 10)}


def _tool_calls(result: FusionResult) -> list[dict[str, Any]]:
    return list((result.tool or {}).get("tool_calls") or [])


def completion(result: FusionResult, model: str, cid: str | None = None) -> dict[str, Any]:
    "A ``chat.completion`` whose content is the synthesized answer, plus the top-level ``fusion`` object."
    calls = _tool_calls(result)
    message: dict[str, Any] = {"role": "assistant", "content": result.answer or (None if calls else "")}
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


def _chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def answer_chunks(result: FusionResult, model: str, cid: str) -> list[dict[str, Any]]:
    "The answer as ``chat.completion.chunk``s: the role, the text in pieces, then the finish chunk."
    created = int(time.time())
    chunks = [_chunk(cid, model, created, {"role": "assistant", "content": ""})]
    pieces, current = [], ""
    for word in re.findall(r"\s*\S+\s*", result.answer or "") or ([result.answer] if result.answer else []):
        current += word
        if len(current) >= _CHUNK_CHARS:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    chunks += [_chunk(cid, model, created, {"content": piece}) for piece in pieces]
    calls = _tool_calls(result)
    if calls:
        delta = {"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]}
        chunks.append(_chunk(cid, model, created, delta))
    chunks.append(_chunk(cid, model, created, {}, "tool_calls" if calls else "stop"))
    return chunks


def usage_chunk(result: FusionResult, model: str, cid: str) -> dict[str, Any]:
    "The last chunk: no choices, the ``usage`` totals and the full ``fusion`` object."
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": usage(result),
        "fusion": fusion_object(result),
    }
