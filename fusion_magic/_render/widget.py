"""The widget's view of a finished result: the answer block, then one titled, collapsible part each.

The same markup and order as the result's `_repr_html_` (built from `html`): header and answer,
the analysis (every section of the table, open when it has items), the panel answers, the jury
and the judge. `FusionWidget` puts each part in its own Accordion; nothing here imports ipywidgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._values.analysis import quotes_of
from .._values.sections import SECTIONS
from .facts import NO_MATH, STATUS_LABEL, call_cost, fmt_secs, section_items
from .html import answer_html, banners_html, call_body, header_html, section_body, wrap
from .methods import FALSE_CONSENSUS, methods_html
from .sanitize import clean_line, defang_html

if TYPE_CHECKING:
    from .._values.result import FusionResult, Response

__all__ = ["Part", "answer_block", "result_parts"]

Part = tuple[str, str, bool]  # title, sanitized markup, open at first


def answer_block(result: FusionResult) -> str:
    "The header, banners and answer, as one scoped HTML block."
    return wrap(header_html(result) + banners_html(result) + answer_html(result))


def result_parts(result: FusionResult) -> list[Part]:
    "The analysis sections (when there is a verdict), then every call, as (title, markup, open)."
    parts = []
    verdict = result.judge is not None or result.vote is not None  # a judge's, or the members' vote
    if verdict and result.status in ("ok", "partial"):  # no verdict, no empty sections
        for section in SECTIONS:
            items = section_items(result.shown_analysis, section.name)
            bad = sum(not q.verified for item in items for q in quotes_of(item))
            title = f"{section.title} ({len(items)})" + (f" · ⚠ {bad} unverified" if bad else "")
            disputed = sum(bool(getattr(item, "disputed_by", None)) for item in items)
            title += f" · {FALSE_CONSENSUS} {disputed}" if disputed else ""
            parts.append(_part(title, section_body(section.name, items), bool(items)))
    if shown := methods_html(result, order=False):  # the vote, a round, the marks (only when a method ran)
        parts.append(_part("Methods", shown, True))
    parts += [
        _part(_response_title(r), call_body(r, f"result.responses[{i}].content"))
        for i, r in enumerate(result.responses)
    ]
    parts += [
        _part(_response_title(r, "juror · "), call_body(r, f"result.jury[{i}].content", as_markdown=False))
        for i, r in enumerate(result.jury)
    ]
    if result.judge is not None:
        prefix = "chair · " if result.jury else "judge · "
        body = call_body(result.judge, "result.judge.content", as_markdown=False)
        parts.append(_part(_response_title(result.judge, prefix), body))
    parts += [
        _part(_response_title(r), call_body(r, f"result.method_calls[{i}].content", as_markdown=False))
        for i, r in enumerate(result.method_calls)
    ]
    return parts


def _part(title: str, body: str, open_: bool = False) -> Part:
    return title, f'<div class="fm-root {NO_MATH}">{defang_html(body)}</div>', open_


def _response_title(r: Response, prefix: str = "") -> str:
    facts = [STATUS_LABEL.get(r.status, r.status), fmt_secs(r.latency_s), call_cost(r)]
    if r.cached:
        facts.append("cached")
    return f"{prefix}{clean_line(r.model)} · {' · '.join(facts)}"
