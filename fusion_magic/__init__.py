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

from typing import Any

from .comparison import Comparison
from .config import PRESETS, Member, Preset, add_preset
from .errors import (
    BudgetError,
    ConfigError,
    FusionError,
    MissingKeyError,
    ProviderError,
)
from .ledger import ledger
from .pipeline import Fusion
from .result import Analysis, FusionResult, Response
from .saved import load_frame, save_frame

__all__ = [
    "PRESETS",
    "Analysis",
    "AnalysisDiff",
    "BudgetError",
    "Comparison",
    "ConfigError",
    "Fusion",
    "FusionError",
    "FusionResult",
    "FusionWidget",
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
    from .magic import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    "`%unload_ext fusion_magic`: remove the magics."
    from .magic import unregister

    unregister(ipython)


def __getattr__(name: str) -> Any:
    # The widget pulls in ipywidgets; import it only when asked for.
    if name == "FusionWidget":
        from .widget import FusionWidget

        return FusionWidget
    if name in ("compare_analyses", "AnalysisDiff"):  # renders with markdown-it: import on first use
        from . import diff

        return getattr(diff, name)
    raise AttributeError(f"module 'fusion_magic' has no attribute {name!r}")
