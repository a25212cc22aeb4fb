"""The views of fusion_magic's values: HTML for notebooks, Markdown for exports, plain text for terminals.

Pure string functions with no IPython import, so they are testable without a kernel. All model text
(answers, analysis items, model names, error messages) is treated as hostile: see `sanitize`.

    html.py       the FusionResult as scoped HTML (the cell output, the widget's sections)
    markdown.py   the FusionResult as inert Markdown
    text.py       the FusionResult as plain text (its repr and every format's text/plain)
    sanitize.py   untrusted text to safe HTML or neutralised Markdown (markdown-it, nh3)
    facts.py      numbers, labels and summary facts the three views share
    evidence.py   quote marks, support and jury agreement in each view
    live.py       the cell's live progress and the batch progress bar (`map`, `compare`)
    widget.py     the widget's result sections
    tables.py     the `%fusion presets` listing
    ledger.py     the session ledger's totals line, table and cost chart
    diff.py       `AnalysisDiff` views;  comparison.py  `Comparison` views;  chart.py  its scatter

Data modules (`result`, `ledger`, `diff`, `comparison`) hold only `_repr_*_` stubs that import from
here when called, and the views import the data types they draw: the one allowed cycle, data <-> view. Loading
this package is cheap: each view, and markdown-it and nh3, load on first use.

May import: _judge, _values, _local, _base. Never a layer above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._values.result import FusionResult

__all__ = ["to_html", "to_markdown", "to_text"]


def to_html(result: FusionResult) -> str:
    """A self-contained HTML fragment (scoped inline CSS, no JavaScript) for `_repr_html_`."""
    from .html import to_html as render

    return render(result)


def to_markdown(result: FusionResult) -> str:
    """Markdown for `_repr_markdown_` and `--format markdown`; model text is neutralised, no raw HTML."""
    from .markdown import to_markdown as render

    return render(result)


def to_text(result: FusionResult) -> str:
    """The plain `__repr__`: status line, answer preview, the analysis, one line per call. Never raises."""
    from .text import to_text as render

    return render(result)
