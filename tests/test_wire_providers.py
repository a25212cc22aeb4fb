"""What real providers send, read as they mean it: usage on streams, reasoning, refusals, filters, costs.

Each test feeds the client bytes recorded from a provider (tests/fixtures/providers, see its README)
or modelled on the provider's documentation (the URL is given next to the bytes).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from fusion_magic._base.endpoint import Endpoint
from fusion_magic._base.errors import ProviderError
from fusion_magic._base.reasoning import split_think
from fusion_magic._engine.client import ChatClient, forget_stream_options
from fusion_magic._engine.usage import read_usage, retry_after_seconds
from fusion_magic._engine.wire import Completion

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
MESSAGES = [{"role": "user", "content": "Q"}]


@pytest.fixture(autouse=True)
def _fresh_negotiation():
    forget_stream_options()
    yield
    forget_stream_options()


def sse(*objs: Any, done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(o).encode() + b"\n\n" for o in objs)
    return out + (b"data: [DONE]\n\n" if done else b"")


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    choice.update(extra.pop("choice", {}))
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": [choice], **extra}


def body(message: dict[str, Any], finish: str = "stop", usage: Any = None, **extra: Any) -> bytes:
    choice = {
        "index": 0,
        "message": {"role": "assistant", **message},
        "finish_reason": finish,
        **extra.pop("choice", {}),
    }
    return json.dumps(
        {"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice], "usage": usage, **extra}
    ).encode()


class Server:
    """Answers each request with the next scripted (status, bytes, headers); logs request bodies."""

    def __init__(self, *answers: tuple[int, bytes, dict[str, str]]) -> None:
        self.answers, self.bodies = list(answers), []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        status, data, headers = self.answers[min(len(self.bodies), len(self.answers)) - 1]
        stream = data.lstrip()[:5] in (b"data:", b": OPE")
        ctype = "text/event-stream" if stream else "application/json"
        return httpx.Response(status, content=data, headers={"content-type": ctype, **headers})

    def chat(self, *, stream: bool = True, endpoint: Endpoint | None = None, **kw: Any) -> Completion:
        async def go() -> Completion:
            where = endpoint or Endpoint(base_url="http://provider.test/v1")
            client = ChatClient(where, transport=httpx.MockTransport(self.handler), max_retries=kw.pop("retries", 2))
            try:
                return await client.chat("m/x", MESSAGES, stream=stream, **kw)
            finally:
                await client.aclose()

        return asyncio.run(go())


def ok(data: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    return 200, data, headers or {}


# -- usage on streams -------------------------------------------------------------------------


def test_openai_stream_usage_is_asked_for_and_read():
    # Recorded from api.openai.com: usage only because include_usage was asked, in a `choices: []` chunk.
    server = Server(ok((FIXTURES / "openai_stream_json_schema.sse").read_bytes()))
    done = server.chat()
    assert server.bodies[0]["stream_options"] == {"include_usage": True}
    assert (done.prompt_tokens, done.completion_tokens, done.cost_usd) == (172, 29, None)
    assert done.content.startswith("{")


def test_a_non_streamed_request_never_sends_stream_options():
    # https://platform.openai.com/docs/api-reference/chat/create: stream_options "only set this when stream: true".
    server = Server(ok(body({"content": "hi"}, usage={"prompt_tokens": 3, "completion_tokens": 1})))
    server.chat(stream=False)
    assert "stream_options" not in server.bodies[0]


def test_a_server_that_rejects_stream_options_is_asked_again_without_and_remembered():
    # Older Azure api-versions: 400 "Unrecognized request argument supplied: stream_options"
    # (https://github.com/songquanpeng/one-api/issues/1423).
    rejected = json.dumps(
        {
            "error": {
                "message": "Unrecognized request argument supplied: stream_options",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }  # fmt: skip
    ).encode()
    answer = sse(chunk({"content": "fine"}), chunk({}, "stop"))
    server = Server((400, rejected, {}), ok(answer), ok(answer))
    assert server.chat().content == "fine"
    assert ["stream_options" in b for b in server.bodies] == [True, False]
    server.chat()  # remembered for this server: no second rejection
    assert ["stream_options" in b for b in server.bodies] == [True, False, False]


def test_a_400_about_something_else_is_not_taken_for_a_stream_options_rejection():
    bad = json.dumps({"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}})
    server = Server((400, bad.encode(), {}))
    with pytest.raises(ProviderError, match="temperature"):
        server.chat()
    assert len(server.bodies) == 1


def test_groq_usage_in_x_groq_is_read():
    # https://console.groq.com/docs/api-reference#chat-create: `x_groq.usage` on the final chunk.
    usage = {"queue_time": 0.16, "prompt_tokens": 20, "prompt_time": 0.013, "completion_tokens": 4, "total_tokens": 24}
    server = Server(ok(sse(chunk({"content": "Hi!"}), chunk({}, "stop", x_groq={"id": "req_1", "usage": usage}))))
    done = server.chat()
    assert (done.prompt_tokens, done.completion_tokens) == (20, 4)


# -- reasoning --------------------------------------------------------------------------------


def test_openrouter_reasoning_stream_is_kept_once_and_apart_from_the_answer():
    # Recorded: OpenRouter sends the same thoughts in `reasoning` and in `reasoning_details`.
    done = Server(ok((FIXTURES / "or_stream_reasoning_thinking.sse").read_bytes())).chat()
    assert done.reasoning.startswith("The capital of France")
    assert done.reasoning.count("The capital") == 1
    assert "Paris" in done.content and done.reasoning not in done.content
    assert done.reasoning_tokens == 90 and done.cost_usd == pytest.approx(0.002139)


def test_recorded_non_streamed_reasoning_answer_keeps_its_reasoning_tokens():
    text = (FIXTURES / "or_chat_reasoning_gpt5mini.json").read_text()
    done = Server(ok(text.encode())).chat(stream=False)
    assert done.reasoning_tokens == 704 and done.completion_tokens == 1515 and done.cost_usd is None
    assert done.content.startswith("Brief summary")


def test_llama_cpp_reasoning_content_deltas():
    # llama.cpp server with --reasoning-format deepseek (https://github.com/ggml-org/llama.cpp/tree/master/tools/server):
    # thoughts stream in `delta.reasoning_content`, the answer in `delta.content`.
    data = sse(
        chunk({"reasoning_content": "I"}),
        chunk({"reasoning_content": " need to add."}),
        chunk({"content": "4"}),
        chunk({}, "stop"),
    )
    done = Server(ok(data)).chat()
    assert (done.content, done.reasoning) == ("4", "I need to add.")


def test_deepseek_message_reasoning_content():
    # https://api-docs.deepseek.com/guides/reasoning_model: `message.reasoning_content` next to `content`,
    # `completion_tokens_details.reasoning_tokens` inside completion_tokens.
    usage = {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52,
             "completion_tokens_details": {"reasoning_tokens": 30}}  # fmt: skip
    done = Server(ok(body({"content": "9.8 is larger.", "reasoning_content": "Compare 9.8 and 9.11."}, usage=usage)))
    got = done.chat(stream=False)
    assert (got.content, got.reasoning, got.reasoning_tokens, got.completion_tokens) == (
        "9.8 is larger.",
        "Compare 9.8 and 9.11.",
        30,
        40,
    )


def test_reasoning_details_summaries_are_read_and_encrypted_ones_skipped():
    # https://openrouter.ai/docs/use-cases/reasoning-tokens#reasoning-details: text, summary, encrypted items.
    details = [
        {"type": "reasoning.summary", "summary": "Checked both options.", "format": "openai-responses-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "gAAAAB...", "format": "openai-responses-v1", "index": 1},
    ]
    done = Server(ok(body({"content": "A.", "reasoning_details": details}))).chat(stream=False)
    assert done.reasoning == "Checked both options." and done.content == "A."


@pytest.mark.parametrize(
    ("content", "answer", "thoughts", "finished"),
    [
        # Groq reasoning_format=raw (https://console.groq.com/docs/reasoning): a whole block first.
        ("<think>\nAdd them.\n</think>\n\nThe sum is 4.", "The sum is 4.", "Add them.", True),
        # DeepSeek-R1 templates open the block in the prompt (https://github.com/deepseek-ai/DeepSeek-R1/issues/352).
        ("Add them.\n</think>\n\nThe sum is 4.", "The sum is 4.", "Add them.", True),
        ("<think>Still thinking about", "", "Still thinking about", False),
        ("No tags here; `</b>` is fine.", "No tags here; `</b>` is fine.", "", True),
        # A tag quoted inside an answer that did not start with thoughts stays in the answer.
        ("Use <think> and </think> tags.", "Use <think> and </think> tags.", "", True),
    ],
)
def test_split_think(content, answer, thoughts, finished):
    assert split_think(content) == (answer, thoughts, finished)


def test_think_block_streamed_in_pieces_moves_to_the_reasoning():
    pieces = ["<thi", "nk>Plan", " it.</th", "ink>\n", "Done."]
    done = Server(ok(sse(*(chunk({"content": p}) for p in pieces), chunk({}, "stop")))).chat()
    assert (done.content, done.reasoning) == ("Done.", "Plan it.")


# -- outcomes: not retried, billed, with their reason ------------------------------------------


def test_budget_spent_on_reasoning_is_an_outcome_not_a_retry():
    # Azure o4-mini, all 3072 tokens spent reasoning (https://community.openai.com/t/1359002):
    usage = {"completion_tokens": 3072, "prompt_tokens": 10766, "total_tokens": 13838,
             "completion_tokens_details": {"reasoning_tokens": 3072}}  # fmt: skip
    server = Server(ok(body({"content": "", "refusal": None}, finish="length", usage=usage)))
    with pytest.raises(ProviderError, match="ran out of tokens while reasoning") as caught:
        server.chat(stream=False)
    assert caught.value.outcome == "truncated" and not caught.value.retryable
    assert (caught.value.prompt_tokens, caught.value.completion_tokens) == (10766, 3072)
    assert len(server.bodies) == 1  # a retry would cost the same and end the same


def test_whole_reply_in_the_reasoning_field_is_an_outcome():
    # Ollama puts some models' whole reply in `message.reasoning` (https://github.com/ollama/ollama/blob/main/docs/openai.md).
    server = Server(ok(body({"content": "", "reasoning": "The answer is 4."})))
    with pytest.raises(ProviderError, match="only reasoning") as caught:
        server.chat(stream=False)
    assert caught.value.outcome == "reasoning_only" and caught.value.partial.reasoning == "The answer is 4."
    assert len(server.bodies) == 1


def test_openai_refusal_is_an_outcome_with_its_text():
    # https://platform.openai.com/docs/guides/structured-outputs#refusals: `message.refusal`, content null.
    server = Server(ok(body({"content": None, "refusal": "I'm sorry, I cannot assist with that request."})))
    with pytest.raises(ProviderError, match="refused: I'm sorry, I cannot assist") as caught:
        server.chat(stream=False)
    assert caught.value.outcome == "refused" and len(server.bodies) == 1


def test_streamed_refusal_deltas():
    data = sse(chunk({"refusal": "I can't"}), chunk({"refusal": " help with that."}), chunk({}, "stop"))
    with pytest.raises(ProviderError, match="refused: I can't help with that.") as caught:
        Server(ok(data)).chat()
    assert caught.value.outcome == "refused"


AZURE_FILTER = {  # https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": True, "severity": "medium"},
}


def test_azure_filtered_completion_names_the_category():
    data = body({"content": None}, finish="content_filter", choice={"content_filter_results": AZURE_FILTER})
    with pytest.raises(ProviderError, match=r"content filter \(violence \(medium\)\)") as caught:
        Server(ok(data)).chat(stream=False)
    assert caught.value.outcome == "filtered" and not caught.value.retryable


def test_stream_cut_by_a_filter_mid_sentence_is_marked_not_complete():
    # https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-streaming: the filter ends
    # the stream with finish_reason "content_filter" after part of the answer.
    data = sse(
        {"id": "", "object": "", "model": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]},
        chunk({"content": "The first half of a"}),
        chunk({"content": " sentence"}),
        chunk({}, "content_filter", choice={"content_filter_results": AZURE_FILTER}),
    )
    with pytest.raises(ProviderError, match="after 28 characters") as caught:
        Server(ok(data)).chat()
    assert caught.value.outcome == "filtered"
    assert caught.value.partial.content == "The first half of a sentence"


def test_azure_prompt_filter_400_is_filtered_and_not_retried():
    data = json.dumps(
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation"},
            }
        }  # fmt: skip
    ).encode()
    server = Server((400, data, {}))
    with pytest.raises(ProviderError, match="content management policy") as caught:
        server.chat()
    assert caught.value.outcome == "filtered" and len(server.bodies) == 1


def test_an_empty_answer_with_nothing_else_is_still_retried():
    empty = body({"content": ""}, usage={"prompt_tokens": 5, "completion_tokens": 0})
    server = Server(ok(empty), ok(body({"content": "there"})))
    assert server.chat(stream=False).content == "there" and len(server.bodies) == 2


# -- costs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 5, "cost": "0.00042"}, (10, 5, None, 0.00042)),
        ({"prompt_tokens": 10, "completion_tokens": 5, "cost": "n/a"}, (10, 5, None, None)),
        ({"prompt_tokens": 10, "completion_tokens": 5, "cost": None}, (10, 5, None, None)),
        # https://openrouter.ai/docs/use-cases/usage-accounting + BYOK docs' example: the fee plus the upstream cost.
        (
            {
                "prompt_tokens": 194,
                "completion_tokens": 2,
                "total_tokens": 196,
                "cost": 0.95,
                "is_byok": True,
                "cost_details": {"upstream_inference_cost": 19},
            },
            (194, 2, None, 19.95),
        ),  # fmt: skip
        # Not BYOK: `cost` already is the whole charge, the upstream figure is informative only.
        (
            {
                "prompt_tokens": 1,
                "completion_tokens": 1,
                "cost": 0.5,
                "is_byok": False,
                "cost_details": {"upstream_inference_cost": 0.4},
            },
            (1, 1, None, 0.5),
        ),  # fmt: skip
        # Gemini's compatibility layer bills thoughts outside completion_tokens (11 + 9 vs 88:
        # https://github.com/QuantumNous/new-api/issues/1358).
        ({"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 88}, (11, 77, 68, None)),
    ],
)
def test_usage_shapes(usage, expected):
    got = read_usage(usage)
    assert (got.prompt_tokens, got.completion_tokens, got.reasoning_tokens, got.cost_usd) == pytest.approx(expected)


def test_usage_null_is_no_usage():
    assert read_usage(None) is None
    done = Server(ok(body({"content": "hi"}, usage=None))).chat(stream=False)
    assert (done.prompt_tokens, done.completion_tokens, done.cost_usd) == (None, None, None)


def test_litellm_cost_header_is_read():
    # https://docs.litellm.ai/docs/proxy/response_headers: x-litellm-response-cost (float text).
    data = body({"content": "hi"}, usage={"prompt_tokens": 3, "completion_tokens": 1})
    done = Server(ok(data, {"x-litellm-response-cost": "0.000123"})).chat(stream=False)
    assert done.cost_usd == pytest.approx(0.000123)


def test_gemini_error_list_body_is_read():
    # Gemini's OpenAI layer answers errors as a list (https://github.com/jackmpcollins/magentic/issues/382).
    data = json.dumps([{"error": {"code": 400, "message": 'Invalid JSON payload received. Unknown name "x"',
                                  "status": "INVALID_ARGUMENT"}}]).encode()  # fmt: skip
    with pytest.raises(ProviderError, match="Invalid JSON payload received"):
        Server((400, data, {})).chat()


# -- Retry-After as an HTTP date ---------------------------------------------------------------


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


def test_retry_after_forms():
    now = time.time()
    future = format_datetime(datetime.fromtimestamp(now + 30, timezone.utc), usegmt=True)
    assert retry_after_seconds({"retry-after": future}, now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_an_http_date_past_the_deadline_fails_at_once_as_rate_limited():
    limited = json.dumps({"error": {"message": "Rate limit reached", "type": "requests"}}).encode()
    server = Server((429, limited, {"retry-after": http_date(120)}))

    async def go() -> None:
        client = ChatClient(Endpoint(base_url="http://provider.test/v1"), transport=httpx.MockTransport(server.handler))
        deadline = asyncio.get_running_loop().time() + 5
        started = time.monotonic()
        with pytest.raises(ProviderError, match=r"rate limited \(429, retry after 1\d\d(\.\d)? s\)"):
            await client.chat("m/x", MESSAGES, deadline=deadline)
        assert time.monotonic() - started < 4  # told at once, not after waiting
        await client.aclose()

    asyncio.run(go())
    assert len(server.bodies) == 1


@pytest.mark.parametrize(("error_type", "outcome"), [("content_policy_violation", "filtered"), ("refusal", "refused")])
def test_openrouter_typed_in_band_errors_are_outcomes(error_type, outcome):
    # https://openrouter.ai/docs/api-reference/errors: `metadata.error_type` names the kind of failure.
    error = {"code": 400, "message": "Blocked by the provider", "metadata": {"error_type": error_type}}
    data = sse(chunk({"content": "Half an"}), {**chunk({}, "error"), "error": error})
    server = Server(ok(data))
    with pytest.raises(ProviderError, match="Blocked by the provider") as caught:
        server.chat()
    assert caught.value.outcome == outcome and not caught.value.retryable and len(server.bodies) == 1
    assert caught.value.partial.content == "Half an"


@pytest.mark.parametrize(
    ("pieces", "shown"),
    [
        (["<thi", "nk>Plan", " it.</th", "ink>\n", "Done", " now."], "Done now."),
        (["The answer", " is 4."], "The answer is 4."),
        (["<", "b>bold</b> text"], "<b>bold</b> text"),  # a tag that is not <think> passes on
    ],
)
def test_live_text_skips_a_leading_think_block(pieces, shown):
    seen: list[str] = []
    data = sse(*(chunk({"content": p}) for p in pieces), chunk({}, "stop"))
    Server(ok(data)).chat(on_delta=seen.append)
    assert "".join(seen) == shown
