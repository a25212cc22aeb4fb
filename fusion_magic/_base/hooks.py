"""Calls a lower layer makes into a higher one, wired by the higher one: the only way up.

`FusionResult.follow_up`, `cross_examine`, `resolve` and `ablate` (a value's methods) ask the panel
again; values sit below the engine and the facade, so the package's root fills this table when it
loads (before any result exists) and the value calls through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HOOKS", "call"]

# name -> (result, ...) -> what the method returns. `follow_up`: (result, question, **settings) ->
# FusionResult; `cross_examine`, `resolve`: (result, **settings) -> FusionResult; `ablate`:
# (result, judges, **settings) -> DataFrame.
HOOKS: dict[str, Callable[..., Any]] = {}


def call(name: str, *args: Any, **kwargs: Any) -> Any:
    "Call the hook ``name``, which the package's root wired when it loaded."
    hook = HOOKS.get(name)
    if hook is None:
        raise RuntimeError(f"fusion_magic is not loaded ({name} has no hook): import fusion_magic first")
    return hook(*args, **kwargs)
