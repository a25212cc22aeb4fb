"""The chat-completions wire format: SSE and JSON bodies in, `Completion` or `ProviderError` out.

Pure parsing, no I/O policy: retries, timeouts and the key live in `fusion_magic._engine.client`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import EventSource

from .._base.errors import ProviderError
from .._base.reasoning import ThinkFilter, reasoning_of, split_think
from .billing import Billing
from .usage import read_usage, retry_after_seconds

__all__ = [
    "RETRYABLE_STATUS",
    "Billing",
    "Completion",
    "error_from",
    "error_from_response",
    "loads",
    "names_response_format",
    "names_stream_options",
    "read_body",
    "read_stream",
    "repair_text",
]

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


@dataclass
class Completion:
    """One finished chat completion."""

    content: str = ""
    served_model: str | None = None
    provider: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float = 0.0
    generation_id: str | None = None
    reasoning: str = ""
    reasoning_tokens: int | None = None
    refusal: str = ""  # the model's refusal text (`message.refusal` / `delta.refusal`)
    filtered: list[str] = field(default_factory=list)  # content-filter categories that fired ("violence (high)")
    thinking_open: bool = False  # a `<think>` block in the content was never closed: no answer yet
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, str]] = field(default_factory=list)  # url_citation annotations: [{url, title}]

    def take_annotations(self, annotations: Any) -> None:
        "Keep the web citations (`url_citation` annotations) of a message or delta."
        for note in annotations if isinstance(annotations, list) else []:
            cite = note.get("url_citation") if isinstance(note, dict) else None
            cite = cite if isinstance(cite, dict) else note if isinstance(note, dict) else {}
            url = cite.get("url")
            if (note.get("type") in (None, "url_citation")) and isinstance(url, str) and url:
                title = cite.get("title")
                self.sources.append({"url": url, "title": title if isinstance(title, str) else ""})

    def take_usage(self, usage: Any) -> None:
        "Keep a usage block's figures (`fusion_magic._engine.usage`); ``null`` or absent keeps what is known."
        figures = read_usage(usage)
        if figures is None:
            return
        self.usage = usage
        self.prompt_tokens, self.completion_tokens = figures.prompt_tokens, figures.completion_tokens
        self.reasoning_tokens, self.cost_usd = figures.reasoning_tokens, figures.cost_usd

    def take_choice(self, choice: dict[str, Any], part: dict[str, Any]) -> None:
        "Keep what a choice and its message or delta say besides the text: reasoning, refusal, filters."
        self.reasoning += reasoning_of(part)
        refusal = part.get("refusal")
        self.refusal += refusal if isinstance(refusal, str) else ""
        self.take_annotations(part.get("annotations"))
        for name in ("content_filter_results", "content_filter_result"):  # Azure spells both
            for category, verdict in (choice.get(name) or {}).items() if isinstance(choice.get(name), dict) else ():
                if isinstance(verdict, dict) and verdict.get("filtered") is True:
                    severity = verdict.get("severity")
                    self.filtered.append(f"{category} ({severity})" if isinstance(severity, str) else str(category))

    def finish_text(self, content: str) -> None:
        "Set the answer from ``content``: inline `<think>` blocks move to the reasoning."
        answer, thoughts, finished = split_think(repair_text(content))
        self.content, self.thinking_open = answer, not finished
        self.reasoning = repair_text("\n\n".join(t for t in (self.reasoning, thoughts) if t))


async def read_stream(
    resp: httpx.Response, model: str, on_delta: Callable[[str], None] | None, *, key_source: str | None = None
) -> Completion:
    "Read an SSE chat stream into a `Completion`; raise `ProviderError` for in-band errors and cut streams."
    stream = _Stream(model, on_delta, key_source)
    finished = False
    try:
        async for event in EventSource(resp).aiter_sse():
            # Read on past [DONE] to the end of the body: a fully read response hands its
            # connection back to the pool, an abandoned one costs a close and a reconnect.
            if finished or not event.data.strip():
                continue
            if event.data.strip() == "[DONE]":
                finished = True
                continue
            stream.take(event.data)
    except asyncio.CancelledError:
        if not finished:
            raise
        # The answer was complete (and billed); only the end of the body was pending. Keep the
        # answer rather than lose what was paid for; the connection is closed, not reused.
    if not finished and stream.done.finish_reason is None:
        raise ProviderError(f"{model}: stream ended early (connection closed)", model=model, retryable=True)
    return stream.completion()


class _Stream:
    """Stream chunks folded into one `Completion` as they arrive."""

    def __init__(self, model: str, on_delta: Callable[[str], None] | None, key_source: str | None) -> None:
        self.model, self.key_source = model, key_source
        # Live text skips a leading <think> block: the thoughts are the reasoning, not the answer.
        self.on_delta = ThinkFilter(on_delta).feed if on_delta else None
        self.done = Completion()
        self.parts: list[str] = []
        self.tools: list[dict[str, Any]] = []  # the tool calls, in the order they began
        self.at: dict[int, int] = {}  # a delta's `index` -> its place in `tools`

    def take(self, data: str) -> None:
        "Fold one SSE data payload in; raise `ProviderError` for malformed or in-band errors."
        chunk, done, model = loads(data, self.model), self.done, self.model
        if not isinstance(chunk, dict):
            raise ProviderError(f"{model}: malformed stream chunk", model=model, retryable=True)
        done.served_model = chunk.get("model") or done.served_model
        done.provider = chunk.get("provider") or done.provider
        done.generation_id = chunk.get("id") or done.generation_id
        groq = chunk.get("x_groq")
        done.take_usage(chunk.get("usage") or (groq.get("usage") if isinstance(groq, dict) else None))
        if chunk.get("error"):
            # In-band error: the status was already 200. Key on `error`, not on finish_reason.
            error = error_from(chunk["error"], model, key_source=self.key_source)
            if error.outcome:  # a filter's error frame: what had streamed is kept, marked
                error.partial = self.completion()
            raise billed(error, done)
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                self.parts.append(text)
                if self.on_delta:
                    self.on_delta(text)
            done.take_choice(choice, delta if isinstance(delta, dict) else {})
            for call in delta.get("tool_calls") or []:
                self._take_call(call if isinstance(call, dict) else {})
            if choice.get("finish_reason"):
                done.finish_reason = choice["finish_reason"]

    def _take_call(self, call: dict[str, Any]) -> None:
        """Fold one tool-call delta in: by its ``index``; without one, onto the last call unless it
        carries a new id; an index reused under a new id (some providers do) starts a new call."""
        index, cid = call.get("index"), call.get("id")
        pos = (
            self.at.get(index) if isinstance(index, int) else (len(self.tools) - 1 if self.tools and not cid else None)
        )
        if pos is not None and cid and self.tools[pos]["id"] and cid != self.tools[pos]["id"]:
            pos = None
        if pos is None:
            self.tools.append({"id": None, "name": "", "arguments": ""})
            pos = len(self.tools) - 1
            if isinstance(index, int):
                self.at[index] = pos
        slot, fn = self.tools[pos], call.get("function") or {}
        slot["id"] = cid or slot["id"]
        name = fn.get("name") or ""
        slot["name"] = name if slot["name"] in ("", name) else slot["name"] + name  # some repeat it whole
        args = fn.get("arguments")
        slot["arguments"] += (args if isinstance(args, str) else json.dumps(args)) if args else ""

    def completion(self) -> Completion:
        # Joined before repair: the two halves of an emoji may arrive in different chunks.
        self.done.finish_text("".join(self.parts))
        self.done.tool_calls = [
            {k: repair_text(v) if isinstance(v, str) else v for k, v in call.items()} for call in self.tools
        ]
        return self.done


def repair_text(text: str) -> str:
    """``text`` with lone surrogates (half an emoji, from a JSON ``\\ud83d`` escape) as U+FFFD; pairs recombine.

    Such text cannot be encoded as UTF-8: left alone it would crash the cache, the judge request
    and the notebook's writer, and lose an answer that was paid for.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def billed(error: ProviderError, done: Completion) -> ProviderError:
    "``error`` carrying what the server billed for the call that failed (from its usage block)."
    error.cost_usd, error.prompt_tokens, error.completion_tokens = (
        done.cost_usd,
        done.prompt_tokens,
        done.completion_tokens,
    )
    return error


