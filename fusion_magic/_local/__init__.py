"""The local model: the llama.cpp server process, its weights and the child script.

May import: _base. Never a layer above it.
"""

__all__: list[str] = []
