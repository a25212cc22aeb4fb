"""Reading a judge, no network: its prompt and JSON schema, salvaging any reply shape, labels,
checking quotes against the panel's answers, similarity, and the diff of two analyses.

May import: _values, _local, _base. Never a layer above it.
"""

__all__: list[str] = []
