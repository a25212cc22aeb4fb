"""The HTML view of a FusionResult: static markup plus one scoped `<style>`, no JavaScript.

It has to look right in JupyterLab, classic Notebook, saved notebooks and nbconvert exports, in light
and dark themes, so it leans on `<details>` for collapsing, inline `width:%` for bars, Jupyter's CSS
variables with fallbacks for colours, and every rule is scoped under `.fm-root`. Without CSS (some
viewers strip it) every figure is still there as text.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .._values.result import Quote
from .._values.sections import shape_of
from . import evidence as ev
from . import facts as f
from . import methods
from .sanitize import defang_html, markdown_to_safe_html, safe_pre
from .text import to_text
from .trace import trace_html

if TYPE_CHECKING:
    from .._values.result import FusionResult

__all__ = ["answer_html", "banners_html", "call_body", "header_html", "render_html", "section_body", "to_html", "wrap"]

_CSS = (
    """<style>
.fm-root{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;
  line-height:1.45;max-width:1000px;overflow-wrap:anywhere}
.fm-root .fm-md,.fm-root .fm-md code,.fm-root .fm-answer,.fm-root details.fm-d{overflow-wrap:anywhere;
  word-break:break-word;min-width:0}
.fm-root .fm-md table{display:block;max-width:100%;overflow-x:auto}
.fm-root .fm-head{display:flex;flex-wrap:wrap;align-items:center;gap:.2em .7em;margin:0 0 .5em}
.fm-root .fm-badge{border-radius:999px;padding:0 .6em;font-weight:600;border:1px solid}
.fm-root .fm-s-ok{background:rgba(46,160,67,.15);border-color:rgba(46,160,67,.6)}
.fm-root .fm-s-partial{background:rgba(210,150,20,.15);border-color:rgba(210,150,20,.7)}
.fm-root .fm-s-interrupted{background:rgba(158,158,158,.18);border-color:rgba(158,158,158,.8)}
.fm-root .fm-s-judge_failed,.fm-root .fm-s-error{background:rgba(220,50,50,.14);
  border-color:rgba(220,50,50,.7)}
.fm-root .fm-fact{opacity:.8;font-variant-numeric:tabular-nums}
.fm-root .fm-banner{border-left:3px solid rgba(220,50,50,.8);background:rgba(220,50,50,.07);
  padding:.4em .8em;margin:.4em 0}
.fm-root .fm-note{border-left:3px solid rgba(46,120,220,.6);padding:.2em .8em;margin:.4em 0;
  opacity:.9}
.fm-root .fm-answer{border-left:3px solid rgba(46,120,220,.7);padding:.1em .9em;
  margin:.5em 0 .8em}
.fm-root .fm-label{font-weight:600;font-size:.8em;letter-spacing:.04em;text-transform:uppercase;
  opacity:.65;margin:.6em 0 .2em}
.fm-root details.fm-d{border:1px solid var(--jp-border-color2,rgba(128,128,128,.35));
  border-radius:6px;margin:.3em 0;padding:0 .7em}
.fm-root details.fm-d>summary{cursor:pointer;padding:.3em 0}
.fm-root details.fm-d[open]>summary{
  border-bottom:1px solid var(--jp-border-color2,rgba(128,128,128,.25));margin-bottom:.4em}
.fm-root .fm-count{border-radius:999px;padding:0 .5em;margin-left:.3em;font-size:.85em;
  background:rgba(128,128,128,.18)}
.fm-root .fm-muted{opacity:.6}
.fm-root .fm-name{display:inline-block;min-width:15em;font-weight:600;margin-right:.6em}
.fm-root .fm-m{display:inline-block;margin-right:1em;font-variant-numeric:tabular-nums;
  white-space:nowrap}
.fm-root .fm-m>.fm-v{display:inline-block;min-width:4.8em}
.fm-root .fm-bar{display:inline-block;width:4.5em;height:.6em;margin-right:.35em;
  vertical-align:middle;border-radius:3px;background:rgba(128,128,128,.18);overflow:hidden}
.fm-root .fm-bar>span{display:block;height:100%;border-radius:3px}
.fm-root .fm-lat>span{background:rgba(46,120,220,.75)}
.fm-root .fm-tok>span{background:rgba(140,90,210,.7)}
.fm-root .fm-cost>span{background:rgba(210,140,20,.8)}
.fm-root .fm-tag{border-radius:4px;padding:0 .4em;font-size:.85em;
  background:rgba(46,160,67,.18)}
