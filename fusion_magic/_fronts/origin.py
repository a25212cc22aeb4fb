"""The `Fusion` behind a result: the one that made it, or one rebuilt from a saved result's preset and panel.

A follow-up, a cross-examination, a targeted round and an ablation all ask the panel (or the judge)
that produced a result; a loaded result has no `Fusion`, so one is built from what it recorded.
"""

from __future__ import annotations

import re
from typing import Any

from .._base.config import PRESETS, expand_samples
from .._fusion import Fusion
from .._values.result import FusionResult

__all__ = ["fusion_for", "panel_of"]

_SAMPLE = re.compile(r"^(?P<seat>.+)#(?P<i>\d+)$")


def panel_of(names: list[str]) -> list[str]:
    "Member names as panel entries: the samples `m#1`..`m#N` of one seat become `m*N` again."
    counts: dict[str, int] = {}
    entries: list[str] = []
    for name in names:
        found = _SAMPLE.match(name)
        seat = found["seat"] if found else name
        if found and seat in counts:
            counts[seat] += 1
            continue
        counts[seat] = 1
        entries.append(seat)
    return [f"{seat}*{counts[seat]}" if counts[seat] > 1 else seat for seat in entries]


def fusion_for(previous: FusionResult, **overrides: Any) -> Fusion:
    """The `Fusion` to ask a follow-up of ``previous``: the one that produced it (same panel, judge,
    endpoint), with ``overrides``; for a result loaded from a file, one built from its preset and
    panel names.
    """
    origin: Fusion | None = getattr(previous, "_fusion", None)
    if origin is not None:
        return origin.derive(**overrides) if overrides else origin
    names = [r.model for r in previous.responses]
    preset = PRESETS.get(previous.preset or "")
    settings: dict[str, Any] = {"preset": preset.name if preset else "quality"}
    if preset is None or names != [m.name for m in expand_samples(preset.panel)]:
        settings["panel"] = panel_of(names)
    if previous.judge is not None and (preset is None or previous.judge.model != preset.judge.name):
        settings["judge"] = previous.judge.model
    if previous.vote is not None:
        settings["judge"] = "vote"
    return Fusion(**{**settings, **overrides})
