"""FusionWidget driven like a user would, in plain pytest: no browser, no kernel.

Outside a kernel the `comm` package hands every widget a no-op comm, so traits can be set and
read directly and `Button.click()` fires the same handler as a real click.
"""

from __future__ import annotations

import re
import time

import ipywidgets as widgets
import pytest

from fusion_magic._base.config import PRESETS
from fusion_magic._fronts import session
from fusion_magic._fronts.widget import FusionWidget
from fusion_magic.emulator import Reply

BUDGET = [m.model for m in PRESETS["budget"].panel]
BUDGET_JUDGE = PRESETS["budget"].judge.model
PRICES = {  # USD per token, as /models publishes them
    "openai/gpt-5-mini": {"prompt": "0.00000025", "completion": "0.000002"},
    "google/gemini-2.5-flash": {"prompt": "0.0000003", "completion": "0.0000025"},
    "deepseek/deepseek-chat": {"prompt": "0.0000003", "completion": "0.00000085"},
    "openai/gpt-4.1-mini": {"prompt": "0.0000004", "completion": "0.0000016"},
    "openai/gpt-4o": {"prompt": "0.0000025", "completion": "0.00001"},
}
HOSTILE = '<script>alert(1)</script> <img src=x onerror="alert(2)"> [click](javascript:alert(3))'


@pytest.fixture
def emu(emulator):
    emulator.models.update(PRICES)
    return emulator


def labels(select) -> dict[str, str]:
    return {value: label for label, value in select.options}


def dollars(label) -> float:
    return float(re.search(r"about \$([0-9.]+)", label.value).group(1))


def members_and_judge(ui) -> tuple[list, list, list]:
    "The result sections: analysis (5), one per panel member, then the judge, as the cell orders them."
    children = list(ui.sections.children)
    return children[:5], children[5:-1], children[-1:]


def html_values(widget) -> list[str]:
    "Every HTML and Label value in the widget tree."
    out = [widget.value] if isinstance(widget, (widgets.HTML, widgets.Label)) else []
    for child in getattr(widget, "children", ()):
        out += html_values(child)
    return out


def run(ui, prompt="Which database for a small web app?") -> object:
    ui.prompt.value = prompt
    ui.run_button.click()
    return ui.wait(timeout=15)


def test_options_come_from_models_with_prices(emu):
    ui = FusionWidget(preset="budget")
    panel, judge = labels(ui.panel), labels(ui.judge)
    assert panel["openai/gpt-4o"] == "openai/gpt-4o  $2.50/$10.00 per 1M"
    assert panel["deepseek/deepseek-chat"] == "deepseek/deepseek-chat  $0.30/$0.85 per 1M"
    assert judge == panel
    # Preset models the endpoint does not list stay selectable, honestly priced.
    assert panel["~anthropic/claude-opus-latest"] == "~anthropic/claude-opus-latest  price unknown"
    assert "5 models from" in ui.models_note.value


def test_unreachable_models_fall_back_to_the_presets(monkeypatch):
    # FUSION_BASE_URL points at a closed port (conftest): /models cannot be reached.
    ui = FusionWidget(preset="budget")
    assert set(BUDGET) <= set(labels(ui.panel))
    assert all(label.endswith("price unknown") for label in labels(ui.panel).values())
    assert "model list unavailable" in ui.models_note.value
    assert ui.estimate_text.startswith("Estimated cost: unknown")


def test_preset_toggle_selects_its_panel_and_judge(emu):
    ui = FusionWidget(preset="budget")
    assert list(ui.panel.value) == BUDGET and ui.judge.value == BUDGET_JUDGE
    ui.preset.value = "quality"
    assert list(ui.panel.value) == [m.model for m in PRESETS["quality"].panel]
    assert ui.judge.value == PRESETS["quality"].judge.model
    ui.preset.value = "budget"
    assert list(ui.panel.value) == BUDGET


