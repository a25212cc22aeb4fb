"""Member outcomes and reasoning end to end, over real HTTP: refusals, filters, budgets spent on
reasoning, replies that are only reasoning; reasoning kept and shown but never judged; costs that are
unknown shown as unknown; the emulator's `spec` mode (OpenAI's contract) and its reasoning shapes.
"""

from __future__ import annotations

import html
import json

import httpx
import pytest
from helpers import JUDGE, PANEL

from fusion_magic import Fusion, FusionResult
from fusion_magic._base.endpoint import Endpoint
from fusion_magic._engine.client import ChatClient, forget_stream_options
from fusion_magic.emulator import Emulator, Reply


@pytest.fixture(autouse=True)
def _fresh_negotiation():
    forget_stream_options()
    yield
    forget_stream_options()


@pytest.fixture
def spec_emulator(monkeypatch):
    "An emulator keeping to OpenAI's contract (usage only when asked, no cost); FUSION_BASE_URL at it."
    prices = {m: {"prompt": "0.000002", "completion": "0.000008"} for m in [*PANEL, JUDGE]}
    with Emulator(mode="spec", models=prices) as emu:  # /models lists prices; answers carry no cost
        monkeypatch.setenv("FUSION_BASE_URL", emu.base_url)
        yield emu


def fusion(**kw) -> Fusion:
    kw.setdefault("max_retries", 2)
    return Fusion(panel=kw.pop("panel", PANEL), judge=JUDGE, **kw)


def judge_prompt(emu: Emulator) -> str:
    return json.dumps(emu.chats(JUDGE)[-1].body["messages"])


# -- outcomes -----------------------------------------------------------------------------------


OUTCOMES = [
    ("refused", Reply(refusal="I can't help with that."), "refused: I can't help with that."),
    ("truncated", Reply(empty=True, reasoning="Let me think at length", finish_reason="length"), "while reasoning"),
    ("reasoning_only", Reply(empty=True, reasoning="The answer is 42."), "only reasoning"),
    ("filtered", Reply(content="The first half of a sentence", filter_after=3), "content filter (violence (medium))"),
]


@pytest.mark.parametrize(("status", "reply", "words"), OUTCOMES, ids=[o[0] for o in OUTCOMES])
def test_an_outcome_is_not_retried_and_is_shown_everywhere(emulator, status, reply, words):
    emulator.script("b/beta", reply)
    result = fusion().run(f"Q {status}")
    beta = result.responses[1]
    assert beta.status == status and words in beta.error
    assert len(emulator.chats("b/beta")) == 1  # a retry costs the same and ends the same
    assert result.status == "partial" and result.answer
    assert beta.cost_usd == pytest.approx(sum(c for m, c in emulator.charges if m == "b/beta"))  # billed
    failed = {f["model"]: f for f in result.failed_models}
    assert failed["b/beta"]["status"] == status and words in failed["b/beta"]["error"]
    as_dict = result.to_dict()
    assert as_dict["responses"][1]["status"] == status
    assert FusionResult.from_dict(as_dict).responses[1].status == status
    label = {"truncated": "out of tokens", "reasoning_only": "only reasoning"}.get(status, status)
    for view in (repr(result), html.unescape(result._repr_html_()), result._repr_markdown_()):
        assert label in view and words.split(" (")[0].replace("'", "’") in view.replace("'", "’")


def test_a_filtered_partial_answer_is_kept_marked_never_judged_nor_cached(emulator):
    emulator.script("b/beta", Reply(content="The first half of a sentence that the filter cut", filter_after=4))
    result = fusion().run("Q filter")
    beta = result.responses[1]
    assert beta.status == "filtered" and beta.content == "The first half of"
    assert "The first half of" not in judge_prompt(emulator)
    assert "Partial output" in result._repr_html_()
    fusion().run("Q filter")  # the cache does not hold it as an answer: asked again
    assert len(emulator.chats("b/beta")) == 2


