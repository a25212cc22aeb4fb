"""Per-session defaults set by `%fusion config` or by running the widget.

They sit between the magic's flags (which win) and `%config FusionMagics.*` (which they beat).
Keys are `Fusion` keyword names: preset, panel, judge, timeout, quorum, max_cost, ...
"""

from __future__ import annotations

from typing import Any

__all__ = ["clear_defaults", "defaults", "set_defaults"]

_defaults: dict[str, Any] = {}


def defaults() -> dict[str, Any]:
    "A copy of the session defaults."
    return dict(_defaults)


def set_defaults(**values: Any) -> dict[str, Any]:
    "Set session defaults (a value of None removes that key); returns the new defaults."
    for key, value in values.items():
        if value is None:
            _defaults.pop(key, None)
        else:
            _defaults[key] = value
    return dict(_defaults)


def clear_defaults() -> None:
    _defaults.clear()
