"""The example notebooks, run by nbclient in a real kernel against an emulator in this process."""

from __future__ import annotations

import json
import queue
import re
import time
from pathlib import Path

import pytest

from fusion_magic.__main__ import PRESET_ENV, answer_summary, example, execute_notebook, kernel_env, kernel_manager
from fusion_magic.emulator import Emulator, Reply

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

BUDGET = ["openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat"]
JUDGE = "openai/gpt-4.1-mini"
ANSWER = f"Synthesis by {JUDGE}"  # how the emulator's judge starts its synthesized answer


@pytest.fixture
def served(tmp_path):
    "An emulator whose budget panel takes a few tenths of a second, so live progress shows."
    with Emulator() as emu:
        for model in BUDGET:
            emu.script(model, Reply(latency=0.3, tokens_per_s=300))
        env = {"FUSION_BASE_URL": emu.base_url, "FUSION_CACHE_DIR": str(tmp_path / "cache"), PRESET_ENV: "budget"}
        yield emu, env


def outputs(cell) -> list[dict]:
    return list(cell.get("outputs", []))


def code_cell(notebook, starts_with: str):
    return next(c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(starts_with))


def html_of(output: dict) -> str:
    return output.get("data", {}).get("text/html", "")


def assert_no_errors(notebook) -> None:
    for cell in notebook.cells:
        for output in outputs(cell):
            assert output["output_type"] != "error", f"{cell.source!r} failed: {output.get('evalue')}"
            if output["output_type"] == "stream" and "UsageError" in output["text"]:
                assert "raises-exception" in cell.metadata.get("tags", []), cell.source


def assert_result_shown_once(cell) -> None:
    "The result is in the cell exactly once, and the live progress that preceded it was cleared."
    shown = [o for o in outputs(cell) if "<details" in html_of(o)]
    assert len(shown) == 1, [o["output_type"] for o in outputs(cell)]
    assert ANSWER in html_of(shown[0])
    progress = [o for o in outputs(cell) if o["output_type"] == "display_data"]
    assert progress, "live progress was displayed while the panel worked"
    assert all(o["data"] == {"text/plain": ""} for o in progress), "and cleared at the end"
    plain = [o for o in outputs(cell) if "FusionResult(" in o.get("data", {}).get("text/plain", "")]
    assert len(plain) == 1


def test_quickstart_notebook(served, tmp_path):
    emu, env = served
    with example("quickstart.ipynb") as path:
        notebook = execute_notebook(path, env=env, timeout=60, cwd=tmp_path)
    assert_no_errors(notebook)
    first = code_cell(notebook, "%%fusion -p $preset\n")
    assert_result_shown_once(first)
    assert answer_summary(notebook).startswith("FusionResult(status='ok'")
    # -o with --format markdown: one Markdown output whose plain text is the summary.
    styled = code_cell(notebook, "%%fusion -p $preset -o style")
    results = [o for o in outputs(styled) if o["output_type"] == "execute_result"]
    assert len(results) == 1 and ANSWER in results[0]["data"]["text/markdown"]
    assert "('ok'," in code_cell(notebook, "style.status").outputs[0]["data"]["text/plain"]
    # A user mistake: one stderr line, no traceback, and nothing sent for it.
    (mistake,) = outputs(code_cell(notebook, "%%fusion -p no-such-preset"))
    assert mistake["name"] == "stderr"
    assert mistake["text"] == "UsageError: unknown preset 'no-such-preset'; known: budget, free, local, quality\n"
    assert len(emu.chats()) == 8, "two deliberations of three members and a judge"
    assert not any("never sent" in json.dumps(r.body) for r in emu.chats())
    costs = [o for o in outputs(code_cell(notebook, "%fusion costs")) if "image/png" in o.get("data", {})]
    assert len(costs) == 1
    frames = code_cell(notebook, "_fusion.analysis.to_frame()").outputs[0]["data"]["text/html"]
    assert "contradictions" in frames


def test_research_workflow_notebook(served, tmp_path):
    emu, env = served
    with example("research_workflow.ipynb") as path:
        notebook = execute_notebook(path, env=env, timeout=60, cwd=tmp_path)
    assert_no_errors(notebook)
    answers = code_cell(notebook, "fusion = Fusion(").outputs[-1]["data"]["text/plain"]
    assert len(re.findall(r"\bok\b", answers)) == 3 and "error" not in answers
    table = code_cell(notebook, "disagreements = ").outputs[0]["data"]["text/plain"]
    assert "Where to start" in table
    assert_result_shown_once(code_cell(notebook, "%%fusion -p $preset -o review"))
    # {summary} reached the panel as a Markdown table, not as a DataFrame repr.
    assert any("| prompt | answer |" in json.dumps(r.body["messages"]) for r in emu.chats())
    # Saved next to the notebook, reloaded equal, and replayed by %fusion show with no request.
    saved = code_cell(notebook, "from fusion_magic import FusionResult, load_frame")
    assert saved.outputs[-1]["data"]["text/plain"] == "(True, True)"
    assert (tmp_path / "review.json").is_file() and (tmp_path / "answers.json").is_file()
    replay = [o for o in outputs(code_cell(notebook, "%fusion show review.json")) if "<details" in html_of(o)]
    review = code_cell(notebook, "%%fusion -p $preset -o review")
    shown = [o for o in outputs(review) if "<details" in html_of(o)]
    assert len(replay) == 1 and html_of(replay[0]) == html_of(shown[0])


