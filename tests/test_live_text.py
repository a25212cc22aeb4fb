"""Live text: the judge's answer read from its partial JSON, each call's draft in the tracker, the
cell's live block (escaped, throttled, bounded for big panels), and the views' smaller fixes
(token labels, markdown notes, the stances table, the all-free costs chart)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from markdown_it import MarkdownIt

from fusion_magic._judge.partial import partial_answer, partial_json
from fusion_magic._render import drafts
from fusion_magic._render.live import REDRAW_S, LiveProgress
from fusion_magic._render.progress import JUDGE, Tracker, draft_lines, progress_html
from fusion_magic._values.result import FusionResult, Response

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "live"
ANSWER = 'Use **Postgres**: "ACID" matters.\nThen add a cache — café ☕ and 😀 emoji, a tab\there, a \\ backslash.'
VERDICT = {
    "answer": ANSWER,
    "consensus": [{"point": "Postgres works", "support": [{"model": "A", "quote": "use Postgres"}]}],
    "contradictions": [],
    "blind_spots": ["Backups"],
}


def prefixes(text: str, step: int = 1) -> list[str]:
    return [text[:i] for i in range(0, len(text) + 1, step)]


# -- reading the answer out of partial JSON --------------------------------------------------------


@pytest.mark.parametrize("ascii_only", [True, False])  # \uXXXX escapes (json.dumps' default) or raw UTF-8
def test_every_prefix_of_a_judge_reply_gives_a_prefix_of_its_answer(ascii_only):
    reply = json.dumps(VERDICT, ensure_ascii=ascii_only)
    seen = [partial_answer(p) for p in prefixes(reply)]
    assert all(ANSWER.startswith(s) for s in seen), [s for s in seen if not ANSWER.startswith(s)][:3]
    assert all(len(a) <= len(b) for a, b in zip(seen, seen[1:], strict=False))  # it only grows
    assert seen[-1] == ANSWER
    # The answer is there long before the reply ends (it is written first).
    first_full = next(i for i, s in enumerate(seen) if s == ANSWER)
    assert first_full < len(reply) / 2


@pytest.mark.parametrize(
    "reply",
    [
        "```json\n" + json.dumps(VERDICT) + "\n```",  # fenced
        "Here is my verdict:\n" + json.dumps(VERDICT) + "\nHope this helps!",  # chatter around it
        json.dumps({"analysis": {"consensus": [], "final_answer": ANSWER}}),  # a wrapper, a label variant
        json.dumps({"synthesizedAnswer": ANSWER, "blindSpots": []}),  # camelCase
        json.dumps({"consensus": ["x"], "contradictions": [], "answer": ANSWER}),  # the answer last
    ],
)
def test_the_answer_is_found_in_the_shapes_judges_write(reply):
    assert partial_answer(reply) == ANSWER
    cut = reply[: reply.index(ANSWER[:16]) + 16]  # mid-answer
    assert partial_answer(cut) == ANSWER[:16]


@pytest.mark.parametrize(
    "reply",
    ["", "I think Postgres.", "{", '{"consensus": ["a"]', '{"answer": ["not", "text"]}', "{'answer': 'single quotes"],
)
def test_no_answer_yet_is_empty(reply):
    assert partial_answer(reply) == ""


def test_a_recorded_structured_output_stream_parses_at_every_fragment():
    "Real json_schema stream bytes (fixtures/live/README.md): fragments cut where the model's tokens fell."
    content = ""
    titles = []
    for line in (FIXTURES / "openai_stream_json_schema.sse").read_text(encoding="utf-8").splitlines():
        if not line.startswith("data: {"):
            continue
        for choice in json.loads(line[6:]).get("choices") or []:
            content += choice["delta"].get("content") or ""
            value = partial_json(content)
            if content.strip():
                assert isinstance(value, dict), content
                titles.append(value.get("title", ""))
    final = json.loads(content)
    assert partial_json(content) == final
    assert final["title"] == "THE NAME OF THE WIND"
    assert all(final["title"].startswith(t) for t in titles)
    assert "THE NAME" in titles and len(set(titles)) >= 4  # seen growing, word by word


# -- the tracker's drafts ---------------------------------------------------------------------------


def test_the_tracker_keeps_each_call_s_text_and_starts_over_on_a_new_call():
    tracker = Tracker(["a/x", "b/y"], "j/z")
    tracker.update("a/x", state="waiting")
    for piece in ["Post", "gres ", "is fine."]:
        tracker.delta("a/x", piece)
    assert tracker.draft("a/x") == "Postgres is fine." and tracker.draft("b/y") == ""
    tracker.update("a/x", state="retrying", note="429", chars=0, chunks=0)  # the stream restarts
    assert tracker.draft("a/x") == ""
    tracker.delta("a/x", "Again")
    assert tracker.draft("a/x") == "Again"
    reply = json.dumps(VERDICT)
    tracker.update(JUDGE, state="waiting")
    tracker.delta(JUDGE, reply[:40])
    assert tracker.draft(JUDGE) == ANSWER[: len(partial_answer(reply[:40]))] and tracker.draft(JUDGE)
    assert tracker.text(JUDGE) == reply[:40]  # the raw text is kept too
    tracker.update(JUDGE, state="waiting")  # a re-ask: a new reply
    assert tracker.draft(JUDGE) == ""


# -- the cell's live block --------------------------------------------------------------------------


def streaming(members: int, text: str) -> Tracker:
    names = [f"m/{i}" for i in range(members)]
    tracker = Tracker(names, "j/z")
    for name in names:
        tracker.update(name, state="waiting")
        tracker.delta(name, f"{name} says: {text}")
    return tracker


def test_the_live_block_shows_each_member_s_text_escaped_under_its_line():
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)"> costs $5 and $6'
    tracker = streaming(3, hostile)
    block = progress_html(tracker, 1.0)
    assert block.count('class="fm-draft"') == 3
    assert "<script>" not in block and "<img" not in block and "&lt;script&gt;" in block
    assert "mathjax_ignore" in block  # the dollars stay dollars
    assert block.count("<details") == block.count(" open>") == 3  # a small panel: open while streaming
    tracker.update("m/0", state="done", latency_s=1.0, tokens=12)
    block = progress_html(tracker, 1.0)
    assert block.count(" open>") == 2  # a finished member's row closes; its latest words stay in the summary
    assert "12 tokens out" in block and "streaming ~" in block and "tokens out" in block
    assert "fm-draft" not in progress_html(tracker, 1.0, drafts=False)  # the widget's status lines


def test_the_judge_s_answer_streams_open_and_its_json_never_shows():
    tracker = streaming(2, "an answer")
    reply = json.dumps(VERDICT)
    tracker.update(JUDGE, state="waiting")
    tracker.delta(JUDGE, reply[: reply.index("cache") + 5])
    block = progress_html(tracker, 2.0)
    assert "answer so far" in block and "Then add a cache" in block
    assert '"consensus"' not in block and "{&quot;answer" not in block
    judge_row = block[block.index("answer so far") - 400 :]
    assert "<details" in judge_row and " open>" in judge_row
    assert any("› " in line and "cache" in line for line in draft_lines(tracker))  # text/plain too


def test_a_thirty_member_panel_stays_small_and_closed():
    tracker = streaming(30, "word " * 2000)  # 10,000 characters each
    block = progress_html(tracker, 3.0)
    assert block.count('class="fm-draft"') == 30 and " open>" not in block
    assert len(block) < 60_000  # ~12,000 characters of text in all, not 300,000
    assert block.count("…") >= 30  # each row says it is a tail
    assert all(f"m/{i} says" not in block for i in range(30))  # the heads were cut


def test_the_live_block_redraws_at_most_four_times_a_second():
    updates = []

    class Handle:
        def update(self, bundle, raw=True):
            updates.append(bundle)

    live = LiveProgress("html", display=lambda *a, **k: Handle())
    tracker = streaming(30, "x")
    started = time.perf_counter()
    for i in range(400):  # a change every tick, as 30 streaming members make
        tracker.delta(f"m/{i % 30}", "more ")
        live.tick(tracker)
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    assert 1 <= len(updates) <= elapsed / REDRAW_S + 2, (len(updates), elapsed)
    assert "m/0 says: x" in updates[-1]["text/plain"] or "more" in updates[-1]["text/plain"]
    live.close()
    assert updates[-1] == {"text/plain": ""}  # the block is cleared: the result is shown once, after it


def test_draft_preview_is_the_latest_words_on_one_line():
    assert drafts.preview("one\ntwo  three") == "one two three"
    long = " ".join(f"w{i}" for i in range(500))
    shown = drafts.preview(long, 40)
    assert shown.startswith("…") and shown.endswith("w499") and len(shown) <= 41


# -- labels, notes, table, chart ------------------------------------------------------------------------


def test_token_labels_say_what_they_count():
    tracker = Tracker(["a/x"], "j/z")
    tracker.update("a/x", state="waiting")
    tracker.delta("a/x", "x" * 40)
    assert tracker.lines()[0].endswith("streaming ~10 tokens out")
    result = FusionResult(
        prompt="Q",
        status="ok",
        answer="A",
        responses=[Response("a/x", content="A", prompt_tokens=300, completion_tokens=100, latency_s=1.0)],
    )
    page = result._repr_html_()
    assert "400 tok in+out" in page and "300 in (prompt), 100 out (completion)" in page
    assert "400 tokens in+out" in result._repr_markdown_()


def test_markdown_notes_are_separate_paragraphs():
    result = FusionResult(
        prompt="Q",
        status="ok",
        answer="A",
        notes=["the judge gave an answer but no analysis", "2 items dropped as degenerate"],
        responses=[Response("a/x", content="A")],
    )
    rendered = MarkdownIt("commonmark").render(result._repr_markdown_())
    assert "<p><em>Note: the judge gave an answer but no analysis.</em></p>" in rendered
    assert "<p><em>Note: 2 items dropped as degenerate.</em></p>" in rendered


def test_the_stances_table_keeps_its_model_column_readable():
    from fusion_magic._render.html import _CSS

    rules = _CSS.replace("\n", "")
    assert ".fm-stances th:first-child,.fm-root .fm-stances td:first-child{width:1%;min-width:7em" in rules
    assert "overflow-wrap:break-word;word-break:normal" in rules  # not "anywhere": words stay whole
    assert ".fm-root .fm-stances th{white-space:nowrap}" in rules
    assert "table.fm-stances{width:100%;table-layout:auto}" in rules  # JupyterLab's tables are fixed


def test_costs_when_everything_was_free_says_so_instead_of_a_flat_chart(monkeypatch, capsys):
    from fusion_magic._fronts import commands
    from fusion_magic._render.ledger import NOTHING_SPENT
    from fusion_magic._values.ledger import Ledger

    book = Ledger()
    book.record_call("m/free", cost_usd=0.0, prompt_tokens=10, completion_tokens=5)
    book.record_call("m/free", cost_usd=0.0, prompt_tokens=10, completion_tokens=5)
    figure = book.chart()
    assert not figure.axes[0].get_lines()  # no flat line on a made-up 0-0.05 scale
    assert NOTHING_SPENT in figure.axes[0].texts[0].get_text()

    shown = []
    monkeypatch.setattr(commands, "ledger", lambda: book)
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append(a[0]))
    commands.costs(SimpleNamespace(shell=SimpleNamespace(kernel=object())), "")
    assert shown == [book]  # the table, and no chart image
    assert f"{NOTHING_SPENT}." in capsys.readouterr().out

    book.record_call("m/paid", cost_usd=0.002)  # something was spent: the chart is back
    shown.clear()
    commands.costs(SimpleNamespace(shell=SimpleNamespace(kernel=object())), "")
    assert len(shown) == 2 and type(shown[1]).__name__ == "Image"


def test_a_jury_s_calls_are_list_items_in_markdown():
    result = FusionResult(
        prompt="Q",
        status="ok",
        answer="A",
        responses=[Response("a/x", content="A")],
        jury=[Response("j/one", content="{}", latency_s=1.0), Response("j/two", content="{}", latency_s=2.0)],
        judge=Response("j/chair", content="{}", latency_s=3.0),
    )
    rendered = MarkdownIt("commonmark").render(result._repr_markdown_())
    judges = rendered[rendered.index("<h3>Jury</h3>") :]
    assert judges.count("<li>juror · ") == 2 and judges.count("<li>chair · ") == 1
