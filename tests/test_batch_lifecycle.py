"""A batch is set up once (one client, one cache connection, one price list), can be capped as a
whole before anything is sent, and has an async twin."""

from __future__ import annotations

import asyncio
import math

import pytest
from helpers import JUDGE, PANEL, panel_fusion

from fusion_magic._base.errors import BudgetError
from fusion_magic._engine import context
from fusion_magic._engine.cache import Cache

PRICES = {m: {"prompt": "0.000001", "completion": "0.000002"} for m in [*PANEL, JUDGE]}
PROMPTS = ["What is a mutex?", "What is a semaphore?", "What is a monitor?"]


@pytest.fixture
def emu(emulator):
    "The shared emulator, listing PRICES in /models and billing with them."
    emulator.models.update(PRICES)
    return emulator


def one_estimate(prompt: str) -> float:
    "The documented estimate for PANEL and JUDGE at PRICES (see test_costs)."
    tokens, answer = math.ceil(len(prompt) / 4), 600
    members = len(PANEL) * (tokens * 1e-6 + answer * 2e-6)
    judge_in = tokens + answer * len(PANEL) + 700
    return members + judge_in * 1e-6 + 2 * answer * 2e-6


def test_a_batch_opens_one_cache_and_one_client(emu, monkeypatch):
    opened: list[Cache] = []

    class Counting(Cache):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    clients: list[object] = []
    real = context.ChatClient

    def counting_client(*args, **kwargs):
        clients.append(client := real(*args, **kwargs))
        return client

    connections: list[object] = []
    set_up = Cache._set_up

    def counting_set_up(conn, busy_timeout):
        connections.append(conn)
        set_up(conn, busy_timeout)

    monkeypatch.setattr(context, "Cache", Counting)
    monkeypatch.setattr(context, "ChatClient", counting_client)
    monkeypatch.setattr(Cache, "_set_up", staticmethod(counting_set_up))
    frame = panel_fusion().map(PROMPTS, progress=False)
    assert list(frame["status"]) == ["ok"] * 3
    assert len(opened) == 1 and len(clients) == 1
    assert len(connections) == 1  # one SQLite connection for every run of the batch, not one per run
    assert len([r for r in emu.requests if r.path.endswith("/models")]) <= 1
    # Each run alone still sets up its own (a run is not a batch).
    panel_fusion().run("What is a spinlock?")
    assert len(opened) == 2 and len(clients) == 2


def test_batch_max_cost_refuses_before_sending(emu):
    total = sum(one_estimate(p) for p in PROMPTS)
    with pytest.raises(BudgetError) as info:
        panel_fusion().map(PROMPTS, progress=False, max_cost=total * 0.9)
    assert f"${total:.4f}" in str(info.value) and "nothing was sent" in str(info.value)
    assert emu.chats() == [] and emu.charges == []
    # Just above the estimate, the batch runs; run again, it is cached and costs nothing to check.
    frame = panel_fusion().map(PROMPTS, progress=False, max_cost=total * 1.01)
    assert list(frame["status"]) == ["ok"] * 3
    sent = len(emu.chats())
    again = panel_fusion().map(PROMPTS, progress=False, max_cost=0.0)
    assert list(again["cache_hits"]) == [4, 4, 4] and len(emu.chats()) == sent


def test_batch_max_cost_is_checked(emu):
    from fusion_magic._base.errors import ConfigError

    with pytest.raises(ConfigError, match="max_cost must be a positive number of USD"):
        panel_fusion().map(PROMPTS, progress=False, max_cost=-1)
    assert emu.chats() == []


def test_amap_is_the_async_twin(emu):
    async def main():
        return await panel_fusion().amap(PROMPTS, concurrency=2)

    frame = asyncio.run(main())
    assert list(frame["prompt"]) == PROMPTS and list(frame["status"]) == ["ok"] * 3
    assert frame["cost_usd"].sum() == pytest.approx(emu.total_cost)
