"""Small pieces several test modules share: the standard panel and a timed interrupt."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable

from fusion_magic import Fusion

PANEL = ["a/alpha", "b/beta", "c/gamma"]
JUDGE = "j/judge"


def panel_fusion(**kw) -> Fusion:
    "A `Fusion` over PANEL and JUDGE unless the test says otherwise."
    kw.setdefault("panel", PANEL)
    kw.setdefault("judge", JUDGE)
    return Fusion(**kw)


def interrupt_when(ready: Callable[[], bool], *, after: float, limit: float = 10) -> threading.Thread:
    """Press Ctrl-C in the main thread ``after`` seconds once ``ready()`` holds (as a kernel interrupt would).

    Gives up after ``limit`` seconds without interrupting, so a slow run cannot hit a later test.
    """

    def watch() -> None:
        deadline = time.monotonic() + limit
        while not ready():
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        time.sleep(after)
        _thread.interrupt_main()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher
