"""`fusion-magic mcp`: an MCP server over stdio with one tool, `fusion`.

    fusion-magic mcp [--preset P]

The tool takes ``question`` and optional ``preset``, ``panel`` and ``judge``, runs a deliberation
on the same engine, cache and ledger as `Fusion.run`, and returns two text blocks: the synthesized
answer, then the result's JSON (``to_dict()``: status, analysis, responses, failed_models...).
While it runs it reports progress (members answered of the panel) to clients that ask for it.
Needs the official SDK: ``pip install 'fusion-magic[mcp]'``.
"""

# No `from __future__ import annotations`: the SDK reads the tool's annotations, which name local imports.

import argparse
import asyncio
import json
import sys
from typing import Annotated, Any

from pydantic import Field

from .._base.config import PRESETS
from .._base.errors import ConfigError, FusionError
from .._fusion import Fusion
from .._local.model import check_runnable
from .._render.progress import FINAL
from .openai_api import ApiError
from .openai_request import web_tools

__all__ = ["build_server", "main_mcp"]

INSTALL = "pip install 'fusion-magic[mcp]'"
DESCRIPTION = (
    "Ask a panel of different AI models the question and have a judge compare their answers. "
    "Returns the synthesized answer, then JSON with consensus, contradictions, partial coverage, "
    "unique insights, blind spots and every panel answer. Worth it for hard, contested or "
    "high-stakes questions; it costs several model calls."
)
PROGRESS_EVERY = 1.0


def build_server(default_preset: str = "quality") -> Any:
    "The `MCPServer` with its `fusion` tool; ``default_preset`` is used when a call names none."
    try:
        from mcp.server import MCPServer
        from mcp.server.mcpserver import Context
        from mcp.server.mcpserver.exceptions import ToolError
        from mcp.types import TextContent
    except ImportError:
        raise ConfigError(f"the MCP server needs the mcp SDK: {INSTALL}") from None
    if default_preset not in PRESETS:
        raise ConfigError(f"unknown preset {default_preset!r}; known: {', '.join(sorted(PRESETS))}")
    Fusion(preset=default_preset)  # a missing key fails at start, not at the first call
    check_runnable(PRESETS[default_preset].endpoint)  # so does a local preset without the local model
    # WARNING: the SDK's default (INFO) would log every upstream HTTP request on stderr.
    server = MCPServer(
        "fusion_magic", instructions="Call `fusion` to have a panel of models deliberate.", log_level="WARNING"
    )

    @server.tool(name="fusion", description=DESCRIPTION)
    async def fusion(
        question: Annotated[str, Field(description="the question for the panel")],
        ctx: Context,
        preset: Annotated[str | None, Field(description="preset name: " + ", ".join(PRESETS))] = None,
        panel: Annotated[list[str] | None, Field(description="model ids to ask instead of the preset's")] = None,
        judge: Annotated[str | None, Field(description="the model that compares the answers")] = None,
        tools: Annotated[
            list[dict[str, Any]] | None,
            Field(description='the members\' tools: [{"type": "openrouter:web_search"}, ...] for the web; [] for none'),
        ] = None,
        max_tool_calls: Annotated[
            int | None, Field(description="tool calls per member before it must answer (1 to 16, default 4)")
        ] = None,
    ) -> list[TextContent]:
        try:
            extra: dict[str, Any] = {} if max_tool_calls is None else {"max_tool_calls": max_tool_calls}
            if tools is not None:
                extra["web"] = web_tools(tools, "tools")
            deliberation = Fusion(preset=preset or default_preset, panel=panel, judge=judge, **extra)
            tracker = deliberation.tracker()
            task = asyncio.ensure_future(deliberation.arun(question, tracker=tracker))
            while not task.done():
                await asyncio.wait({task}, timeout=PROGRESS_EVERY)
                states = tracker.snapshot()
                done = sum(s.state in FINAL for s in states)
                await ctx.report_progress(done, len(states), f"{done} of {len(states)} calls finished")
            result = task.result()
        except (FusionError, ApiError) as exc:
            raise ToolError(str(exc)) from None
        data = result.to_dict()
        if result.status not in ("ok", "partial"):
            raise ToolError(f"{result.status}: {result.error}\n{json.dumps(data, ensure_ascii=False)}")
        return [
            TextContent(type="text", text=result.answer),
            TextContent(type="text", text=json.dumps(data, ensure_ascii=False)),
        ]

    return server


def main_mcp(argv: list[str]) -> int:
    "Serve MCP over stdin/stdout until the client closes it."
    parser = argparse.ArgumentParser(prog="fusion-magic mcp", description="An MCP server (stdio) with a `fusion` tool.")
    parser.add_argument("--preset", default="quality", help="the preset used when a call names none (default quality)")
    args = parser.parse_args(argv)
    try:
        server = build_server(args.preset)
    except FusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server.run("stdio")
    return 0
