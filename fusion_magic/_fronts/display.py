"""What a cell shows for a result: the output-format dispatch of `%%fusion --format` and `%fusion show`.

The formats are the SPEC's: ``widget`` means the result's own collapsible rich view (the
`FusionResult` itself, whose bundle holds its HTML, Markdown and plain text; not `FusionWidget`,
the interactive form), ``html``, ``markdown`` and ``json`` show that one representation, and
``none`` shows nothing. Every format keeps the plain-text summary as its text/plain, for
terminals and text-only viewers. The live progress while a run works is `_render.live`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._values.result import FusionResult

__all__ = ["FORMATS", "Shown", "in_kernel", "present", "show"]

FORMATS = ("widget", "html", "markdown", "json", "none")


def in_kernel(shell: Any) -> bool:
    "True inside a Jupyter kernel (rich, updatable displays); False in a terminal IPython."
    return getattr(shell, "kernel", None) is not None


@dataclass(frozen=True)
class Shown:
    """A result in one format, as IPython displays it: ``data`` under ``mime``, and ``text`` as text/plain."""

    mime: str
    data: Any
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"text/plain": self.text, self.mime: self.data}, ({self.mime: self.metadata} if self.metadata else {})

    def __repr__(self) -> str:
        return self.text


def present(result: FusionResult, fmt: str) -> FusionResult | Shown | None:
    "What the cell returns (and so shows once, as its Out) for ``--format fmt``; None shows nothing."
    if fmt == "none":
        return None
    if fmt == "json":
        # The JSON tree collapsed, as IPython's own JSON display draws it; a terminal prints the JSON.
        return Shown("application/json", result.to_dict(), result.to_json(), {"expanded": False, "root": "root"})
    if fmt == "markdown":
        return Shown("text/markdown", result._repr_markdown_(), repr(result))
    if fmt == "html":
        return Shown("text/html", result._repr_html_(), repr(result))
    return result  # "widget": the result's own collapsible view (HTML, Markdown and plain text in one bundle)


def show(result: FusionResult, fmt: str) -> None:
    "Display ``result`` now (used when the cell ends in an error and returns nothing)."
    shown = present(result, fmt)
    if shown is not None:
        from IPython.display import display

        display(shown)
