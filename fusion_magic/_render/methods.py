"""The deliberation methods in every view: the vote, the judge's reading order, a round's moves,
the cross-examination marks and the false-consensus flag on a point.

Each function takes a result (or an analysis item) and returns markup or lines; an ordinary
result gives nothing, so the views add these unconditionally.
"""

from __future__ import annotations

import html
from collections import Counter
from typing import Any

from .sanitize import clean_line, plain_markdown

__all__ = [
    "FALSE_CONSENSUS",
    "flag_html",
    "flag_md",
    "flag_text",
    "methods_html",
    "methods_md",
    "methods_text",
    "tally",
]

FALSE_CONSENSUS = "⚠ false consensus"


def _disputers(item: Any) -> list[str]:
    return [q.model for q in (getattr(item, "disputed_by", None) or [])]


def flag_html(item: Any) -> str:
    "A consensus point's flag: counted from the members' marks, disputed by whom."
    if not getattr(item, "marked", False):
        return ""
    who = _disputers(item)
    out = (
        '<span class="fm-muted" title="support counted from the members\u2019 own marks"> (members\u2019 marks)</span>'
    )
    if who:
        names = html.escape(", ".join(clean_line(m, 120) for m in who))
        out += f' <span class="fm-unv fm-false">{FALSE_CONSENSUS}: disputed by {names}</span>'
    return out


def flag_md(item: Any) -> str:
    if not getattr(item, "marked", False):
        return ""
    who = _disputers(item)
    disputed = f" **{FALSE_CONSENSUS}**: disputed by {plain_markdown(', '.join(who), 300)}" if who else ""
    return " *(members' marks)*" + disputed


def flag_text(item: Any) -> str:
    who = _disputers(item)
    return f" [{FALSE_CONSENSUS}: disputed by {clean_line(', '.join(who), 200)}]" if who else ""


def tally(marks: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    "Per member: how many items it marked agree, disagree, not addressed, or left unmarked."
    out: dict[str, Counter[str]] = {}
    for row in marks:
        out.setdefault(row["member"], Counter())[row.get("mark") or "unmarked"] += 1
    return out


def _lines(result: Any, order: bool = True) -> list[tuple[str, list[str]]]:
    "(heading, plain lines) per method present in ``result`` (and the judge's reading order, with ``order``)."
    blocks: list[tuple[str, list[str]]] = []
    vote = getattr(result, "vote", None)
    if vote:
        groups = [f"{g['answer']}: {len(g['members'])} ({', '.join(g['members'])})" for g in vote.get("groups", [])]
        head = f"majority {vote.get('answer')} with {vote.get('agree')}/{vote.get('of')}"
        blocks.append(
            (
                "Vote",
                [head, *groups, *([f"not counted: {', '.join(vote['unreadable'])}"] if vote.get("unreadable") else [])],
            )
        )
    for entry in getattr(result, "rounds", None) or []:
        lines = ["before: " + "; ".join(f"{b['model']}: {b['stance']}" for b in entry["before"])]
        for a in entry["after"]:
            said = f" ({a['reason']})" if a.get("reason") else ""
            lines.append(f"after: {a['model']} {a.get('decision') or 'no reply'}{said}")
        lines.append(f"moved: {', '.join(entry['moved']) or 'nobody'}")
        blocks.append((f"Round 2 · {entry['topic']}", lines))
    marks = getattr(result, "marks", None) or []
    if marks:
        lines = [
            f"{member}: agree {c['agree']}, disagree {c['disagree']}, not addressed {c['not addressed']}"
            + (f", unmarked {c['unmarked']}" if c["unmarked"] else "")
            for member, c in tally(marks).items()
        ]
        lines += [f"{r['member']} disagrees: {r['text']}" for r in marks if r.get("mark") == "disagree"]
        blocks.append(("Cross-examination", lines))
    read = getattr(result, "judge_order", None) or []
    if order and len(read) > 1:
        blocks.append(("Judge read the answers in this order", [" → ".join(read)]))
    return blocks


def methods_text(result: Any) -> list[str]:
    "Plain lines for `__repr__`."
    out = []
    for heading, lines in _lines(result):
        out.append(f"  {heading}:")
        out += [f"    - {clean_line(line, 240)}" for line in lines]
    return out


def methods_md(result: Any) -> list[str]:
    "Markdown lines."
    out = []
    for heading, lines in _lines(result):
        out += [f"**{plain_markdown(heading, 200)}**", ""]
        out += [f"- {plain_markdown(line, 600)}" for line in lines]
        out.append("")
    return out


def methods_html(result: Any, *, order: bool = True) -> str:
    "Collapsible blocks (open), one per method present (``order=False``: without the judge's reading order)."
    out = []
    for heading, lines in _lines(result, order):
        items = "".join(f"<li>{html.escape(clean_line(line, 600))}</li>" for line in lines)
        out.append(
            f'<details class="fm-sec fm-method" open><summary>{html.escape(clean_line(heading, 200))}</summary>'
            f'<ul class="fm-items">{items}</ul></details>'
        )
    return "".join(out)
