"""Reading a `/v1/chat/completions` request of `fusion-magic serve`: its checks, presets and overrides.

Every problem is an `ApiError` (400) naming the field; a good request becomes a `ChatRequest` ready
to build a `Fusion` and call its `arun`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .._base.config import PRESETS
from .._engine.conversation import question_index, text_of
from .openai_api import ALIASES, FUSION_TOOL_TYPES, MODEL, ApiError
from .openai_limits import check_content, check_n, check_unsupported, include_usage

__all__ = [
    "FUSION_PRESETS",
    "IGNORED",
    "OVERRIDES",
    "WEB_TOOL_TYPES",
    "ChatRequest",
    "model_list",
    "parse_chat",
    "web_tools",
]

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
    "max_tool_calls": ("max_tool_calls", "integer"),
    "tools": ("web", "tools"),
}
# Fusion fields accepted for compatibility that change nothing here.
IGNORED = frozenset({"reasoning", "enabled"})
# Fusion's `tools` entries the members can have here: the web (OpenRouter's server tools there, a
# client-side `fetch` elsewhere). `[]` turns them off. The user's data and functions are Python only.
WEB_TOOL_TYPES = frozenset({"openrouter:web_search", "openrouter:web_fetch", "web_search", "web_fetch"})


@dataclass
class ChatRequest:
    """A parsed `/v1/chat/completions` request, ready to become a `Fusion` and its `arun` call."""

    model: str
    question: str
    messages: list[dict[str, Any]]
    settings: dict[str, Any]  # `Fusion` keyword arguments
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: end the stream with the usage chunk
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
    check_content(messages)  # before the question is looked for, so an image-only question names its part
    try:
        index = question_index(messages)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="messages", code="no_question") from None
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "`stream` must be true or false", param="stream")
    check_n(body)
    check_unsupported(body)
    usage_asked = include_usage(body)
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
        include_usage=stream and usage_asked,
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
        settings[keyword] = web_tools(item, param) if kind == "tools" else _typed(item, kind, param)
    return settings


def web_tools(value: Any, param: str) -> bool:
    "Fusion's `tools` list as the `web` setting: true when it names a web tool, false for []."
    kinds = (
        [t.get("type") for t in value] if isinstance(value, list) and all(isinstance(t, dict) for t in value) else None
    )
    if kinds is None or any(k not in WEB_TOOL_TYPES for k in kinds):
        raise ApiError(
            400,
            f"`{param}` must be a list of web tools ({', '.join(sorted(WEB_TOOL_TYPES))}) or [] for none, "
            f"got {json.dumps(value)[:80]}",
            param=param,
            code="invalid_overrides",
        )
    return bool(kinds)


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
