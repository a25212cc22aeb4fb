"""`Fusion.map` over the emulator: one row per prompt, failures marked, bounded concurrency, resume."""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest
from helpers import JUDGE, PANEL, interrupt_when, panel_fusion

from fusion_magic._base.errors import ConfigError, FusionInterrupted
from fusion_magic._engine.batch import COLUMNS
from fusion_magic.emulator import Reply

fusion = panel_fusion


def prompt_of(request, prompts: list[str]) -> str:
    "The batch prompt a member or judge request was about."
    text = str(request.body["messages"])
    (found,) = [p for p in prompts if p in text]
    return found


def completed(request) -> bool:
    return request.status == 200 and not request.cancelled and request.t_end is not None


def test_map_over_a_list(emulator):
    prompts = ["What is a mutex?", "What is a semaphore?", "What is a monitor?"]
    frame = fusion().map(prompts, progress=False)
    assert list(frame.columns) == COLUMNS
    assert list(frame["prompt"]) == prompts and list(frame.index) == [0, 1, 2]
    assert list(frame["status"]) == ["ok"] * 3
    assert all(frame["answer"].str.len() > 0) and all(len(c) > 0 for c in frame["consensus"])
    assert frame["cost_usd"].sum() == pytest.approx(emulator.total_cost)
    assert list(frame["failed_models"]) == [[], [], []] and list(frame["cache_hits"]) == [0, 0, 0]
    # Each row is the answer to its own prompt, whatever order they finished in.
    for p, answer in zip(prompts, frame["answer"], strict=True):
        assert p.rstrip("?") in answer


def test_map_keeps_a_series_index(emulator):
    series = pd.Series(["Tabs or spaces?", "Vim or Emacs?"], index=["q17", "q42"], name="question")
    frame = fusion().map(series, concurrency=2, progress=False)
    assert list(frame.index) == ["q17", "q42"]
    assert list(frame["prompt"]) == list(series) and list(frame["status"]) == ["ok", "ok"]


def test_map_over_a_dataframe_column(emulator):
    df = pd.DataFrame({"question": ["Why B-trees?", "Why LSM trees?"], "topic": ["db", "db"]}, index=[10, 20])
    frame = fusion().map(df["question"], progress=False)
    assert list(frame.index) == [10, 20] and list(frame["status"]) == ["ok", "ok"]
    joined = df.join(frame[["answer", "cost_usd"]])  # the point of keeping the index
    assert joined["answer"].notna().all() and len(joined) == 2


def test_a_whole_dataframe_is_a_clear_error(emulator):
    df = pd.DataFrame({"question": ["Q1?"], "topic": ["x"]})
    with pytest.raises(ConfigError) as info:
        fusion().map(df, progress=False)
    assert "df['question']" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="for one prompt use run"):
        fusion().map("just one prompt", progress=False)
    with pytest.raises(ConfigError, match="concurrency must be a positive whole number"):
        fusion().map(["Q?"], concurrency=0, progress=False)
    assert emulator.requests == []


def test_failures_get_a_marked_row(emulator):
    # b/beta refuses its first request (400 is not retried), then answers normally.
    emulator.script("b/beta", Reply(status=400, error_message="context too long"), Reply())
    prompts = ["First question?", "   ", "Second question?", None, "Third question?"]
    frame = fusion().map(prompts, concurrency=3, progress=False)
    assert len(frame) == 5 and list(frame.columns) == COLUMNS
    assert frame.loc[1, "status"] == "error" and "empty prompt" in frame.loc[1, "error"]
    assert frame.loc[3, "status"] == "error" and "prompt must be text" in frame.loc[3, "error"]
    real = frame.loc[[0, 2, 4]]
    assert sorted(real["status"]) == ["ok", "ok", "partial"]
    partial = real[real["status"] == "partial"].iloc[0]
    assert partial["failed_models"] == ["b/beta"] and partial["answer"]
    assert partial["error"].startswith("b/beta: ") and "context too long" in partial["error"]
    assert real[real["status"] == "ok"]["error"].isna().all()
    assert all(real[real["status"] == "ok"]["failed_models"].map(len) == 0)
    # The bad prompts never reached the server.
    assert len(emulator.chats()) == 3 * 4


def max_overlap(requests) -> int:
    "The most requests the server was handling at the same moment."
    events = sorted([(r.t_start, 1) for r in requests] + [(r.t_end, -1) for r in requests])
    depth = peak = 0
    for _, step in events:
        depth += step
        peak = max(peak, depth)
    return peak


def test_concurrency_bounds_the_requests_in_flight(emulator):
    for model in PANEL:
        emulator.script(model, Reply(latency=0.15))
    emulator.script(JUDGE, Reply(latency=0.05))
    prompts = [f"Concurrency question {i}." for i in range(12)]
    started = time.perf_counter()
    frame = fusion(cache=False).map(prompts, concurrency=3, progress=False)
    wall = time.perf_counter() - started
    assert list(frame["status"]) == ["ok"] * 12
    requests = emulator.chats()
    assert len(requests) == 12 * 4
    peak = max_overlap(requests)
    assert 3 < peak <= 3 * len(PANEL)  # several deliberations at once, never more than 3
    # Four waves of (member + judge) latency, not twelve.
    assert wall < 12 * 0.2


def test_interrupted_batch_resumes_paying_only_for_the_rest(emulator):
    for model in PANEL:
        emulator.script(model, Reply(latency=0.3))
    prompts = [f"Resumable question #{i}." for i in range(8)]

    # Once two prompts are judged, interrupt while the next two wait on their members: far from
    # any answer's last bytes (an answer billed but cut off on the way is lost, not cached).
    watcher = interrupt_when(lambda: sum(m == JUDGE for m, _ in emulator.charges) >= 2, after=0.12)
    with pytest.raises(KeyboardInterrupt) as stopped:
        fusion().map(prompts, concurrency=2, progress=False)
    assert isinstance(stopped.value, FusionInterrupted) and stopped.value.result is None  # no one row stands for all
    watcher.join()
    time.sleep(0.3)  # let the server see the cancelled requests
    first = [r for r in emulator.chats() if completed(r)]
    first_charges = len(emulator.charges)
    assert 0 < first_charges < 8 * 4  # something was paid, something was left
    n = len(emulator.requests)

    frame = fusion().map(prompts, concurrency=2, progress=False)
    assert list(frame["status"]) == ["ok"] * 8
    second = emulator.chats(since=n)
    # Every call of the batch was paid for exactly once over both runs.
    assert len(emulator.charges) == 8 * 4
    paid_before = {(r.model, prompt_of(r, prompts)) for r in first}
    asked_again = {(r.model, prompt_of(r, prompts)) for r in second}
    assert not paid_before & asked_again
    assert len(paid_before) + len(asked_again) == 8 * 4
    # Prompts finished before the interrupt came back whole from the cache, at no cost.
    done = [p for p in prompts if (JUDGE, p) in paid_before]
    assert len(done) >= 2
    rows = frame.set_index("prompt").loc[done]
    assert (rows["cache_hits"] == 4).all() and (rows["cost_usd"] == 0).all()


def test_progress_is_a_bar_of_prompts_failures_and_cost(emulator, capsys):
    emulator.script(JUDGE, Reply(status=400))  # every judge call fails: each prompt ends judge_failed
    frame = fusion().map(["Bar question one?", "Bar question two?"], concurrency=1)
    err = capsys.readouterr().err
    # In a terminal, tqdm.auto draws a text bar on stderr; the last state is the whole batch.
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("map: 100%") and "2/2" in last
    spent = frame["cost_usd"].sum()
    assert f"failed 2, ${spent:.4f}" in last and spent > 0


def test_progress_false_is_silent(emulator, capsys):
    fusion().map(["Quiet question?"], progress=False)
    assert capsys.readouterr() == ("", "")


def test_amap_draws_its_bar_as_prompts_end(emulator, capsys):
    async def main():
        return await fusion().amap(["Async bar question?"], progress=True)

    frame = asyncio.run(main())
    assert list(frame["status"]) == ["ok"]
    assert "map: 100%" in capsys.readouterr().err
