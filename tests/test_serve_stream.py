"""`fusion-magic serve` with ``stream: true`` sends the judge's answer while the judge writes it.

End to end with the official OpenAI SDK (the emulator's judge streams slowly), then `AnswerStream`'s
rules on drafts that stop continuing what was sent.
"""

from __future__ import annotations

import json
import time

import openai
import pytest
from helpers import JUDGE, PANEL

from fusion_magic._fronts.openai_api import answer_chunks
from fusion_magic._fronts.serve import FusionServer
from fusion_magic._fronts.serve_stream import HOLD_CHARS, REVISED, AnswerStream, stable_part
from fusion_magic._render.progress import JUDGE as JUDGE_KEY
from fusion_magic._render.progress import Tracker
from fusion_magic._values.result import FusionResult
from fusion_magic.emulator import Reply

OURS = {"fusion": {"panel": PANEL, "judge": JUDGE}}
ANSWER = " ".join(
    f"Step {i}: measure the table, then shard by tenant only when one node cannot keep up." for i in range(1, 9)
)


def verdict(answer: str = ANSWER) -> str:
    "A judge reply in our shape, the answer first and a long analysis after it (as judges write)."
    return json.dumps(
        {
            "answer": answer,
            "consensus": [f"Point {i}: every member says to measure before sharding anything." for i in range(12)],
            "contradictions": [],
            "partial_coverage": [],
            "unique_insights": [],
            "blind_spots": [f"Blind spot {i}: nobody says how to roll a shard back." for i in range(8)],
        }
    )


@pytest.fixture
def server(emulator):
    srv = FusionServer(port=0, preset="budget").start()
    yield srv
    srv.stop()


def test_the_judge_s_answer_arrives_in_chunks_before_the_judge_finishes(server, emulator):
    emulator.script(JUDGE, Reply(content=verdict(), tokens_per_s=120))  # ~4 s of streaming
    arrivals = []  # (content, the judge's stream had ended by then)
    fusion = None
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120) as client:
        stream = client.chat.completions.create(
            model="fusion", messages=[{"role": "user", "content": "Shard now?"}], stream=True, extra_body=OURS
        )
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    judged = any(model == JUDGE for model, _ in emulator.charges)  # charged at its stream's end
                    arrivals.append((choice.delta.content, judged))
            fusion = (chunk.model_extra or {}).get("fusion", fusion)  # rides on the last chunk
    text = "".join(content for content, _ in arrivals)
    assert text == ANSWER == fusion["answer"]  # the chunks add up to the result's answer
    early = [content for content, judged in arrivals if not judged]
    assert len(early) >= 3, arrivals  # several chunks while the judge was still writing
    assert "".join(early) == ANSWER[: len("".join(early))]


