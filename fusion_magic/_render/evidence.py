"""How evidence looks in each view: quote marks, support k/n and jury agreement, as HTML, Markdown or text.

An unverified attribution is never hidden silently: every view marks it "⚠ unverified" with the
reason (no quote, quote not in that member's answer, quote from another member's answer), and
counts it. With ``verified_only`` the views show `Analysis.verified()` and say how many were hidden.
"""

from __future__ import annotations

import html
from typing import Any

from .._judge.evidence import reason
from .._values.analysis import quotes_of
from .._values.result import Quote
from .sanitize import clean_line, defang_html, plain_markdown

__all__ = [
    "BACKED",
    "CSS",
    "UNVERIFIED",
    "VERIFIED",
    "analysis_note_html",
    "analysis_note_md",
    "badges_html",
    "badges_md",
    "mark_html",
    "mark_md",
    "quote_html",
    "quote_md",
    "short_reason",
    "supporters_html",
    "text_lines",
]

UNVERIFIED = "⚠ unverified"
VERIFIED = "✓"
BACKED = "✓ tool output"  # the quote is in what the member's own tool call returned: backed by execution


def _backed(quote: Quote) -> bool:
    return bool(quote.verified and quote.match is not None and quote.match.source == "tool")


CSS = """
.fm-root .fm-quote{display:block;font-size:.88em;opacity:.75;font-style:italic;margin:.1em 0 .2em}
.fm-root .fm-ok{color:rgba(46,160,67,1);font-size:.85em;font-style:normal}
.fm-root .fm-unv{border-radius:4px;padding:0 .35em;font-size:.8em;font-style:normal;white-space:nowrap;
  background:rgba(210,150,20,.2);border:1px solid rgba(210,150,20,.7)}
.fm-root .fm-support,.fm-root .fm-agree{border-radius:999px;padding:0 .45em;margin-left:.3em;
  font-size:.8em;white-space:nowrap;background:rgba(46,120,220,.14);font-variant-numeric:tabular-nums}
.fm-root .fm-agree{background:rgba(140,90,210,.14)}
.fm-root details.fm-ev{display:inline;margin-left:.2em}
.fm-root details.fm-ev>summary{display:inline;cursor:pointer;list-style:none}
.fm-root details.fm-ev[open]>div{margin:.2em 0 .3em 1em}
"""


def _e(value: Any, limit: int = 200) -> str:
    # Quotes are model text: escaped, and no `onxxx=` / `javascript:` byte pattern survives.
    return defang_html(html.escape(clean_line(value, limit)))


def short_reason(quote: Quote) -> str:
    "The visible few words after ⚠ unverified (the full reason is the tooltip)."
    if not quote.quote.strip():
        return "no quote"
    if quote.found_in:
        return f"quote from {quote.found_in}"
    return "quote not found"


# -- HTML -----------------------------------------------------------------------------------------


def mark_html(quote: Quote) -> str:
    "✓ or ⚠ unverified, with the reason as a tooltip."
    why = _e(reason(quote), 300)
    if quote.verified:
        return f'<span class="fm-ok" title="{why}">{BACKED if _backed(quote) else VERIFIED}</span>'
    return f'<span class="fm-unv" title="{why}">{UNVERIFIED}: {_e(short_reason(quote), 200)}</span>'


def quote_html(quote: Quote, *, name: bool = False) -> str:
    "The quote on its own line with its mark (and the member's name when several share an item)."
    who = f"<b>{_e(quote.model, 120)}</b> " if name else ""
    text = f"“{_e(quote.quote, 600)}” " if quote.quote.strip() else ""
    return f'<span class="fm-quote">{who}{text}{mark_html(quote)}</span>'