def test_estimate_follows_prompt_panel_and_judge(emu):
    ui = FusionWidget(preset="budget")
    ui.prompt.value = "short"
    short = dollars(ui.estimate_label)
    ui.prompt.value = "a much longer question " * 400
    long = dollars(ui.estimate_label)
    assert long > short > 0
    ui.panel.value = BUDGET[:1]
    assert dollars(ui.estimate_label) < long
    ui.judge.value = "openai/gpt-4o"
    assert "unknown" not in ui.estimate_label.value
    ui.preset.value = "quality"  # none of these models is listed by the endpoint
    assert ui.estimate_text.startswith("Estimated cost: unknown")


def test_run_shows_answer_sections_status_and_sets_defaults(emu):
    for i, model in enumerate(BUDGET):
        emu.script(model, f"Member {i} says: use **Postgres** number {i}.")
    ui = FusionWidget(preset="budget", timeout=30)
    result = run(ui)
    assert result is ui.result and result.status == "ok"
    assert "Synthesis by" in ui.answer.value
    analysis, answers, judge = members_and_judge(ui)
    assert len(answers) == len(BUDGET) and len(analysis) == 5
    assert judge[0].get_title(0).startswith(f"judge · {BUDGET_JUDGE}")
    for i, (section, model) in enumerate(zip(answers, BUDGET, strict=True)):
        assert section.get_title(0).startswith(model)
        assert f"Member {i} says: use <strong>Postgres</strong> number {i}." in section.children[0].value
    assert [s.get_title(0).split(" (")[0] for s in analysis] == [
        "Consensus",
        "Contradictions",
        "Partial coverage",
        "Unique insights",
        "Blind spots",
    ]
    assert "Only" in analysis[3].children[0].value  # the emulator's unique insight
    # Final status: one row per member, then the judge, all done.
    status = ui.status.value
    assert status.count(">done in ") == len(BUDGET) + 1 and f"judge: {BUDGET_JUDGE}" in status
    # Token counts are the provider's once a call is done, not the number of streamed chunks.
    for r in [*result.responses, result.judge]:
        assert f"{r.completion_tokens:,} tokens" in status
    assert "streaming" not in status
    assert not ui.run_button.disabled and ui.run_button.description == "Run" and ui.error_label.value == ""
    assert len(emu.chats()) == len(BUDGET) + 1
    assert session.defaults() == {"preset": "budget", "timeout": 30.0}


def test_a_custom_panel_and_judge_become_the_session_defaults(emu):
    ui = FusionWidget(preset="budget")
    ui.panel.value = ("openai/gpt-4o", "deepseek/deepseek-chat")
    ui.judge.value = "openai/gpt-4o"
    ui.timeout.value = 45
    result = run(ui)
    assert [r.model for r in result.responses] == ["openai/gpt-4o", "deepseek/deepseek-chat"]
    assert session.defaults() == {
        "preset": "budget",
        "panel": "openai/gpt-4o,deepseek/deepseek-chat",
        "judge": "openai/gpt-4o",
        "timeout": 45.0,
    }


def test_run_does_not_block_and_shows_live_status(emu):
    emu.script(BUDGET[0], Reply(content="slow answer", latency=1.5))
    ui = FusionWidget(preset="budget")
    ui.prompt.value = "Hello?"
    started = time.perf_counter()
    ui.run_button.click()
    assert time.perf_counter() - started < 0.5  # the click returned while the panel works
    assert ui.run_button.disabled and not ui.stop_button.disabled
    deadline = time.monotonic() + 5
    while ui.status.value.count(">done in ") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ui.future.done()
    assert ui.status.value.count(">done in ") == 2 and ">waiting " in ui.status.value
    assert ui.wait(timeout=15).status == "ok"
    assert not ui.run_button.disabled and ui.stop_button.disabled


