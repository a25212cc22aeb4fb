"""Configuring the members' tools: `Fusion(...)`, the `%%fusion` flags, `serve`'s `fusion` field, `mcp`."""

from __future__ import annotations

import sys

import openai
import pytest
from IPython.core.error import UsageError

from fusion_magic import Fusion
from fusion_magic._base.errors import ConfigError
from fusion_magic._base.settings import MAGIC_SETTINGS, setting
from fusion_magic._engine.toolset import WEB_SERVER_TOOLS, build_toolset, first_step
from fusion_magic._tools.base import Tool
from fusion_magic.emulator import Reply

SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}}


def tool(name: str = "lookup", identity: str = "") -> Tool:
    async def run(args: dict) -> str:
        return f"{name} says 42"

    return Tool(name, f"the {name} tool", SCHEMA, run, identity)


# -- Python ---------------------------------------------------------------------------------------
def test_the_settings_table_has_one_row_per_tool_setting_with_its_flag():
    flags = {s.name: s.flags for s in MAGIC_SETTINGS}
    assert flags["data"] == ("--data",) and flags["python"] == ("--python",)
    assert flags["tools"] == ("--tools",) and flags["max_tool_calls"] == ("--max-tool-calls",)
    assert setting("max_tool_calls").default == 4


@pytest.mark.parametrize("bad", [0, 17, -1, 2.5, True, "4"])
def test_max_tool_calls_is_one_to_sixteen(bad):
    with pytest.raises(ConfigError, match="max_tool_calls must be a whole number from 1 to 16"):
        Fusion(panel=["a/x"], judge="j/y", tools=[tool()], max_tool_calls=bad)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"data": "sales"}, "data must map table names to DataFrames"),
        ({"data": {"not a name": object()}}, "table names must be identifiers"),
        ({"python": "yes please"}, 'python must be False, True or "unsandboxed"'),
        ({"tools": [42]}, "each tool must be a function"),
        ({"tools": [tool("a"), tool("a")]}, "two tools are named 'a'"),
    ],
)
def test_bad_tool_settings_are_one_line_errors_before_anything_is_sent(emulator, kwargs, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        Fusion(panel=["a/x"], judge="j/y", **kwargs)
    assert emulator.chats() == []


def test_no_tools_is_an_empty_toolset_and_plain_requests(emulator):
    f = Fusion(panel=["a/x"], judge="j/y")
    assert not f.toolset and first_step(f.toolset) == ({}, {})
    f.run("Q?")
    assert all("tools" not in r.body for r in emulator.chats())


def test_web_on_openrouter_is_its_two_server_tools_with_fusions_bound():
    ts = build_toolset(web=True, openrouter=True, max_tool_calls=6)
    params, extra = first_step(ts)
    assert params["tools"] == list(WEB_SERVER_TOOLS) and params["max_tool_calls"] == 6
    assert "tool_choice" not in params  # nothing for the client to run or choose


def test_web_elsewhere_is_the_client_side_fetch_tool():
    pytest.importorskip("fusion_magic._tools.fetch")
    ts = build_toolset(web=True, openrouter=False)
    assert ts.names == ["fetch"] and not ts.server


def test_data_gives_one_sql_tool():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("fusion_magic._tools.sql")
    ts = build_toolset(data={"sales": pd.DataFrame({"amount": [1, 2]})})
    assert ts.names == ["sql"] and ts.tools[0].identity


def test_user_functions_become_tools():
    pytest.importorskip("fusion_magic._tools.functions")

    def revenue(region: str) -> float:
        "Revenue of one region."
        return 1.0

    assert build_toolset(tools=[revenue]).names == ["revenue"]


def test_the_identity_of_the_tools_is_in_the_cache_key_not_in_the_request(emulator):
    f = Fusion(panel=["a/x"], judge="j/y", tools=[tool(identity="data-v1")])
    f.run("Q?")
    body = emulator.chats("a/x")[0].body
    assert "data-v1" not in str(body) and body["tools"][0]["function"]["name"] == "lookup"
    n = len(emulator.requests)
    Fusion(panel=["a/x"], judge="j/y", tools=[tool(identity="data-v1")]).run("Q?")
    assert len(emulator.requests) == n
    Fusion(panel=["a/x"], judge="j/y", tools=[tool(identity="data-v2")]).run("Q?")
    assert len(emulator.requests) > n


# -- the magic ------------------------------------------------------------------------------------
def test_tools_flag_takes_the_notebooks_objects_and_max_tool_calls_bounds_them(ip, emulator):
    ip.user_ns["lookup"] = tool()
    rounds = [[{"name": "lookup", "arguments": {"query": str(i)}}] for i in range(3)]
    emulator.script("a/x", Reply(tool_rounds=rounds, content="It says {number}."))
    ip.run_cell("%%fusion --panel a/x -j j/y --tools lookup --max-tool-calls 1\nWhat does it say?")
    result = ip.user_ns["_fusion"]
    assert result.responses[0].content == "It says 42."
    assert [c.body.get("tool_choice") for c in emulator.chats("a/x")] == ["auto", "none"]


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ("--data sales,nope", "--data: no variable named nope in the notebook"),
        ("--tools missing_fn", "--tools: no variable named missing_fn"),
        ("--data ,", "--data needs one or more variable names"),
        ("--tools lookup --max-tool-calls 40", "max_tool_calls must be a whole number from 1 to 16"),
    ],
)
def test_flag_mistakes_are_usage_errors(ip, emulator, flags, words):
    ip.user_ns["lookup"] = tool()
    ip.user_ns["sales"] = object()
    with pytest.raises(UsageError, match=words):
        ip.run_cell(f"%%fusion --panel a/x -j j/y {flags}\nQ?")
    assert emulator.chats() == []