def badges_html(item: Any) -> str:
    "Support k/n (consensus) and agreement k/n judges (a jury), as small badges."
    out = []
    support = getattr(item, "support", None)
    if isinstance(support, str):
        bad = sum(not q.verified for q in quotes_of(item))
        names = ", ".join(clean_line(q.model, 120) for q in quotes_of(item))
        title = _e(f"supported by {names}" + (f"; {bad} unverified" if bad else ""), 600)
        out.append(f'<span class="fm-support" title="{title}">{html.escape(support)}</span>')
    agreement = getattr(item, "agreement", None)
    if agreement is not None:
        title = _e("found by " + ", ".join(clean_line(j, 120) for j in agreement.judges), 600)
        out.append(f'<span class="fm-agree" title="{title}">{html.escape(str(agreement))} judges</span>')
    return "".join(out)


def supporters_html(item: Any) -> str:
    "A consensus point's supporters and their quotes, collapsed behind a one-line summary."
    quotes = quotes_of(item)
    if not quotes:
        return ""
    bad = sum(not q.verified for q in quotes)
    summary = f'<span class="fm-unv">{UNVERIFIED}: {bad}</span>' if bad else '<span class="fm-muted">quotes</span>'
    body = "".join(quote_html(q, name=True) for q in quotes)
    return f'<details class="fm-ev"><summary>{summary}</summary><div>{body}</div></details>'


def analysis_note_html(result: Any) -> str:
    "After the Analysis label: how many attributions are unverified, or were hidden."
    analysis = getattr(result, "analysis", None)
    count = getattr(analysis, "unverified", 0) if analysis is not None else 0
    if not count:
        return ""
    if getattr(result, "verified_only", False):
        return f' <span class="fm-muted">({count} unverified attributions hidden: verified_only)</span>'
    why = "no quote, or the quote is not in the cited member&#x27;s answer"
    return f' <span class="fm-unv" title="{why}">{count} unverified</span>'


# -- Markdown and text ----------------------------------------------------------------------------


def mark_md(quote: Quote) -> str:
    if quote.verified:
        return BACKED if _backed(quote) else VERIFIED
    return f"**{UNVERIFIED}** ({plain_markdown(reason(quote), 200)})"


def quote_md(quote: Quote) -> str:
    text = f"“{plain_markdown(quote.quote, 600)}” " if quote.quote.strip() else ""
    return f"*{text.strip()}* {mark_md(quote)}" if text else mark_md(quote)


def badges_md(item: Any) -> str:
    out = []
    support = getattr(item, "support", None)
    if isinstance(support, str):
        bad = sum(not q.verified for q in quotes_of(item))
        out.append(f"support {support}" + (f", {bad} {UNVERIFIED}" if bad else ""))
    agreement = getattr(item, "agreement", None)
    if agreement is not None:
        out.append(f"{agreement} judges")
    return f" *({'; '.join(out)})*" if out else ""


def analysis_note_md(result: Any) -> str:
    count = getattr(getattr(result, "analysis", None), "unverified", 0)
    if not count:
        return ""
    if getattr(result, "verified_only", False):
        return f"*{count} unverified attributions hidden (verified_only).*"
    return f"**{count} {UNVERIFIED}** attributions: no quote, or the quote is not in the cited member's answer."


def text_lines(result: Any, limit: int = 5) -> list[str]:
    "For the plain repr: the count of unverified attributions and the first few, one line each."
    analysis = getattr(result, "analysis", None)
    if analysis is None or not hasattr(analysis, "items"):
        return []
    bad = [
        (section, q)
        for section in analysis.SECTIONS
        for item in analysis.items(section)
        for q in quotes_of(item)
        if not q.verified
    ]
    lines = []
    jury = getattr(result, "jury", None) or []
    if jury:
        lines.append(f"  jury: {len(jury)} judges, chair {clean_line(getattr(jury[0], 'model', '?'), 80)}")
    if not bad:
        return lines
    hidden = " (hidden: verified_only)" if getattr(result, "verified_only", False) else ""
    lines.append(f"  analysis: {len(bad)} unverified attributions{hidden}")
    for section, q in bad[:limit]:
        lines.append(f"    {UNVERIFIED} {section}: {clean_line(q.model, 60)}: {clean_line(reason(q), 120)}")
    if len(bad) > limit:
        lines.append(f"    ... and {len(bad) - limit} more (analysis.to_frame() has them all)")
    return lines
