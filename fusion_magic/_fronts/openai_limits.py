"""What `fusion-magic serve` cannot pass on, refused with OpenAI's error JSON, and what a stream must carry.

A deliberation sends text to the panel and the judge, and gives one answer per request:

- a content part other than text (``image_url``, ``input_audio``, ``file``, ...) is refused with a
  400 naming the part (``messages[0].content[1]: image_url parts are not supported ...``) rather
  than dropped, so no member answers a question it never saw in full;
- ``n`` other than 1 is refused with a 400 (``unsupported_value``, as OpenAI answers a model that
  gives one choice);
- ``response_format`` other than text (``json_object``, ``json_schema``) and ``logprobs`` are
  refused with a 400 (``unsupported_value``): the answer is the judge's prose synthesis and has no
  token log-probabilities, so a client expecting either would misread what came back;
- ``stream_options.include_usage`` decides whether a stream ends with the ``choices: []`` usage
  chunk (OpenAI's documented behaviour: without it no such chunk, so a client's
  ``chunk.choices[0]`` loop never meets an empty list). Outside a stream it changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from .openai_api import ApiError

__all__ = ["check_content", "check_n", "check_unsupported", "include_usage"]

_TEXT = "text"


def check_content(messages: list[Any]) -> None:
    "400 for a message whose content is not text: a non-text part, a malformed part, content of the wrong type."
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue  # the message shape itself is checked where the question is found
        content = message.get("content")
        where = f"messages[{i}].content"
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise ApiError(
                400,
                f"{where} must be a string or a list of content parts, got {type(content).__name__}",
                param=where,
                code="invalid_type",
            )
        for j, part in enumerate(content):
            _check_part(part, f"{where}[{j}]")


def _check_part(part: Any, where: str) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(kind, str) or not kind:
        raise ApiError(
            400, f'{where}: a content part must be an object with a "type"', param=where, code="invalid_type"
        )
    if kind != _TEXT:
        raise ApiError(
            400,
            f"{where}: {kind} parts are not supported: a deliberation passes only text to its panel and judge "
            "(describe the content in a text part instead)",
            param=where,
            code="unsupported_content",
        )
    if not isinstance(part.get("text"), str):
        raise ApiError(400, f"{where}: a text part needs a string `text`", param=f"{where}.text", code="invalid_type")


def check_n(body: dict[str, Any]) -> None:
    "400 unless ``n`` is absent, null or 1: a deliberation gives one answer."
    n = body.get("n")
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not float(n).is_integer():
        raise ApiError(400, f"`n` must be a whole number, got {json.dumps(n)[:40]}", param="n", code="invalid_type")
    if n < 1:
        raise ApiError(400, f"`n` must be at least 1, got {n:g}", param="n", code="integer_below_min_value")
    if n != 1:
        raise ApiError(
            400,
            f"Unsupported value: `n` is {n:g}, but a deliberation gives one answer (n: 1); "
            "send the request again for another",
            param="n",
            code="unsupported_value",
        )


def include_usage(body: dict[str, Any]) -> bool:
    "Whether ``stream_options.include_usage`` asks for the usage chunk; 400 for a malformed ``stream_options``."
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise ApiError(400, "`stream_options` must be an object", param="stream_options", code="invalid_type")
    wanted = options.get("include_usage", False)
    if wanted is None:
        return False
    if not isinstance(wanted, bool):
        raise ApiError(
            400,
            f"`stream_options.include_usage` must be true or false, got {json.dumps(wanted)[:40]}",
            param="stream_options.include_usage",
            code="invalid_type",
        )
    return wanted


def check_unsupported(body: dict[str, Any]) -> None:
    "400 for ``response_format`` other than text and for ``logprobs``/``top_logprobs``: nothing would honour them."
    form = body.get("response_format")
    kind = form.get("type") if isinstance(form, dict) else form
    if form is not None and kind != "text":
        raise ApiError(
            400,
            f"Unsupported value: `response_format` {json.dumps(kind)[:40]}: the answer is the judge's synthesis "
            "in prose; ask for the format in the question, or read the structured analysis in `fusion`",
            param="response_format",
            code="unsupported_value",
        )
    if body.get("logprobs") or body.get("top_logprobs"):
        name = "logprobs" if body.get("logprobs") else "top_logprobs"
        raise ApiError(
            400,
            f"Unsupported value: `{name}`: a deliberation's answer has no token log-probabilities",
            param=name,
            code="unsupported_value",
        )
