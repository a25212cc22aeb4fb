"""The methods from `%%fusion`: `--panel a*3,b`, `--order`, `-j vote`, `--cross-examine`, `--rounds 2`, `--max-cost`."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from fusion_magic.emulator import Reply


def test_samples_order_and_vote_from_the_magic(ip, emulator):
    emulator.script("a/x", "Answer: 4", "Answer: 4", "Answer: 5")
    emulator.script("b/y", "Answer: 4")
    ip.run_cell("%%fusion --panel a/x*3,b/y -j vote --format none\nWhat is 2 + 2?")
    result = ip.user_ns["_fusion"]
    assert [r.model for r in result.responses] == ["a/x#1", "a/x#2", "a/x#3", "b/y"]
    assert len(emulator.chats("a/x")) == 3 and not emulator.chats("vote")
    assert result.answer == "4" and result.vote["support"] == "3/4"
    ip.run_cell("%%fusion --panel a/x,b/y -j j/z --order fixed --format none\nWhy?")
    assert ip.user_ns["_fusion"].judge_order == ["a/x", "b/y"]
    with pytest.raises(UsageError, match="order"):
        ip.run_cell("%%fusion --panel a/x -j j/z --order backwards\nWhy?")


def test_cross_examine_and_a_round_from_the_magic(ip, emulator):
    emulator.script("b/y", Reply(), Reply(turn="concede"), Reply(marks="disagree"))
    ip.run_cell("%%fusion --panel a/x,b/y -j j/z --order fixed --rounds 2 --cross-examine --format none\nWhich one?")
    result = ip.user_ns["_fusion"]
    assert result.status == "ok"
    (entry,) = result.rounds
    assert entry["moved"] == ["b/y"]
    assert result.marks and result.analysis.items("consensus")[0].false_consensus
    assert result.cost_usd == pytest.approx(emulator.total_cost)
    # members 2 + round turns 2 + judge 2 + marks 2
    assert len(emulator.chats()) == 8
    sent = len(emulator.requests)
    ip.run_cell("%%fusion --panel a/x,b/y -j j/z --order fixed --rounds 2 --cross-examine --format none\nWhich one?")
    assert not emulator.chats(since=sent)  # a re-run sends no chat request
    again = ip.user_ns["_fusion"]
    assert again.rounds == result.rounds and again.marks == result.marks and again.cost_usd == 0


def test_max_cost_counts_the_extra_calls(ip, emulator):
    emulator.models["a/x"] = {"prompt": "0.000001", "completion": "0.000002"}
    emulator.models["j/z"] = {"prompt": "0.000001", "completion": "0.000002"}
    cell = "%%fusion --panel a/x -j j/z --max-cost 0.006 --format none\nA question?"
    ip.run_cell(cell)  # the plain run fits
    with pytest.raises(UsageError, match="exceeds --max-cost"):
        ip.run_cell(cell.replace("--max-cost", "--cross-examine --rounds 2 --max-cost") + " Again?")
    assert len(emulator.chats()) == 2  # the refused run sent nothing


def test_method_subcommands_over_a_bound_result(ip, emulator, capsys):
    emulator.script("b/y", Reply(), Reply(marks="disagree"))
    ip.run_cell("%%fusion --panel a/x,b/y -j j/z --format none -o first\nWhich one?")
    first = ip.user_ns["first"]
    ip.run_cell("%fusion cross-examine first")
    examined = ip.user_ns["_fusion"]
    assert examined is not first and examined.marks and examined.analysis.items("consensus")[0].false_consensus
    sent = len(emulator.requests)
    frame = ip.run_cell("%fusion ablate --judges j/other first").result
    assert list(frame.ablation) == ["without a/x", "without b/y", "judge j/other"]
    assert "influence" in capsys.readouterr().out
    assert sorted(r.model for r in emulator.chats(since=sent)) == ["j/other", "j/z", "j/z"]
    ip.run_cell("%fusion resolve first")
    assert ip.user_ns["_fusion"].rounds
    with pytest.raises(UsageError, match="not a fusion result"):
        ip.run_cell("%fusion resolve nothing_here")


def test_compare_takes_methods_from_the_magic(ip, emulator):
    ip.run_cell("questions = ['What is 2 + 2?']")
    ip.run_cell("%fusion compare questions --panel a/x,b/y -j j/z -b c/w,c/w*2,vote --grader none -o table")
    frame = ip.user_ns["table"].to_frame()
    assert list(frame.index) == ["fusion (custom)", "c/w", "c/w*2", "vote"]
    assert list(frame.kind) == ["fusion", "baseline", "method", "method"]
    assert len(emulator.chats("c/w")) == 3  # one single call, two samples
