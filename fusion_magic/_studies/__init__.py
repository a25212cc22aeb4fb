"""Deliberations measured: `compare` against single models and methods, its plan and the grading;
ablation (what each member and judge contributes).

May import: _engine, _tools, _render, _judge, _values, _local, _base. Never a layer above it.
"""

__all__: list[str] = []
