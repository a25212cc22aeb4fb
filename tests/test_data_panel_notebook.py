"""The `data_panel` example: a panel asked about a DataFrame, run in a real kernel against the emulator."""

from __future__ import annotations

import pytest

from fusion_magic.__main__ import PRESET_ENV, example, execute_notebook
from fusion_magic.emulator import Emulator, Reply

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("fusion_magic._tools.sql")  # the `sql` tool the notebook's members use

BUDGET = ["openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat"]
QUERY = "SELECT region, SUM(revenue) AS total FROM sales GROUP BY region ORDER BY total DESC LIMIT 1"
TOP = "27982.5"  # east: sum over the months of (120 + 7 m + 62) units at 10.25


def test_data_panel_notebook(tmp_path):
    with Emulator() as emu:
        for model in BUDGET:
            emu.script(
                model,
                Reply(
                    tool_rounds=[[{"name": "sql", "arguments": {"query": QUERY}}]],
                    content="East had the highest total revenue over the year. {result}",
                    latency=0.2,
                ),
            )
        env = {"FUSION_BASE_URL": emu.base_url, "FUSION_CACHE_DIR": str(tmp_path / "cache"), PRESET_ENV: "budget"}
        with example("data_panel.ipynb") as path:
            notebook = execute_notebook(path, env=env, timeout=180, cwd=tmp_path)
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                assert output["output_type"] != "error", f"{cell.source!r} failed: {output.get('evalue')}"
        # Each member ran its query once (the Python run replayed from the cache), then answered with the number.
        for model in BUDGET:
            chats = emu.chats(model)
            assert len(chats) == 2, model
            tool_result = chats[1].body["messages"][-1]
            assert tool_result["role"] == "tool" and TOP in tool_result["content"]
        trace = next(
            c for c in notebook.cells if c.source.startswith('pd.DataFrame(\n    [\n        {\n            "member"')
        )
        table = trace.outputs[-1]["data"]["text/plain"]
        assert "sql" in table and "SELECT region" in table and "openai/gpt-5-mini" in table
        shown = next(c for c in notebook.cells if c.source.startswith("%%fusion"))
        page = next(
            o["data"]["text/html"] for o in shown.outputs if "Tool calls (1)" in o.get("data", {}).get("text/html", "")
        )
        assert TOP in page
        # The emulator's judge quotes each answer's last sentence: here the query's own result row.
        backed = next(
            c for c in notebook.cells if c.source.startswith("from fusion_magic._values.analysis import quotes_of")
        )
        assert "'tool')" in backed.outputs[-1]["data"]["text/plain"]
        again = next(c for c in notebook.cells if c.source.startswith("fusion = Fusion("))
        frame = again.outputs[-1]["data"]["text/plain"]
        assert "True" in frame and "False" not in frame.split("cached")[-1]
