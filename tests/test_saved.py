"""Save, load, replay: real results (over loopback HTTP) written to JSON and read back offline."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from helpers import JUDGE, PANEL, panel_fusion

from fusion_magic import FusionResult, Response, load_frame, save_frame
from fusion_magic._base.errors import ConfigError
from fusion_magic.emulator import Reply

HOSTILE = '<img src=x onerror="alert(1)"> costs $0.0056 (estimate $0.0086) <script>alert(2)</script>'


def assert_round_trip(result: FusionResult, tmp_path) -> FusionResult:
    "to_dict -> from_dict is the identity, through a file too, and the loaded result renders the same."
    data = result.to_dict()
    again = FusionResult.from_dict(data)
    assert again == result
    assert again.to_dict() == data
    path = result.save(tmp_path / "result.json")
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(result.to_json())
    loaded = FusionResult.load(path)
    assert loaded == result and loaded.to_dict() == data
    assert loaded._repr_html_() == result._repr_html_()
    assert loaded._repr_markdown_() == result._repr_markdown_() and repr(loaded) == repr(result)
    assert (loaded.cost_usd, loaded.usage, loaded.saved_usd) == (result.cost_usd, result.usage, result.saved_usd)
    return loaded


def test_round_trip_of_an_ok_result(emulator, tmp_path):
    result = panel_fusion().run("Should we use SQLite or Postgres for a small web app?")
    assert result.status == "ok" and result.judge is not None and not result.analysis.is_empty()
    loaded = assert_round_trip(result, tmp_path)
    assert isinstance(loaded.responses[0], Response) and loaded.analysis.contradictions[0].stances
    assert loaded.cost_usd == pytest.approx(emulator.total_cost)


def test_round_trip_keeps_failed_and_timed_out_members(emulator, tmp_path):
    emulator.script("b/beta", Reply(status=401))
    emulator.script("c/gamma", Reply(latency=5))
    result = panel_fusion(timeout=0.5).run("Q?")
    assert result.status == "partial"
    assert [r.status for r in result.responses] == ["ok", "failed", "timed_out"]
    loaded = assert_round_trip(result, tmp_path)
    assert loaded.failed[0].error == result.failed[0].error and "b/beta" in loaded.failed[0].reason
    assert loaded.to_dict()["failed_models"] == result.to_dict()["failed_models"]


def test_round_trip_of_judge_failed_keeps_the_raw_judge_text_and_rejudges(emulator, tmp_path):
    emulator.script(JUDGE, Reply(json_valid=False))
    fusion = panel_fusion()
    result = fusion.run("Q?")
    assert result.status == "judge_failed" and result.judge_raw
    loaded = assert_round_trip(result, tmp_path)
    assert loaded.judge_raw == result.judge_raw
    # A reloaded result is a full result: rejudging it asks only the judge.
    before = len(emulator.chats())
    fixed = fusion.rejudge(loaded, judge="k/other-judge")
    assert fixed.status == "ok" and [r.model for r in emulator.chats()[before:]] == ["k/other-judge"]


def test_round_trip_of_tool_mode(emulator, tmp_path):
    emulator.script(
        "p/primary",
        Reply(tool_calls=[{"name": "fusion", "arguments": {"question": "Is Rust safe?"}}]),
        Reply(content="Final answer from the primary."),
    )
    result = panel_fusion(tool="p/primary").run("Tell me: is Rust safe?")
    assert result.tool == {"primary": "p/primary", "called": True, "question": "Is Rust safe?"}
    loaded = assert_round_trip(result, tmp_path)
    assert loaded.tool == result.tool and isinstance(loaded.primary, Response)


def test_round_trip_of_a_cached_rerun_and_hostile_text(emulator, tmp_path):
    emulator.script("a/alpha", HOSTILE)
    panel_fusion().run("Q?")
    again = panel_fusion().run("Q?")
    assert again.cache_hits == 4 and again.saved_usd > 0 and again.cost_usd == 0
    loaded = assert_round_trip(again, tmp_path)
    html = loaded._repr_html_()
    assert "<script" not in html and not re.search(r"<[^>]*\bon\w+\s*=", html), "hostile text stays inert"
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_round_trip_of_a_follow_up_and_following_up_a_loaded_result(emulator, tmp_path):
    first = panel_fusion().run("Which database?")
    loaded = FusionResult.load(first.save(tmp_path / "first.json"))
    mark = len(emulator.requests)
    second = loaded.follow_up("Why?")  # a result read from disk carries on the conversation
    assert [r.model for r in second.responses] == PANEL and second.judge.model == JUDGE
    assert {r.model for r in emulator.chats(since=mark)} == {*PANEL, JUDGE}
    assert second.history and second.history[0]["prompt"] == "Which database?"
    assert assert_round_trip(second, tmp_path).history == second.history


def test_save_replaces_the_file_and_loading_is_offline(emulator, tmp_path, monkeypatch):
    result = panel_fusion().run("Q?")
    path = tmp_path / "r.json"
    path.write_text("old")
    result.save(str(path))
    emulator.stop()  # no server, no key: loading and rendering still work
    monkeypatch.delenv("FUSION_BASE_URL")
    loaded = FusionResult.load(str(path))
    assert loaded == result and [p.name for p in tmp_path.iterdir()] == ["cache", "r.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not JSON (Expecting property name enclosed in double quotes at line 1 column 2)"),
        ('{"status": "ok"}', "not a saved fusion result: no 'prompt', 'responses'"),
        ('{"prompt": "q", "status": "ok", "responses": 3}', "not a saved fusion result: expected a list, got int"),
        (
            '{"prompt": "q", "status": "ok", "responses": [], "analysis": {"consensus": 3}}',
            "not a saved fusion result: analysis consensus: Input should be a valid list",
        ),
        ('{"prompt": "q", "status": "ok", "responses": [{"content": "x"}]}', "not a saved fusion result: "),
    ],
)
def test_loading_bad_files_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        FusionResult.load(path)
    text = str(caught.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text
    if content is not None:
        assert path.read_text() == content, "loading never touches the file"


def test_save_into_a_missing_folder_is_one_line(emulator, tmp_path):
    result = panel_fusion().run("Q?")
    with pytest.raises(ConfigError, match="the folder .* does not exist"):
        result.save(tmp_path / "nope" / "r.json")
    with pytest.raises(ConfigError, match="it is a folder"):
        result.save(tmp_path)


# -- map frames --------------------------------------------------------------------------------------
def test_map_frame_round_trip(emulator, tmp_path):
    emulator.script("b/beta", Reply(status=401))
    prompts = pd.Series(["First?", "Second?", "   "], index=["q1", "q2", "q3"])
    frame = panel_fusion().map(prompts, concurrency=2, progress=False)
    assert list(frame["status"]) == ["partial", "partial", "error"]
    path = save_frame(frame, tmp_path / "answers.json")
    back = load_frame(path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back.equals(frame)
    assert back.loc["q1", "contradictions"] == frame.loc["q1", "contradictions"]
    assert back.loc["q2", "failed_models"] == ["b/beta"]
    assert back.loc["q3", "consensus"] == [] and back.loc["q3", "failed_models"] == [], "no NaN to trip a loop"
    with pytest.raises(ConfigError, match="holds a saved frame, not one result"):
        FusionResult.load(path)
    with pytest.raises(ConfigError, match="not a saved frame"):
        load_frame(panel_fusion().run("Q?").save(tmp_path / "one.json"))


def test_frame_floats_and_missing_values_come_back_exactly(tmp_path):
    frame = pd.DataFrame(
        {
            "x": [0.0939, 1 / 3, 3.14e-9, float("nan"), 1e300],
            "s": ["a", None, "c", "d", "e"],
            "n": [1, 2, 3, 4, 5],
            "o": [None, [1], {"k": "v"}, "t", None],
        },
        index=list("abcde"),
    )
    back = load_frame(save_frame(frame, tmp_path / "f.json"))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back.loc["a", "o"] is None and back.loc["c", "o"] == {"k": "v"}
    with pytest.raises(ConfigError, match="save_frame needs a pandas DataFrame, got list"):
        save_frame([1, 2], tmp_path / "g.json")