.fm-root .fm-errline{color:rgba(210,50,50,1)}
.fm-root .fm-md h1,.fm-root .fm-md h2,.fm-root .fm-md h3{font-size:1.15em;margin:.6em 0 .3em}
.fm-root .fm-md h4,.fm-root .fm-md h5,.fm-root .fm-md h6{font-size:1em;margin:.5em 0 .2em}
.fm-root .fm-md pre,.fm-root .fm-pre{overflow-x:auto;padding:.5em .7em;border-radius:4px;
  background:rgba(128,128,128,.1);white-space:pre-wrap;word-break:break-word}
.fm-root .fm-md table,.fm-root table.fm-stances{border-collapse:collapse;margin:.3em 0}
.fm-root .fm-md th,.fm-root .fm-md td,.fm-root .fm-stances th,.fm-root .fm-stances td{
  border:1px solid rgba(128,128,128,.35);padding:.15em .5em;text-align:left;vertical-align:top}
.fm-root table.fm-stances{width:100%;table-layout:auto}
.fm-root .fm-stances th:first-child,.fm-root .fm-stances td:first-child{width:1%;min-width:7em;
  max-width:40%;overflow-wrap:break-word;word-break:normal}
.fm-root .fm-stances th{white-space:nowrap}
.fm-root .fm-trunc{font-style:italic;opacity:.7}
.fm-root ul.fm-items{margin:.2em 0;padding-left:1.4em}
"""
    + ev.CSS
    + "</style>"
)


def _e(value: Any, limit: int = 200) -> str:
    return html.escape(f.clean_line(value, limit))


def _inline(value: Any) -> str:
    return markdown_to_safe_html(value, inline=True, limit=5000)


def _details(summary: str, body: str, *, open_: bool = False, cls: str = "") -> str:
    classes = f"fm-d {cls}".strip()
    return f'<details class="{classes}"{" open" if open_ else ""}><summary>{summary}</summary>{body}</details>'


def header_html(result: Any) -> str:
    status = str(f.attr(result, "status", "error"))
    label = f.RESULT_LABEL.get(status, status)
    parts = [
        f'<span class="fm-badge fm-s-{html.escape(status) if status in f.RESULT_LABEL else "error"}">'
        f"fusion · {_e(label)}</span>"
    ]
    parts += [f'<span class="fm-fact">{html.escape(fact)}</span>' for fact in f.header_facts(result)]
    return f'<div class="fm-head">{"".join(parts)}</div>'


def banners_html(result: Any) -> str:
    out = []
    status = f.attr(result, "status")
    error = f.attr(result, "error")
    if status == "error":
        out.append(f'<div class="fm-banner"><b>Error:</b> {_e(error or "nothing was answered", 2000)}</div>')
    if status == "judge_failed":
        why = f": {_e(error, 2000)}" if error else ""
        hint = html.escape(f.REJUDGE_HINT).replace("`%fusion rejudge`", "<code>%fusion rejudge</code>")
        out.append(f'<div class="fm-banner"><b>The judge failed</b>{why}. {hint}.</div>')
        raw = f.attr(result, "judge_raw")
        if raw:
            out.append(_details("Raw judge output", safe_pre(raw, where="result.judge_raw"), open_=True))
    if status == "interrupted":
        why = _e(error or "interrupted", 2000)
        out.append(f'<div class="fm-banner"><b>Interrupted</b>: {why}. The judge did not run; re-run to resume.</div>')
    tool = f.tool_line(result)
    if tool:
        out.append(f'<div class="fm-note">{html.escape(tool)}.</div>')
    out += [f'<div class="fm-note">Note: {html.escape(n)}.</div>' for n in f.notes(result)]
    return "".join(out)


def answer_html(result: Any) -> str:
    answer = f.attr(result, "answer") or ""
    if not str(answer).strip():
        if f.attr(result, "status") in ("ok", "partial"):
            return f'<div class="fm-answer fm-muted">({html.escape(f.no_answer_text(result))})</div>'
        return ""
    body = markdown_to_safe_html(answer, where="result.answer")
    return f'<div class="fm-label">Answer</div><div class="fm-answer fm-md">{body}</div>'


def section_body(name: str, items: list[Any]) -> str:
    """One analysis section; items are the section's objects (`Analysis.items`) or plain text."""
    if not items:
        return '<p class="fm-muted">none</p>'
    if shape_of(name) == "stances":
        blocks = []
        for c in items:
            rows = "".join(
                f"<tr><td>{_e(f.attr(s, 'model'))}</td><td>{_inline(f.attr(s, 'stance'))}{_quote(s)}</td></tr>"
                for s in (f.attr(c, "stances") or [])
            )
            table = (
                (
                    f'<table class="fm-stances"><thead><tr><th>Model</th><th>Stance</th></tr></thead>'
                    f"<tbody>{rows}</tbody></table>"
                )
                if rows
                else ""
            )
            topic = f"<p><b>{_inline(f.attr(c, 'topic'))}</b>{ev.badges_html(c)}</p>"
            blocks.append(f'<div class="fm-contra">{topic}{table}</div>')
        return "".join(blocks)
    lis = []
    for item in items:
        if shape_of(name) == "members":
            models = ", ".join(f.clean_line(m, 120) for m in (f.attr(item, "models") or []))
            quotes = "".join(ev.quote_html(q, name=True) for q in (f.attr(item, "quotes") or []))
            lis.append(
                f'{_inline(f.attr(item, "point"))} <span class="fm-muted">— {html.escape(models)}</span>'
                f"{ev.badges_html(item)}{quotes}"
            )
        elif shape_of(name) == "member":
            lis.append(
                f"<b>{_e(f.attr(item, 'model'))}</b>: {_inline(f.attr(item, 'insight'))}"
                f"{ev.badges_html(item)}{_quote(item)}"
            )
        elif isinstance(item, str):
            lis.append(_inline(item))
        else:  # a point (consensus, blind spots, any text section)
            point = f"{_inline(f.attr(item, 'point'))}{ev.badges_html(item)}{methods.flag_html(item)}"
            lis.append(point + ev.supporters_html(item))
    return '<ul class="fm-items">' + "".join(f"<li>{li}</li>" for li in lis) + "</ul>"