def read_body(text: str, model: str, *, key_source: str | None = None) -> Completion:
    "Parse a non-streamed chat completion body."
    # Bodies may start with whitespace keep-alive padding; json.loads accepts that.
    data = loads(text, model)
    if not isinstance(data, dict):
        raise ProviderError(f"{model}: malformed response body", model=model, retryable=True)
    usage = Completion()
    usage.take_usage(data.get("usage"))
    if data.get("error"):
        raise billed(error_from(data["error"], model, key_source=key_source), usage)
    choices = data.get("choices") or []
    if not choices:
        raise billed(ProviderError(f"{model}: response has no choices", model=model, retryable=True), usage)
    if choices[0].get("error"):  # a provider error that cut the generation short
        raise billed(error_from(choices[0]["error"], model, key_source=key_source), usage)
    message = choices[0].get("message") or {}
    done = Completion(
        served_model=data.get("model"),
        provider=data.get("provider"),
        finish_reason=choices[0].get("finish_reason"),
        generation_id=data.get("id"),
        tool_calls=[
            {
                "id": c.get("id"),
                "name": repair_text((c.get("function") or {}).get("name", "")),
                "arguments": repair_text(_arguments((c.get("function") or {}).get("arguments"))),
            }
            for c in message.get("tool_calls") or []
        ],
    )
    done.take_usage(data.get("usage"))
    done.take_choice(choices[0], message)
    content = message.get("content")
    done.finish_text(content if isinstance(content, str) else "")
    return done


