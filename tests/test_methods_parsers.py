"""Reading members' cross-examination marks and round turns in shapes models really write.

Shapes modelled on provider docs: OpenAI structured outputs return the object as the message
content (https://platform.openai.com/docs/guides/structured-outputs); DeepSeek-R1 style models put
a ``<think>`` block before it (https://api-docs.deepseek.com/guides/reasoning_model); json_object
mode guarantees JSON but not our keys; prompt-only servers add prose and code fences.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import panel_fusion

from fusion_magic._engine.cross_exam import read_marks
from fusion_magic._engine.rounds import read_turn
from fusion_magic.emulator import Reply

IDS = ["1", "2", "3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"marks":[{"id":"1","mark":"agree","quote":"start small"},{"id":"2","mark":"disagree","quote":"no"}]}',
            {"1": ("agree", "start small"), "2": ("disagree", "no")},
        ),
        (
            '<think>Let me check each statement.</think>\n{"marks": [{"id": 3, "mark": "N/A", "quote": ""}]}',
            {"3": ("not addressed", "")},
        ),
        ('Sure!\n```json\n{"marks": [{"id": "#1", "mark": "Agrees", "quote": "x"},]}\n```', {"1": ("agree", "x")}),
        (
            '{"1": "agree", "2": {"mark": "not_addressed"}, "9": "agree"}',
            {"1": ("agree", ""), "2": ("not addressed", "")},
        ),
        ('{"marks": [{"id": "1", "verdict": "Disagree."}]}', {"1": ("disagree", "")}),
        ('{"marks": [{"id": "1", "mark": "perhaps"}], "note": "unsure"}', None),  # no known mark word
        ('{"marks": "agree with everything"}', None),
        ("I agree with all of them.", None),
        ("", None),
    ],
)
def test_read_marks(text, expected):
    assert read_marks(text, IDS) == expected


def test_a_statement_marked_twice_keeps_the_first_mark():
    text = '{"marks": [{"id": "1", "mark": "agree"}, {"id": "1", "mark": "disagree"}]}'
    assert read_marks(text, IDS) == {"1": ("agree", "")}


@pytest.mark.parametrize(
    ("text", "decision"),
    [
        ('{"decision": "concede", "reason": "B is right about scale.", "position": "Use B."}', "concede"),
        ('<think>hmm</think>```json\n{"decision": "Rebut", "reason": "A benchmark.", "position": "A."}\n```', "rebut"),
        ('{"action": "maintain my position", "reason": "new data"}', "rebut"),
        ('{"decision": "Conceded.", "reason": ""}', "concede"),
        ('{"decision": "maybe"}', None),
        ("I concede.", None),
    ],
)
def test_read_turn(text, decision):
    turn = read_turn(text)
    assert (turn or {}).get("decision") == decision


FIXTURES = Path(__file__).parent / "fixtures" / "methods"


@pytest.mark.parametrize(
    ("name", "stream"), [("openai_stream_json_schema.sse", True), ("openai_chat_json_schema.json", False)]
)
def test_a_recorded_structured_answer_that_is_not_marks_is_no_marks(emulator, name, stream):
    recorded = (FIXTURES / name).read_bytes()
    content = "text/event-stream" if stream else "application/json"
    emulator.script("a/alpha", Reply(), Reply(raw=recorded, raw_content_type=content))  # then the same again
    result = panel_fusion(panel=["a/alpha", "b/beta"], stream=stream).run("Which book?")
    sent = len(emulator.requests)
    examined = result.cross_examine()
    asked = emulator.chats("a/alpha", since=sent)
    assert len(asked) == 2  # the recorded object has no marks: asked once more, then given up
    assert "JSON object only" in asked[1].body["messages"][-1]["content"]
    assert all(m["mark"] is None for m in examined.marks if m["member"] == "a/alpha")
    assert any("no readable marks from a/alpha" in n for n in examined.notes)
    if not stream:  # the recorded content itself, read directly
        assert read_marks(json.loads(recorded)["choices"][0]["message"]["content"], IDS) is None
