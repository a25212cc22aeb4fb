"""What a run is asked and the words for it: errors, status words, the settings table, panel
members and presets, endpoints, scrubbing credentials.

May import: nothing of fusion_magic. Never a layer above it.
"""

__all__: list[str] = []
