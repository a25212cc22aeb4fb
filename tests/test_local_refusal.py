"""`serve` and `mcp` with the local preset refuse at start, in one line, when the local model cannot run.

Before, `fusion-magic serve --preset local` without the `local` extra started and then answered
every request with a 400.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from fusion_magic._base.errors import ConfigError
from fusion_magic._fronts.launch import main_serve, serve_in_background
from fusion_magic._fronts.mcp import main_mcp
from fusion_magic._local import model as _local_model
from fusion_magic._local.model import check_runnable

# The MCP SDK binds `sys.stderr` as a default argument when first imported; import it now, not under
# capsys, or a later test's stdio client would inherit capsys's closed stream.
pytest.importorskip("mcp.client.stdio")


@pytest.fixture
def no_server(monkeypatch):
    "As on a machine without the `local` extra: cyllama cannot be found."
    real = importlib.util.find_spec
    monkeypatch.setattr(
        _local_model.importlib.util, "find_spec", lambda name: None if name == "cyllama" else real(name)
    )


def test_a_remote_preset_needs_no_local_model(no_server):
    check_runnable(None)  # nothing to check, nothing raised


def test_the_local_preset_without_the_server_is_one_line(no_server):
    with pytest.raises(ConfigError, match=r"^the local model server is not installed; run: pip install") as error:
        check_runnable("local")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("main", [main_serve, main_mcp], ids=["serve", "mcp"])
def test_serve_and_mcp_refuse_at_start(main, no_server, capsys):
    args = ["--preset", "local", *(["--port", "0"] if main is main_serve else [])]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert (
        out == "" and err == "error: the local model server is not installed; run: pip install 'fusion-magic[local]'\n"
    )


def test_percent_fusion_serve_refuses_too(no_server):
    with pytest.raises(ConfigError, match="not installed"):
        serve_in_background(port=0, preset="local")


def test_the_command_refuses_missing_weights_without_listening(tmp_path):
    "The real command, with weights that are not there: it exits at once with one line, having served nothing."
    env = {**os.environ, "FUSION_LOCAL_MODEL": str(tmp_path / "missing.gguf")}
    done = subprocess.run(
        [sys.executable, "-m", "fusion_magic", "serve", "--preset", "local", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""  # no "serving on" line
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    # Which line depends on this machine: the weights named, or (without the `local` extra) the server.
    assert "missing.gguf is not a file" in lines[0] or "server is not installed" in lines[0]