def test_a_failed_judge_after_a_streamed_draft_ends_in_an_error_event(server, emulator):
    # The judge writes half its answer, then the connection drops on every try: the draft went out,
    # then the stream says what failed (nothing pretends the draft was the whole answer).
    reply = verdict()
    pieces = len(reply.split())
    emulator.script(JUDGE, Reply(content=reply, tokens_per_s=200, cut_after=pieces // 3))
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120) as client:
        stream = client.chat.completions.create(
            model="fusion", messages=[{"role": "user", "content": "Shard?"}], stream=True, extra_body=OURS
        )
        parts, finishes = [], []
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                for choice in chunk.choices:
                    parts.append(choice.delta.content or "")
                    finishes.append(choice.finish_reason)
    text = "".join(parts)
    assert text and ANSWER.startswith(text) and text != ANSWER
    assert "stop" not in finishes
    assert "judge" in str(caught.value).lower()


# -- AnswerStream's rules ------------------------------------------------------------------------------


def judge_tracker(written: str) -> Tracker:
    tracker = Tracker(["a/x"], "j/z")
    tracker.update(JUDGE_KEY, state="waiting")
    tracker.delta(JUDGE_KEY, written)
    return tracker


def contents(chunks) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_a_draft_goes_out_as_it_grows_less_a_held_tail():
    reply = verdict()
    cut = reply.index("Step 3")
    tracker = judge_tracker(reply[:cut])
    stream = AnswerStream(tracker, "fusion", "chatcmpl-1")
    first = stream.drafts()
    assert first[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert contents(first) == ANSWER[: cut - len('{"answer": "') - HOLD_CHARS]
    assert stream.drafts() == []  # nothing new
    tracker.delta(JUDGE_KEY, reply[cut : cut + 200])
    second = stream.drafts()
    assert second[0]["choices"][0]["delta"].get("role") is None  # the role goes once
    assert contents(first + second) == stream.sent and ANSWER.startswith(stream.sent)
    result = FusionResult(prompt="Q", status="ok", answer=ANSWER)
    end = stream.ending(result)
    assert contents(first + second + end) == ANSWER
    assert end[-1]["choices"][0]["finish_reason"] == "stop"


def test_markup_a_judge_leaks_is_held_back_until_the_result_decides():
    assert stable_part("Use Postgres. </answer> <output type=" + "x" * 50) == "Use Postgres. "
    assert stable_part("short") == ""  # under the held tail


def test_a_judge_starting_over_pauses_the_draft_and_the_end_says_it_was_revised():
    first = verdict("Alpha answer, " * 10)
    tracker = judge_tracker(first[:120])
    stream = AnswerStream(tracker, "fusion", "c")
    sent = contents(stream.drafts())
    assert sent.startswith("Alpha")
    tracker.update(JUDGE_KEY, state="waiting")  # re-asked: the reply starts over
    assert stream.drafts() == []
    tracker.delta(JUDGE_KEY, verdict("Beta answer, " * 10)[:200])  # a different answer, longer by now
    assert stream.drafts() == [] and stream.stopped
    final = "Beta answer, " * 10
    end = stream.ending(FusionResult(prompt="Q", status="ok", answer=final))
    assert contents(end) == REVISED + final  # what was sent stays, the final answer follows in full


def test_nothing_streamed_early_ends_like_the_plain_answer():
    tracker = judge_tracker("")
    stream = AnswerStream(tracker, "fusion", "c", live=False)
    tracker.delta(JUDGE_KEY, verdict())
    assert stream.drafts() == []  # server-tool mode: the primary writes the answer
    result = FusionResult(prompt="Q", status="ok", answer=ANSWER)
    ours, plain = stream.ending(result), answer_chunks(result, "fusion", "c")
    assert contents(ours) == contents(plain) == ANSWER
    assert [c["choices"][0]["finish_reason"] for c in ours] == [c["choices"][0]["finish_reason"] for c in plain]


def test_progress_comments_still_come_while_the_panel_works(server, emulator):
    import httpx

    emulator.script(PANEL[2], Reply(latency=1.6))
    body = {"model": "fusion", "stream": True, "messages": [{"role": "user", "content": "Slow?"}], **OURS}
    started = time.monotonic()
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=60) as resp:
        lines = [line for line in resp.iter_lines() if line]
    comments = [line for line in lines if line.startswith(": fusion")]
    assert any("done in" in line for line in comments), comments
    assert lines[-1] == "data: [DONE]" and time.monotonic() - started >= 1.6


def test_in_server_tool_mode_the_primary_s_answer_streams_not_the_judge_s(server, emulator):
    emulator.script(
        "p/primary",
        Reply(tool_calls=[{"name": "fusion", "arguments": {"question": "Shard now?"}}]),
        Reply(content="Final answer from the primary."),
    )
    emulator.script(JUDGE, Reply(content=verdict(), tokens_per_s=300))
    with openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120) as client:
        stream = client.chat.completions.create(
            model="p/primary",
            messages=[{"role": "user", "content": "Shard now?"}],
            stream=True,
            tools=[{"type": "fusion", "parameters": {"analysis_models": PANEL, "model": JUDGE}}],
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Final answer from the primary."  # the judge's answer went to the primary, not the client
    assert len(emulator.chats(JUDGE)) == 1
