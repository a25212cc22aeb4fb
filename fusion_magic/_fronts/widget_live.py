"""The widget's live text while a run works: one collapsible row per member, then the judge's answer.

`FusionWidget` polls the tracker a few times a second and hands it to `LiveText.update`, which
sets only the values that changed. Each member's row is an Accordion whose title names the
member and counts its words, and whose body is the text so far (escaped, its end in view; see
`_render.drafts`). Unlike the cell's live block, a row keeps the reader's open or closed choice:
only its body changes. Rows start open in a small panel, closed in a big one. When the run ends
the widget clears these (the result is shown once, by the widget's output).
"""

from __future__ import annotations

import ipywidgets as widgets

from .._render.drafts import OPEN_UP_TO, answer_so_far_html, body_chars, draft_box
from .._render.facts import NO_MATH
from .._render.progress import JUDGE, Tracker
from .._render.sanitize import clean_line

__all__ = ["LiveText", "section_box"]


class LiveText:
    """Fills ``sections`` with a row per member and ``answer`` with the judge's answer as they stream."""

    def __init__(self, sections: widgets.VBox, answer: widgets.HTML) -> None:
        self.sections, self.answer = sections, answer
        self._rows: dict[str, tuple[widgets.Accordion, widgets.HTML]] = {}
        self._shown: dict[str, tuple[str, str]] = {}  # key -> (title, body) last set
        self._answer = ""

    def update(self, tracker: Tracker) -> None:
        "Copy what each call has written so far into the rows (values that did not change are not sent)."
        members = [(key, state) for key, state in tracker.keyed() if key != JUDGE]
        if [key for key, _ in members] != list(self._rows):  # the first poll, or a seat that appeared
            open_ = len(members) <= OPEN_UP_TO
            self._rows = {key: self._rows.get(key) or _row(open_) for key, _ in members}
            self.sections.children = tuple(box for box, _ in self._rows.values())
        drafts = {key: tracker.draft(key) for key, _ in members}
        limit = body_chars(sum(bool(t) for t in drafts.values()))
        for key, state in members:
            text = drafts[key]
            words = len(text.split())
            title = clean_line(state.name) + (f" · {words:,} words" if words else "")
            body = f'<div class="{NO_MATH}">{draft_box(text, limit)}</div>' if text else ""
            if self._shown.get(key) != (title, body):
                box, html = self._rows[key]
                if self._shown.get(key, ("", ""))[0] != title:
                    box.set_title(0, title)
                html.value = body
                self._shown[key] = (title, body)
        answer = tracker.draft(JUDGE)
        if answer != self._answer:
            self.answer.value = answer_so_far_html(answer)
            self._answer = answer

    def clear(self) -> None:
        "Remove the rows and the answer so far (the result takes their place, once)."
        self.sections.children = ()
        self.answer.value = ""
        self._rows.clear()
        self._shown.clear()
        self._answer = ""


def _row(open_: bool) -> tuple[widgets.Accordion, widgets.HTML]:
    body = widgets.HTML()
    return widgets.Accordion(children=[body], selected_index=0 if open_ else None), body


def section_box(title: str, content: str, open_: bool = False) -> widgets.Accordion:
    "One titled section of a result (``content`` is sanitized markup), open or closed on its own."
    # One item per Accordion: ipywidgets 8 keeps one item open per Accordion, and sections must
    # open and close independently.
    box = widgets.Accordion(children=[widgets.HTML(content)], selected_index=0 if open_ else None)
    box.set_title(0, title)
    return box
