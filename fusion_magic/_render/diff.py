"""The views of an `AnalysisDiff` (two judges' analyses side by side): text, Markdown and HTML.

Sections, in order and with their titles, come from the section table (`fusion_magic._values.sections`).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .._values.sections import SECTIONS
from .html import wrap
from .sanitize import clean_line, plain_markdown

if TYPE_CHECKING:
    from .._judge.diff import AnalysisDiff

__all__ = ["diff_html", "diff_markdown", "diff_text"]


def diff_text(diff: AnalysisDiff) -> str:
    "The plain repr: the counts, then one line per item only one side found."
    c = diff.counts()
    lines = [f"AnalysisDiff(A={diff.a!r}, B={diff.b!r}: {c['both']} both, {c['only A']} only A, {c['only B']} only B)"]
    for row in diff.rows():
        if row["found_by"] != "both":
            text = row["text_a"] if row["found_by"] == "only A" else row["text_b"]
            lines.append(f"  {row['found_by']:<6}  {row['section']}: {clean_line(text, 100)}")
    return "\n".join(lines)


def diff_markdown(diff: AnalysisDiff) -> str:
    "Per section, each item marked both / only A / only B; model text neutralised."
    c = diff.counts()
    out = [
        f"**Judge diff** · A = {plain_markdown(diff.a)} · B = {plain_markdown(diff.b)} · "
        f"{c['both']} both, {c['only A']} only A, {c['only B']} only B",
        "",
    ]
    for section in SECTIONS:
        rows = [r for r in diff.rows() if r["section"] == section.name]
        if not rows:
            continue
        out += [f"**{section.title}**", ""]
        for r in rows:
            text = r["text_a"] if r["text_a"] is not None else r["text_b"]
            out.append(f"- *{r['found_by']}*: {plain_markdown(text, 600)}")
        out.append("")
    return "\n".join(out)


def diff_html(diff: AnalysisDiff) -> str:
    "Per section, a three-column table (only A, both, only B), collapsible, in the result's style."

    def e(value: Any) -> str:
        return html.escape(clean_line(value, 600)) if value is not None else ""

    c = diff.counts()
    head = (
        f'<div class="fm-head"><span class="fm-badge fm-s-ok">judge diff</span>'
        f'<span class="fm-fact">A = {e(diff.a)}</span><span class="fm-fact">B = {e(diff.b)}</span>'
        f'<span class="fm-fact">{c["both"]} both · {c["only A"]} only A · {c["only B"]} only B</span></div>'
    )
    sections = []
    for section in SECTIONS:
        rows = [r for r in diff.rows() if r["section"] == section.name]
        body = (
            "".join(
                f"<tr><td>{e(r['text_a']) if r['found_by'] == 'only A' else ''}</td>"
                f"<td>{e(r['text_a']) if r['found_by'] == 'both' else ''}</td>"
                f"<td>{e(r['text_b']) if r['found_by'] == 'only B' else ''}</td></tr>"
                for r in rows
            )
            or '<tr><td colspan="3" class="fm-muted">nothing in either</td></tr>'
        )
        table = (
            f'<table class="fm-stances"><thead><tr><th>only A</th><th>both</th><th>only B</th></tr>'
            f"</thead><tbody>{body}</tbody></table>"
        )
        count = f'<span class="fm-count">{len(rows)}</span>'
        sections.append(
            f'<details class="fm-d fm-sec fm-diff-{section.name}"{" open" if rows else ""}>'
            f"<summary>{section.title}{count}</summary>{table}</details>"
        )
    return wrap(head + "".join(sections))
