"""FusionWidget's live text and its one view of the result, in plain pytest (no browser, no kernel).

While a run works, each member has a row whose body is its text so far and the judge's answer
grows in the answer area; when it ends, the result is shown once: in the output below the
controls when the widget was displayed, else in its own sections.
"""

from __future__ import annotations

import time

import ipywidgets as widgets

from fusion_magic._base.config import PRESETS
from fusion_magic._fronts.widget import FusionWidget
from fusion_magic.emulator import Reply

BUDGET = [m.model for m in PRESETS["budget"].panel]
BUDGET_JUDGE = PRESETS["budget"].judge.model
HEAD, TAIL = "Start with the schema.", "Finish with the backups."
SLOW = " ".join([HEAD, *(f"Then step {i} <b>of</b> the plan." for i in range(1, 13)), TAIL])


class Handle:
    "What IPython's display(..., display_id=True) returns: an output that can be updated in place."

    def __init__(self) -> None:
        self.shown: list[object] = []

    def update(self, obj, **kw) -> None:
        self.shown.append(obj)


def row_texts(ui) -> list[str]:
    return [box.children[0].value for box in ui.sections.children if isinstance(box, widgets.Accordion)]


def test_members_text_and_the_judge_s_answer_stream_into_the_widget(emulator):
    emulator.script(BUDGET[0], Reply(content=SLOW, tokens_per_s=40))  # ~3 s
    emulator.script(BUDGET_JUDGE, Reply(tokens_per_s=150))
    ui = FusionWidget(preset="budget")
    ui.prompt.value = "How do we migrate?"
    ui.run_button.click()
    partial, answers = [], []
    deadline = time.monotonic() + 60
    while not ui.future.done() and time.monotonic() < deadline:
        texts = row_texts(ui)
        if texts and HEAD in texts[0] and TAIL not in texts[0]:
            partial.append(texts[0])
            titles = [box.get_title(0) for box in ui.sections.children]
            rows = len(ui.sections.children)
        if "Answer so far" in ui.answer.value:
            answers.append(ui.answer.value)
        time.sleep(0.05)
    result = ui.wait(timeout=30)
    assert partial, "the member's first words were seen before its last ones"
    assert "&lt;b&gt;of&lt;/b&gt;" in partial[-1] and "<b>of" not in partial[-1]  # escaped, never rendered
    assert "mathjax_ignore" in partial[-1]
    assert titles[0].startswith(BUDGET[0]) and "words" in titles[0]
    assert rows == len(BUDGET)  # one row per member while it runs (the judge's answer is apart)
    assert answers and "Synthesis by" in answers[-1] and "&quot;consensus&quot;" not in answers[-1]
    # Not displayed (e.g. inside another layout): the result takes the rows' place in the widget.
    assert result.status == "ok" and "Synthesis by" in ui.answer.value and "Answer so far" not in ui.answer.value
    assert all(HEAD not in t or "fm-root" in t for t in row_texts(ui))


def test_a_displayed_widget_shows_its_result_once_in_the_output_below(emulator, monkeypatch):
    handles: list[Handle] = []

    def display(obj, **kw):
        if kw.get("display_id"):
            handles.append(Handle())
            return handles[-1]
        return None

    monkeypatch.setattr("IPython.display.display", display)
    ui = FusionWidget(preset="budget")
    ui._ipython_display_()  # what showing it in a cell does: the controls, then an output below
    ui.prompt.value = "Which database?"
    ui.run_button.click()
    result = ui.wait(timeout=30)
    assert result is not None and result.status == "ok"
    assert len(handles) == 1 and handles[0].shown == [result]  # the saved output: the result
    assert ui.sections.children == () and ui.answer.value == ""  # and not a second copy in the widget
    assert "done in" in ui.status.value  # the status lines stay
