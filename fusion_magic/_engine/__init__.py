"""One deliberation over HTTP and its steps: endpoint client and wire format, cache, prices and
budget, the run context, the panel and the members' tool loop, the judge seat, jury and vote,
cross-examination and targeted rounds, deliberation, the run, `map`'s batch, the sync runner.

May import: _tools, _render, _judge, _values, _local, _base. Never a layer above it.
"""

__all__: list[str] = []
