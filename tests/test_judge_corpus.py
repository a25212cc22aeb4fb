"""Judge-reply corpus: every shape a real judge answers in, each asserting what is kept.

Each reply is served by the emulator as the judge's answer over real HTTP; the deliberation must
keep exactly the readable items (A, B, C are the labels of a/alpha, b/beta, c/gamma) with one
judge call. Shapes come from OpenRouter Fusion's tool result, OpenAI/Anthropic/Ollama/vLLM
structured output (honoured or not), reasoning models and the tiny local model.
"""

from __future__ import annotations

import json

import pytest
from helpers import JUDGE, PANEL

from fusion_magic import Fusion
from fusion_magic.emulator import Emulator

FULL = {
    "answer": "Start simple, then measure.",
    "consensus": ["Every member favours an incremental approach."],
    "contradictions": [
        {
            "topic": "Where to start",
            "stances": [
                {"model": "A", "stance": "Start from the simplest option."},
                {"model": "B", "stance": "Weigh the trade-offs first."},
            ],
        }
    ],
    "partial_coverage": [{"models": ["A", "B"], "point": "Measure before optimising."}],
    "unique_insights": [{"model": "C", "insight": "Check the edge cases first."}],
    "blind_spots": ["Nobody says how to tell whether it worked."],
}
ANALYSIS = {k: v for k, v in FULL.items() if k != "answer"}
ALL = {
    "answer": True,
    "consensus": 1,
    "contradictions": 1,
    "partial_coverage": 1,
    "unique_insights": 1,
    "blind_spots": 1,
}
NO_ANSWER = {**ALL, "answer": False}


def dumps(obj) -> str:
    return json.dumps(obj, indent=1)


def only(**counts) -> dict:
    return {
        "answer": False,
        "consensus": 0,
        "contradictions": 0,
        "partial_coverage": 0,
        "unique_insights": 0,
        "blind_spots": 0,
        **counts,
    }


