from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from fusion_magic._base.errors import FusionError
from fusion_magic._engine.cache import Cache
from fusion_magic._render.ledger import HTML_ROWS
from fusion_magic._values.ledger import DETAIL_COLUMNS, SUMMARY_COLUMNS, Ledger, ledger
from fusion_magic._values.result import FusionResult, Response


def deliberation(prompt: str = "Why is the sky blue?") -> FusionResult:
    return FusionResult(
        prompt=prompt,
        status="partial",
        answer="Rayleigh scattering.",
        responses=[
            Response("openai/gpt-4o", "a", prompt_tokens=100, completion_tokens=50, cost_usd=0.002, latency_s=1.0),
            # a cache hit costs nothing now; saved_usd is what it cost when first paid for
            Response(
                "google/gemini-2.5-flash",
                "b",
                prompt_tokens=100,
                completion_tokens=80,
                cost_usd=0.0,
                cached=True,
                saved_usd=0.004,
                latency_s=0.0,
            ),
            Response("x/broken", status="failed", error="HTTP 429"),
        ],
        judge=Response(
            "anthropic/claude-sonnet-4",
            "{...}",
            prompt_tokens=900,
            completion_tokens=300,
            cost_usd=0.0072,
            latency_s=3.0,
        ),
        elapsed_s=4.2,
    )


def test_record_fusion_sums_members_and_judge() -> None:
    book = Ledger()
    result = deliberation()
    entry = book.record_fusion(result)
    assert entry.kind == "fusion" and entry.status == "partial"
    assert entry.cost_usd == pytest.approx(result.cost_usd) == pytest.approx(0.002 + 0.0072)
    assert entry.saved_usd == pytest.approx(result.saved_usd) == pytest.approx(0.004)
    assert entry.models == "openai/gpt-4o, google/gemini-2.5-flash, x/broken → anthropic/claude-sonnet-4"
    assert [d["role"] for d in entry.details] == ["member", "member", "member", "judge"]
    assert book.totals() == {
        "cost_usd": pytest.approx(0.0092),
        "cost_complete": True,
        "saved_usd": pytest.approx(0.004),
        "calls": 1,
        "fusion_calls": 1,
        "single_calls": 0,
        "model_calls": 4,
        "cache_hits": 1,
        # the cached answer's tokens were not billed
        "prompt_tokens": 1000,
        "completion_tokens": 350,
        "tokens": 1350,
    }


def test_rejudge_counts_only_the_new_judge() -> None:
    book = Ledger()
    original = deliberation()
    book.record_fusion(original)
    # what Fusion.rejudge returns: the same panel Response objects, a new judge
    rejudged = FusionResult(
        prompt=original.prompt,
        status="ok",
        responses=list(original.responses),
        judge=Response("openai/gpt-4.1-mini", "{...}", prompt_tokens=700, completion_tokens=100, cost_usd=0.0005),
    )
    entry = book.record_fusion(rejudged)
    assert entry.kind == "call" and [d["role"] for d in entry.details] == ["rejudge"]
    assert entry.cost_usd == pytest.approx(0.0005)
    assert book.record_fusion(rejudged) is None, "a result recorded twice is counted once"
    assert book.record_response(rejudged.judge) is None
    totals = book.totals()
    assert (totals["fusion_calls"], totals["single_calls"]) == (1, 1)
    assert totals["cost_usd"] == pytest.approx(0.0092 + 0.0005)


def test_tool_mode_primary_is_part_of_the_call() -> None:
    book = Ledger()
    with_panel = deliberation()
    with_panel.primary = Response("openai/gpt-4o", "final", prompt_tokens=50, completion_tokens=20, cost_usd=0.001)
    entry = book.record_fusion(with_panel)
    assert entry.kind == "fusion" and entry.details[-1]["role"] == "primary"
    assert entry.cost_usd == pytest.approx(with_panel.cost_usd) == pytest.approx(0.0102)
    alone = FusionResult(prompt="hi", status="ok", primary=Response("openai/gpt-4o", "hello", cost_usd=0.0001))
    entry = book.record_fusion(alone)
    assert entry.kind == "call" and entry.models == "openai/gpt-4o"
    failed = book.record_fusion(FusionResult(prompt="nothing answered", status="error"))
    assert failed.kind == "fusion" and failed.cost_usd == 0 and failed.details == []


