"""Work done once: a fully cached re-run reads each judge reply once, reuses the judge's schema
for the same panel shape, and normalises no answer or quote it has normalised before."""

from __future__ import annotations

import random
import string

from helpers import panel_fusion

from fusion_magic._engine import judge_seat
from fusion_magic._judge import evidence
from fusion_magic._judge.prompt import response_format


def _one_character_at_a_time(text: str) -> tuple[str, list[int]]:
    "The specification of `evidence.normalise`, written the slow, obvious way."
    out: list[str] = []
    where: list[int] = []
    space = True
    for i, ch in enumerate(text):
        folded = ch.translate(evidence._FOLD)
        if not folded:
            continue
        if folded.isspace():
            if not space:
                out.append(" ")
                where.append(i)
            space = True
            continue
        for c in folded.casefold():
            out.append(c)
            where.append(i)
        space = False
    if out and out[-1] == " ":
        out.pop()
        where.pop()
    return "".join(out), where


def test_normalise_a_word_at_a_time_matches_the_character_by_character_reading():
    # Typographic quotes and dashes, emphasis marks, no-break and other Unicode spaces, characters
    # that fold to two ("ß", "ﬁ", "İ"), final sigma, zero-width space (not a space).
    alphabet = (
        string.ascii_letters + " \t\n*_`.,'\"-" + "\u2018\u2019\u201c\u201d\u2013\u2014\u00a0ßİﬁΣς\u2003\x1c\u200b"
    )
    rng = random.Random(22)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert evidence.normalise(text) == _one_character_at_a_time(text), repr(text)
    assert evidence.normalise("  **Straße**  is_fine ") == (
        "strasse isfine",
        [4, 5, 6, 7, 8, 8, 9, 12, 14, 15, 17, 18, 19, 20],
    )


def test_the_judge_schema_is_built_once_per_panel_shape():
    three = response_format(["A", "B", "C"])["json_schema"]["schema"]
    assert response_format(["A", "B", "C"])["json_schema"]["schema"] is three  # no copy per run
    two = response_format(["A", "B"])["json_schema"]["schema"]
    assert two is not three
    assert _enums(three) == {"A", "B", "C"} and _enums(two) == {"A", "B"}  # each shape names its own members
    assert two["$defs"]["Quote"]["properties"]["model"]["enum"] == ["A", "B"]


def _enums(node: object) -> set[str]:
    "Every value an `enum` in the schema allows."
    if isinstance(node, dict):
        own = set(node["enum"]) if isinstance(node.get("enum"), list) else set()
        return own.union(*(_enums(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_enums(v) for v in node))
    return set()


def test_a_cached_rerun_reads_each_judge_reply_once_and_normalises_nothing_again(emulator, monkeypatch):
    prompt = "Which queue should a small team run, and why?"
    first = panel_fusion().run(prompt)
    assert first.status == "ok" and first.analysis.rows()

    reads: list[str] = []
    real_salvage = judge_seat.salvage
    monkeypatch.setattr(judge_seat, "salvage", lambda text, *a, **k: reads.append(text) or real_salvage(text, *a, **k))
    normalised: list[str] = []
    real_normalise = evidence.normalise
    monkeypatch.setattr(evidence, "normalise", lambda text: normalised.append(text) or real_normalise(text))

    again = panel_fusion().run(prompt)
    assert again.cache_hits == 4 and again.cost_usd == 0
    assert len(reads) == 1  # the cache's usability check read it; the seat took that reading
    assert normalised == []  # every answer and quote was normalised on the first run
    assert again.analysis.model_dump() == first.analysis.model_dump()  # and the verdict is the same


def test_normalised_answers_are_kept_compactly():
    text, where = evidence._normalised_answer("Some *answer* text")
    assert text == "some answer text" and where.itemsize == 4 and list(where)[:2] == [0, 1]


def test_a_responses_dict_is_asdicts_without_the_deep_copy():
    import dataclasses

    from fusion_magic._values.result import Response, ToolCall

    call = ToolCall(name="sql", arguments='{"query": "select 1"}', output="1", error=None, elapsed_s=0.1)
    response = Response(
        "a/alpha", "answer", sources=[{"url": "https://x.test", "title": "X"}], tool_calls=[call], cost_usd=0.5
    )
    plain = response.to_dict()
    assert plain == dataclasses.asdict(response)
    plain["sources"][0]["title"] = "changed"
    plain["tool_calls"][0]["name"] = "python"
    assert response.sources[0]["title"] == "X" and call.name == "sql"  # copies, not views