def _quote(item: Any) -> str:
    return ev.quote_html(item) if isinstance(item, Quote) else ""


def _analysis(result: Any) -> str:
    analysis = f.attr(result, "analysis")
    has_any = any(f.attr(analysis, s) for s in f.SECTION_TITLES)
    if not has_any and f.attr(result, "status") not in ("ok", "partial"):
        return ""  # no judge verdict: five "none" sections would suggest the judge found nothing
    shown = f.attr(result, "shown_analysis", analysis)
    out = [f'<div class="fm-label">Analysis{ev.analysis_note_html(result)}</div>']
    for name, title in f.SECTION_TITLES.items():
        items = f.section_items(shown, name)
        count = f'<span class="fm-count">{len(items)}</span>' if items else ' <span class="fm-muted">— none</span>'
        out.append(
            _details(f"{title}{count}", section_body(name, items), open_=bool(items), cls=f"fm-sec fm-sec-{name}")
        )
    return "".join(out)


def _bar(kind: str, value: float | None, scale: float, text: str, title: str) -> str:
    pct = 0.0
    if value and scale > 0:
        pct = min(100.0, max(1.0, value / scale * 100))  # 1%: a nonzero figure stays visible
    return (
        f'<span class="fm-m" title="{html.escape(title)}"><span class="fm-bar fm-{kind}">'
        f'<span style="width:{pct:.1f}%"></span></span><span class="fm-v">{html.escape(text)}</span></span>'
    )


def _call_summary(resp: Any, scales: dict[str, float], prefix: str = "") -> str:
    status = f.status_of(resp)
    name = f.name_of(resp)
    lat, toks, cost = f.num(f.attr(resp, "latency_s")), f.tokens(resp), f.paid(resp)
    cost_text = f.call_cost(resp)
    token_title = (
        f"tokens in + out: {f.fmt_int(f.attr(resp, 'prompt_tokens'))} in (prompt), "
        f"{f.fmt_int(f.attr(resp, 'completion_tokens'))} out (completion)"
    )
    parts = [
        f'<span title="{f.STATUS_LABEL[status]}">{f.STATUS_ICON[status]}</span> ',
        f'<span class="fm-name">{html.escape(prefix)}{html.escape(name)}</span>',
        _bar("lat", lat, scales["lat"], f.fmt_secs(lat), "latency"),
        _bar("tok", toks, scales["tok"], f"{f.fmt_int(toks)} tok in+out" if toks is not None else f.DASH, token_title),
        _bar(
            "cost", cost, scales["cost"], cost_text, "cost" + (" (estimated from prices)" if "~" in cost_text else "")
        ),
    ]
    if f.attr(resp, "cached"):
        parts.append('<span class="fm-tag">cached</span>')
    if status != "ok":
        parts.append(f' <span class="fm-errline">{f.STATUS_LABEL[status]}: {_e(f.error_of(resp), 140)}</span>')
    elif f.cut_short(resp):
        parts.append(f' <span class="fm-tag">{f.cut_short(resp)}</span>')
    return "".join(parts)


