"""`%%fusion` and `%fusion` in an in-process IPython shell, against the emulator."""

from __future__ import annotations

import _thread
import json
import threading
import time

import pytest
from IPython.core.error import UsageError

from fusion_magic import FusionResult
from fusion_magic._fronts import session
from fusion_magic._fronts.magic import FusionMagics
from fusion_magic._render.live import LiveProgress
from fusion_magic._render.progress import Tracker, progress_html
from fusion_magic.emulator import Emulator, Reply

BUDGET = ["openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat"]
BUDGET_JUDGE = "openai/gpt-4.1-mini"


def system_of(request) -> str | None:
    return next((m["content"] for m in request.body["messages"] if m["role"] == "system"), None)


# -- loading --------------------------------------------------------------------------------------
def test_load_and_unload_extension(shell):
    shell.run_cell("%load_ext fusion_magic")
    try:
        assert "fusion" in shell.magics_manager.magics["cell"]
        assert "fusion" in shell.magics_manager.magics["line"]
        assert any(isinstance(c, FusionMagics) for c in shell.configurables)
    finally:
        shell.run_cell("%unload_ext fusion_magic")
    assert "fusion" not in shell.magics_manager.magics["cell"]
    assert "fusion" not in shell.magics_manager.magics["line"]
    assert not any(isinstance(c, FusionMagics) for c in shell.configurables)


def test_cell_help_is_the_docstring_with_every_option():
    doc = FusionMagics.fusion_cell.__doc__
    assert doc.lstrip(":\n ").startswith("%%fusion [-p PRESET]")
    for flag in (
        "--panel",
        "-j JUDGE",
        "--system",
        "-t TEMP",
        "--max-tokens",
        "--timeout",
        "--quorum",
        "--web",
        "--tool",
        "--max-cost",
        "--no-cache",
        "--refresh",
        "-o NAME",
        "--format",
        "--base-url",
        "--api-key-env",
    ):
        assert flag in doc
    assert "_fusion" in doc


# -- running --------------------------------------------------------------------------------------
def test_run_binds_fusion_and_output_and_returns_the_result_once(ip, emulator):
    ip.run_cell("topic = 'SQLite'")
    out = ip.run_cell("%%fusion -p budget -o answer\nIs {topic} fine for a small app?")
    result = ip.user_ns["_fusion"]
    assert isinstance(result, FusionResult) and result.status == "ok"
    assert ip.user_ns["answer"] is result
    assert out.result is result, "the result is the cell's value: shown once, as Out"
    assert result.prompt == "Is SQLite fine for a small app?"
    assert sorted(r.model for r in emulator.chats()) == sorted([*BUDGET, BUDGET_JUDGE])
    assert all("Is SQLite fine" in str(r.body["messages"]) for r in emulator.chats())


def test_flags_reach_the_requests(ip, emulator):
    ip.run_cell('%%fusion --panel a/x,b/y -j c/z --system "Be brief." -t 0.3 --max-tokens 50 --no-cache\nWhy?')
    assert sorted(r.model for r in emulator.chats()) == ["a/x", "b/y", "c/z"]
    for request in emulator.chats("a/x") + emulator.chats("b/y"):
        assert system_of(request) == "Be brief."
        assert request.body["temperature"] == 0.3 and request.body["max_tokens"] == 50


@pytest.mark.parametrize(
    ("fmt", "mimes"),
    [("html", ["text/html"]), ("markdown", ["text/markdown"]), ("widget", ["text/html", "text/markdown"])],
)
def test_format_decides_what_the_cell_shows(ip, emulator, fmt, mimes):
    out = ip.run_cell(f"%%fusion --panel a/x -j c/z --format {fmt}\nWhy?")
    result = ip.user_ns["_fusion"]
    assert isinstance(result, FusionResult)
    data, metadata = ip.display_formatter.format(out.result)
    assert set(data) == {"text/plain", *mimes} and metadata == {}
    assert data["text/plain"] == repr(result)
    if fmt == "widget":  # the result itself: its own collapsible view
        assert out.result is result
    else:
        assert data[mimes[0]] == (result._repr_html_() if fmt == "html" else result._repr_markdown_())


def test_format_json(ip, emulator):
    shown = ip.run_cell("%%fusion --panel a/x -j c/z --format json\nWhy?").result
    data, metadata = ip.display_formatter.format(shown)
    assert set(data) == {"text/plain", "application/json"}
    assert metadata == {"application/json": {"expanded": False, "root": "root"}}  # a collapsed tree
    tree = data["application/json"]
    assert tree["status"] == "ok" and tree["responses"][0]["model"] == "a/x"
    # A kernel renders the JSON; a terminal prints the same JSON as text.
    assert json.loads(repr(shown)) == json.loads(data["text/plain"]) == json.loads(ip.user_ns["_fusion"].to_json())


@pytest.mark.parametrize("fmt", ["html", "markdown"])
def test_rich_formats_keep_the_plain_summary_as_text(ip, emulator, fmt):
    shown = ip.run_cell(f"%%fusion --panel a/x -j c/z --format {fmt}\nWhy?").result
    assert repr(shown) == repr(ip.user_ns["_fusion"]) and repr(shown).startswith("FusionResult(status='ok'")


def test_format_none_only_binds(ip, emulator):
    out = ip.run_cell("%%fusion --panel a/x -j c/z --format none -o r\nWhy?")
    assert out.result is None and ip.user_ns["r"].status == "ok"


def test_second_run_comes_from_the_cache(ip, emulator):
    ip.run_cell("%%fusion --panel a/x -j c/z\nSame question")
    ip.run_cell("%%fusion --panel a/x -j c/z\nSame question")
    assert len(emulator.chats()) == 2
    assert ip.user_ns["_fusion"].cache_hits == 2
    ip.run_cell("%%fusion --panel a/x -j c/z --refresh\nSame question")
    assert len(emulator.chats()) == 4


# -- precedence -----------------------------------------------------------------------------------
def test_precedence_flag_over_session_over_config(ip, emulator):
    cell = "%%fusion --panel a/x -j c/z --no-cache {flag}\nWhich layer wins?"
    ip.run_cell('%config FusionMagics.system = "from %config"')
    ip.run_cell(cell.format(flag=""))
    assert system_of(emulator.chats("a/x")[-1]) == "from %config"
    ip.run_cell('%fusion config --system "from session"')
    ip.run_cell(cell.format(flag=""))
    assert system_of(emulator.chats("a/x")[-1]) == "from session"
    ip.run_cell(cell.format(flag='--system "from flag"'))
    assert system_of(emulator.chats("a/x")[-1]) == "from flag"
    ip.run_cell("%fusion config reset")
    ip.run_cell(cell.format(flag=""))
    assert system_of(emulator.chats("a/x")[-1]) == "from %config"


def test_precedence_config_base_url_over_env(ip, emulator):
    with Emulator() as other:
        ip.run_cell(f'%config FusionMagics.base_url = "{other.base_url}"')
        ip.run_cell("%%fusion --panel a/x -j c/z\nWhere do I go?")
        assert len(other.chats()) == 2 and not emulator.chats()
        ip.run_cell(f"%%fusion --panel a/x -j c/z --base-url {emulator.base_url}\nAnd now?")
        assert len(emulator.chats()) == 2 and len(other.chats()) == 2


def test_preset_layers(ip, emulator):
    magics = ip.magics_manager.registry["FusionMagics"]
    ip.run_cell('%config FusionMagics.preset = "free"')
    assert magics.settings()[0]["preset"] == "free"
    ip.run_cell("%fusion config -p budget --timeout 30")
    values, sources = magics.settings({"preset": "quality"})
    assert values["preset"] == "quality" and sources["preset"] == "flag"
    assert values["timeout"] == 30 and sources["timeout"] == "%fusion config"
    ip.run_cell("%%fusion\nWhich preset?")
    assert sorted(r.model for r in emulator.chats()) == sorted([*BUDGET, BUDGET_JUDGE])


def test_config_rejects_a_bad_format_value(ip, caplog):
    ip.run_cell('%config FusionMagics.format = "markdown"')
    ip.run_cell('%config FusionMagics.format = "pdf"')  # %config logs the error and keeps the old value
    assert ip.magics_manager.registry["FusionMagics"].format == "markdown"
    assert "expected any of" in caplog.text


def test_fusion_config_shows_settings_but_never_the_key(ip, emulator, monkeypatch, capsys):
    secret = "sk-or-v1-" + "7" * 40
    monkeypatch.setenv("FUSION_API_KEY", secret)
    ip.run_cell("%fusion config --timeout 45 --format markdown")
    ip.run_cell("%fusion config")
    out = capsys.readouterr().out
    assert secret not in out and "7777" not in out
    assert "set (from FUSION_API_KEY)" in out
    assert "45 s  [%fusion config]" in out and "markdown  [%fusion config]" in out
    assert emulator.base_url in out
    assert session.defaults() == {"timeout": 45.0}


