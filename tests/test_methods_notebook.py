"""The methods example notebook, run by nbclient in a real kernel against an emulator in this process."""

from __future__ import annotations

import re

import pytest

from fusion_magic.__main__ import PRESET_ENV, example, execute_notebook
from fusion_magic.emulator import Emulator, Reply

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

BUDGET = ["openai/gpt-5-mini", "google/gemini-2.5-flash", "deepseek/deepseek-chat"]
JUDGE = "openai/gpt-4.1-mini"


def solve(question: str) -> str:
    "A member that works arithmetic out and ends with a final line; an opinion otherwise."
    found = re.search(r"What is (\d+) \* (\d+)\?", question)
    if found:
        return f"Multiplying step by step.\nAnswer: {int(found[1]) * int(found[2])}"
    return "It depends on the read and write mix; start normalised and measure before denormalising anything."


def text_of(cell) -> str:
    return "\n".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") + o.get("data", {}).get("text/html", "")
        for o in cell.get("outputs", [])
    )


def cell(notebook, starts_with: str):
    return next(c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(starts_with))


def test_methods_notebook(tmp_path):
    with Emulator() as emu:
        emu.script(BUDGET[0], Reply(answer=solve))
        emu.script(BUDGET[1], Reply(answer=solve, turn="concede"))
        emu.script(BUDGET[2], Reply(answer=solve, marks={"every member": "disagree"}))
        emu.script(JUDGE, Reply())  # listed in /models with a price, so max_cost can be checked
        env = {"FUSION_BASE_URL": emu.base_url, "FUSION_CACHE_DIR": str(tmp_path / "cache"), PRESET_ENV: "budget"}
        with example("methods.ipynb") as path:
            notebook = execute_notebook(path, env=env, timeout=180, cwd=tmp_path)
    for c in notebook.cells:
        for output in c.get("outputs", []):
            assert output["output_type"] != "error", f"{c.source!r} failed: {output.get('evalue')}"
    sampled = text_of(cell(notebook, "sampled.to_frame()"))
    assert all(f"{BUDGET[0]}#{i}" in sampled for i in (1, 2, 3))
    assert "'support': '3/3'" in text_of(cell(notebook, "voted.vote")) and "391" in text_of(
        cell(notebook, "voted.vote")
    )
    examined = text_of(cell(notebook, "result = fusion.run("))
    assert "True" in examined and BUDGET[2] in examined  # the false consensus and who disputes it
    assert "moved" in text_of(cell(notebook, "resolved = ")) and BUDGET[1] in text_of(cell(notebook, "resolved = "))
    assert "influence" in text_of(cell(notebook, "table = "))
    table = text_of(cell(notebook, "quiz = "))
    for approach in (f"{BUDGET[0]}*3", f"{BUDGET[0]}*3+vote", "vote", "fusion+cross-examine"):
        assert approach in table
