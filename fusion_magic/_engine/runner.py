"""Run the async core from synchronous code, including inside a running Jupyter loop.

A private event loop lives on a daemon thread for the whole session, so `run()` never touches
the kernel's loop and needs no patching of asyncio to nest loops. The calling thread waits in
short slices: it stays interruptible (Ctrl-C, kernel interrupt) and can refresh progress
displays from the thread that owns them.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .._base.errors import FusionInterrupted

if TYPE_CHECKING:
    from .._values.result import FusionResult

__all__ = ["DeliberationCancelled", "background_loop", "in_background", "on_background", "on_shutdown", "run_sync"]

T = TypeVar("T")


class DeliberationCancelled(asyncio.CancelledError):
    """A cancelled `Fusion.arun`: ``result`` is the partial result (status "interrupted"), or None
    when the deliberation had not started. Raised inside the event loop, where it is a cancellation."""

    def __init__(self, result: FusionResult | None) -> None:
        super().__init__("interrupted" if result is None else result.error)
        self.result = result


_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_closers: list[Callable[[], Awaitable[None]]] = []  # run on the loop at exit, see `on_shutdown`


def background_loop() -> asyncio.AbstractEventLoop:
    "The session's private event loop, started on first use."
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="fusion_magic-loop", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
            atexit.register(_shutdown, loop)
        return _loop


def in_background() -> bool:
    "True on the private loop's thread, where waiting for that loop would wait forever."
    return _thread is not None and threading.current_thread() is _thread


async def on_background(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the private loop, from any loop.

    All HTTP then lives on one loop with one shared client, whoever awaits (a Jupyter cell,
    `asyncio.run` in a script); cancelling the awaiting task cancels ``coro`` too.
    """
    loop = background_loop()
    if asyncio.get_running_loop() is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def on_shutdown(close: Callable[[], Awaitable[None]]) -> None:
    "Have ``close()`` awaited on the private loop at exit, while it still runs (e.g. to close a pool)."
    if close not in _closers:
        _closers.append(close)


async def _close_all() -> None:
    for close in _closers:
        await close()


def _shutdown(loop: asyncio.AbstractEventLoop) -> None:
    # Close what lives on the loop (the shared HTTP client) while it still runs, so nothing warns at exit.
    if loop.is_running():
        try:
            asyncio.run_coroutine_threadsafe(_close_all(), loop).result(2)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
        loop.call_soon_threadsafe(loop.stop)


def run_sync(
    coro: Coroutine[Any, Any, T],
    *,
    on_tick: Callable[[], None] | None = None,
    tick: float = 0.1,
    cancel_grace: float = 1.0,
) -> T:
    """Run ``coro`` on the private loop and wait for it.

    On KeyboardInterrupt the task is cancelled (closing its connections, which stops
    generation and billing upstream), given ``cancel_grace`` seconds to wind down, and
    `FusionInterrupted` is raised: its ``result`` is the partial result the task ended with
    (a `DeliberationCancelled`'s), or None.
    """
    if in_background():
        coro.close()
        raise RuntimeError("run_sync() called from fusion_magic's own event loop; it would wait forever")
    finished = threading.Event()
    ended: list[BaseException] = []  # the task's own exception: a cancelled future drops it

    async def tracked() -> T:
        try:
            return await coro
        except BaseException as exc:
            ended.append(exc)
            raise
        finally:
            finished.set()

    future = asyncio.run_coroutine_threadsafe(tracked(), background_loop())
    try:
        while True:
            try:
                result = future.result(timeout=tick)
            except concurrent.futures.TimeoutError:
                if on_tick:
                    on_tick()
                continue
            if on_tick:
                on_tick()
            return result
    except KeyboardInterrupt:
        # Cancelling the concurrent future only schedules the task's cancellation; wait for
        # the task itself so its connections are closed before control returns.
        future.cancel()
        finished.wait(cancel_grace)
        kept = next((exc.result for exc in ended if isinstance(exc, DeliberationCancelled)), None)
        raise FusionInterrupted(kept) from None