def test_single_calls_are_apart_from_fusion_calls() -> None:
    book = Ledger()
    book.record_fusion(deliberation())
    book.record_call(
        "openai/gpt-4.1-mini",
        purpose="rejudge",
        prompt_tokens=800,
        completion_tokens=200,
        cost_usd=0.0006,
        latency_s=2.0,
    )
    book.record_response(
        Response("openai/gpt-4o", "tool answer", prompt_tokens=10, completion_tokens=10, cost_usd=0.0001),
        purpose="tool",
        label="primary with fusion tool",
    )
    totals = book.totals()
    assert (totals["calls"], totals["fusion_calls"], totals["single_calls"]) == (3, 1, 2)
    assert totals["cost_usd"] == pytest.approx(0.0092 + 0.0006 + 0.0001)
    assert [e.label for e in book.entries] == ["Why is the sky blue?", "rejudge", "primary with fusion tool"]
    assert [e.kind for e in book.entries] == ["fusion", "call", "call"]


def test_cache_hit_saves_what_was_first_paid(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache.sqlite3")
    cache.put("k", {"content": "a", "prompt_tokens": 10, "completion_tokens": 20, "cost_usd": 0.0125})
    hit = cache.get("k")
    book = Ledger()
    book.record_call(
        "openai/gpt-4o",
        cached=True,
        cost_usd=hit["cost_usd"],
        prompt_tokens=hit["prompt_tokens"],
        completion_tokens=hit["completion_tokens"],
    )
    totals = book.totals()
    assert totals["cost_usd"] == 0.0 and totals["tokens"] == 0
    assert totals["saved_usd"] == pytest.approx(0.0125) == pytest.approx(cache.info()["saved_usd"])
    assert totals["cache_hits"] == 1


def test_to_frame_summary_and_detail() -> None:
    book = Ledger()
    book.record_fusion(deliberation())
    book.record_call("m/x", purpose="rejudge", cost_usd=0.001, prompt_tokens=5, completion_tokens=5)
    frame = book.to_frame()
    assert list(frame.columns) == SUMMARY_COLUMNS and len(frame) == 2
    assert list(frame["kind"]) == ["fusion", "call"]
    assert frame["cost_usd"].sum() == pytest.approx(0.0102)
    assert list(frame["cache_hits"]) == [1, 0] and list(frame["calls"]) == [4, 1]
    detail = book.to_frame(detail=True)
    assert list(detail.columns) == DETAIL_COLUMNS and len(detail) == 5
    assert list(detail["entry"]) == [0, 0, 0, 0, 1]
    assert list(detail["role"]) == ["member", "member", "member", "judge", "rejudge"]
    assert detail.loc[1, "cached"] and detail.loc[1, "saved_usd"] == pytest.approx(0.004)
    assert detail["cost_usd"].sum() == pytest.approx(frame["cost_usd"].sum())
    assert list(Ledger().to_frame().columns) == SUMMARY_COLUMNS


def test_chart_plots_cumulative_cost() -> None:
    from matplotlib.figure import Figure

    book = Ledger()
    book.record_fusion(deliberation())
    book.record_call("m/x", purpose="rejudge", cost_usd=0.001)
    fig = book.chart()
    assert isinstance(fig, Figure)
    spent, saved = fig.axes[0].get_lines()
    assert list(spent.get_ydata()) == pytest.approx([0.0, 0.0092, 0.0102])
    assert list(saved.get_ydata()) == pytest.approx([0.0, 0.004, 0.004])
    empty = Ledger().chart()
    assert [t.get_text() for t in empty.axes[0].texts] == ["no calls yet"]


def test_missing_optional_libraries_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(FusionError, match="pip install matplotlib"):
        Ledger().chart()
    with pytest.raises(FusionError, match="pip install pandas"):
        Ledger().to_frame()


def test_html_is_escaped_and_compact() -> None:
    book = Ledger()
    assert "No calls yet" in book._repr_html_()
    book.record_fusion(deliberation("<script>alert(1)</script> please " + "x" * 100))
    page = book._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "…" in page  # long prompts are shortened to one line
    assert "$0.0092 spent, $0.0040 saved by 1 cache hit" in page
    for _ in range(HTML_ROWS + 5):
        book.record_call("m/x", cost_usd=0.00001)
    page = book._repr_html_()
    assert page.count("<tr>") == HTML_ROWS + 1  # header + the latest rows
    assert "6 earlier calls not shown" in page
    assert "<$0.0001" not in page.replace("&lt;$0.0001", "")  # escaped like every cell
    assert repr(book).startswith("<Ledger: 26 calls (1 fusion, 25 single)")


def test_session_singleton_and_clear() -> None:
    book = ledger()
    assert book is ledger()
    before = len(book)
    book.record_call("m/x", cost_usd=0.5)
    assert len(ledger()) == before + 1
    book.clear()
    assert len(book) == 0 and book.totals()["cost_usd"] == 0


def test_recording_from_threads() -> None:
    book = Ledger()
    threads = [
        threading.Thread(target=lambda: [book.record_call("m/x", cost_usd=0.001) for _ in range(100)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert book.totals()["calls"] == 400
    assert book.totals()["cost_usd"] == pytest.approx(0.4)
