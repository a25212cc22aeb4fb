"""fusion_magic: multi-model deliberation in Jupyter.

One prompt goes to a panel of LLMs in parallel over OpenAI-compatible HTTP; a judge model reads
every answer and returns consensus, contradictions, partial coverage, unique insights, blind
spots and a synthesized answer.

    %load_ext fusion_magic
    %%fusion -p budget
    Is it safe to run VACUUM FULL on a busy Postgres table?

or from Python: ``Fusion(preset="budget").run("...")``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._base import hooks as _hooks
from ._base.config import PRESETS, Member, Preset, add_preset
from ._base.errors import BudgetError, ConfigError, FusionError, FusionInterrupted, MissingKeyError, ProviderError
from ._values.ledger import Ledger, ledger

if TYPE_CHECKING:
    from ._engine.runner import DeliberationCancelled
    from ._fronts.widget import FusionWidget
    from ._fusion import Fusion
    from ._judge.diff import AnalysisDiff, compare_analyses
    from ._values.comparison import Comparison
    from ._values.result import Analysis, FusionResult, Response
    from ._values.saved import load_frame, save_frame

__all__ = [
    "PRESETS",
    "Analysis",
    "AnalysisDiff",
    "BudgetError",
    "Comparison",
    "ConfigError",
    "DeliberationCancelled",
    "Fusion",
    "FusionError",
    "FusionInterrupted",
    "FusionResult",
    "FusionWidget",
    "Ledger",
    "Member",
    "MissingKeyError",
    "Preset",
    "ProviderError",
    "Response",
    "add_preset",
    "compare_analyses",
    "ledger",
    "load_frame",
    "load_ipython_extension",
    "save_frame",
    "unload_ipython_extension",
]

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    "`%load_ext fusion_magic`: register `%%fusion` and `%fusion`."
    from ._fronts.magic import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    "`%unload_ext fusion_magic`: remove the magics."
    from ._fronts.magic import unregister

    unregister(ipython)


def _follow_up(result: FusionResult, question: str, **settings: Any) -> FusionResult:
    "`FusionResult.follow_up`: the values sit below the engine, so they reach it through this hook."
    from ._fronts.origin import fusion_for

    return fusion_for(result, **settings).follow_up(result, question)


def _method(name: str) -> Any:
    "`FusionResult.cross_examine` / `resolve` / `ablate`: the blocking method calls, loaded on first use."

    def call(*args: Any, **kwargs: Any) -> Any:
        from ._fronts import methods

        return getattr(methods, name)(*args, **kwargs)

    return call


_hooks.HOOKS.update(follow_up=_follow_up, **{name: _method(name) for name in ("cross_examine", "resolve", "ablate")})

# `%load_ext fusion_magic` should be cheap: the HTTP stack, pydantic and ipywidgets load on first use.
_LAZY = {
    "Analysis": "._values.result",
    "Comparison": "._values.comparison",
    "DeliberationCancelled": "._engine.runner",  # an asyncio.CancelledError: loads asyncio
    "Fusion": "._fusion",
    "FusionResult": "._values.result",
    "FusionWidget": "._fronts.widget",
    "Response": "._values.result",
    "load_frame": "._values.saved",
    "save_frame": "._values.saved",
    "AnalysisDiff": "._judge.diff",  # renders with markdown-it
    "compare_analyses": "._judge.diff",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fusion_magic' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
