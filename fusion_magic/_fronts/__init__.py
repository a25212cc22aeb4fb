"""Where people reach a `Fusion`: the notebook magics and widget, `serve` (OpenAI-compatible HTTP)
and MCP, and launching the server.

May import: _fusion, _studies, _engine, _tools, _render, _judge, _values, _local, _base. Never a
layer above it.
"""

__all__: list[str] = []
