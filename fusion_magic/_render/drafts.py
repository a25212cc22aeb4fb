"""What a call has written so far, as the live block shows it under the call's line.

A draft is a collapsible row: its summary is the latest words (so a closed row still shows the
text moving), its body the text so far in a box that keeps its end in view (a reversed flex
column starts scrolled to the bottom, no script needed). Model text is escaped, never rendered:
the finished result renders it as sanitized Markdown. The block is redrawn a few times a second,
which replaces the markup, so a row's open state is the block's choice, not the reader's click:
`open_rows` decides it. Big panels keep their rows closed and their bodies short, so a redraw of
a 30-member panel stays a few kilobytes.
"""

from __future__ import annotations

import html

from .facts import NO_MATH

__all__ = ["DRAFT_CSS", "OPEN_UP_TO", "answer_so_far_html", "body_chars", "draft_box", "draft_html", "preview"]

OPEN_UP_TO = 4  # panels this small show their members' text open while it streams
TOTAL_CHARS = 12_000  # characters of member text in one redraw, shared among the rows
MIN_CHARS, MAX_CHARS = 400, 4_000
ANSWER_CHARS = 8_000  # the judge's answer so far: the text the reader waits for
PREVIEW_CHARS = 110

# Scoped to the live block; without it (a viewer that strips <style>) the preview also shows when open.
DRAFT_CSS = (
    "<style>.fusion-progress details.fm-draft[open]>summary .fm-preview{display:none}"
    ".fusion-progress details.fm-draft:not([open])>summary .fm-so-far{display:none}</style>"
)


def body_chars(rows_with_text: int) -> int:
    "How much of each member's text one redraw carries (the tail), given how many rows have text."
    return max(MIN_CHARS, min(MAX_CHARS, TOTAL_CHARS // max(1, rows_with_text)))


def preview(text: str, width: int = PREVIEW_CHARS) -> str:
    "The latest words of ``text`` on one line ('…' in front when cut)."
    flat = " ".join(text[-4 * width :].split())
    if len(flat) <= width and len(text) <= 4 * width:
        return flat
    tail = flat[-width:]
    if " " in tail[1:] and not flat[-width - 1 : -width].isspace():
        tail = tail[tail.index(" ", 1) + 1 :]  # from a word's start, not the middle of one
    return "…" + tail


def draft_box(text: str, limit: int) -> str:
    "The text so far, escaped, in a box that keeps its end in view; only the last ``limit`` characters."
    tail = text if len(text) <= limit else "…" + text[-limit:]
    style = (
        "max-height:10em;overflow:auto;display:flex;flex-direction:column-reverse;white-space:pre-wrap;"
        "overflow-wrap:anywhere;padding:.2em .5em;border-left:2px solid rgba(128,128,128,.35);"
        "font-family:var(--jp-content-font-family,system-ui,sans-serif);font-size:12px;text-align:left"
    )
    return f'<div style="{style}"><div>{html.escape(tail)}</div></div>'


def draft_html(text: str, *, label: str, open_: bool, limit: int) -> str:
    """One collapsible draft row spanning the live grid: ``label`` and the latest words, then the text.

    Only the last ``limit`` characters are carried ('…' marks the cut); all of it is in the result.
    """
    words = len(text.split())
    summary = (
        f'<span class="fm-so-far">{html.escape(label)} ({words:,} words)</span>'
        f'<span class="fm-preview">{html.escape(preview(text))}</span>'
    )
    return (
        f'<details class="fm-draft" style="grid-column:1/-1;margin:0 0 .25em 1.2em"{" open" if open_ else ""}>'
        f'<summary style="cursor:pointer;opacity:.75;white-space:nowrap;overflow:hidden;text-overflow:ellipsis">'
        f"{summary}</summary>{draft_box(text, limit)}</details>"
    )


def answer_so_far_html(text: str) -> str:
    "The judge's answer while it is written (the widget's answer area), kept from MathJax."
    if not text:
        return ""
    return (
        f'<div class="fusion-progress {NO_MATH}" style="margin:.3em 0"><div style="font-weight:600;'
        f'font-size:.85em;opacity:.7">Answer so far</div>{draft_box(text, ANSWER_CHARS)}</div>'
    )