def _wait_reply(kc, msg_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_shell_msg(timeout=0.1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]
    raise AssertionError(f"no reply within {timeout} s")


def test_interrupting_a_running_cell_keeps_the_fast_answers(served, tmp_path):
    emu, env = served
    emu.script("s/slow", Reply(latency=5))
    emu.script("a/x", "fast answer one")
    emu.script("b/y", "fast answer two")
    with kernel_manager() as km:
        km.start_kernel(env=kernel_env(env), cwd=str(tmp_path))
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            kc.execute_interactive("%load_ext fusion_magic", timeout=60)
            # stop_on_error=False: the interrupted cell's error must not abort the check that follows
            # (ipykernel aborts requests queued behind an error reply).
            msg_id = kc.execute("%%fusion --panel a/x,b/y,s/slow -j c/z\nInterrupt me", stop_on_error=False)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (
                [r for r in emu.chats() if r.model == "s/slow"]
                and all(r.t_end is not None for r in emu.chats() if r.model in ("a/x", "b/y"))
                and len([r for r in emu.chats() if r.model in ("a/x", "b/y")]) == 2
            ):
                time.sleep(0.02)
            time.sleep(0.3)  # the fast answers are in; the slow one has ~4 s to go
            interrupted_at = time.monotonic()
            km.interrupt_kernel()
            reply = _wait_reply(kc, msg_id, timeout=5)
            assert time.monotonic() - interrupted_at < 2.0
            assert reply["status"] == "error" and reply["ename"] == "UsageError"
            assert reply["evalue"] == "interrupted: kept 2 answers (cached); re-run to resume"
            # user_expressions come back in the shell reply: no race with the stdout stream.
            state = "(_fusion.interrupted, [r.status for r in _fusion.responses], _fusion.responses[0].content)"
            check = kc.execute_interactive("", user_expressions={"state": state}, timeout=30)
            found = check["content"]["user_expressions"]["state"]["data"]["text/plain"]
            assert found == "(True, ['ok', 'ok', 'cancelled'], 'fast answer one')"
            assert not [r for r in emu.chats() if r.model == "c/z"], "the judge never ran"
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


def test_quickstart_command_writes_the_executed_notebook(tmp_path, capsys):
    from fusion_magic.__main__ import main

    target = tmp_path / "out" / "nested" / "quickstart.ipynb"
    assert main(["quickstart", "--emulator", "--output", str(target)]) == 0
    out = capsys.readouterr().out
    assert "running against the built-in emulator, answers are scripted" in out
    assert f"executed notebook written to {target}" in out and "FusionResult(status='ok'" in out
    assert target.is_file() and Path(target).stat().st_size > 1000


def test_compare_notebook(served, tmp_path):
    emu, env = served
    emu.script(JUDGE, Reply())  # listed in /models with a price, so the notebook's max_cost can be checked
    with example("compare.ipynb") as path:
        notebook = execute_notebook(path, env=env, timeout=120, cwd=tmp_path)
    assert_no_errors(notebook)
    scored = code_cell(notebook, "fusion = Fusion(")
    page = next(html_of(o) for o in outputs(scored) if html_of(o))
    assert "fusion (budget)" in page and "score [95% CI]" in page and "data:image/png;base64," in page
    assert any(
        "compare: 3 prompts × (budget fusion + 3 baselines): about $" in o.get("text", "") for o in outputs(scored)
    )
    judged = next(html_of(o) for o in outputs(code_cell(notebook, "open_questions = ")) if html_of(o))
    assert "fusion wins [95% CI] (w/t/l)" in judged
    # Pairwise: 3 prompts × 3 baselines, each graded in both orders by the judge.
    grading = [r for r in emu.chats(JUDGE) if '<response id="A">' in r.body["messages"][-1]["content"]]
    assert len(grading) == 3 * 3 * 2
    # The baselines are the panel's members: their answers are the panel's, bought once.
    assert all(len(emu.chats(m)) == 6 for m in BUDGET)
    again = code_cell(notebook, "%fusion compare quiz.question").outputs[-1]["data"]["text/plain"]
    assert again == "0.0", "the magic's re-run came from the cache"
    assert code_cell(notebook, "path = ").outputs[-1]["data"]["text/plain"] == "True"
