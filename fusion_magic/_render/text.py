"""The plain-text view of a FusionResult: its `__repr__`, and the text/plain of every format.

One status line, then the error, notes, an answer preview, the analysis (every section of the table
in `fusion_magic._values.sections`, a line per item, read by its shape), one line per call and the evidence
warnings. Everything is cleaned to single lines (no terminal escapes), and it never raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._values.sections import SECTIONS, Shape
from . import evidence as ev
from . import facts as f
from . import methods
from .sanitize import clean_line
from .trace import trace_text

if TYPE_CHECKING:
    from .._values.result import FusionResult

__all__ = ["to_text"]

_ANSWER_PREVIEW = 300
_ITEMS = 5  # items listed per section; the rest are counted (analysis.to_frame() has them all)


def _text(result: Any) -> str:
    c = f.counts(result)
    ok = c.get("ok", 0)
    bad = sum(c.values()) - ok
    status = clean_line(f.attr(result, "status", "?"), 40)
    cost = f.total_cost_text(result)
    elapsed = f.fmt_secs(f.attr(result, "elapsed_s"), compact=True)
    lines = [f"FusionResult(status={status!r}, members={ok} ok/{bad} failed, cost={cost}, elapsed={elapsed})"]
    error = f.attr(result, "error")
    if status == "judge_failed":
        why = f" ({clean_line(error, 200)})" if error else ""
        lines.append(f"  judge failed{why}: {f.REJUDGE_HINT.replace('`', '')}")
    elif error:
        lines.append(f"  error: {clean_line(error, 300)}")
    tool = f.tool_line(result)
    if tool:
        lines.append(f"  {tool}")
    lines += [f"  note: {n}" for n in f.notes(result)]
    # Slice before cleaning: a 2 MB answer must not make repr slow.
    answer = clean_line(str(f.attr(result, "answer") or "")[: _ANSWER_PREVIEW * 4], _ANSWER_PREVIEW)
    if answer:
        lines.append(f"  answer: {answer}")
    lines += _analysis_lines(result, status)
    lines += methods.methods_text(result)
    calls = [("", r) for r in f.responses(result)]
    jury = list(f.attr(result, "jury") or [])
    calls += [("juror ", r) for r in jury]
    judge = f.attr(result, "judge")
    if judge is not None:
        calls.append(("chair " if jury else "judge ", judge))
    calls += [("", r) for r in (f.attr(result, "method_calls") or [])]  # cross-examination, a round
    width = min(40, max((len(prefix + f.name_of(r)) for prefix, r in calls), default=0))
    for prefix, resp in calls:
        status_r = f.status_of(resp)
        name = (prefix + f.name_of(resp))[:width]
        cost_r = f.call_cost(resp)
        line = (
            f"  {name:<{width}}  {f.STATUS_LABEL[status_r]:<9}  "
            f"{f.fmt_secs(f.attr(resp, 'latency_s'), compact=True):>7}  {cost_r:>9}"
        )
        if f.attr(resp, "cached"):
            line += "  cached"
        if status_r != "ok":
            line += f"  {clean_line(f.error_of(resp), 120)}"
        elif f.cut_short(resp):
            line += f"  ({f.cut_short(resp)})"
        lines.append(line.rstrip())
        if thought := f.reasoning_text(resp):  # collapsed: one line; `.reasoning` has it all
            lines.append(f"  {'':<{width}}  {f.reasoning_title(resp).lower()}: {clean_line(thought[:400], 80)}")
        lines += trace_text(resp)
    lines += ev.text_lines(result)
    return "\n".join(lines)


def _analysis_lines(result: Any, status: str) -> list[str]:
    "Every section of the table, a line per item (at most `_ITEMS`); none for a result with no verdict."
    analysis = f.attr(result, "analysis")
    if not any(f.attr(analysis, s.name) for s in SECTIONS) and status not in ("ok", "partial"):
        return []
    shown = f.attr(result, "shown_analysis", analysis)
    lines = []
    for section in SECTIONS:
        items = f.section_items(shown, section.name)
        if not items:
            lines.append(f"  {section.title}: none")
            continue
        lines.append(f"  {section.title} ({len(items)}):")
        lines += [f"    - {_item(section.shape, item)}" for item in items[:_ITEMS]]
        if len(items) > _ITEMS:
            lines.append(f"    ... and {len(items) - _ITEMS} more")
    return lines


def _item(shape: Shape, item: Any) -> str:
    "One analysis item as one line, read by its section's shape."
    if isinstance(item, str):
        return clean_line(item, 160)
    if shape == "stances":
        stances = "; ".join(
            f"{clean_line(f.attr(s, 'model'), 60)}: {clean_line(f.attr(s, 'stance'), 80)}"
            for s in (f.attr(item, "stances") or [])
        )
        topic = clean_line(f.attr(item, "topic"), 120)
        return f"{topic} ({stances})" if stances else topic
    if shape == "members":
        models = ", ".join(clean_line(m, 60) for m in (f.attr(item, "models") or []))
        return f"{clean_line(f.attr(item, 'point'), 160)} ({models})"
    if shape == "member":
        return f"{clean_line(f.attr(item, 'model'), 60)}: {clean_line(f.attr(item, 'insight'), 160)}"
    support = f.attr(item, "support")  # a point: "2/3" members state it
    text = clean_line(f.attr(item, "point"), 160) + (f" [support {support}]" if isinstance(support, str) else "")
    return text + methods.flag_text(item)


def to_text(result: FusionResult) -> str:
    """The plain `__repr__`: status line, answer preview, the analysis, one line per call. Never raises."""
    try:
        return _text(result)
    except Exception as exc:
        try:
            status = clean_line(getattr(result, "status", "?"), 40)
        except Exception:
            status = "?"
        return f"FusionResult(status={status!r}, <unrenderable: {type(exc).__name__}>)"
