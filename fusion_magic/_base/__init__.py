"""What a run is asked and the words for it: errors, status words, the settings table, panel
members and presets, reasoning settings, endpoints, scrubbing credentials, a value as prompt text,
compare's method words, and the hooks through which a value reaches the layers above.

May import: nothing of fusion_magic. Never a layer above it.
"""

__all__: list[str] = []
