"""The tools a panel's members get, built once from the settings: `data`, `python`, `tools`, `web`.

A `Toolset` is what the member tool loop (`fusion_magic._engine.toolloop`) reads: the client-side tools it
runs itself, the server tools it only names (OpenRouter's `openrouter:web_search` and
`openrouter:web_fetch`, run by the server), and the bound on calls. The tools themselves live in
`fusion_magic._tools`; they are imported here only when a setting asks for one. The judge never
gets a toolset.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._base.errors import ConfigError
from .._base.settings import DEFAULTS, MAX_TOOL_CALLS, setting
from .._tools.base import Tool

__all__ = [
    "DEFAULT_TOOL_CALLS",
    "MAX_TOOL_CALLS",
    "WEB_SERVER_TOOLS",
    "Toolset",
    "build_toolset",
    "first_step",
    "from_notebook",
    "names_in",
]

DEFAULT_TOOL_CALLS: int = DEFAULTS["max_tool_calls"]  # OpenRouter Fusion's default per panellist
# What `--web` gives members on OpenRouter: Fusion's own defaults, run by the server.
WEB_SERVER_TOOLS: tuple[dict[str, Any], ...] = ({"type": "openrouter:web_search"}, {"type": "openrouter:web_fetch"})


@dataclass(frozen=True)
class Toolset:
    """The tools of every panel member: run here (``tools``) or by the server (``server``)."""

    tools: tuple[Tool, ...] = ()
    server: tuple[dict[str, Any], ...] = ()
    max_calls: int = DEFAULT_TOOL_CALLS

    def __bool__(self) -> bool:
        return bool(self.tools or self.server)

    @property
    def names(self) -> list[str]:
        "Every tool's name, client-side first (server tools by their type)."
        return [t.name for t in self.tools] + [str(s.get("type")) for s in self.server]

    def specs(self) -> list[dict[str, Any]]:
        "The request's `tools` list."
        return [*(t.spec() for t in self.tools), *(dict(s) for s in self.server)]

    def find(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def identity(self) -> str:
        "What the cache key adds besides the specs sent: each client tool's identity (its data's fingerprint)."
        return json.dumps([[t.name, t.identity] for t in self.tools], ensure_ascii=False)


def build_toolset(
    *,
    data: Mapping[str, Any] | None = None,
    python: bool | str = False,
    tools: Sequence[Callable[..., Any] | Tool] | None = None,
    web: bool = False,
    openrouter: bool = False,
    max_tool_calls: int = DEFAULT_TOOL_CALLS,
) -> Toolset:
    """The members' tools for these settings (an empty `Toolset` when none is asked for).

    Raises `ConfigError` (one line) for a bad value: frames that are not a mapping of names, a
    `python` mode that is neither a bool nor "unsandboxed", a sandbox that does not exist here, a
    tool that is not callable, two tools of one name.
    """
    max_tool_calls = DEFAULT_TOOL_CALLS if max_tool_calls is None else max_tool_calls
    setting("max_tool_calls").check(max_tool_calls)
    built: list[Tool] = []
    frames = _frames(data)
    if frames:
        from .._tools.sql import sql_tool  # type: ignore[import-not-found, unused-ignore]

        built.append(sql_tool(frames))
    if python not in (False, True, "unsandboxed") and python is not None:
        raise ConfigError(f'python must be False, True or "unsandboxed", got {python!r}')
    if python:
        from .._tools.python import python_tool  # type: ignore[import-not-found, unused-ignore]

        built.append(python_tool(frames, mode="unsandboxed" if python == "unsandboxed" else "sandboxed"))
    server: tuple[dict[str, Any], ...] = ()
    if web and openrouter:
        server = WEB_SERVER_TOOLS
    elif web:
        from .._tools.fetch import fetch_tool  # type: ignore[import-not-found, unused-ignore]

        built.append(fetch_tool())
    for fn in tools or ():
        built.append(_user_tool(fn))
    seen: set[str] = set()
    for tool in built:
        if tool.name in seen:
            raise ConfigError(f"two tools are named {tool.name!r}; rename one of them")
        seen.add(tool.name)
    return Toolset(tuple(built), server, max_tool_calls)


def _frames(data: Mapping[str, Any] | None) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f'data must map table names to DataFrames, e.g. data={{"sales": df}}; got {type(data).__name__}'
        )
    for name in data:
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"data: table names must be identifiers (letters, digits, _), got {name!r}")
    return dict(data)


def _user_tool(fn: Callable[..., Any] | Tool) -> Tool:
    if isinstance(fn, Tool):
        return fn
    if not callable(fn):
        raise ConfigError(f"tools: each tool must be a function, got {type(fn).__name__}")
    from .._tools.functions import function_tool  # type: ignore[import-not-found, unused-ignore]

    return function_tool(fn)


def from_notebook(settings: Mapping[str, Any], namespace: Mapping[str, Any]) -> dict[str, Any]:
    "``settings`` with the names of ``--data`` and ``--tools`` replaced by the notebook's objects."
    out = dict(settings)
    if isinstance(out.get("data"), str):
        out["data"] = dict(names_in(out["data"], namespace, "--data"))
    if isinstance(out.get("tools"), str):
        out["tools"] = [obj for _, obj in names_in(out["tools"], namespace, "--tools")]
    return out


def names_in(value: Any, namespace: Mapping[str, Any], flag: str) -> list[tuple[str, Any]]:
    """The ``(name, object)`` pairs a flag's comma-separated names give in ``namespace``.

    A list or dict is already objects (from Python); it is returned as is by the caller.
    Raises `ConfigError` for an empty list or a name the notebook does not define.
    """
    names = [n.strip() for n in str(value).split(",") if n.strip()]
    if not names:
        raise ConfigError(f"{flag} needs one or more variable names, comma-separated")
    missing = [n for n in names if n not in namespace]
    if missing:
        raise ConfigError(f"{flag}: no variable named {', '.join(missing)} in the notebook")
    return [(n, namespace[n]) for n in names]


def first_step(toolset: Toolset | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request parameters a member's first step adds for ``toolset``, and what its cache key adds.

    The tool loop sends these; `fusion_magic._engine.panel.is_cached` asks the cache with the same.
    """
    if not toolset:
        return {}, {}
    params: dict[str, Any] = {"tools": toolset.specs()}
    if toolset.tools:
        params["tool_choice"] = "auto"
    if toolset.server:  # OpenRouter's own loop over its server tools has the same bound
        params["max_tool_calls"] = toolset.max_calls
    return params, {"_tools": toolset.identity()}