def test_hostile_model_text_never_reaches_a_widget_as_markup(emu):
    emu.script(BUDGET[1], HOSTILE)
    ui = FusionWidget(preset="budget")
    result = run(ui, prompt=f"Explain {HOSTILE}")  # the other members echo the prompt back
    assert result.status == "ok"
    values = "\n".join(html_values(ui))
    for bad in ("<script", "<img", "onerror=", "javascript:"):
        assert bad not in values.lower()
    member = members_and_judge(ui)[1][1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in member.children[0].value  # shown, inert


def test_empty_prompt_shows_one_red_line_and_sends_nothing(emu):
    ui = FusionWidget(preset="budget")
    ui.prompt.value = "   \n"
    ui.run_button.click()
    assert ui.future is None and ui.wait() is None
    assert "empty prompt" in ui.error_label.value and "color:#c62828" in ui.error_label.value
    assert ui.error_label.value.count("<br") == 0 and "Traceback" not in ui.error_label.value
    ui.prompt.value = "A real question"
    ui.panel.value = ()
    ui.run_button.click()
    assert "the panel is empty" in ui.error_label.value
    assert emu.chats() == [] and session.defaults() == {}


def test_an_error_during_the_run_shows_in_the_status_line(emu):
    ui = FusionWidget(preset="budget", max_cost=1e-9)
    assert run(ui) is None and ui.result is None
    assert "exceeds --max-cost" in ui.error_label.value
    assert emu.chats() == [] and not ui.run_button.disabled


def test_sections_collapse_independently(emu):
    ui = FusionWidget(preset="budget")
    run(ui)
    analysis, members, judge = members_and_judge(ui)
    assert all(isinstance(s, widgets.Accordion) and len(s.children) == 1 for s in ui.sections.children)
    # Like the cell's result: analysis sections with items open, empty ones and the answers closed.
    assert [s.selected_index for s in analysis] == [0 if "(0)" not in s.get_title(0) else None for s in analysis]
    first, second, *rest = members + judge
    assert all(s.selected_index is None for s in members + judge)
    first.selected_index = 0
    second.selected_index = 0
    assert first.selected_index == 0 and second.selected_index == 0  # two open at once
    first.selected_index = None
    assert second.selected_index == 0 and all(s.selected_index is None for s in rest)


def test_stop_keeps_the_answers_that_arrived(emu):
    emu.script(BUDGET[2], Reply(hang=True))
    ui = FusionWidget(preset="budget")
    ui.prompt.value = "Hello?"
    ui.run_button.click()
    deadline = time.monotonic() + 5
    while ui.status.value.count(">done in ") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    ui.stop_button.click()
    result = ui.wait(timeout=5)
    assert result is not None and result.interrupted
    assert (result.status, result.failure_reason) == ("interrupted", "cancelled")  # as the magic shows it
    assert [r.status for r in result.responses] == ["ok", "ok", "cancelled"]
    assert "Interrupted" in ui.answer.value and "no answer" not in ui.answer.value
    assert "stopped" in ui.error_label.value and not ui.run_button.disabled
    assert len(ui.sections.children) == len(BUDGET)  # answers shown, no analysis without a judge


def test_the_api_key_never_shows(emu):
    key = "sk-or-v1-widget-secret-0123456789"
    ui = FusionWidget(preset="budget", api_key=key)
    run(ui)
    assert key not in repr(ui) and key not in "\n".join(html_values(ui))
    assert all(key not in str(v) for v in session.defaults().values())


def test_a_starting_panel_and_judge_can_be_given(emu):
    ui = FusionWidget(preset="budget", panel="openai/gpt-4o,x/unlisted", judge="openai/gpt-4o")
    assert ui.panel.value == ("openai/gpt-4o", "x/unlisted") and ui.judge.value == "openai/gpt-4o"
    assert labels(ui.panel)["x/unlisted"] == "x/unlisted  price unknown"
    assert "plus unknown for x/unlisted" in ui.estimate_label.value
    ui = FusionWidget(preset="budget", judge="x/unlisted")
    assert list(ui.panel.value) == BUDGET and ui.judge.value == "x/unlisted"


def test_stop_marks_the_judge_cancelled_not_waiting(emu):
    emu.script(BUDGET[2], Reply(hang=True))
    ui = FusionWidget(preset="budget")
    ui.prompt.value = "Hello?"
    ui.run_button.click()
    deadline = time.monotonic() + 5
    while ui.status.value.count(">done in ") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    ui.stop_button.click()
    ui.wait(timeout=5)
    judge_state = ui.tracker.snapshot()[-1]
    assert judge_state.state == "cancelled"
    assert "waiting" not in ui.status.value and ui.status.value.count("cancelled: interrupted") == 2


def test_live_token_counts_estimate_the_text_not_the_chunks(emu):
    text = "word " * 400  # 2000 characters, streamed in many small chunks
    emu.script(BUDGET[0], Reply(content=text, tokens_per_s=400))
    ui = FusionWidget(preset="budget")
    ui.prompt.value = "Count?"
    ui.run_button.click()
    seen = []
    deadline = time.monotonic() + 10
    while not ui.future.done() and time.monotonic() < deadline:
        state = ui.tracker.snapshot()[0]
        if state.state == "streaming" and state.chunks > 20:
            seen.append((state.chunks, state.token_count, state.chars))
        time.sleep(0.02)
    ui.wait(timeout=15)
    assert seen, "the member was seen streaming"
    chunks, tokens, chars = seen[-1]
    assert tokens == -(-chars // 4)  # about four characters per token, from the text itself
    final = ui.tracker.snapshot()[0]
    assert final.token_count == ui.result.responses[0].completion_tokens  # the provider's count at the end
    assert abs(final.token_count - -(-len(text) // 4)) <= 0.2 * final.token_count  # no big jump at the end


def test_a_preset_s_members_sit_on_top_of_the_panel_list(emu):
    ui = FusionWidget(preset="budget")
    values = [v for _, v in ui.panel.options]
    assert values[: len(BUDGET)] == BUDGET and values[len(BUDGET)] == BUDGET_JUDGE
    ui.preset.value = "quality"
    quality = [m.model for m in PRESETS["quality"].panel]
    values = [v for _, v in ui.panel.options]
    assert values[: len(quality)] == quality and list(ui.panel.value) == quality
    assert sorted(values) == sorted(set(values))  # nothing listed twice


def test_dollar_amounts_are_kept_from_mathjax(emu):
    ui = FusionWidget(preset="budget")
    assert ui.estimate_label.value.count("$") >= 2  # "about $0.0061 ($0.0017 to $0.0178)"
    assert isinstance(ui.estimate_label, widgets.HTML)  # a Label would be typeset
    assert 'class="tex2jax_ignore mathjax_ignore"' in ui.estimate_label.value
    run(ui)
    for section in ui.sections.children:
        assert "mathjax_ignore" in section.children[0].value
    assert "mathjax_ignore" in ui.status.value and "mathjax_ignore" in ui.answer.value


def test_the_text_form_of_the_widget_does_not_pretend_to_be_a_result(emu):
    ui = FusionWidget(preset="budget")
    text = ui._repr_mimebundle_()["text/plain"]
    assert text.startswith("FusionWidget: interactive controls") and "Textarea" not in text


def test_the_widget_marks_unverified_attributions(emu):
    emu.script(BUDGET_JUDGE, Reply(misattribute=True))
    ui = FusionWidget(preset="budget")
    result = run(ui)
    assert result.analysis.unverified == 2
    sections = members_and_judge(ui)[0]
    titles = [s.get_title(0) for s in sections]
    assert titles[1] == "Contradictions (1) · ⚠ 1 unverified" and titles[3] == "Unique insights (1) · ⚠ 1 unverified"
    body = "\n".join(html_values(sections[1]))
    assert "⚠ unverified" in body and f"quote from {BUDGET[1]}" in body
    assert "3/3" in "\n".join(html_values(sections[0]))  # consensus support
