"""One structured-output call to a panel member (cross-examination marks, a round's reply).

The same negotiation as the judge's (`fusion_magic._engine.judge_seat`): ``json_schema``, then
``json_object``, then the prompt alone, stepping down when a server refuses the request's
``response_format``, remembered per server and model for the session; a deadline; and one
re-ask when nothing readable came back. Only a readable reply is cached (and taken from it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, TypeVar

from .._base.config import Member
from .._judge.verdict_keys import candidates
from .._values.result import Response
from .context import RunContext
from .judge_seat import FORMATS, _formats, _rejects_format
from .panel import ask

__all__ = ["ask_json", "defang", "objects_in"]

T = TypeVar("T")


# A `<` (or a look-alike), then slashes or spaces, then one of the tags these prompts use.
_TAG = re.compile(r"[<\uff1c\ufe64][\s/\\\u200b-\u200d\u2060\ufeff]*(?=(?:question|your_answer|statements)\b)", re.I)


def defang(text: str) -> str:
    "Model text put inside our tags cannot open or close one (a member's answer, another's stance)."
    return _TAG.sub(lambda m: "&lt;" + m.group(0)[1:], text)


def objects_in(text: str) -> list[dict[str, Any]]:
    "The JSON objects in a reply (fenced, with prose around it, near-JSON), most literal first."
    return [c for c in candidates(text) if isinstance(c, dict)]


async def ask_json(
    ctx: RunContext,
    seat: Member,
    messages: list[dict[str, Any]],
    *,
    name: str,
    schema: dict[str, Any],
    read: Callable[[str], T | None],
    key: str,
    timeout: float | None,
    params: dict[str, Any] | None = None,
) -> tuple[T | None, list[Response]]:
    """``read`` of ``seat``'s reply to ``messages`` (None when nothing readable came), and every call made."""
    endpoint = (ctx.endpoint.base_url, seat.model)
    calls: list[Response] = []
    asked = False
    current = messages
    while True:
        level = _formats.get(endpoint, 0)
        fmt = _format(FORMATS[level], name, schema)
        response = await _call(ctx, seat, current, read, key, timeout, {**(params or {}), **fmt})
        calls.append(response)
        if not response.ok:
            if level + 1 < len(FORMATS) and _rejects_format(response):
                _formats[endpoint] = level + 1
                continue
            return None, calls
        value = read(response.content)
        if value is not None or asked:
            return value, calls
        asked = True
        again = f"Reply again with the JSON object only, with the keys {', '.join(schema['properties'])}; no prose."
        current = [*messages, {"role": "assistant", "content": response.content}, {"role": "user", "content": again}]


async def _call(
    ctx: RunContext,
    seat: Member,
    messages: list[dict[str, Any]],
    read: Callable[[str], Any],
    key: str,
    timeout: float | None,
    params: dict[str, Any],
) -> Response:
    try:
        asked = ask(ctx, seat, messages, key=key, accept=lambda text: read(text) is not None, **params)
        response, _ = await asyncio.wait_for(asked, timeout)
    except asyncio.TimeoutError:
        ctx.note(key, state="timed_out", note=f"no answer within {timeout:g}s")
        return Response(seat.name, status="timed_out", error=f"{seat.name}: no answer within {timeout:g}s (cancelled)")
    return response


def _format(kind: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    if kind == "json_schema":
        return {
            "response_format": {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}
        }
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}