def test_a_fallback_member_is_tried_after_an_outcome(emulator):
    emulator.script("a/alpha", Reply(refusal="No."))
    result = fusion(panel=["a/alpha|z/zeta", "b/beta"]).run("Q fallback")
    first = result.responses[0]
    assert first.ok and first.served_by == "z/zeta"
    assert len(emulator.chats("a/alpha")) == 1 and len(emulator.chats("z/zeta")) == 1


def test_judge_that_spends_its_budget_reasoning_is_an_empty_completion(emulator):
    emulator.script(JUDGE, Reply(empty=True, reasoning="Weighing the answers", finish_reason="length"))
    result = fusion().run("Q judge budget")
    assert result.status == "judge_failed" and result.failure_reason == "judge_empty_completion"
    assert len(emulator.chats(JUDGE)) == 1


# -- reasoning kept, shown collapsed, never judged ---------------------------------------------


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content", "reasoning_details", "think", "think_close"])
def test_reasoning_is_kept_apart_from_the_answer_and_never_judged(emulator, field, tmp_path):
    thoughts = "Secret chain of thought about vector clocks"
    emulator.script("a/alpha", Reply(content="Vector clocks order events.", reasoning=thoughts, reasoning_field=field))
    result = fusion().run(f"Q reasoning {field}")
    alpha = result.responses[0]
    assert alpha.content == "Vector clocks order events." and alpha.reasoning == thoughts
    assert thoughts not in judge_prompt(emulator)
    page = result._repr_html_()
    assert 'class="fm-d fm-reasoning"' in page and '<details class="fm-d fm-reasoning" open' not in page
    assert thoughts in page
    assert "<details><summary>Reasoning" in result._repr_markdown_()
    assert "reasoning (" in repr(result)
    loaded = FusionResult.load(result.save(tmp_path / "r.json"))
    assert loaded.responses[0].reasoning == thoughts
    again = fusion().run(f"Q reasoning {field}")  # from the cache, the reasoning comes back too
    assert again.responses[0].cached and again.responses[0].reasoning == thoughts


def test_reasoning_tokens_are_read_and_billed_outside_completion_tokens_are_priced(spec_emulator):
    # Gemini's layout: total_tokens > prompt + completion; the thoughts are billed all the same.
    spec_emulator.script("a/alpha", Reply(content="Short.", reasoning="x " * 200, reasoning_tokens=500,
                                          reasoning_billed="outside"))  # fmt: skip
    result = fusion().run("Q gemini layout")
    alpha = result.responses[0]
    assert alpha.reasoning_tokens == 500 and alpha.completion_tokens >= 500
    charged = sum(c for m, c in spec_emulator.charges if m == "a/alpha")
    assert alpha.cost_estimated and alpha.cost_usd == pytest.approx(charged, rel=1e-6)
    pytest.importorskip("pandas")
    row = result.to_frame().set_index("model").loc["a/alpha"]  # the frame has what the response has
    assert row["reasoning"] == alpha.reasoning and row["reasoning_tokens"] == 500
    assert row["finish_reason"] == alpha.finish_reason == "stop"


# -- OpenAI's contract (spec mode): usage asked for, costs from prices, unknown never $0 ---------


def test_spec_server_streams_carry_usage_because_it_is_asked(spec_emulator):
    result = fusion().run("Q spec")
    assert all(r.body["stream_options"] == {"include_usage": True} for r in spec_emulator.chats())
    assert all(r.prompt_tokens and r.completion_tokens for r in result.calls)
    # No `cost` on this server: estimated from the /models prices, equal to what it billed.
    assert all(r.cost_estimated for r in result.calls)
    assert result.cost_complete and result.cost_usd == pytest.approx(spec_emulator.total_cost, rel=1e-6)


def test_spec_server_sends_usage_only_when_asked(spec_emulator):
    body = {"model": "a/x", "messages": [{"role": "user", "content": "Q"}], "stream": True}
    plain = httpx.post(f"{spec_emulator.base_url}/chat/completions", json=body).text
    asked = httpx.post(
        f"{spec_emulator.base_url}/chat/completions", json={**body, "stream_options": {"include_usage": True}}
    ).text
    assert '"usage"' not in plain and '"cost"' not in asked
    last = json.loads(asked.strip().split("\n\n")[-2].removeprefix("data: "))
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0