CORPUS: list[tuple[str, str, dict]] = [
    ("our schema", dumps(FULL), ALL),
    ("fusion shape, no answer", dumps(ANALYSIS), NO_ANSWER),
    ("nested analysis plus answer", dumps({"answer": FULL["answer"], "analysis": ANALYSIS}), ALL),
    ("nested analysis only", dumps({"analysis": ANALYSIS}), NO_ANSWER),
    (
        "fusion tool result",
        dumps({"status": "ok", "analysis": ANALYSIS, "responses": [{"model": "a/alpha", "content": "..."}]}),
        NO_ANSWER,
    ),
    ("json code fence", f"```json\n{dumps(FULL)}\n```", ALL),
    ("bare code fence", f"```\n{dumps(FULL)}\n```", ALL),
    ("prose around the JSON", f"Sure! Here is the analysis {{as asked}}:\n{dumps(FULL)}\nLet me know.", ALL),
    ("JSON then chatter with a brace", dumps(FULL) + "\n\nNote: the schema {answer, ...} was followed.", ALL),
    ("strings contain a code fence", dumps({**FULL, "answer": "Run:\n```python\nprint('hi')\n```\nDone."}), ALL),
    (
        "camelCase keys",
        dumps(
            {
                "answer": FULL["answer"],
                "partialCoverage": FULL["partial_coverage"],
                "uniqueInsights": FULL["unique_insights"],
                "blindSpots": FULL["blind_spots"],
                "consensus": FULL["consensus"],
                "contradictions": FULL["contradictions"],
            }
        ),
        ALL,
    ),
    (
        "Title Case keys with spaces",
        dumps(
            {
                "Answer": FULL["answer"],
                "Consensus": FULL["consensus"],
                "Blind Spots": FULL["blind_spots"],
                "Unique Insights": FULL["unique_insights"],
            }
        ),
        only(answer=True, consensus=1, blind_spots=1, unique_insights=1),
    ),
    ("UPPER_CASE keys", dumps({k.upper(): v for k, v in FULL.items()}), ALL),
    (
        "null sections",
        dumps({**FULL, "contradictions": None, "partial_coverage": None}),
        {**ALL, "contradictions": 0, "partial_coverage": 0},
    ),
    (
        "missing sections",
        dumps({"consensus": FULL["consensus"], "blind_spots": FULL["blind_spots"]}),
        only(consensus=1, blind_spots=1),
    ),
    (
        "stances as a label mapping",
        dumps(
            {
                "contradictions": [
                    {
                        "topic": "Where to start",
                        "stances": {"A": "Start from the simplest option.", "B": "Weigh the trade-offs first."},
                    }
                ]
            }
        ),
        only(contradictions=1),
    ),
    (
        "models as a comma string",
        dumps({"partial_coverage": [{"models": "A, B", "point": "Measure first."}]}),
        only(partial_coverage=1),
    ),
    (
        "models as 'A and C'",
        dumps({"partial_coverage": [{"models": "A and C", "point": "Measure first."}]}),
        only(partial_coverage=1),
    ),
    (
        "consensus items as objects",
        dumps({"consensus": [{"point": "All favour small steps."}, {"claim": "All mention measuring."}]}),
        only(consensus=2),
    ),
    ("blind spots as objects", dumps({"blind_spots": [{"text": "Nobody mentions cost."}]}), only(blind_spots=1)),
    (
        "unique insights as a mapping",
        dumps({"unique_insights": {"A": "Only A talks about cost.", "C": ["Edge cases first.", "Logs matter."]}}),
        only(unique_insights=3),
    ),
    (
        "label variants",
        dumps(
            {
                "unique_insights": [
                    {"model": "member A", "insight": "Point one is real."},
                    {"model": "[B]", "insight": "Point two is real."},
                    {"model": "Answer C", "insight": "Point three is real."},
                    {"model": "Model A", "insight": "Point four."},
                ]
            }
        ),
        only(unique_insights=4),
    ),
    (
        "model ids instead of labels",
        dumps(
            {
                "unique_insights": [{"model": "c/gamma", "insight": "Edge cases."}],
                "partial_coverage": [{"models": ["a/alpha", "b/beta"], "point": "Both."}],
            }
        ),
        only(unique_insights=1, partial_coverage=1),
    ),
    ("trailing commas", dumps(FULL).replace('"\n', '",\n').replace("]\n", "],\n").replace("}\n", "},\n"), ALL),
    ("single quotes", str(FULL), ALL),
    (
        "unquoted keys",
        '{answer: "Start simple.", consensus: ["All favour small steps."], blind_spots: []}',
        only(answer=True, consensus=1),
    ),
    ("cut off at max_tokens", dumps(FULL)[: dumps(FULL).index('"blind_spots"') + 30], {**ALL, "blind_spots": 1}),
    ("reasoning model think block", "<think>\nLet me weigh {A} against {B}.\n</think>\n" + dumps(FULL), ALL),
    ("tool-call arguments string", dumps({"name": "fusion_verdict", "arguments": json.dumps(FULL)}), ALL),
    ("top-level list", dumps([FULL]), ALL),
    (
        "sections as bullet text",
        dumps(
            {"consensus": "- All favour small steps.\n- All mention measuring.", "blind_spots": "Nobody mentions cost."}
        ),
        only(consensus=2, blind_spots=1),
    ),
    (
        "tiny local model junk",
        dumps(
            {
                "answer": "A",
                "consensus": ["A", "][{", "2024-05-01T10:00:00Z", "12", "null", "Paris is the capital of France."],
                "unique_insights": [{"model": "B", "insight": "B"}],
            }
        ),
        only(consensus=1),
    ),
    ("repeated items", dumps({"consensus": ["Small steps work."] * 4 + ["small steps  work."]}), only(consensus=1)),
    (
        "alias keys",
        dumps(
            {
                "final_answer": "Start simple.",
                "agreements": ["All favour small steps."],
                "disagreements": FULL["contradictions"],
                "gaps": ["Nobody mentions cost."],
            }
        ),
        only(answer=True, consensus=1, contradictions=1, blind_spots=1),
    ),
    ("verdict wrapper", dumps({"verdict": FULL}), ALL),
    (
        "stances as 'A: text' strings",
        dumps(
            {
                "contradictions": [
                    {
                        "topic": "Where to start",
                        "positions": ["A: Start from the simplest option.", "B: Weigh the trade-offs first."],
                    }
                ]
            }
        ),
        only(contradictions=1),
    ),
    (
        "line comments",
        '{\n  // the synthesis\n  "answer": "Start simple.",\n  "consensus": ["All agree."]\n}',
        only(answer=True, consensus=1),
    ),
    (
        "unique insight with member/point keys",
        dumps({"unique_insights": [{"member": "B", "point": "Cost matters."}]}),
        only(unique_insights=1),
    ),
    (
        "partial coverage as a point mapping",
        dumps({"partial_coverage": {"Measure first.": ["A", "C"]}}),
        only(partial_coverage=1),
    ),
    (
        "insight as 'Member C notes ...' text",
        dumps({"unique_insights": ["Member C notes the edge cases."]}),
        only(unique_insights=1),
    ),
]


