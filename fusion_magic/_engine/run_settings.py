"""What a run was asked to do, as one frozen value: the engine's steps read it, never the facade.

`Fusion` (the facade) checks its arguments and builds a `RunSettings` once per call (`run`, `map`,
`compare`, a re-judge); every step below takes that value. Without the facade, a newcomer builds
one by hand and runs a deliberation with `arun_prompt`:

    settings = RunSettings(panel=(Member("openai/gpt-4o-mini"), ...), judge=Member("openai/gpt-4o"),
                           endpoint=resolve_endpoint("http://127.0.0.1:8000/v1", api_key="..."))
    result = run_sync(arun_prompt(settings, "Is P = NP likely?"))

Its fields carry the names of the `Fusion` attributes they come from, so the facade fills them by
name (a new setting is one field here, read by the steps that need it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .._base.config import Member
from .._base.endpoint import Endpoint
from .._base.errors import ConfigError
from .._base.settings import DEFAULTS
from .._render.progress import Tracker
from .._values.ledger import Ledger
from .._values.result import FusionResult
from .toolset import Toolset

__all__ = ["RunSettings"]


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """A run's panel, judge (or jury), endpoint, limits and request parameters, fixed before it starts.

    ``endpoint`` is where requests go; when it is None (the `local` preset before its server
    runs), ``resolve_endpoint`` starts it and says where. ``on_result`` sees each result made
    (the facade remembers it for `follow_up` and ``last_result``).
    """

    panel: tuple[Member, ...]
    judge: Member
    endpoint: Endpoint | None = None
    vote: bool = False  # judge="vote": a majority of short answers, no judge call
    jury: tuple[Member, ...] = ()
    preset: str = "custom"
    preset_label: str = "custom"
    verified_only: bool = False
    timeout: float | None = DEFAULTS["timeout"]
    judge_timeout: float | None = None  # None: the judge has the same deadline as a member
    quorum: int | None = None
    max_cost: float | None = None
    tool: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    judge_max_tokens: int | None = None  # the preset's own judge may write exactly this much (a tiny judge)
    web: bool = DEFAULTS["web"]
    reasoning: str | int | None = None  # an effort word or a token budget (`fusion_magic._base.reasoning`)
    toolset: Toolset = dataclasses.field(default_factory=Toolset)  # the members' tools
    order: str = DEFAULTS["order"]  # the order the judge reads the answers in
    cross_examine: bool = DEFAULTS["cross_examine"]
    rounds: int = DEFAULTS["rounds"]
    use_cache: bool = DEFAULTS["cache"]
    refresh: bool = DEFAULTS["refresh"]
    stream: bool = DEFAULTS["stream"]
    max_retries: int = DEFAULTS["max_retries"]
    stall_timeout: float = DEFAULTS["stall_timeout"]
    transport: httpx.AsyncBaseTransport | None = None
    ledger: Ledger = dataclasses.field(default_factory=Ledger)
    is_local: bool = False
    strict_ids: bool = False  # model ids must have OpenRouter's shape
    resolve_endpoint: Callable[[], Awaitable[Endpoint]] | None = None
    on_result: Callable[[FusionResult], Any] | None = None
    # These settings with some changed, checked as the facade checks its arguments (`compare`'s methods).
    rebuild: Callable[..., RunSettings] | None = None

    def derive(self, **changes: Any) -> RunSettings:
        "These settings with ``changes`` (names of `Fusion`'s arguments), checked like the facade's."
        if self.rebuild is None:
            raise ConfigError("these settings cannot be rebuilt: give RunSettings a rebuild function")
        return self.rebuild(**changes)

    async def aendpoint(self) -> Endpoint:
        "Where this run's requests go (starting the local server when it must)."
        if self.endpoint is not None:
            return self.endpoint
        if self.resolve_endpoint is None:
            raise ConfigError("no endpoint: give RunSettings an endpoint or a resolve_endpoint")
        return await self.resolve_endpoint()

    def tracker(self) -> Tracker:
        "A fresh progress tracker for this panel and judge."
        return Tracker(
            [m.name for m in self.panel],
            "vote" if self.vote else self.judge.name,
            deadline_s=self.timeout,
            jurors=[m.name for m in self.jury],
        )