def test_fusion_config_refuses_bad_values_and_keeps_the_old_ones(ip, emulator):
    ip.run_cell("%fusion config --timeout 30")
    with pytest.raises(UsageError, match="not saved: unknown preset"):
        ip.run_cell("%fusion config -p nosuch")
    assert session.defaults() == {"timeout": 30.0}


# -- user mistakes --------------------------------------------------------------------------------
SEVENTEEN = ",".join(f"v/m{i}" for i in range(17))


@pytest.mark.parametrize(
    ("line", "body", "message"),
    [
        ("%%fusion", "   \n  ", "empty prompt"),
        ("%%fusion -p nosuch", "Hi", "unknown preset 'nosuch'"),
        ("%%fusion --bogus", "Hi", "unrecognized arguments: --bogus"),
        ("%%fusion --panel 'a/x,bad id'", "Hi", "malformed model id 'bad id'"),
        ("%%fusion --panel a/x,a/x", "Hi", "duplicate panel member 'a/x'"),
        (f"%%fusion --panel {SEVENTEEN}", "Hi", "at most 16 members"),
        ("%%fusion --timeout -5", "Hi", "timeout must be a positive number"),
        ("%%fusion -p budget --quorum 4", "Hi", "quorum must be between 1 and the panel size (3)"),
        ("%%fusion --base-url https://openrouter.ai/api/v1", "Hi", "no API key: set"),
        ("%%fusion -t hot", "Hi", "invalid float value: 'hot'"),
        ("%%fusion -t 3", "Hi", "temperature must be between 0 and 2"),
        ("%%fusion --no-cache --refresh", "Hi", "contradict"),
        ("%%fusion -o 2fast", "Hi", "-o needs a Python variable name"),
        ("%%fusion --format pdf", "Hi", "invalid choice: 'pdf'"),
        ("%%fusion --system 'unclosed", "Hi", "cannot read the options"),
        ("%%fusion --panel openrouter/fusion", "Hi", "does not nest fusion"),
    ],
)
def test_user_mistakes_are_one_usage_error_line_and_send_nothing(ip, emulator, capsys, line, body, message):
    with pytest.raises(UsageError) as caught:
        ip.run_cell(f"{line}\n{body}")
    assert type(caught.value) is UsageError, "a subclass would make IPython print a traceback"
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert capsys.readouterr().err == f"UsageError: {text}\n"
    assert emulator.requests == [], "a user mistake sends nothing"
    assert "_fusion" not in ip.user_ns


def test_over_budget_sends_no_chat_request(ip, emulator):
    emulator.models["a/x"] = {"prompt": "0.01", "completion": "0.02"}
    with pytest.raises(UsageError, match="exceeds --max-cost"):
        ip.run_cell("%%fusion --panel a/x -j a/x --max-cost 0.001\nAn expensive question")
    assert emulator.chats() == []


def test_unknown_subcommand_lists_the_valid_ones(ip):
    with pytest.raises(UsageError) as caught:
        ip.run_cell("%fusion frobnicate")
    assert type(caught.value) is UsageError
    assert str(caught.value) == (
        "unknown %fusion command 'frobnicate'; use one of: config, presets, models, "
        "widget, costs, cache, rejudge, compare, diff, cross-examine, resolve, ablate, show, serve, help"
    )


