"""The Markdown view of a FusionResult, for `_repr_markdown_`, `--format markdown` and exports.

Model text is neutralised at the source (see `sanitize`): no raw HTML, no unsafe links, no image
fetches. Section titles and item shapes come from the section table (`fusion_magic._values.sections`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .._values.analysis import quotes_of
from .._values.result import Quote
from .._values.sections import shape_of
from . import evidence as ev
from . import facts as f
from . import methods
from .sanitize import inline_markdown, neutralize_markdown, plain_markdown
from .text import to_text
from .trace import trace_markdown

if TYPE_CHECKING:
    from .._values.result import FusionResult

__all__ = ["to_markdown"]


def _md_call_heading(resp: Any) -> str:
    status = f.status_of(resp)
    bits = [f"{f.STATUS_ICON[status]} **{plain_markdown(f.name_of(resp))}**"]
    toks = f.tokens(resp)
    bits += [
        f.fmt_secs(f.attr(resp, "latency_s")),
        f"{f.fmt_int(toks)} tokens in+out" if toks is not None else f.DASH,
        plain_markdown(f.call_cost(resp)),
    ]
    if f.attr(resp, "cached"):
        bits.append("cached")
    if status != "ok":
        bits.append(f"{f.STATUS_LABEL[status]}: {plain_markdown(f.error_of(resp), 300)}")
    elif f.cut_short(resp):
        bits.append(f.cut_short(resp))
    return " · ".join(bits)


def _md_call(resp: Any, where: str, level: str = "####") -> list[str]:
    out = [f"{level} {_md_call_heading(resp)}", ""]
    served = f.attr(resp, "served_by")
    if served and f.clean_line(served) != f.name_of(resp):
        out += [f"*served by {plain_markdown(served)}*", ""]
    content = f.attr(resp, "content") or ""
    if str(content).strip():
        if f.status_of(resp) != "ok":
            out += ["*Partial output received before it stopped:*", ""]
        out += [neutralize_markdown(content, where=where, quote=True), ""]
    if thought := f.reasoning_text(resp):  # collapsed under the answer; never part of it
        body = neutralize_markdown(thought, where=where.replace(".content", ".reasoning"), quote=True)
        out += [f"<details><summary>{f.reasoning_title(resp)}</summary>", "", body, "", "</details>", ""]
    return out + trace_markdown(resp)


def _md_section(name: str, items: list[Any]) -> list[str]:
    title = f.SECTION_TITLES[name]
    if not items:
        return [f"**{title}**: none", ""]
    out = [f"**{title}** ({len(items)})", ""]
    for item in items:
        if shape_of(name) == "stances":
            out.append(f"- **{inline_markdown(f.attr(item, 'topic'))}**{ev.badges_md(item)}")
            out += [
                f"  - {plain_markdown(f.attr(s, 'model'))}: {inline_markdown(f.attr(s, 'stance'))}{_md_quote(s)}"
                for s in (f.attr(item, "stances") or [])
            ]
        elif shape_of(name) == "members":
            models = ", ".join(plain_markdown(m, 120) for m in (f.attr(item, "models") or []))
            out.append(f"- {inline_markdown(f.attr(item, 'point'))} — *{models}*{ev.badges_md(item)}")
            out += [f"  - {plain_markdown(q.model)}: {ev.quote_md(q)}" for q in (f.attr(item, "quotes") or [])]
        elif shape_of(name) == "member":
            out.append(
                f"- **{plain_markdown(f.attr(item, 'model'))}**: {inline_markdown(f.attr(item, 'insight'))}"
                f"{ev.badges_md(item)}{_md_quote(item)}"
            )
        elif isinstance(item, str):
            out.append(f"- {inline_markdown(item)}")
        else:  # a point (consensus, blind spots, any text section)
            out.append(f"- {inline_markdown(f.attr(item, 'point'))}{ev.badges_md(item)}{methods.flag_md(item)}")
            out += [f"  - {plain_markdown(q.model)}: {ev.quote_md(q)}" for q in quotes_of(item)]
    return [*out, ""]


def _md_quote(item: Any) -> str:
    return f" — {ev.quote_md(item)}" if isinstance(item, Quote) else ""


def _fenced(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)  # longer than any run inside, so the content cannot close it
    return f"{fence}text\n{text}\n{fence}"


def _md(result: Any) -> str:
    status = str(f.attr(result, "status", "error"))
    facts = " · ".join(plain_markdown(fact, 300) for fact in f.header_facts(result))
    out = [f"**fusion · {plain_markdown(f.RESULT_LABEL.get(status, status))}** · {facts}", ""]
    error = f.attr(result, "error")
    if status == "error":
        out += [f"> **Error:** {plain_markdown(error or 'nothing was answered', 2000)}", ""]
    if status == "judge_failed":
        why = f": {plain_markdown(error, 2000)}" if error else ""
        out += [f"> **The judge failed**{why}. {f.REJUDGE_HINT}.", ""]
        raw = f.attr(result, "judge_raw")
        if raw:
            out += ["Raw judge output:", "", neutralize_markdown(raw, where="result.judge_raw", quote=True), ""]
    if status == "interrupted":
        out += [
            f"> **Interrupted**: {plain_markdown(error or 'interrupted', 2000)}. "
            "The judge did not run; re-run to resume.",
            "",
        ]
    tool = f.tool_line(result)
    if tool:
        out += [f"*{plain_markdown(tool, 300)}.*", ""]
    for note in f.notes(result):  # a paragraph each: consecutive lines would run into one
        out += [f"*Note: {plain_markdown(note, 300)}.*", ""]
    answer = f.attr(result, "answer") or ""
    if str(answer).strip():
        out += ["### Answer", "", neutralize_markdown(answer, where="result.answer"), ""]
    analysis = f.attr(result, "analysis")
    if any(f.attr(analysis, s) for s in f.SECTION_TITLES) or status in ("ok", "partial"):
        out += ["### Analysis", ""]
        note = ev.analysis_note_md(result)
        out += [note, ""] if note else []
        shown = f.attr(result, "shown_analysis", analysis)
        for name in f.SECTION_TITLES:
            out += _md_section(name, f.section_items(shown, name))
    out += methods.methods_md(result)
    members = f.responses(result)
    if members:
        out += ["### Panel answers", ""]
        for i, resp in enumerate(members):
            out += _md_call(resp, f"result.responses[{i}].content")
    judge = f.attr(result, "judge")
    jury = list(f.attr(result, "jury") or [])
    if judge is not None or jury:
        out += ["### Judge" if not jury else "### Jury", ""]
        calls = [f"juror · {_md_call_heading(j)}" for j in jury]
        calls += [f"{'chair · ' if jury else ''}{_md_call_heading(judge)}"] if judge is not None else []
        out += [f"- {line}" for line in calls] if jury else calls  # a jury: one list item per judge
        out += [""]
    extra = list(f.attr(result, "method_calls") or [])
    if extra:  # cross-examination, a round
        out += ["### Method calls", "", *(f"- {_md_call_heading(c)}" for c in extra), ""]
    return "\n".join(out).rstrip() + "\n"


def to_markdown(result: FusionResult) -> str:
    """Markdown for `_repr_markdown_` and `--format markdown`; model text is neutralised, no raw HTML."""
    try:
        return _md(result)
    except Exception as exc:  # same reasoning as to_html: never lose the display of a paid result
        note = f"*(rich display failed: {type(exc).__name__}; showing the plain summary)*"
        return f"{note}\n\n{_fenced(neutralize_markdown(to_text(result)))}\n"
