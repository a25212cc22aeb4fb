"""What a deliberation returns and what a session keeps: `FusionResult` and its `Analysis`,
the section table, quotes, the saved form, `Comparison` and the session `Ledger`. Plain data;
a value reaches its own view only from inside `_repr_*_` / `__repr__` (and `chart`).

May import: _base. Never a layer above it.
"""

__all__: list[str] = []