def test_spec_server_errors_have_openai_shape(spec_emulator):
    spec_emulator.script("a/x", Reply(status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))
    resp = httpx.post(
        f"{spec_emulator.base_url}/chat/completions",
        json={"model": "a/x", "messages": [{"role": "user", "content": "Q"}]},
    )
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "rate_limit_exceeded"
    assert resp.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"


def test_server_rejecting_stream_options_is_remembered(spec_emulator):
    spec_emulator.script("a/alpha", Reply(rejects=["stream_options"]))
    fusion(panel=["a/alpha"]).run("Q reject once")
    sent = ["stream_options" in r.body for r in spec_emulator.chats("a/alpha")]
    assert sent[:2] == [True, False]
    before = len(spec_emulator.chats())
    fusion(panel=["a/alpha"]).run("Q reject twice")  # remembered per endpoint: never sent again
    later = spec_emulator.chats()[before:]
    assert later and all("stream_options" not in r.body for r in later)


def test_http_date_retry_after_is_honoured(emulator):
    emulator.script("b/beta", Reply(status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"), Reply())
    result = fusion().run("Q date")
    assert result.status == "ok" and len(emulator.chats("b/beta")) == 2  # a date in the past: retry at once


def test_usage_null_on_a_priced_endpoint_is_unknown_never_zero(emulator):
    raw = json.dumps({"id": "x", "object": "chat.completion", "model": "a/alpha", "usage": None,
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "An answer."},
                                   "finish_reason": "stop"}]}).encode()  # fmt: skip
    emulator.script("a/alpha", Reply(raw=raw))
    result = fusion(stream=False).run("Q usage null")
    alpha = result.responses[0]
    assert alpha.ok and alpha.cost_usd is None and alpha.cost_unknown
    assert not result.cost_complete and result.cost_usd == pytest.approx(emulator.total_cost)
    assert "≥ $" in repr(result) and "unknown" in repr(result)
    assert result.to_dict()["cost_complete"] is False


def test_a_result_with_no_known_cost_says_unknown(spec_emulator, monkeypatch):
    # A server without prices and without costs: nothing is known; shown as unknown, never $0.
    monkeypatch.setattr("fusion_magic._engine.context.load_models", _no_models)
    result = fusion().run("Q nothing known")
    assert result.cost_usd is None and not result.cost_complete
    assert "cost=unknown" in repr(result) and "$0" not in repr(result).split("\n")[0]
    from fusion_magic import ledger

    assert ledger().totals()["cost_usd"] is None
    assert "unknown spent" in repr(ledger())


async def _no_models(*args, **kwargs):
    raise RuntimeError("no /models here")


# -- the reasoning setting ----------------------------------------------------------------------


def test_reasoning_setting_goes_out_as_reasoning_effort_to_an_openai_server(emulator):
    fusion(reasoning="high").run("Q effort")
    member = emulator.chats("a/alpha")[0].body
    assert member["reasoning_effort"] == "high" and "reasoning" not in member
    assert member["max_tokens"] == 16000  # room for the thoughts and the answer


def test_reasoning_budget_in_openrouter_form(emulator):
    import asyncio

    async def go(dialect: str) -> dict:
        client = ChatClient(Endpoint(base_url=emulator.base_url, dialect=dialect))
        await client.chat("a/x", [{"role": "user", "content": "Q"}], reasoning=3000)
        await client.aclose()
        return emulator.chats("a/x")[-1].body

    assert asyncio.run(go("openrouter"))["reasoning"] == {"max_tokens": 3000}
    assert asyncio.run(go("openai"))["reasoning_effort"] == "medium"


def test_member_reasoning_wins_and_bad_values_are_refused(emulator):
    from fusion_magic._base.config import Member
    from fusion_magic._base.errors import ConfigError

    fusion(panel=[Member("a/alpha", reasoning="low"), "b/beta"], reasoning="high").run("Q member effort")
    assert emulator.chats("a/alpha")[0].body["reasoning_effort"] == "low"
    assert emulator.chats("b/beta")[0].body["reasoning_effort"] == "high"
    with pytest.raises(ConfigError, match="reasoning must be an effort"):
        Fusion(panel=PANEL, judge=JUDGE, reasoning="very hard")
    with pytest.raises(ConfigError, match="token budget must be a positive"):
        Member("a/x", reasoning=0)