def _arguments(value: Any) -> str:
    "A tool call's arguments as JSON text (some servers send the object itself)."
    return value if isinstance(value, str) else "" if value is None else json.dumps(value, ensure_ascii=False)


def error_from_response(
    status: int, text: str, model: str | None, headers: httpx.Headers, *, key_source: str | None = None
) -> ProviderError:
    "The `ProviderError` for a non-200 response (JSON error body or not)."
    try:
        data = json.loads(text)
        if isinstance(data, list) and data and isinstance(data[0], dict):
            data = data[0]  # Gemini's compatibility layer wraps its error in a list
        error = data.get("error") if isinstance(data, dict) else None
    except ValueError:
        error = None
    if not isinstance(error, dict):
        reason = httpx.codes.get_reason_phrase(status)
        snippet = " ".join(text.split())[:160]
        detail = f" ({snippet})" if snippet and snippet != reason else ""
        error = {"code": status, "message": reason + detail}
    error.setdefault("code", status)
    wait = retry_after_seconds(headers)
    return error_from(error, model, retry_after=wait, status=status, key_source=key_source)


def error_from(
    error: dict[str, Any] | Any,
    model: str | None,
    *,
    retry_after: float | None = None,
    status: int | None = None,
    key_source: str | None = None,
) -> ProviderError:
    "The `ProviderError` for an OpenRouter-style error object: one line naming the model, with a hint."
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code = error.get("code", error.get("http_status"))
    status = status or (code if isinstance(code, int) else None)
    message = " ".join(str(error.get("message") or "error").split())  # one line
    raw = (error.get("metadata") or {}).get("raw") if isinstance(error.get("metadata"), dict) else None
    if raw and message == "Provider returned error":
        message += f": {' '.join(str(raw).split())[:160]}"
    who = model or "server"
    hint = {
        401: f" (check the API key {_key_hint(key_source)})",
        402: " (out of credits: add credits at https://openrouter.ai/credits or pick cheaper models)",
        403: " (refused: moderation or permissions)",
        404: " (unknown model or no endpoint serves it; see `%fusion models`)",
    }.get(status or 0, "")
    label = f"{status} " if status else (f"{code} " if code else "")
    retryable = status in RETRYABLE_STATUS if status else isinstance(code, str)
    meta = error.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    kind = str(meta.get("error_type") or code)  # OpenRouter's typed error, else Azure's string code
    outcome = {"content_filter": "filtered", "content_policy_violation": "filtered", "refusal": "refused"}.get(kind)
    retryable = retryable and outcome is None
    if retryable and status == 500 and (names_response_format(message) or names_stream_options(message)):
        retryable = False  # a server that cannot do structured output will not learn it on a retry
    return ProviderError(
        repair_text(f"{who}: {label}{message}{hint}".strip()),
        model=model,
        status_code=status,
        retryable=retryable,
        retry_after=retry_after,
        outcome=outcome,
    )


def names_response_format(message: str) -> bool:
    "True when an error message is about the request's structured-output setting."
    return bool(re.search(r"response_format|json_schema|json_object|structured.output|response.format", message, re.I))


def names_stream_options(message: str) -> bool:
    "True when an error message is about the request's ``stream_options`` (a server that does not know it)."
    return bool(re.search(r"stream_options|include_usage|stream.options", message, re.I))


def _key_hint(source: str | None) -> str:
    if source == "argument":
        return "passed as api_key"
    return f"in {source}" if source else "(set OPENROUTER_API_KEY or FUSION_API_KEY)"


def loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ProviderError(f"{what}: malformed JSON from the server", retryable=True) from None
