"""The method words of a `compare` approach (``"vote"``, ``"model*3"``, ``"fusion+cross-examine"``) and
what each changes in the compared settings.

Plain words, read both by `fusion_magic._studies.compare_methods` (which builds the approaches) and
by `fusion_magic._values.comparison` (which tells a method's row from a single model's).
"""

from __future__ import annotations

from typing import Any

__all__ = ["METHODS", "is_method"]

# What each method word changes in the compared `Fusion`.
METHODS: dict[str, dict[str, Any]] = {
    "fusion": {},
    "vote": {"judge": "vote", "judges": None},
    "cross-examine": {"cross_examine": True},
    "cross_examine": {"cross_examine": True},
    "resolve": {"rounds": 2},
    "rounds": {"rounds": 2},
}


def is_method(spec: object) -> bool:
    "True for an approach that is a method (``*``, ``+`` or a method word), not a single model."
    return isinstance(spec, str) and ("*" in spec or "+" in spec or spec.strip() in METHODS)
