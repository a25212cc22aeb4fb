"""The nesting guard: a deliberation never starts inside another one, however it is reached.

Three marks say "inside a deliberation": the ``depth`` context variable (set on the private loop
around a run, so a custom transport or a tool calling back sees it), a thread-local flag while a
thread waits in a blocking call (its progress callbacks run inside that deliberation), and the
private loop's own thread (a blocking call there would wait for itself forever).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .._base.errors import ConfigError
from .runner import in_background

__all__ = ["NESTING", "depth", "nested", "refuse_nesting", "sync_caller"]

T = TypeVar("T")
NESTING = "fusion_magic does not start a deliberation inside another one"
depth: contextvars.ContextVar[int] = contextvars.ContextVar("fusion_depth", default=0)
# Set on a thread while it waits in run()/map()/rejudge(): its progress callbacks run inside that
# deliberation. (A ContextVar would not do: the caller's context also reaches the private loop.)
_waiting = threading.local()


def refuse_nesting(*, sync: bool = False) -> None:
    "Raise the nesting `ConfigError` when called from inside a running deliberation, however reached."
    # depth: inside the async core (a custom transport, a tool); _waiting: a progress callback of a
    # sync run on this thread; in_background: a blocking call on fusion_magic's own loop (where
    # `map` and the widget rightly await `arun`) would wait for itself forever.
    if depth.get() > 0 or getattr(_waiting, "active", False) or (sync and in_background()):
        raise ConfigError(NESTING)


async def nested(coro: Coroutine[Any, Any, T]) -> T:
    "Await ``coro`` (on the private loop) with everything below it marked as inside a deliberation."
    token = depth.set(depth.get() + 1)
    try:
        return await coro
    finally:
        depth.reset(token)


class sync_caller:
    "Refuse nesting, then mark this thread as waiting on a deliberation until the block ends."

    def __enter__(self) -> None:
        refuse_nesting(sync=True)
        _waiting.active = True

    def __exit__(self, *exc: object) -> None:
        _waiting.active = False
