"""The notebook UI in a real kernel (nbclient): what a saved notebook keeps, money under MathJax."""

from __future__ import annotations

import nbformat
import pytest

from fusion_magic.__main__ import PRESET_ENV, execute_notebook
from fusion_magic.emulator import Emulator, Reply

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

BUDGET = ["openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat"]
PRICES = {
    "openai/gpt-5-mini": {"prompt": "0.00000025", "completion": "0.000002"},
    "google/gemini-2.5-flash": {"prompt": "0.0000003", "completion": "0.0000025"},
    "deepseek/deepseek-chat": {"prompt": "0.0000003", "completion": "0.00000085"},
    "openai/gpt-4.1-mini": {"prompt": "0.0000004", "completion": "0.0000016"},
}


@pytest.fixture
def served(tmp_path):
    with Emulator() as emu:
        emu.models.update(PRICES)
        for model in BUDGET:
            emu.script(model, Reply(latency=0.2, tokens_per_s=400))
        yield emu, {"FUSION_BASE_URL": emu.base_url, "FUSION_CACHE_DIR": str(tmp_path / "cache"), PRESET_ENV: "budget"}


def run_cells(tmp_path, env, *sources: str):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / "ui.ipynb"
    nbformat.write(notebook, path)
    executed = execute_notebook(path, env=env, timeout=60)
    for cell in executed.cells:
        for out in cell.outputs:
            assert out["output_type"] != "error", out.get("evalue")
    return executed


def test_a_widget_run_leaves_the_result_as_an_ordinary_saved_output(served, tmp_path):
    emu, env = served
    executed = run_cells(
        tmp_path,
        env,
        "from fusion_magic import FusionWidget\nui = FusionWidget(preset='budget')\nui",
        "ui.prompt.value = 'Which database for a small web app?'\nui.run_button.click()\n"
        "result = ui.wait(timeout=30)\nprint(result.status)",
    )
    widget_cell, run_cell = executed.cells
    assert run_cell.outputs[0]["text"].strip() == "ok"
    view, saved = widget_cell.outputs
    # The controls: a widget view whose text form says what it is instead of dumping child widgets.
    assert "application/vnd.jupyter.widget-view+json" in view["data"]
    assert view["data"]["text/plain"].startswith("FusionWidget: interactive controls")
    # The result: the same static HTML the %%fusion cell shows, in an output the notebook file keeps.
    assert saved["output_type"] == "display_data"
    page = saved["data"]["text/html"]
    assert page.startswith('<div class="fm-root tex2jax_ignore mathjax_ignore">')
    assert "<details" in page and "Synthesis by openai/gpt-4.1-mini" in page
    assert "FusionResult(status='ok'" in saved["data"]["text/plain"]
    assert "text/markdown" in saved["data"]


def test_a_second_run_replaces_the_saved_result(served, tmp_path):
    emu, env = served
    executed = run_cells(
        tmp_path,
        env,
        "from fusion_magic import FusionWidget\nui = FusionWidget(preset='budget')\nui",
        "for question in ('First question?', 'Second question?'):\n"
        "    ui.prompt.value = question\n    ui.run_button.click()\n    ui.wait(timeout=30)",
    )
    assert len(executed.cells[0].outputs) == 2  # one output, updated in place
    saved = executed.cells[0].outputs[1]["data"]["text/html"]
    assert "Second question?" in saved and "First question?" not in saved  # members echo the prompt


def test_every_dollar_output_of_a_cell_is_kept_from_mathjax(served, tmp_path):
    emu, env = served
    executed = run_cells(
        tmp_path,
        env,
        "%load_ext fusion_magic",
        "%%fusion -p budget\nWhat does a small Postgres cost?",
        "%%fusion -p budget --format markdown\nWhat does a small Postgres cost?",
        "%fusion costs",
    )
    _, html_cell, md_cell, costs_cell = executed.cells
    shown = [o for o in html_cell.outputs if "<details" in o.get("data", {}).get("text/html", "")]
    assert len(shown) == 1 and "mathjax_ignore" in shown[0]["data"]["text/html"]
    progress = [o for o in html_cell.outputs if o["output_type"] == "display_data"]
    assert progress and all(o["data"] == {"text/plain": ""} for o in progress)  # cleared at the end
    markdown = md_cell.outputs[-1]["data"]["text/markdown"]
    header = markdown.splitlines()[0]
    assert header.count("`$") >= 1 and "\\$" not in header and "\\(" not in header
    ledger = next(o for o in costs_cell.outputs if "fusion-ledger" in o.get("data", {}).get("text/html", ""))
    assert "mathjax_ignore" in ledger["data"]["text/html"] and "2 calls" in ledger["data"]["text/html"]
