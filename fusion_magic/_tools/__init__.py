"""Tools a panel member may call before it answers: the user's data (`sql`), a sandboxed `python`,
the web (`fetch`), and the user's own functions.

Each tool is a `Tool` value (`fusion_magic._tools.base`); the engine's tool loop reads nothing else.

May import: _render, _judge, _values, _local, _base. Never a layer above it.
"""

from .base import MAX_OUTPUT_CHARS, Tool, ToolError

__all__ = ["MAX_OUTPUT_CHARS", "Tool", "ToolError"]
