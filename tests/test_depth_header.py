"""Every request fusion_magic sends carries ``X-Fusion-Depth: 1``: runs, batches, compare, price lists.

A `fusion-magic serve` instance refuses a request carrying a depth >= 1, so with the header on
every call a deliberation can never nest one inside itself; a batch (``map``) that sent 0 let a
serve instance used as a panel member deliberate again for each of its prompts.
"""

from __future__ import annotations

import pytest
from helpers import JUDGE, PANEL

from fusion_magic import Fusion
from fusion_magic._fronts.serve import FusionServer


def depths(emulator, since=0) -> list[str | None]:
    return [r.headers.get("x-fusion-depth") for r in emulator.requests[since:]]


def test_map_sends_depth_one_on_every_request(emulator):
    frame = Fusion(panel=PANEL, judge=JUDGE, cache=False).map(["One?", "Two?"], progress=False)
    assert list(frame["status"]) == ["ok", "ok"]
    chats = emulator.chats()
    assert len(chats) == 2 * (len(PANEL) + 1)
    assert any(r.path.endswith("/models") for r in emulator.requests)  # the price list is asked too
    assert depths(emulator) == ["1"] * len(emulator.requests)


@pytest.mark.parametrize("how", ["run", "amap", "compare"])
def test_runs_async_batches_and_compare_send_depth_one(emulator, how):
    import asyncio

    fusion = Fusion(panel=PANEL, judge=JUDGE, cache=False)
    if how == "run":
        fusion.run("One?")
    elif how == "amap":
        asyncio.run(fusion.amap(["One?", "Two?"]))
    else:
        fusion.compare(["One?"], baselines=["x/one"], progress=False)
    assert len(emulator.chats()) >= len(PANEL) + 1
    assert depths(emulator) == ["1"] * len(emulator.requests)


@pytest.fixture
def server(emulator):
    srv = FusionServer(port=0, preset="budget").start()  # deliberates over the emulator
    yield srv
    srv.stop()


def test_a_serve_instance_as_a_panel_member_of_a_batch_refuses(emulator, server):
    # The batch's panel is the serve instance itself: each member call would start a deliberation.
    # ("fusion/<preset>" passes the model-id check: only the serve instance knows it is a deliberation.)
    fusion = Fusion(panel=["fusion/budget", "fusion/quality"], judge="fusion/budget", base_url=server.url, cache=False)
    frame = fusion.map(["Shard?", "Replicate?"], progress=False)
    assert list(frame["status"]) == ["error", "error"]
    assert all("fusion_invocation_capped" in str(error) for error in frame["error"])
    assert server.requests == 0  # refused before any deliberation started
    assert emulator.chats() == []  # so nothing reached the upstream