def call_body(resp: Any, where: str, as_markdown: bool = True) -> str:
    out: list[str] = []
    served = f.attr(resp, "served_by")
    if served and f.clean_line(served) != f.name_of(resp):
        out.append(f'<p class="fm-muted">served by {_e(served)}</p>')
    content = f.attr(resp, "content") or ""
    if f.status_of(resp) != "ok":
        out.append(f'<p class="fm-errline">{_e(f.error_of(resp), 2000)}</p>')
        if str(content).strip():
            out.append('<p class="fm-muted">Partial output received before it stopped:</p>')
    if str(content).strip():
        render = markdown_to_safe_html if as_markdown else safe_pre
        body = render(content, where=where)
        out.append(f'<div class="fm-md">{body}</div>' if as_markdown else body)
    elif f.status_of(resp) == "ok":
        out.append('<p class="fm-muted">(empty answer)</p>')
    if thought := f.reasoning_text(resp):  # collapsed under the answer; never part of it
        pre = safe_pre(thought, where=where.replace(".content", ".reasoning"))
        out.append(_details(html.escape(f.reasoning_title(resp)), pre, open_=False, cls="fm-reasoning"))
    out.append(trace_html(resp, where.replace(".content", ".tool_calls")))  # collapsed under the answer
    return "".join(out)


def _calls(result: Any) -> str:
    members = f.responses(result)
    judge = f.attr(result, "judge")
    scales = {
        "lat": max((f.num(f.attr(r, "latency_s")) or 0.0 for r in members), default=0.0),
        "tok": max((f.tokens(r) or 0.0 for r in members), default=0.0),
        "cost": max((f.paid(r) or 0.0 for r in members), default=0.0),
    }
    out = []
    if members:
        out.append('<div class="fm-label">Panel answers</div>')
    for i, resp in enumerate(members):
        out.append(
            _details(_call_summary(resp, scales), call_body(resp, f"result.responses[{i}].content"), cls="fm-member")
        )
    jury = list(f.attr(result, "jury") or [])
    for i, juror in enumerate(jury):
        out.append(
            _details(
                _call_summary(juror, scales, prefix="juror · "),
                call_body(juror, f"result.jury[{i}].content", as_markdown=False),
                cls="fm-judge",
            )
        )
    if judge is not None:
        # The judge usually reads every answer, so its bars may hit the members' maximum (capped at 100%).
        out.append(
            _details(
                _call_summary(judge, scales, prefix="chair · " if jury else "judge · "),
                call_body(judge, "result.judge.content", as_markdown=False),
                cls="fm-judge",
            )
        )
    for i, call in enumerate(f.attr(result, "method_calls") or []):  # cross-examination, a round
        body = call_body(call, f"result.method_calls[{i}].content", as_markdown=False)
        out.append(_details(_call_summary(call, scales), body, cls="fm-judge"))
    return "".join(out)


def render_html(result: Any) -> str:
    """The inner markup (without the root div and style) for one result."""
    body = answer_html(result) + _analysis(result) + methods.methods_html(result) + _calls(result)
    return header_html(result) + banners_html(result) + body


def wrap(body: str) -> str:
    """Put rendered markup inside the scoped root with its stylesheet."""
    # Names and errors are escaped but not defanged on their way in; one pass here covers them all.
    return f'<div class="fm-root {f.NO_MATH}">{_CSS}{defang_html(body)}</div>'


def to_html(result: FusionResult) -> str:
    """A self-contained HTML fragment (scoped inline CSS, no JavaScript) for `_repr_html_`."""
    try:
        return wrap(render_html(result))
    except Exception as exc:  # a rendering bug must not hide a result that was paid for
        note = f"(rich display failed: {type(exc).__name__}; showing the plain summary)"
        return wrap(
            f'<p class="fm-fallback fm-muted">{html.escape(note)}</p>'
            f'<pre class="fm-pre">{html.escape(to_text(result))}</pre>'
        )