def test_local_preset_keeps_its_small_cap():
    assert Fusion("local").max_tokens == 300
    assert Fusion("local", max_tokens=500).max_tokens == 500


def test_an_outcome_on_a_server_without_cost_is_priced_from_the_list(spec_emulator):
    # The refusal was billed; the server says tokens only, so the member's cost is tokens × list price.
    spec_emulator.script("b/beta", Reply(refusal="I won't."))
    result = fusion().run("Q refused spec")
    beta = result.responses[1]
    assert beta.status == "refused" and beta.cost_estimated and beta.prompt_tokens
    charged = sum(c for m, c in spec_emulator.charges if m == "b/beta")
    assert beta.cost_usd == pytest.approx(charged, rel=1e-6)
    assert result.cost_complete and result.cost_usd == pytest.approx(spec_emulator.total_cost, rel=1e-6)


def test_an_answer_cut_at_max_tokens_is_kept_and_marked(emulator):
    emulator.script("a/alpha", Reply(content="A long answer that stops", finish_reason="length"))
    result = fusion().run("Q cut short")
    alpha = result.responses[0]
    assert alpha.ok and alpha.finish_reason == "length"
    assert "A long answer that stops" in judge_prompt(emulator)  # an answer, judged as one
    for view in (repr(result), result._repr_html_(), result._repr_markdown_()):
        assert "cut short: max_tokens reached" in view


def test_emulator_cli_takes_the_mode():
    from fusion_magic.emulator.__main__ import main

    with pytest.raises(SystemExit):
        main(["--mode", "nonsense"])
    with pytest.raises(ValueError, match="mode must be"):
        Emulator(mode="nonsense")


def test_default_max_tokens_is_capped_by_what_the_model_lists(emulator):
    # 16000 would be refused by a model whose listing allows less output, or whose context is small.
    emulator.models.update({"a/alpha": {"max_completion_tokens": 4096}, "b/beta": {"context_length": 8192}})
    fusion().run("Q caps " + "word " * 400)
    assert emulator.chats("a/alpha")[0].body["max_tokens"] == 4096
    beta = emulator.chats("b/beta")[0].body["max_tokens"]
    assert 7000 < beta < 8192 - 400  # the context minus a generous estimate of the prompt
    assert emulator.chats("c/gamma")[0].body["max_tokens"] == 16000
    before = len(emulator.chats())
    fusion().run("Q caps " + "word " * 400)  # the capped requests are cached under what was sent
    assert len(emulator.chats()) == before


def test_hostile_reasoning_renders_inert(emulator):
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)> ![t](http://evil.example/x.png) </details>"
    emulator.script("a/alpha", Reply(content="Fine.", reasoning=evil))
    result = fusion().run("Q hostile reasoning")
    assert result.responses[0].reasoning == evil
    page = result._repr_html_()
    assert (
        "<script" not in page and "<img" not in page and "onerror=alert" not in page.replace("onerror=alert(2)&gt;", "")
    )
    md = result._repr_markdown_()
    assert "<script" not in md and "<img" not in md and "![t](" not in md  # no tag, no image fetch
    # The reasoning cannot close its own collapsed block early.
    assert md.count("</details>") == md.count("<details>")


@pytest.mark.parametrize("field", ["think", "think_close", "reasoning_content"])
def test_a_reasoning_judge_is_read_after_its_thoughts(emulator, field):
    # A judge that thinks first (DeepSeek-R1 style) still gives its verdict; its thoughts are kept apart.
    emulator.script(JUDGE, Reply(reasoning="Compare the three answers first.", reasoning_field=field))
    result = fusion().run(f"Q thinking judge {field}")
    assert result.status == "ok" and result.answer and result.analysis.consensus
    assert result.judge.reasoning == "Compare the three answers first."
    assert "Compare the three answers" not in result.answer
