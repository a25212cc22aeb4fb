"""A unique insight attributed with Fusion-style ``"models": [...]`` instead of ``"model"`` is kept.

OpenRouter Fusion's analysis lists members under ``models`` for partial coverage; judges carry that
key over to unique insights (``{"models": ["C"], "insight": ...}``). The item is one member's point,
so it is kept attributed to the first member listed, and its quote is still checked against that
member's answer (over real HTTP, the emulator serving the panel and the judge).
"""

from __future__ import annotations

import json

import pytest
from helpers import JUDGE, PANEL

from fusion_magic import Fusion
from fusion_magic._judge.verdict import salvage
from fusion_magic.emulator import Emulator

LABELS = dict(zip("ABC", PANEL, strict=True))
GAMMA = "Partition by tenant first; the hot tenants then get their own shards without a rewrite."
BETA = "Add read replicas before anything else, since most of the load is reads."


@pytest.mark.parametrize(
    ("item", "model"),
    [
        ({"models": ["C"], "insight": "Partition by tenant first."}, "c/gamma"),
        ({"models": "C", "insight": "Partition by tenant first."}, "c/gamma"),
        ({"members": ["Member C"], "insight": "Partition by tenant first."}, "c/gamma"),
        ({"models": ["B", "C"], "insight": "Partition by tenant first."}, "b/beta"),  # the first listed
        ({"models": ["c/gamma"], "point": "Partition by tenant first."}, "c/gamma"),  # a model id
    ],
)
def test_models_list_attributes_the_insight(item, model):
    found = salvage(json.dumps({"unique_insights": [item]}), LABELS)
    assert found.sections["unique_insights"] == [{"model": model, "insight": "Partition by tenant first."}]
    assert not found.dropped


def test_models_naming_no_member_is_still_dropped_and_counted():
    reply = {"consensus": ["Back up first."], "unique_insights": [{"models": ["Z"], "insight": "Partition by tenant."}]}
    found = salvage(json.dumps(reply), LABELS)
    assert found.sections["unique_insights"] == [] and found.dropped["unattributed"] == 1


def test_quotes_list_gives_the_members_own_quote():
    item = {"models": ["C"], "insight": "Partition by tenant.", "quotes": [{"model": "C", "quote": "hot tenants"}]}
    (kept,) = salvage(json.dumps({"unique_insights": [item]}), LABELS).sections["unique_insights"]
    assert kept == {"model": "c/gamma", "insight": "Partition by tenant.", "quote": "hot tenants"}


@pytest.fixture(scope="module")
def emu():
    with Emulator() as server:
        yield server


def run(emu, insight: dict, prompt: str):
    emu.script("b/beta", BETA)
    emu.script("c/gamma", GAMMA)
    emu.script(JUDGE, json.dumps({"answer": "Shard by tenant.", "unique_insights": [insight]}))
    return Fusion(panel=PANEL, judge=JUDGE, base_url=emu.base_url, cache=False, order="fixed").run(prompt)


def test_kept_end_to_end_with_its_quote_verified(emu):
    quote = "the hot tenants then get their own shards without a rewrite"
    result = run(emu, {"models": ["C"], "insight": "Tenant partitioning avoids a rewrite.", "quote": quote}, "q1")
    (item,) = result.analysis.unique_insights
    assert (item.model, item.insight, item.quote) == ("c/gamma", "Tenant partitioning avoids a rewrite.", quote)
    assert item.verified is True
    assert result.to_dict()["analysis"]["unique_insights"][0]["model"] == "c/gamma"


def test_the_quote_check_still_applies(emu):
    # The quote is B's words, attributed to C: kept as the judge said, but not verified.
    quote = "most of the load is reads"
    result = run(emu, {"models": ["C"], "insight": "Reads dominate.", "quote": quote}, "q2")
    (item,) = result.analysis.unique_insights
    assert item.model == "c/gamma" and item.verified is False
    assert item.match is not None and item.match.model == "b/beta"
