"""A member's tool calls (`Response.tool_calls`) in each view: collapsed HTML, Markdown, text, one line.

Arguments and outputs were written by a model or came back from a tool: hostile text, shown only
through `sanitize` (escaped `<pre>` in HTML, escaped Markdown, cleaned single lines).
"""

from __future__ import annotations

import html
from typing import Any

from . import facts as f
from .sanitize import clean_line, plain_markdown, safe_pre

__all__ = ["brief", "calls_of", "trace_html", "trace_markdown", "trace_text"]


def calls_of(resp: Any) -> list[Any]:
    "The tool calls of a response (none for an object without them, e.g. an old saved result)."
    calls = f.attr(resp, "tool_calls") or []
    return list(calls) if isinstance(calls, (list, tuple)) else []


def _summary(call: Any) -> str:
    "One call as a line: name, arguments, time, and whether it failed."
    name = clean_line(f.attr(call, "name") or "?", 60)
    args = clean_line(f.attr(call, "arguments") or "", 160)
    secs = f.fmt_secs(f.attr(call, "elapsed_s"), compact=True)
    failed = " · error" if f.attr(call, "error") else ""
    return f"{name} {args} · {secs}{failed}".replace("  ", " ")


def brief(resp: Any, limit: int = 160) -> str:
    "The calls in one short line for tables (`to_frame`): 'sql ✓, python ✗' ('' without calls)."
    return ", ".join(
        f"{clean_line(f.attr(c, 'name') or '?', 40)} {'✗' if f.attr(c, 'error') else '✓'}" for c in calls_of(resp)
    )[:limit]


def trace_html(resp: Any, where: str) -> str:
    "A collapsed block under a member's answer: one collapsed entry per call (arguments, output)."
    calls = calls_of(resp)
    if not calls:
        return ""
    entries = []
    for i, call in enumerate(calls):
        output = f.attr(call, "output") or ""
        body = (
            '<div class="fm-muted">arguments</div>'
            + safe_pre(f.attr(call, "arguments") or "", where=f"{where}[{i}].arguments")
            + f'<div class="fm-muted">{"error" if f.attr(call, "error") else "output"}</div>'
            + safe_pre(output, where=f"{where}[{i}].output")
        )
        entries.append(
            f'<details class="fm-d fm-tool"><summary>{html.escape(_summary(call))}</summary>{body}</details>'
        )
    title = html.escape(f"Tool calls ({len(calls)}): " + ", ".join(_names(calls)))
    return f'<details class="fm-d fm-tools"><summary>{title}</summary>{"".join(entries)}</details>'


def _names(calls: list[Any]) -> list[str]:
    return [clean_line(f.attr(c, "name") or "?", 40) for c in calls]


def trace_markdown(resp: Any) -> list[str]:
    "The calls as a short Markdown list (one line each, output's start), after the answer."
    calls = calls_of(resp)
    if not calls:
        return []
    out = [f"*Tool calls ({len(calls)})*", ""]
    for call in calls:
        output = plain_markdown(f.attr(call, "output") or "", 200)
        out.append(f"- {plain_markdown(_summary(call), 240)} → {output}")
    return [*out, ""]


def trace_text(resp: Any, indent: str = "    ") -> list[str]:
    "One text line per call: what it ran and the start of what it got."
    return [
        f"{indent}tool {_summary(call)} -> {clean_line(f.attr(call, 'output') or '', 100)}" for call in calls_of(resp)
    ]
