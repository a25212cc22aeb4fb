"""Where people reach a `Fusion`: the notebook magics and widget, `serve` (OpenAI-compatible HTTP)
and MCP, launching the server, and the methods over a finished result (`cross_examine`, `resolve`,
`ablate`, reached from the result through the package root's hooks).

May import: _fusion, _studies, _engine, _tools, _render, _judge, _values, _local, _base. Never a
layer above it.
"""

__all__: list[str] = []
