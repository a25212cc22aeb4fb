"""Deliberations measured: `compare` against single models, its plan and the grading.

May import: _engine, _tools, _render, _judge, _values, _local, _base. Never a layer above it.
"""

__all__: list[str] = []
