"""The user's own functions as panel tools: the schema from the signature and docstring (pydantic).

    def revenue(region: str, year: int = 2024) -> float:
        '''Total revenue of a region in a year.

        Args:
            region: the sales region, e.g. "EMEA".
            year: the calendar year.
        '''

    function_tool(revenue)  # a `revenue` tool: {"region": string (required), "year": integer (default 2024)}

The function is the user's own trusted code and runs in the kernel: a sync function in a worker
thread (the event loop goes on), an async one awaited. The model's arguments are validated (and
coerced, e.g. "3" -> 3) against the annotations first; a validation error or an exception the function
raises becomes a one-line `ToolError` the model reads. The result becomes text: strings as they are,
DataFrames as a bounded table, other values as JSON where they can be, `str()` otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import re
from collections.abc import Callable
from typing import Any

from .._base.errors import ConfigError
from .base import Tool, ToolError
from .output import clip, one_line

__all__ = ["function_tool"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI accepts as a function name
# `Args:` / `Arguments:` / `Parameters:` (Google, NumPy) sections and Sphinx `:param name:` fields.
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:?\s*$", re.IGNORECASE)
_GOOGLE_ITEM = re.compile(r"^\s*\*{0,2}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")  # name (type): text
_NUMPY_ITEM = re.compile(r"^\s*(\w+)(?:\s+:.*)?$")  # name : type, the text on the next lines
_SPHINX = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_OTHER_SECTION = re.compile(r"^\s*(Returns?|Yields?|Raises|Examples?|Notes?|See Also)\s*:?\s*$", re.IGNORECASE)


def function_tool(fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> Tool:
    """``fn`` as a panel tool. Raises `ConfigError` for a function a model cannot be told how to call."""
    from pydantic import ConfigDict, Field, ValidationError, create_model

    if not callable(fn):
        raise ConfigError(f"tools: {fn!r} is not a function")
    tool_name = name or getattr(fn, "__name__", None) or type(fn).__name__
    if not _NAME.match(tool_name):
        raise ConfigError(f"tools: {tool_name!r} is not a usable tool name (letters, digits, _ and -, at most 64)")
    try:
        signature = inspect.signature(fn, eval_str=True)  # annotations written as strings, too
    except NameError:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"tools: the signature of {tool_name} cannot be read ({exc})") from None
    doc = inspect.getdoc(fn) or ""
    summary, param_docs = _parse_doc(doc)
    fields: dict[str, Any] = {}
    positional: list[str] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tools: {tool_name} takes *{param.name}; a model can only be given named parameters")
        if param.name.startswith("_"):  # pydantic does not allow leading underscores in field names
            if param.default is param.empty:
                raise ConfigError(f"tools: {tool_name}'s parameter {param.name} must not start with an underscore")
            continue
        if param.kind is param.POSITIONAL_ONLY:
            positional.append(param.name)
        annotation = Any if param.annotation is param.empty else param.annotation
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, Field(default, description=param_docs.get(param.name)))
    try:
        model = create_model(
            f"{tool_name}_arguments", __config__=ConfigDict(arbitrary_types_allowed=True, extra="forbid"), **fields
        )
        schema = _clean_schema(model.model_json_schema())
    except Exception as exc:  # noqa: BLE001 - pydantic raises several kinds for annotations it cannot describe
        raise ConfigError(
            f"tools: the parameters of {tool_name} cannot be described to a model: {one_line(exc)}"
        ) from None
    text = description or summary or f"The user's function {tool_name}."
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)

    async def run(arguments: dict[str, Any]) -> str:
        try:
            values = model.model_validate(arguments or {})
        except ValidationError as exc:
            raise ToolError(f"invalid arguments for {tool_name}: {_validation_line(exc)}") from None
        kwargs = {key: getattr(values, key) for key in fields}
        args = [kwargs.pop(key) for key in positional]
        try:
            if is_async:
                result = await fn(*args, **kwargs)
            else:
                result = await asyncio.to_thread(fn, *args, **kwargs)
                if inspect.isawaitable(result):  # a sync wrapper that hands back a coroutine
                    result = await result
        except Exception as exc:  # noqa: BLE001 - the user's function may raise anything; the model reads it
            raise ToolError(one_line(exc)) from None
        return clip(_to_text(result))

    return Tool(tool_name, text, schema, run, identity=_identity(fn, schema))


def _parse_doc(doc: str) -> tuple[str, dict[str, str]]:
    "The docstring's description (everything before the first section) and each parameter's description."
    lines = doc.splitlines()
    params: dict[str, str] = {}
    summary: list[str] = []
    in_params = False
    current: str | None = None
    started_sections = False
    for line in lines:
        sphinx = _SPHINX.match(line)
        if sphinx:
            started_sections = True
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            continue
        if _SECTION.match(line):
            in_params = started_sections = True
            current = None
            continue
        if _OTHER_SECTION.match(line) or re.match(r"^\s*:(returns?|raises?|rtype)\b", line):
            in_params, current, started_sections = False, None, True
            continue
        if in_params:
            if set(line.strip()) <= {"-"} and line.strip():  # NumPy's underline
                continue
            item = _GOOGLE_ITEM.match(line) or _NUMPY_ITEM.match(line)
            indent = len(line) - len(line.lstrip())
            if item and (current is None or indent <= _indent_of_items(lines, line)):
                current = item.group(1)
                params[current] = (item.group(2) if item.re is _GOOGLE_ITEM else "").strip()
            elif current and line.strip():
                params[current] = f"{params[current]} {line.strip()}".strip()
            continue
        if current and line.strip() and line[:1].isspace():  # a Sphinx field's continuation
            params[current] = f"{params[current]} {line.strip()}"
            continue
        if not started_sections:
            summary.append(line)
    return "\n".join(summary).strip(), {k: v for k, v in params.items() if v}


def _indent_of_items(lines: list[str], line: str) -> int:
    "The indentation of the first item under the parameters section (continuations are deeper)."
    seen = False
    for other in lines:
        if _SECTION.match(other):
            seen = True
            continue
        if seen and other.strip() and not set(other.strip()) <= {"-"}:
            return len(other) - len(other.lstrip())
    return len(line) - len(line.lstrip())


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    "pydantic's schema without the titles (noise to a model); `properties` always present."

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    cleaned = strip(schema)
    cleaned.setdefault("properties", {})
    cleaned["type"] = "object"
    return cleaned


def _validation_line(exc: Any) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _to_text(value: Any) -> str:
    from .._base.interpolate import to_prompt_text

    if value is None:
        return "(no result)"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple, int, float, bool)):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            pass
    return to_prompt_text(value)


def _identity(fn: Callable[..., Any], schema: dict[str, Any]) -> str:
    "What a cached step must match: the function's name, schema and code (a changed function is a new tool)."
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    parts = [
        getattr(fn, "__module__", "") or "",
        getattr(fn, "__qualname__", "") or "",
        json.dumps(schema, sort_keys=True),
    ]
    if code is not None:
        parts += [code.co_code.hex(), repr(code.co_consts)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]
