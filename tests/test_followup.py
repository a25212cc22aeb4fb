"""Follow-ups through `result.follow_up(...)`, over loopback HTTP to the emulator (the magic: test_magic.py)."""

from __future__ import annotations

from helpers import JUDGE, PANEL, panel_fusion

from fusion_magic import FusionResult
from fusion_magic._values.result import Response
from fusion_magic.emulator import Reply


def member_messages(emulator, model, since=0):
    (request,) = emulator.chats(model, since=since)
    return request.body["messages"]


def judge_prompt(emulator, since=0) -> str:
    (request,) = emulator.chats(JUDGE, since=since)
    return request.body["messages"][-1]["content"]


def test_each_member_sees_its_own_earlier_answer_and_the_synthesis(emulator):
    for model in PANEL:
        emulator.script(model, f"{model} says: use Postgres.")
    first = panel_fusion().run("Which database for a small web app?")
    mark = len(emulator.requests)
    second = first.follow_up("And how should it be backed up?")
    assert second.status == "ok" and second.prompt == "And how should it be backed up?"
    for model in PANEL:
        messages = member_messages(emulator, model, since=mark)
        assert [m["role"] for m in messages] == ["user", "assistant", "user"]
        assert messages[0]["content"] == "Which database for a small web app?"
        assert messages[1]["content"] == f"{model} says: use Postgres."  # its own answer, not another's
        assert first.answer in messages[2]["content"]
        assert messages[2]["content"].endswith("Follow-up question: And how should it be backed up?")
    # Judged again, knowing the conversation.
    prompt = judge_prompt(emulator, since=mark)
    assert "Which database for a small web app?" in prompt and first.answer in prompt
    assert "And how should it be backed up?" in prompt
    assert second.history == [
        {"prompt": first.prompt, "answer": first.answer, "responses": {r.model: r.content for r in first.responses}}
    ]
    assert second.to_dict()["history"] == second.history
    assert "follow-up 1" in second._repr_html_()


def test_a_follow_up_asked_again_comes_from_the_cache(emulator):
    first = panel_fusion().run("Which database?")
    first.follow_up("Why?")
    mark = len(emulator.chats())
    again = first.follow_up("Why?")
    assert len(emulator.chats()) == mark  # nothing sent
    assert again.cache_hits == len(PANEL) + 1 and again.cost_usd == 0


def test_a_chain_of_follow_ups_keeps_every_turn(emulator):
    first = panel_fusion().run("Q one?")
    second = first.follow_up("Q two?")
    mark = len(emulator.requests)
    third = second.follow_up("Q three?")
    messages = member_messages(emulator, PANEL[0], since=mark)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == "Q one?" and messages[2]["content"].endswith("Follow-up question: Q two?")
    assert messages[3]["content"] == second.responses[0].content
    assert [t["prompt"] for t in third.history] == ["Q one?", "Q two?"]


def test_a_member_that_failed_before_is_told_it_gave_no_answer(emulator):
    emulator.script(PANEL[1], Reply(status=400))
    first = panel_fusion().run("Which database?")
    assert first.status == "partial"
    mark = len(emulator.requests)
    first.follow_up("Why?")
    messages = member_messages(emulator, PANEL[1], since=mark)
    assert messages[1] == {"role": "assistant", "content": "(no answer)"}


def test_a_loaded_result_follows_up_with_its_panel_and_judge(emulator):
    first = panel_fusion().run("Which database?")
    copy = FusionResult(
        prompt=first.prompt,
        status=first.status,
        answer=first.answer,
        responses=[Response(**r.to_dict()) for r in first.responses],
        judge=Response(**first.judge.to_dict()),
        preset="custom",
    )
    mark = len(emulator.requests)
    second = copy.follow_up("Why?")  # no Fusion behind it: rebuilt from the panel and judge names
    assert [r.model for r in second.responses] == PANEL and second.judge.model == JUDGE
    assert {r.model for r in emulator.chats(since=mark)} == {*PANEL, JUDGE}
