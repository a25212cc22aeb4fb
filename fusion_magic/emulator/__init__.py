"""A faithful OpenAI-compatible / OpenRouter server on 127.0.0.1 for tests, benchmarks and notebooks.

    from fusion_magic.emulator import Emulator, Reply

    with Emulator() as emu:
        emu.script("a/x", Reply(status=429, retry_after=0.1), Reply(content="hello"))
        ...  # point a client at emu.base_url; read emu.requests and emu.total_cost
        emu.script("g/grader", Reply(grade="A"))  # a pairwise grader that always prefers answer A
        # A member that runs one SQL query, then answers with the first number of its result:
        emu.script("m/data", Reply(tool_rounds=[[{"name": "sql", "arguments": {"query": "SELECT 1"}}]],
                                   content="The total is {number}."))  # fmt: skip

Run it on its own with ``python -m fusion_magic.emulator --port 8765``. It needs aiohttp (the
``test`` extra); nothing else in fusion_magic imports this package.
"""

from __future__ import annotations

from .catalog import DEFAULT_PRICES
from .replies import Reply
from .respond import LoggedRequest
from .server import Emulator

__all__ = ["DEFAULT_PRICES", "Emulator", "LoggedRequest", "Reply"]