def test_data_flag_reads_the_frames_from_the_namespace(ip, emulator):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("fusion_magic._tools.sql")
    ip.user_ns["sales"] = pd.DataFrame({"amount": [1.5, 2.0]})
    ip.run_cell("%%fusion --panel a/x -j j/y --data sales\nTotal?")
    [first] = emulator.chats("a/x")
    assert [t["function"]["name"] for t in first.body["tools"]] == ["sql"]


# -- serve ----------------------------------------------------------------------------------------
@pytest.fixture
def client(emulator):
    from fusion_magic._fronts.serve import FusionServer

    srv = FusionServer(port=0, preset="budget").start()
    try:
        with openai.OpenAI(base_url=srv.url, api_key="unused", max_retries=0) as c:
            yield c
    finally:
        srv.stop()


def test_serve_passes_max_tool_calls_and_empty_tools_turn_them_off(client, emulator):
    from fusion_magic._fronts.openai_request import parse_chat

    body = b'{"model": "fusion", "messages": [{"role": "user", "content": "Q"}], '
    request = parse_chat(body + b'"fusion": {"tools": [], "max_tool_calls": 8}}', "budget")
    assert request.settings["web"] is False and request.settings["max_tool_calls"] == 8
    request = parse_chat(body + b'"fusion": {"tools": [{"type": "openrouter:web_search"}]}}', "budget")
    assert request.settings["web"] is True
    reply = client.chat.completions.create(
        model="fusion",
        messages=[{"role": "user", "content": "Q"}],
        extra_body={"fusion": {"panel": ["a/x"], "judge": "j/y", "tools": [], "max_tool_calls": 2}},
    )
    assert reply.model_extra["fusion"]["status"] == "ok"
    assert all("tools" not in r.body for r in emulator.chats())


@pytest.mark.parametrize(
    ("fusion", "param", "words"),
    [
        ({"tools": [{"type": "bash"}]}, "fusion.tools", "must be a list of web tools"),
        ({"tools": "web"}, "fusion.tools", "must be a list of web tools"),
        ({"max_tool_calls": 17}, None, "max_tool_calls must be a whole number from 1 to 16"),
        ({"data": {"sales": []}}, "fusion.data", "unknown field"),  # the user's data is Python only
    ],
)
def test_serve_refuses_bad_tool_fields(client, emulator, fusion, param, words):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="fusion", messages=[{"role": "user", "content": "Q"}], extra_body={"fusion": fusion}
        )
    assert words in caught.value.message
    if param:
        assert caught.value.param == param
    assert emulator.chats() == []


# -- wiring of the tools' builders (stand-ins, so this holds whatever the tools do) ----------------
@pytest.fixture
def builders(monkeypatch):
    "Stand-in modules for the tools' builders, recording how the settings call them."
    import types

    class Calls(list):
        refuse_sandbox = False

    calls = Calls()

    def module(name: str, attr: str, make):
        fake = types.ModuleType(f"fusion_magic._tools.{name}")
        setattr(fake, attr, make)
        monkeypatch.setitem(sys.modules, f"fusion_magic._tools.{name}", fake)

    def sql_tool(frames):
        calls.append(("sql", dict(frames)))
        return tool("sql", identity="frames")

    def python_tool(frames, mode="sandboxed"):
        calls.append(("python", dict(frames), mode))
        if mode == "sandboxed" and calls.refuse_sandbox:
            raise ConfigError(
                "python: no sandbox here (bubblewrap is not installed); python='unsandboxed' runs it anyway"
            )
        return tool("python")

    def fetch_tool(allow_private=False):
        calls.append(("fetch", allow_private))
        return tool("fetch")

    def function_tool(fn):
        calls.append(("function", fn))
        return tool(fn.__name__)

    module("sql", "sql_tool", sql_tool)
    module("python", "python_tool", python_tool)
    module("fetch", "fetch_tool", fetch_tool)
    module("functions", "function_tool", function_tool)
    return calls


def test_settings_build_each_tool_once_in_order(builders):
    frames = {"sales": object()}

    def fx_rate(currency: str) -> float:
        return 1.0

    ts = build_toolset(data=frames, python=True, tools=[fx_rate], web=True, openrouter=False, max_tool_calls=3)
    assert ts.names == ["sql", "python", "fetch", "fx_rate"] and ts.max_calls == 3
    assert builders == [("sql", frames), ("python", frames, "sandboxed"), ("fetch", False), ("function", fx_rate)]


def test_unsandboxed_python_is_an_explicit_mode_and_a_missing_sandbox_is_one_line(builders):
    build_toolset(python="unsandboxed")
    assert builders[-1] == ("python", {}, "unsandboxed")
    builders.refuse_sandbox = True
    with pytest.raises(ConfigError, match="no sandbox here") as info:
        Fusion(panel=["a/x"], judge="j/y", python=True)
    assert "\n" not in str(info.value)


def test_python_flag_and_data_flag_reach_the_builders(ip, emulator, builders):
    ip.user_ns["sales"] = frame = object()
    ip.run_cell("%%fusion --panel a/x -j j/y --data sales --python\nQ?")
    assert builders == [("sql", {"sales": frame}), ("python", {"sales": frame}, "sandboxed")]
    [first] = emulator.chats("a/x")
    assert [t["function"]["name"] for t in first.body["tools"]] == ["sql", "python"]
    assert "tools" not in emulator.chats("j/y")[0].body
