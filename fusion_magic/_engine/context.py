"""The run context: everything a model call needs besides its messages, fixed before the first call.

A `RunContext` is immutable: the client, the cache connection, the request parameters, the
endpoint's prices (loaded before it is made) and where progress and spending are recorded. A
batch opens one and each run derives its own with a fresh tracker (`dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._base.endpoint import Endpoint
from .._render.progress import Tracker
from .cache import Cache
from .client import ChatClient
from .nesting import depth
from .pricing import ModelPrice, load_models
from .run_settings import RunSettings

if TYPE_CHECKING:
    from .._values.ledger import Ledger
    from .toolset import Toolset

__all__ = ["RunContext", "models_of", "open_context"]


@dataclasses.dataclass(frozen=True)
class RunContext:
    """One run's (or one batch's) client, cache, parameters, prices, tracker and ledger.

    ``prices`` is None when the endpoint's ``/models`` could not be read (``prices_error`` says
    why) or was not asked; `price_list` is then empty.
    """

    client: ChatClient
    cache: Cache | None = None
    refresh: bool = False
    stream: bool = True
    tracker: Tracker | None = None
    prices: Mapping[str, ModelPrice] | None = None
    prices_error: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    ledger: Ledger | None = None
    tools: Toolset | None = None  # the panel members' tools (never the judge's); None: members only talk

    @property
    def endpoint(self) -> Endpoint:
        "Where every call of this context goes."
        return self.client.endpoint

    @property
    def price_list(self) -> dict[str, ModelPrice]:
        "The prices known (empty when none could be loaded)."
        return dict(self.prices or {})

    def close(self) -> None:
        "Release what the run opened (the cache's SQLite connection); safe to call twice."
        if self.cache is not None:
            self.cache.close()

    def note(self, key: str, **changes: Any) -> None:
        "Update progress line ``key`` (nothing without a tracker)."
        if self.tracker is not None:
            self.tracker.update(key, **changes)


async def open_context(fusion: RunSettings, tracker: Tracker | None, *, prices: bool = True) -> RunContext:
    """A context for ``fusion``'s settings: its endpoint (starting the local server when needed),
    a client, a cache connection and, with ``prices``, the endpoint's prices."""
    endpoint = await fusion.aendpoint()
    client = ChatClient(
        endpoint,
        transport=fusion.transport,
        max_retries=fusion.max_retries,
        stall_timeout=fusion.stall_timeout,
        depth=max(1, depth.get()),  # every request fusion_magic sends is inside a deliberation (batches too)
    )
    params: dict[str, Any] = {
        "temperature": fusion.temperature,
        "max_tokens": fusion.max_tokens,
        "reasoning": fusion.reasoning,
    }
    listed: dict[str, ModelPrice] | None = None
    why = "" if prices else "not loaded"
    if prices:
        try:
            listed = await load_models(client.http, endpoint.base_url, client.headers())
        except Exception as exc:  # noqa: BLE001 - no prices is not fatal unless a budget needs them
            why = str(exc)
    return RunContext(
        client=client,
        cache=Cache() if fusion.use_cache else None,
        refresh=fusion.refresh,
        stream=fusion.stream,
        tracker=tracker,
        prices=listed,
        prices_error=why,
        params={k: v for k, v in params.items() if v is not None},
        ledger=fusion.ledger,
        tools=fusion.toolset or None,
    )


async def models_of(fusion: RunSettings, *, refresh: bool = False) -> dict[str, ModelPrice]:
    "The endpoint's models with their prices (``/models``, cached on disk for a day)."
    endpoint = await fusion.aendpoint()
    client = ChatClient(endpoint, transport=fusion.transport)
    return await load_models(client.http, endpoint.base_url, client.headers(), refresh=refresh)
