"""Methods as `compare` approaches: ``"vote"``, ``"model*3"``, ``"fusion+cross-examine"`` beside single models.

An approach is a panel, then methods joined by ``+``. The panel is ``fusion`` (the compared
`Fusion`'s own), a method word alone (``"vote"`` is ``"fusion+vote"``), or a model entry, where
``model*N`` is one model sampled N times (self-consistency) and judged by the same judge. The
methods: ``vote`` (no judge call), ``cross-examine`` (members mark the analysis), ``resolve``
(one targeted round). A plain model id without ``*`` or ``+`` stays a single-model baseline.

    fusion.compare(prompts, ["openai/gpt-4o", "openai/gpt-4o*3", "openai/gpt-4o*5+vote", "vote"])
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .._base.config import Member
from .._base.errors import ConfigError
from .._base.method_words import METHODS, is_method

if TYPE_CHECKING:
    from .._engine.run_settings import RunSettings
    from .._values.result import FusionResult

__all__ = ["METHODS", "Approach", "approaches", "is_method", "method_latency"]


@dataclasses.dataclass(frozen=True)
class Approach:
    """One method approach: its name as given and the settings that run it."""

    name: str
    fusion: RunSettings


def _approach(fusion: RunSettings, spec: str) -> Approach:
    head, *words = [p.strip() for p in spec.split("+")]
    changes: dict[str, Any] = {}
    if head in METHODS:
        changes |= METHODS[head]
    elif head:
        changes["panel"] = [head]  # `model*N` expands to N samples; judged by the same judge
    else:
        raise ConfigError(f"approach {spec!r}: name a panel first (fusion, or a model such as openai/gpt-4o*3)")
    for word in words:
        if word not in METHODS or word == "fusion":
            known = ", ".join(w for w in METHODS if w != "fusion")
            raise ConfigError(f"approach {spec!r}: unknown method {word!r}; known: {known}")
        changes |= METHODS[word]
    try:
        derived = fusion.derive(**changes)
    except ConfigError as exc:
        raise ConfigError(f"approach {spec!r}: {exc}") from None
    return Approach(spec.strip(), derived)


def approaches(fusion: RunSettings, baselines: list[Any]) -> tuple[list[str | Member], list[Approach]]:
    "The single-model baselines and the method approaches among ``baselines``, in their order."
    plain = [b for b in baselines if not is_method(b)]
    methods = [_approach(fusion, b) for b in baselines if is_method(b)]
    names = [a.name for a in methods]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"approach {name!r} is listed twice")
    return plain, methods


def method_latency(result: FusionResult) -> float:
    "The model time a method adds: its concurrent calls of each phase (marks, round turns), the slowest each."
    phases: dict[str, float] = {}
    for call in result.method_calls:
        phase = call.model.rsplit("(", 1)[-1]
        latency = (call.first_latency_s if call.cached else call.latency_s) or 0.0
        phases[phase] = max(phases.get(phase, 0.0), latency)
    return sum(phases.values())
