"""The `python` tool: model-written code in a bubblewrap sandbox, tried the way a hostile model would.

Each escape (read the API key, read ~/.ssh or the project folder, write outside the working folder,
open a socket, fork without end, allocate 20 GB, loop forever) must end as a `ToolError` or a harmless
result within a bounded time, leave nothing behind on the host, and the next call must still work.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
from pathlib import Path

import pandas as pd
import pytest

from fusion_magic._base.errors import ConfigError
from fusion_magic._tools import sandbox
from fusion_magic._tools.base import ToolError
from fusion_magic._tools.python import python_tool

ROOT = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-or-v1-0123456789abcdef-sandbox-must-not-see"
needs_sandbox = pytest.mark.skipif(sandbox.unavailable() is not None, reason=str(sandbox.unavailable()))


@pytest.fixture
def sales() -> pd.DataFrame:
    return pd.DataFrame({"region": ["EU", "US", "EU"], "amount": [1.5, 2.0, 3.25]})


@pytest.fixture
def tool(sales, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)  # in the parent, as in a user's kernel
    monkeypatch.setenv("FUSION_API_KEY", FAKE_KEY)
    return python_tool({"sales": sales}, timeout_s=15, cpu_s=10, memory_mb=1024)


def call(tool, code: str) -> str:
    return asyncio.run(tool.run({"code": code}))


def refused(tool, code: str) -> str:
    "The ToolError text of ``code``; the test fails if it ran without one."
    with pytest.raises(ToolError) as caught:
        call(tool, code)
    return str(caught.value)


def still_works(tool) -> None:
    assert call(tool, "print('ok'); 6 * 7") == "ok\n42"


@needs_sandbox
def test_frames_output_and_last_expression(tool, sales):
    out = call(
        tool,
        "import numpy as np\nprint(sales.groupby('region').amount.sum().to_dict())\nnp.float64(sales.amount.sum())",
    )
    assert "{'EU': 4.75, 'US': 2.0}" in out and "6.75" in out
    assert "[stderr]\nwarn" in call(tool, "import sys; print('warn', file=sys.stderr)")
    assert "no output" in call(tool, "x = 1")
    assert call(tool, "print('bye')\nimport sys\nsys.exit(0)") == "bye"
    assert "SystemExit: 3" in refused(tool, "raise SystemExit(3)")


@needs_sandbox
def test_an_exception_is_a_tool_error_with_the_users_lines_only(tool):
    message = refused(tool, "print('before')\n1 / 0")
    assert "before" in message and "ZeroDivisionError: division by zero" in message
    assert "python_child" not in message and "<code>" in message
    still_works(tool)


@needs_sandbox
def test_the_api_key_is_not_in_the_sandbox(tool):
    out = call(
        tool,
        "import os, glob\n"
        "seen = dict(os.environ)\n"
        "for path in glob.glob('/proc/*/environ'):\n"
        "    try: seen[path] = open(path, 'rb').read().decode(errors='replace')\n"
        "    except OSError: pass\n"
        "print(seen)",
    )
    assert "OPENROUTER_API_KEY" not in out and "FUSION_API_KEY" not in out and FAKE_KEY not in out
    assert "HOME" in out  # the environment it has is the clean one


@needs_sandbox
def test_home_ssh_and_the_project_folder_are_not_visible(tool):
    home_ssh = str(Path.home() / ".ssh")
    for target in (home_ssh, str(ROOT), str(ROOT / "README.md"), str(ROOT / "fusion_magic" / "__init__.py"), "~/.ssh"):
        message = refused(tool, f"import os\nopen(os.path.expanduser({target!r})).read()")
        assert "FileNotFoundError" in message or "PermissionError" in message or "IsADirectoryError" in message
    listing = call(tool, "import os; sorted(os.listdir('/'))")
    assert "home" not in listing and "etc" in listing  # /etc holds the loader cache only
    etc = call(tool, "import os; os.listdir('/etc')")
    assert "passwd" not in etc and "shadow" not in etc


@needs_sandbox
def test_writes_outside_the_working_folder_fail(tool, tmp_path):
    for target in (
        str(tmp_path / "escaped.txt"),
        str(ROOT / "escaped.txt"),
        "/usr/escaped",
        "/data/escaped",
        "/escaped",
    ):
        message = refused(tool, f"open({target!r}, 'w').write('x')")
        assert "Error" in message
    assert not (tmp_path / "escaped.txt").exists() and not (ROOT / "escaped.txt").exists()
    assert call(tool, "open('notes.txt', 'w').write('kept'); open('notes.txt').read()") == "'kept'"
    assert call(tool, "import os; os.path.exists('notes.txt')") == "False"  # a new sandbox each call


@needs_sandbox
def test_no_network_neither_loopback_nor_outside(tool):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # a connection would wait in the backlog even unaccepted
    port = server.getsockname()[1]
    try:
        message = refused(tool, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)")
        assert "ConnectionRefusedError" in message or "OSError" in message
        message = refused(tool, "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)")
        assert "unreachable" in message.lower() or "OSError" in message
        message = refused(tool, "import socket\nsocket.getaddrinfo('example.com', 80)")
        assert "gaierror" in message or "OSError" in message
        server.settimeout(0.5)
        with pytest.raises(TimeoutError):
            server.accept()  # the host's port never saw the sandbox
    finally:
        server.close()


@needs_sandbox
def test_a_fork_bomb_ends_and_leaves_no_process(tool):
    started = time.monotonic()
    message = refused(tool, "import os\nprint(os.getuid(), flush=True)\nwhile True:\n    os.fork()")
    assert time.monotonic() - started < 90
    assert "BlockingIOError" in message or "time limit" in message or "limit" in message
    first = message.split()[0]
    if sandbox.as_root() and first.isdigit():  # the child became a fresh uid: none of its processes may be left
        uid = int(first)
        deadline = time.monotonic() + 20
        while _processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_of(uid) == []
    still_works(tool)


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@needs_sandbox
@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(20 * 2**30)",
        "import numpy as np\nx = np.ones(20 * 2**30 // 8)",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(2**27))",
    ],
)
def test_twenty_gigabytes_are_refused(tool, code):
    started = time.monotonic()
    message = refused(tool, code)
    assert "MemoryError" in message or "memory" in message
    assert time.monotonic() - started < 90
    still_works(tool)


@needs_sandbox
def test_an_endless_loop_is_stopped_by_the_time_limit(sales):
    tool = python_tool({"sales": sales}, timeout_s=2, cpu_s=60)
    started = time.monotonic()
    assert "time limit" in refused(tool, "while True:\n    pass")
    assert time.monotonic() - started < 60
    still_works(tool)


@needs_sandbox
def test_a_cancelled_call_stops_its_sandbox():
    tool = python_tool({}, timeout_s=120, cpu_s=120, prewarm=False)

    async def scenario() -> float:
        task = asyncio.create_task(tool.run({"code": "while True:\n    pass"}))
        await asyncio.sleep(1.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()

    started = time.monotonic()
    asyncio.run(scenario())  # waits for the worker thread too: it ends because the sandbox was killed
    assert time.monotonic() - started < 60
    still_works(tool)


@needs_sandbox
def test_a_process_left_behind_does_not_hold_the_result(tool):
    started = time.monotonic()
    out = call(tool, "import os, time\nif os.fork() == 0:\n    time.sleep(60)\n'parent done'")
    assert "'parent done'" in out and time.monotonic() - started < 14  # well before the 15 s time limit


@needs_sandbox
def test_an_unused_ready_sandbox_exits_by_itself():
    before = _bwrap_children()
    tool = python_tool({}, idle_s=1, prewarm=True)
    deadline = time.monotonic() + 30
    while _bwrap_children() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (_bwrap_children() - before)
    still_works(tool)


@needs_sandbox
def test_the_user_namespace_sandbox_of_a_normal_user(monkeypatch, sales):
    "The set-up a non-root user gets (a user namespace, uid 65534), run here whatever our uid."
    monkeypatch.setattr(sandbox, "as_root", lambda: False)
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)
    tool = python_tool({"sales": sales}, timeout_s=15)
    out = call(tool, "import os\nprint(os.getuid(), float(sales.amount.sum()))\ndict(os.environ)")
    assert out.startswith("65534 6.75") and FAKE_KEY not in out
    assert "FileNotFoundError" in refused(tool, f"open({str(ROOT / 'README.md')!r}).read()")
    assert "Error" in refused(tool, "open('/usr/escaped', 'w')")
    assert "OSError" in refused(tool, "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)")
    assert "MemoryError" in refused(tool, "bytearray(20 * 2**30)")
    still_works(tool)


class Point:
    "A class of the user's own module: the sandbox cannot import it."

    def __init__(self, x: int) -> None:
        self.x = x


@needs_sandbox
def test_a_frame_the_sandbox_cannot_load_is_reported():
    tool = python_tool({"points": pd.DataFrame({"p": [Point(1)]})}, prewarm=False)
    assert "did not start" in refused(tool, "points") and "No module named" in refused(tool, "points")


@needs_sandbox
def test_a_sandbox_that_cannot_be_made_is_reported(monkeypatch):
    real = sandbox.bwrap_command

    def broken(argv, **kwargs):
        return real(argv, **kwargs, extra_ro=["/no/such/folder/anywhere"])

    monkeypatch.setattr(sandbox, "bwrap_command", broken)
    tool = python_tool({}, prewarm=False)
    message = refused(tool, "1")
    assert "did not start" in message and "bwrap" in message and "\n" not in message


@needs_sandbox
def test_cpu_limit(sales):
    tool = python_tool({}, timeout_s=120, cpu_s=1)
    started = time.monotonic()
    assert "CPU" in refused(tool, "while True:\n    pass")
    assert time.monotonic() - started < 90


@needs_sandbox
def test_the_users_frame_is_a_copy(tool, sales):
    before = sales.copy()
    call(tool, "sales['amount'] = 0\nsales.drop(index=0, inplace=True)")
    pd.testing.assert_frame_equal(sales, before)
    assert "6.75" in call(tool, "float(sales.amount.sum())")  # the next call gets the data as it was


@needs_sandbox
def test_nothing_carries_over_between_calls(tool):
    call(tool, "secret = 41")
    assert "NameError" in refused(tool, "secret + 1")


@needs_sandbox
def test_output_is_capped(sales):
    tool = python_tool({}, max_chars=2000)
    out = call(tool, "print('a' * 100000)")
    assert len(out) < 2200 and "more characters not shown" in out
    assert len(refused(tool, "raise ValueError('b' * 100000)")) < 4000


@needs_sandbox
def test_concurrent_calls(tool):
    async def many() -> list[str]:
        return await asyncio.gather(*(tool.run({"code": f"{i} * 2"}) for i in range(3)))

    assert asyncio.run(many()) == ["0", "2", "4"]


@needs_sandbox
def test_a_dropped_tool_leaves_no_process(sales):
    before = _bwrap_children()
    tool = python_tool({"sales": sales}, prewarm=True)
    call(tool, "1")
    deadline = time.monotonic() + 30
    while not (_bwrap_children() - before) and time.monotonic() < deadline:  # the ready spare
        time.sleep(0.1)
    assert _bwrap_children() - before
    del tool
    gc.collect()
    deadline = time.monotonic() + 20
    while _bwrap_children() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (_bwrap_children() - before)


def _bwrap_children() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if "(bwrap)" in stat and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                    found.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def test_a_python_installed_around_the_home_folder_is_refused(monkeypatch):
    monkeypatch.setattr(sandbox, "interpreter_paths", lambda: ([str(Path.home().parent)], []))
    sandbox.unavailable.cache_clear()
    try:
        with pytest.raises(ConfigError, match="contains the home folder"):
            python_tool({})
    finally:
        sandbox.unavailable.cache_clear()


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"system": "Darwin"}, "needs Linux"),
        ({"bwrap": None}, "bubblewrap (bwrap), which is not installed"),
        ({"bwrap": "/bin/false"}, "cannot create a sandbox here"),
    ],
)
def test_without_a_sandbox_it_refuses_in_one_line(monkeypatch, patch, words):
    if "system" in patch:
        monkeypatch.setattr(sandbox.platform, "system", lambda: patch["system"])
    if "bwrap" in patch:
        monkeypatch.setattr(sandbox, "_bwrap", lambda: patch["bwrap"])
    sandbox.unavailable.cache_clear()
    try:
        with pytest.raises(ConfigError) as caught:
            python_tool({})
    finally:
        sandbox.unavailable.cache_clear()
    message = str(caught.value)
    assert words in message and "unsandboxed" in message and "\n" not in message


def test_unsandboxed_is_an_explicit_opt_in_with_a_clean_environment(monkeypatch, sales):
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)
    monkeypatch.setattr(sandbox, "unavailable", lambda: "no sandbox in this test")
    with pytest.raises(ConfigError, match="no sandbox in this test"):
        python_tool({"sales": sales})
    tool = python_tool({"sales": sales}, mode="unsandboxed", timeout_s=3, cpu_s=30)
    out = call(tool, "import os\nprint(float(sales.amount.sum()))\ndict(os.environ)")
    assert "6.75" in out and FAKE_KEY not in out and "OPENROUTER" not in out
    assert "time limit" in refused(tool, "while True:\n    pass")
    still_works(tool)
    with pytest.raises(ConfigError, match="mode"):
        python_tool({}, mode="maybe")  # type: ignore[arg-type]


@pytest.mark.parametrize("arguments", [{}, {"code": ""}, {"code": 5}, {"source": "1"}])
def test_missing_code_is_a_tool_error(arguments):
    tool = python_tool({}, mode="unsandboxed", prewarm=False)
    with pytest.raises(ToolError, match="code"):
        asyncio.run(tool.run(arguments))


def test_bad_frame_names_are_config_errors():
    with pytest.raises(ConfigError, match="variable name"):
        python_tool({"not a name": pd.DataFrame()}, mode="unsandboxed", prewarm=False)
