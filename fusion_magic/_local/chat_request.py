"""A chat completion request to the local model server, checked, and the shapes of its replies.

`llama_child` (the server process) reads requests with `Job.parse` and answers with `Reply`; a request it
cannot answer raises `BadRequest`, which becomes a 400 in OpenAI's error shape
(`fusion_magic._base.openai_shapes`, as `serve` writes it). Nothing here needs the model or the HTTP server.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .._base.openai_shapes import chunk

__all__ = ["BadRequest", "Job", "Reply", "response_schema"]

_MAX_BOUND = 256
_SMALL_LIST = 4  # a 135M model asked for a list tends to repeat its last item until max_tokens
_RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's "pick a random seed"


class BadRequest(Exception):
    "A request this server cannot answer: a 400 with OpenAI's error shape."

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.code = param, code


def _tame(schema: Any) -> Any:
    """Fit a schema to llama.cpp and to a very small model.

    Drops maxLength/maxItems above _MAX_BOUND (llama.cpp nests one grammar rule per unit, which is
    slow to build and has crashed its grammar engine), and adds guard rails the model needs but hosted
    APIs may not accept: non-empty strings and short lists. The client still validates what comes back.
    """
    if isinstance(schema, dict):
        tamed = {
            k: _tame(v)
            for k, v in schema.items()
            if not (k in ("maxLength", "maxItems") and isinstance(v, int) and v > _MAX_BOUND)
        }
        if tamed.get("type") == "string" and "enum" not in tamed:
            tamed.setdefault("minLength", 1)
        if tamed.get("type") == "array":
            tamed.setdefault("maxItems", _SMALL_LIST)
        return tamed
    if isinstance(schema, list):
        return [_tame(v) for v in schema]
    return schema


def response_schema(fmt: Any) -> dict | None:
    """The JSON schema a ``response_format`` asks for (tamed), or None for free text.

    OpenAI's ``{"type": "json_schema", "json_schema": {"schema": S}}``, the ``{"type": "json_object",
    "schema": S}`` some servers take, and a bare ``json_object`` (any object).
    """
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise BadRequest("response_format must be text, json_object or json_schema", "response_format")
    if fmt["type"] == "text":
        return None
    holder = fmt.get("json_schema") if fmt["type"] == "json_schema" else fmt
    schema = holder.get("schema") if isinstance(holder, dict) else None
    if fmt["type"] == "json_schema" and not isinstance(schema, dict):
        raise BadRequest("response_format.json_schema.schema must be an object", "response_format")
    return _tame(schema) if isinstance(schema, dict) else {"type": "object"}


def _text(content: Any, where: str) -> str:
    "A message's content as text: a string, None, or a list of text parts."
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text") or "") for p in content)
    raise BadRequest(f"{where} must be a string or a list of text parts (this model reads text only)", where)


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(f"{name} must be a number from {low:g} to {high:g}", name)
    return float(value)


@dataclass
class Job:
    "One chat completion request, checked."

    messages: list[tuple[str, str]]
    max_tokens: int | None
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    seed: int
    stop: list[str]
    schema: dict | None
    stream: bool
    include_usage: bool
    cancelled: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def parse(cls, body: Any) -> Job:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list", "messages")
        turns = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise BadRequest(f"messages[{i}] must be an object with a role", f"messages[{i}]")
            turns.append((message["role"], _text(message.get("content"), f"messages[{i}].content")))
        if body.get("n") not in (None, 1):
            raise BadRequest("this server writes one choice per request (n must be 1)", "n")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise BadRequest("max_tokens must be a positive integer", "max_tokens")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BadRequest("seed must be an integer", "seed")
        stop = body.get("stop")
        stop = [stop] if isinstance(stop, str) else stop
        if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) and s for s in stop)):
            raise BadRequest("stop must be a string or a list of non-empty strings", "stop")
        options = body.get("stream_options") or {}
        return cls(
            messages=turns,
            max_tokens=limit,
            temperature=_number(body, "temperature", 0.8, 0, 2),
            top_p=_number(body, "top_p", 0.95, 0, 1),
            top_k=int(_number(body, "top_k", 40, 0, 1 << 20)),
            min_p=_number(body, "min_p", 0.05, 0, 1),
            repeat_penalty=_number(body, "repeat_penalty", 1.1, 0, 10),
            seed=_RANDOM_SEED if seed is None else seed & 0xFFFFFFFF,
            stop=stop or [],
            schema=response_schema(body.get("response_format")),
            stream=bool(body.get("stream")),
            include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        )


@dataclass
class Reply:
    "OpenAI's reply shapes for one request."

    model: str
    prompt_tokens: int
    include_usage: bool
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def usage(self, written: int) -> dict:
        total = self.prompt_tokens + written
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": written, "total_tokens": total}

    def whole(self, text: str, finish: str, written: int) -> dict:
        message = {"role": "assistant", "content": text}
        return {
            **self._head("chat.completion"),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": self.usage(written),
        }

    def chunk(self, delta: dict, finish: str | None = None) -> dict:
        return chunk(self.id, self.model, self.created, delta, finish, include_usage=self.include_usage)

    def usage_chunk(self, written: int) -> dict:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": self.usage(written)}

    def _head(self, kind: str) -> dict:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}