@pytest.fixture(scope="module")
def emu():
    with Emulator() as server:
        yield server


def kept(result) -> dict:
    a = result.analysis
    return {"answer": bool(result.answer.strip()), **{s: len(getattr(a, s)) for s in a.SECTIONS}}


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 30
    assert len({name for name, _, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("name", "reply", "expected"), CORPUS, ids=[c[0] for c in CORPUS])
def test_every_readable_section_is_kept(emu, name, reply, expected):
    emu.script(JUDGE, reply)
    since = len(emu.requests)
    result = Fusion(panel=PANEL, judge=JUDGE, base_url=emu.base_url, cache=False).run(f"corpus: {name}")
    assert result.status == "ok", (result.error, result.notes)
    assert kept(result) == expected, result.analysis
    assert len(emu.chats(JUDGE, since=since)) == 1  # salvaged, never re-asked
    named = {s.model for c in result.analysis.contradictions for s in c.stances}
    named |= {m for p in result.analysis.partial_coverage for m in p.models}
    named |= {u.model for u in result.analysis.unique_insights}
    assert named <= set(PANEL)
    if not expected["answer"] and any(v for k, v in expected.items() if k != "answer"):
        assert "the judge gave an analysis but no synthesized answer" in result.notes


def test_junk_is_counted_not_shown(emu):
    emu.script(JUDGE, next(reply for name, reply, _ in CORPUS if name == "tiny local model junk"))
    result = Fusion(panel=PANEL, judge=JUDGE, base_url=emu.base_url, cache=False).run("junk")
    assert result.analysis.consensus == ["Paris is the capital of France."]
    assert any(n.startswith("dropped 7 degenerate") for n in result.notes), result.notes
    assert "][{" not in json.dumps(result.to_dict()["analysis"])


def test_labels_in_text_become_member_names(emu):
    emu.script(
        JUDGE,
        dumps({"answer": "As member B says, start small.", "consensus": ["Member A and [C] agree on small steps."]}),
    )
    result = Fusion(panel=PANEL, judge=JUDGE, base_url=emu.base_url, cache=False).run("labels")
    a, b, c = result.judge_order  # label A is the first answer the judge read (a seeded shuffle), B the second
    assert sorted(result.judge_order) == sorted(PANEL)
    assert result.answer == f"As {b} says, start small."
    assert result.analysis.consensus == [f"{a} and {c} agree on small steps."]


def test_nothing_usable_is_reasked_once_then_judge_failed_with_the_code(emu):
    emu.script(JUDGE, "I would rather not answer in JSON today.")
    since = len(emu.requests)
    result = Fusion(panel=PANEL, judge=JUDGE, base_url=emu.base_url, cache=False).run("prose")
    assert result.status == "judge_failed" and result.failure_reason == "judge_not_valid_json"
    assert len(emu.chats(JUDGE, since=since)) == 2
    assert result.judge_raw == "I would rather not answer in JSON today."
    emu.script(JUDGE, dumps({"status": "ok", "verdict": "fine"}))
    result = Fusion(panel=PANEL, judge=JUDGE, base_url=emu.base_url, cache=False).run("wrong json")
    assert result.status == "judge_failed" and result.failure_reason == "judge_schema_mismatch"
    assert all(r.ok for r in result.responses)  # the panel answers are kept
