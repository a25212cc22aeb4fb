"""The analysis sections are one table (`fusion_magic._values.sections`).

A sixth section is added by one row of that table (its prompt text is part of the row) and by
nothing else; it is then asked for in the judge's prompt and schema, read from the judge's reply
over the emulator, kept by `to_dict`/`to_frame`, a `map` frame and a jury's merge, and shown in
HTML, Markdown, plain text, a judge diff and the widget. The row is registered in a child process,
before the rest of fusion_magic is imported, so it is undone when that process ends and no other
test sees it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from fusion_magic._judge.prompt import INSTRUCTIONS, response_format
from fusion_magic._values import sections
from fusion_magic._values.result import Analysis

ADD_ROW = """
import fusion_magic._values.sections as sections

sections.SECTIONS += (sections.Section(
    "assumptions", "Assumptions", "text", "what the answers take for granted",
    "what the answers take for granted without saying so"),)
"""

# Everything below runs after the row is registered, with the rest of fusion_magic imported fresh.
CHECK = """
import json, os, re, sys

from fusion_magic import Fusion, compare_analyses
from fusion_magic.emulator import Emulator
from fusion_magic._fronts.widget import FusionWidget

out = {}
with Emulator() as emu:
    os.environ["FUSION_BASE_URL"] = emu.base_url
    result = Fusion(panel=["a/alpha", "b/beta", "c/gamma"], judge="j/judge").run("Which database?")
    request = emu.chats("j/judge")[-1]
    system = request.body["messages"][0]["content"]
    out["prompt_line"] = [line for line in system.splitlines() if line.startswith('- "assumptions"')]
    schema = request.body["response_format"]["json_schema"]["schema"]
    out["schema"] = schema["properties"].get("assumptions")
    out["required"] = "assumptions" in schema["required"]
    out["reply"] = json.loads(result.judge.content).get("assumptions")
    out["status"] = result.status
    out["parsed"] = result.analysis.assumptions
    out["dict"] = result.to_dict()["analysis"].get("assumptions")
    frame = result.analysis.to_frame()
    out["frame"] = frame[frame.section == "assumptions"][["section", "text"]].to_dict("records")
    frame = Fusion(panel=["a/alpha", "b/beta"], judge="j/judge").map(["Which cache?"])
    out["batch"] = list(frame["assumptions"][0])
    jury = Fusion(panel=["a/alpha", "b/beta", "c/gamma"], judge=None, judges=["j/one", "j/two"])
    out["jury"] = jury.run("Which queue?").analysis.assumptions
    out["html"] = result._repr_html_()
    out["markdown"] = result._repr_markdown_()
    out["text"] = repr(result)
    out["diff"] = compare_analyses(result, result)._repr_markdown_()
    ui = FusionWidget(panel=["a/alpha", "b/beta", "c/gamma"], judge="j/judge", timeout=30)
    ui.prompt.value = "Which database?"
    ui.run_button.click()
    ui.wait(timeout=30)
    titles = [s.get_title(0) for s in ui.sections.children]
    body = [s.children[0].value for s in ui.sections.children if s.get_title(0).startswith("Assumptions")]
    out["widget"] = {"titles": titles, "body": body}
json.dump(out, sys.stdout)
"""


@pytest.fixture
def with_sixth_section(tmp_path):
    "Run CHECK in a child process whose section table has one more row; its findings as a dict."
    env = {**os.environ, "FUSION_CACHE_DIR": str(tmp_path / "cache")}
    script = ADD_ROW + textwrap.dedent(CHECK)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_table_names_the_five_sections_in_order():
    assert (
        [s.name for s in sections.SECTIONS]
        == list(Analysis.SECTIONS)
        == ["consensus", "contradictions", "partial_coverage", "unique_insights", "blind_spots"]
    )
    assert sections.titles()["partial_coverage"] == "Partial coverage"
    props = response_format(["A", "B"])["json_schema"]["schema"]["properties"]
    assert list(props) == ["answer", *Analysis.SECTIONS]
    for s in sections.SECTIONS:
        assert f'- "{s.name}": {s.prompt}' in INSTRUCTIONS.replace("{{", "{").replace("}}", "}")


def test_a_sixth_section_is_one_row_of_the_table(with_sixth_section):
    found = with_sixth_section
    # Asked for: the judge's prompt has its line, the JSON schema its list of text.
    assert found["prompt_line"] == ['- "assumptions": what the answers take for granted without saying so.']
    assert found["schema"] == {
        "description": "what the answers take for granted",
        "items": {"type": "string"},
        "title": "Assumptions",
        "type": "array",
    }
    assert found["required"]
    # Answered by the emulator's judge, read back and kept in the value and its exports.
    assert found["status"] == "ok"
    assert found["reply"] == ["One point for assumptions: what the answers take for granted without saying so."]
    assert found["parsed"] == found["reply"] == found["dict"]
    assert found["frame"] == [{"section": "assumptions", "text": found["reply"][0]}]
    assert found["batch"] == found["reply"]  # a `map` frame has its column
    assert found["jury"] == found["reply"]  # two judges' points, merged into one
    # Shown after the five others, in every view that lists sections.
    point = found["reply"][0]
    html = found["html"]
    assert 'fm-sec-assumptions" open><summary>Assumptions<span class="fm-count">1</span>' in html
    assert html.index("fm-sec-blind_spots") < html.index("fm-sec-assumptions")
    assert f"<li>{point}</li>" in html
    md = found["markdown"]
    assert f"**Assumptions** (1)\n\n- {point}\n" in md
    assert md.index("**Blind spots**") < md.index("**Assumptions**") < md.index("### Panel answers")
    text = found["text"].splitlines()
    assert text[0].startswith("FusionResult(status='ok'")
    assert text[text.index("  Assumptions (1):") + 1] == f"    - {point}"
    assert text.index("  Assumptions (1):") > max(i for i, line in enumerate(text) if line.startswith("  Blind spots"))
    assert f"**Assumptions**\n\n- *both*: {point}\n" in found["diff"]  # a judge diff lists it too
    titles = found["widget"]["titles"]
    assert [t.split(" (")[0] for t in titles[:6]] == [
        "Consensus",
        "Contradictions",
        "Partial coverage",
        "Unique insights",
        "Blind spots",
        "Assumptions",
    ]
    assert titles[5] == "Assumptions (1)"
    assert point in found["widget"]["body"][0]


def test_the_row_is_gone_outside_the_child(with_sixth_section):
    assert with_sixth_section["parsed"]
    assert "assumptions" not in Analysis.SECTIONS and "assumptions" not in Analysis.model_fields
    assert "assumptions" not in INSTRUCTIONS
