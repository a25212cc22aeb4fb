"""Reading members' cross-examination marks and round turns in shapes models really write.

Shapes modelled on provider docs: OpenAI structured outputs return the object as the message
content (https://platform.openai.com/docs/guides/structured-outputs); DeepSeek-R1 style models put
a ``<think>`` block before it (https://api-docs.deepseek.com/guides/reasoning_model); json_object
mode guarantees JSON but not our keys; prompt-only servers add prose and code fences.
"""

from __future__ import annotations

import pytest

from fusion_magic._cross_exam import read_marks
from fusion_magic._rounds import read_turn

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