# -- progress and display -------------------------------------------------------------------------
class Recorder:
    """Stands in for IPython's display(): records the bundles and their in-place updates."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, bundle, raw=False, display_id=False):
        assert raw and display_id
        self.calls.append(("display", bundle))
        return self

    def update(self, bundle, raw=False):
        self.calls.append(("update", bundle))


def test_kernel_progress_is_updated_in_place_then_cleared(ip, emulator, monkeypatch):
    emulator.script("a/x", Reply(latency=0.4, tokens_per_s=50))
    emulator.script("b/y", Reply(status=400))
    recorder = Recorder()
    monkeypatch.setattr(ip, "kernel", object(), raising=False)
    monkeypatch.setattr("fusion_magic._render.live._ipython_display", recorder)
    out = ip.run_cell("%%fusion --panel a/x,b/y -j c/z\nShow me progress")
    kinds = [kind for kind, _ in recorder.calls]
    assert kinds[0] == "display" and kinds.count("display") == 1 and kinds[-1] == "update"
    assert recorder.calls[-1][1] == {"text/plain": ""}, "progress is cleared: the result shows once"
    html = "".join(bundle.get("text/html", "") for _, bundle in recorder.calls)
    assert "a/x" in html and "judge: c/z" in html and "failed" in html
    assert isinstance(out.result, FusionResult) and out.result.status == "partial"


def test_terminal_progress_prints_a_line_per_finished_member(ip, emulator, capsys):
    emulator.script("a/x", Reply(latency=0.3))
    emulator.script("b/y", Reply(status=400))
    ip.run_cell("%%fusion --panel a/x,b/y -j c/z\nTerminal progress")
    out = capsys.readouterr().out
    assert "fusion: asking 2 models, then the judge c/z" in out
    assert "  a/x  done in" in out and "  b/y  failed" in out and "  judge: c/z  done in" in out


def test_progress_html_escapes_names_and_shows_the_estimate():
    tracker = Tracker(["<b>evil</b>", "ok/model"], "j/judge", estimate_usd=0.0123)
    tracker.update("ok/model", state="done", latency_s=1.5, cost_usd=0.002)
    html = progress_html(tracker, 2.0)
    assert "<b>evil</b>" not in html and "&lt;b&gt;evil&lt;/b&gt;" in html
    assert "estimate $0.0123" in html and "spent $0.0020" in html and "done in 1.5s" in html
    assert 'class="fusion-progress tex2jax_ignore mathjax_ignore"' in html  # "$... · $..." is not maths
    assert "<table" not in html and "text-align:left" in html  # the page's table style cannot reach it


def test_progress_bars_measure_time_against_the_slowest_or_the_deadline():
    import re as _re

    tracker = Tracker(["fast/one", "slow/two"], "j/judge", deadline_s=120)
    tracker.update("fast/one", state="waiting")
    tracker.update("slow/two", state="waiting")
    tracker.update("fast/one", state="done", latency_s=0.0001)
    time.sleep(0.2)
    widths = [float(w) for w in _re.findall(r"width:([0-9.]+)%", progress_html(tracker, 1.0))]
    fast, slow, judge = widths
    assert slow < 100 and fast < slow and judge == 0  # the one still running never looks finished
    tracker = Tracker(["a/x"], "j/judge", deadline_s=2)
    tracker.update("a/x", state="waiting")
    time.sleep(0.3)
    (bar, _judge) = [float(w) for w in _re.findall(r"width:([0-9.]+)%", progress_html(tracker, 1.0))]
    assert 10 <= bar <= 60  # about 0.3 s of a 2 s deadline (the slowest plus a quarter would be 80%)


def test_a_failure_line_names_the_model_once():
    tracker = Tracker(["b/y"], "j/judge")
    tracker.update("b/y", state="failed", note="b/y: HTTP 400 from provider: bad request")
    html = progress_html(tracker, 1.0)
    assert "failed: HTTP 400 from provider" in html and html.count("b/y") == 1


def test_cached_run_shows_no_progress_at_all():
    tracker = Tracker(["a/x"], "c/z")
    tracker.update("a/x", state="cached")
    tracker.update("<judge>", state="cached")
    recorder = Recorder()
    live = LiveProgress("html", display=recorder)
    live.tick(tracker)
    live.close()
    assert recorder.calls == []


def test_interrupt_keeps_the_answers_that_arrived(ip, emulator):
    emulator.script("s/slow", Reply(latency=5))

    def interrupt_when_the_slow_member_is_asked() -> None:
        deadline = time.monotonic() + 5
        while not emulator.chats("s/slow") and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # let the fast members finish
        _thread.interrupt_main()

    threading.Thread(target=interrupt_when_the_slow_member_is_asked, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(UsageError) as caught:
        ip.run_cell("%%fusion --panel a/x,b/y,s/slow -j c/z\nInterrupt me")
    assert time.monotonic() - started < 3
    assert str(caught.value) == "interrupted: kept 2 answers (cached); re-run to resume"
    result = ip.user_ns["_fusion"]
    assert result.interrupted and [r.status for r in result.responses] == ["ok", "ok", "cancelled"]
    assert not emulator.chats("c/z"), "the judge never ran"
    # Shown as interrupted, not as a partial result whose judge "returned no answer".
    assert (result.status, result.failure_reason) == ("interrupted", "cancelled")
    assert result.to_dict()["status"] == "interrupted" and result.to_dict()["interrupted"]
    shown = result._repr_html_()
    assert "Interrupted" in shown and "no answer" not in shown and "Consensus" not in shown


# -- line subcommands -----------------------------------------------------------------------------
def test_presets_table(ip):
    table = ip.run_cell("%fusion presets").result
    frame = table.to_frame()
    assert list(frame["preset"])[:4] == ["quality", "budget", "free", "local"]
    assert frame.set_index("preset").loc["budget", "judge"] == BUDGET_JUDGE
    page = table._repr_html_()
    # Every member in full (a DataFrame cuts cells at 50 characters), one per line.
    assert "<br>".join(BUDGET) in page and "meta-llama/llama-3.3-70b-instruct:free" in page
    assert "<code>:free</code> models" in page and "`" not in page  # the description's Markdown is rendered
    assert "text-align:left" in page and "mathjax_ignore" in page
    assert "budget: openai/gpt-5-mini, google/gemini-2.5-flash, deepseek/deepseek-chat -> judge" in repr(table)


def test_models_table_with_prices_per_million(ip, monkeypatch):
    models = {
        "openai/gpt-4o": {"prompt": "0.0000025", "completion": "0.00001", "context_length": 128000},
        "x-ai/grok-4": {"prompt": "0.000003", "completion": "0.000015", "context_length": 256000},
    }
    with Emulator(models=models) as emu:
        monkeypatch.setenv("FUSION_BASE_URL", emu.base_url)
        frame = ip.run_cell("%fusion models gpt").result
        assert frame.to_dict("records") == [
            {"id": "openai/gpt-4o", "context_length": 128000, "prompt_usd_per_1m": 2.5, "completion_usd_per_1m": 10.0}
        ]
        assert len(ip.run_cell("%fusion models").result) == 2
        assert list(ip.run_cell("%fusion models x-ai/*").result["id"]) == ["x-ai/grok-4"]
        # A pattern also matches the part after the vendor: `gpt*` finds openai/gpt-4o.
        assert list(ip.run_cell("%fusion models gpt*").result["id"]) == ["openai/gpt-4o"]
        assert list(ip.run_cell("%fusion models GROK-?").result["id"]) == ["x-ai/grok-4"]
        # The list is cached on disk for a day; --refresh asks the endpoint again.
        fetches = lambda: sum(r.path.endswith("/models") for r in emu.requests)  # noqa: E731
        before = fetches()
        ip.run_cell("%fusion models gpt")
        assert fetches() == before
        assert len(ip.run_cell("%fusion models --refresh gpt").result) == 1
        assert fetches() == before + 1


def test_models_that_match_nothing_print_one_line_and_no_table(ip, monkeypatch, capsys):
    with Emulator(models={"openai/gpt-4o": {"prompt": "0.0000025", "completion": "0.00001"}}) as emu:
        monkeypatch.setenv("FUSION_BASE_URL", emu.base_url)
        assert ip.run_cell("%fusion models claude*").result is None
    out = capsys.readouterr().out
    assert out.startswith("no model matches 'claude*' (1 listed by") and "context_length" not in out


def test_cost_chart_of_one_call_spans_minutes_not_years(ip, emulator):
    from matplotlib.dates import num2date

    from fusion_magic import ledger

    ip.run_cell("%%fusion --panel a/x,b/y -j c/z\nOne call")
    figure = ledger().chart()
    low, high = (num2date(x) for x in figure.axes[0].get_xlim())
    assert 0 < (high - low).total_seconds() <= 600
    assert "1 call (1 fusion" in repr(ledger())


def test_costs_cache_and_rejudge(ip, emulator, capsys):
    ip.run_cell("%%fusion --panel a/x,b/y -j c/z -o first\nWhat does it cost?")
    ip.run_cell("%fusion costs")
    out = capsys.readouterr().out
    assert "What does it cost?" in out and "1 call (1 fusion, 0 single)" in out
    ip.run_cell("%fusion cache info")
    assert ": 3 answers," in capsys.readouterr().out  # two members and the judge
    # Dollar amounts in the ledger table are kept from MathJax.
    assert "mathjax_ignore" in ledger_html()
    rejudged = ip.run_cell("%fusion rejudge -j d/other first").result
    assert rejudged is ip.user_ns["_fusion"] and rejudged is not ip.user_ns["first"]
    assert rejudged.judge.model == "d/other" and [r.content for r in rejudged.responses] == [
        r.content for r in ip.user_ns["first"].responses
    ]
    assert len(emulator.chats("d/other")) == 1 and len(emulator.chats("a/x")) == 1
    ip.run_cell("%fusion cache clear")
    assert "cleared 4 cached answers" in capsys.readouterr().out


def ledger_html() -> str:
    from fusion_magic import ledger

    return ledger()._repr_html_()


def test_rejudge_needs_a_result(ip):
    ip.run_cell("x = 1")
    with pytest.raises(UsageError, match="x is not a fusion result"):
        ip.run_cell("%fusion rejudge x")
    with pytest.raises(UsageError, match="_fusion is not a fusion result"):
        ip.run_cell("%fusion rejudge")


def test_widget_subcommand_returns_the_widget(ip, emulator):
    from fusion_magic import FusionWidget

    ip.run_cell("%fusion config -p budget")
    widget = ip.run_cell("%fusion widget").result
    assert isinstance(widget, FusionWidget)
    widget.close()


def test_the_cell_magic_follows_up_on_a_named_result(ip, emulator):
    ip.run_cell("%%fusion --panel a/x,b/y -j c/z -o first\nWhich database?")
    first = ip.user_ns["first"]
    ip.run_cell("%fusion config --panel d/other,e/else")  # a later default does not change the panel
    mark = len(emulator.requests)
    out = ip.run_cell("%%fusion --follow-up first -o second\nWhy that one?")
    second = ip.user_ns["second"]
    assert out.result is second and ip.user_ns["_fusion"] is second
    assert [r.model for r in second.responses] == ["a/x", "b/y"] and second.judge.model == "c/z"
    assert second.history[0]["prompt"] == "Which database?" and second.history[0]["answer"] == first.answer
    assert {r.model for r in emulator.chats(since=mark)} == {"a/x", "b/y", "c/z"}
    # Flags given with --follow-up change only what they name.
    mark = len(emulator.requests)
    ip.run_cell("%%fusion --follow-up first -j d/other\nWhy that one?")
    assert {r.model for r in emulator.chats(since=mark)} == {"d/other"}  # the panel came from the cache
    with pytest.raises(UsageError, match="nothing_here is not a fusion result"):
        ip.run_cell("%%fusion --follow-up nothing_here\nWhy?")


def test_help(ip, capsys):
    ip.run_cell("%fusion help")
    out = capsys.readouterr().out
    assert "%fusion rejudge [-j JUDGE] [NAME]" in out and "%%fusion?" in out


# -- %fusion show: a saved result or frame, replayed offline -------------------------------------------
def test_fusion_show_replays_a_saved_result_with_no_network(emulator, tmp_path, monkeypatch, ip):
    from helpers import panel_fusion

    emulator.script("a/alpha", '<img src=x onerror="alert(1)"> costs $0.0056 (estimate $0.0086)')
    result = panel_fusion().run("Which database?")
    result.save(tmp_path / "saved result.json")
    emulator.stop()
    for name in ("FUSION_BASE_URL", "OPENROUTER_API_KEY", "FUSION_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    shown = ip.run_line_magic("fusion", f'show -o kept "{tmp_path / "saved result.json"}"')
    assert isinstance(shown, FusionResult) and shown == result
    assert shown._repr_html_() == result._repr_html_()
    assert ip.user_ns["_fusion"] == result and ip.user_ns["kept"] == result
    markdown = ip.run_line_magic("fusion", f'show --format markdown "{tmp_path / "saved result.json"}"')
    data, _ = ip.display_formatter.format(markdown)
    assert set(data) == {"text/plain", "text/markdown"} and data["text/markdown"] == result._repr_markdown_()


def test_fusion_show_reloads_a_saved_frame(emulator, tmp_path, ip):
    import pandas as pd
    from helpers import panel_fusion

    from fusion_magic import save_frame

    frame = panel_fusion().map(["One?", "Two?"], progress=False)
    save_frame(frame, tmp_path / "answers.json")
    shown = ip.run_line_magic("fusion", f"show -o answers {tmp_path / 'answers.json'}")
    pd.testing.assert_frame_equal(shown, frame)
    assert ip.user_ns["answers"] is shown and "_fusion" not in ip.user_ns


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("show", "%fusion show: the following arguments are required: path"),
        ("show {tmp}/missing.json", "missing.json: no such file"),
        ("show {tmp}/other.json", "other.json: neither a saved fusion result nor a saved frame"),
        ("show -o 1x {tmp}/other.json", "-o needs a Python variable name, got '1x'"),
        ('show "{tmp}/unclosed', "%fusion show: No closing quotation"),
    ],
)
def test_fusion_show_mistakes_are_one_line(ip, tmp_path, line, message):
    (tmp_path / "other.json").write_text('{"a": 1}')
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("fusion", line.format(tmp=tmp_path))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_judge_fallback_flag(ip, emulator):
    emulator.script("j/broke", Reply(status=402))
    ip.run_cell("%%fusion --panel a/x,b/y -j j/broke|k/good --format none\nWho judges?")
    result = ip.user_ns["_fusion"]
    assert result.status == "ok" and result.judge.served_by == "k/good"
    assert len(emulator.chats("j/broke")) == 1 and len(emulator.chats("k/good")) == 1


# -- evidence, jury and diff ----------------------------------------------------------------------
def test_jury_verified_only_and_diff_from_the_magics(ip, emulator, capsys):
    emulator.script("c/z", Reply(misattribute=True))
    first = ip.run_cell("%%fusion --panel a/x,b/y,d/w -j c/z -o first --format none\nWhich one?").result
    assert first is None and ip.user_ns["first"].analysis.unverified == 2
    ip.run_cell("%fusion config --verified-only")
    assert "verified_only" in capsys.readouterr().out
    jury = ip.run_cell("%%fusion --panel a/x,b/y,d/w --judges c/z,e/v --format none -o jury\nWhich one?")
    result = ip.user_ns["jury"]
    assert jury.result is None and result.verified_only and [r.model for r in result.jury] == ["c/z", "e/v"]
    assert str(result.analysis.contradictions[0].agreement) == "2/2"
    # c/z misquoted, e/v quoted correctly: the merge keeps the verified quotes, so nothing is hidden.
    assert result.analysis.unverified == 0 and result.shown_analysis == result.analysis
    rejudged = ip.run_cell("%fusion rejudge -j e/v first").result
    assert rejudged.judge.model == "e/v" and not rejudged.jury
    diff = ip.run_cell("%fusion diff first _fusion").result
    assert (diff.a, diff.b) == ("c/z", "e/v") and diff.counts()["both"] == 5
    with pytest.raises(UsageError, match="usage: %fusion diff A B"):
        ip.run_cell("%fusion diff first")
    with pytest.raises(UsageError, match="nothing is not a fusion result"):
        ip.run_cell("%fusion diff first nothing")
    with pytest.raises(UsageError, match="not both"):
        ip.run_cell("%fusion rejudge -j e/v --judges c/z,e/v first")


def test_a_judge_flag_beats_a_session_jury(ip, emulator):
    ip.run_cell("%fusion config --judges c/z,e/v")
    ip.run_cell("%%fusion --panel a/x,b/y --format none\nJury?")
    assert [r.model for r in ip.user_ns["_fusion"].jury] == ["c/z", "e/v"]
    ip.run_cell("%%fusion --panel a/x,b/y -j d/w --format none\nOne judge?")
    assert ip.user_ns["_fusion"].jury == [] and ip.user_ns["_fusion"].judge.model == "d/w"


def test_subcommands_see_the_magic_only_through_its_host_interface(capsys):
    "Any object with the `Host` members runs a subcommand: none reaches into `FusionMagics` itself."
    from fusion_magic._fronts import commands, result_commands

    class Host:
        shell = None
        format = "none"
        session_format = None
        user_ns = {"a": 1, "b": 2}

        def settings(self, flags=None):
            return {"preset": "budget", "timeout": 30.0}, {"preset": "flag", "timeout": "%fusion config"}

        def build(self, settings):
            raise AssertionError("describing the settings builds nothing")

        def bind(self, result, name):
            raise AssertionError("nothing to bind")

    commands.config(Host(), "")
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:3] == ["preset", "budget", "[flag]"] for line in lines)
    assert any(line.split()[0] == "timeout" and line.endswith("[%fusion config]") for line in lines)
    with pytest.raises(UsageError, match="a is not a fusion result"):
        result_commands.diff(Host(), "a b")
