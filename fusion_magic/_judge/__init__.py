"""Reading a judge, no network: its prompt and JSON schema, salvaging any reply shape, labels,
checking quotes against the panel's answers, similarity, the diff of two analyses, the order the
judge reads the answers in, and its answer read while the reply still streams.

May import: _values, _local, _base. Never a layer above it.
"""

__all__: list[str] = []
