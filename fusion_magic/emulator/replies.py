"""What the emulator says: the scripted `Reply`, the default answer and the judge's analysis."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any, Literal

from . import methods
from .grades import grade_answer, is_grade_request
from .tools import tool_results, tool_round, with_results

__all__ = ["Reply", "answer_text", "estimate_tokens", "is_judge_request", "prompt_text", "rejection", "split_pieces"]


@dataclass
class Reply:
    """One scripted answer; every field is optional and the defaults give a plain, fast success."""

    content: str | None = None  # None: the default answer (or judge JSON for a judge request)
    latency: float = 0.0  # seconds before the first content token
    tokens_per_s: float | None = None  # None: every chunk at once
    status: int = 200  # >= 400: an OpenRouter error JSON (also for stream requests)
    retry_after: float | str | None = None  # sent as the Retry-After header (a str as is: an HTTP date)
    hang: bool = False  # accept the request, never answer, until the client goes away
    stall_after: int | None = None  # stream N content chunks, then silence
    cut_after: int | None = None  # stream N content chunks, then close the TCP connection
    malformed: bool = False  # 200 with a body that does not parse
    midstream_error: dict[str, Any] | None = None  # in-band error chunk halfway through, then [DONE]
    empty: bool = False  # content ""
    prompt_tokens: int | None = None  # default: ~len(prompt)/4
    completion_tokens: int | None = None  # default: ~len(content)/4
    cost: float | None = None  # default: tokens x the model's price
    usage_layout: Literal["separate", "finish"] = "separate"  # usage after, or on, the finish chunk
    pad: bool = False  # non-stream: whitespace padding before the JSON, as OpenRouter sends
    served_model: str | None = None  # the response's "model" (fallbacks, aliases)
    raw: bytes | None = None  # replay these exact bytes
    raw_content_type: str | None = None  # content type of `raw` (guessed when None)
    json_valid: bool = True  # judge requests: False answers prose instead of JSON
    # Judge requests: how the judge writes its JSON. "ours" (fusion_magic's schema), "fusion"
    # (OpenRouter Fusion's five lists, no answer), "nested" ({"analysis": {...}} plus the answer),
    # "tool_result" (a Fusion tool result), "near_json" (fenced, camelCase, trailing commas, chatter).
    judge_shape: Literal["ours", "fusion", "nested", "tool_result", "near_json"] = "ours"
    # response_format types this server refuses (e.g. ["json_schema"]), answered with reject_status.
    rejects: list[str] | None = None
    reject_status: int = 400
    misattribute: bool = False  # judge requests: quote the wrong member for a stance, invent an insight's quote
    keepalive: float = 0.5  # seconds between ": OPENROUTER PROCESSING" comments while waiting
    linger: float = 0.0  # stream: seconds the body stays open after [DONE]
    error_message: str | None = None  # replaces the realistic default message of an error status
    tool_calls: list[dict[str, Any]] | None = None  # [{"name", "arguments": dict|str, "id"?}]
    # A member that uses tools: the calls of each step ([[{"name", "arguments"}], ...]). It asks for the
    # next step's calls while the conversation has fewer tool rounds, then answers (at once when the
    # request offers no tools or says tool_choice "none"); `content` may use {result} (the last tool
    # result) and {number} (the first number in it). See `fusion_magic.emulator.tools`.
    tool_rounds: list[list[dict[str, Any]]] | None = None
    provider: str | None = None  # the response's "provider" (default: derived from the model id)
    grade: Any = None  # pairwise grading requests: "A", "B", "tie", "longer", "shorter" or a function (see grades)
    citations: list[dict[str, str]] | None = None  # [{url, title}] sent as url_citation annotations
    marks: Any = None  # cross-examination requests: each statement's mark (see emulator.methods)
    turn: Any = None  # targeted-round requests: "rebut", "concede", "concede_no_reason" or a dict
    answer: Any = None  # plain (panel) requests: a function (the last user message) -> content
    # Reasoning models (see `dialects`): the thoughts; where they go ("think": a <think> block in content,
    # "think_close": only the closing tag); their tokens (~len/4); billed inside completion_tokens or
    # outside (Gemini: total_tokens > prompt + completion).
    reasoning: str | None = None
    reasoning_field: Literal["reasoning", "reasoning_content", "reasoning_details", "think", "think_close"] = (
        "reasoning"  # noqa: E501
    )
    reasoning_tokens: int | None = None
    reasoning_billed: Literal["inside", "outside"] = "inside"
    refusal: str | None = None  # message.refusal / delta.refusal, content null
    finish_reason: str | None = None  # overrides "stop" ("length", "content_filter")
    filter_after: int | None = None  # Azure's filter: N content chunks, then finish "content_filter"
    filter_categories: dict[str, str] | None = None  # {"violence": "medium"}: the categories that fired

    @classmethod
    def coerce(cls, value: Reply | str | dict[str, Any]) -> Reply:
        "A Reply from a Reply, a plain content string, or a dict of fields (as in a --script file)."
        if isinstance(value, Reply):
            return value
        if isinstance(value, str):
            return cls(content=value)
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise TypeError(f"unknown Reply fields {sorted(unknown)}; use some of {sorted(known)}")
        data = dict(value)
        if isinstance(data.get("raw"), str):
            data["raw"] = data["raw"].encode()
        return cls(**data)


def _text_of(content: Any) -> str:
    """The text of a message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def prompt_text(messages: list[dict[str, Any]]) -> str:
    "All message texts joined, for token estimates."
    return "\n".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))


def estimate_tokens(text: str) -> int:
    "About four characters per token, as a rough tokenizer would count."
    return math.ceil(len(text) / 4) if text else 0


def split_pieces(text: str) -> list[str]:
    "Token-like stream pieces (a word with its leading space) whose concatenation is `text`."
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces.append(tail)
    return pieces


def _last(messages: list[dict[str, Any]], role: str) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == role:
            return _text_of(m.get("content"))
    return ""


def _echo(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Members differ by more than their name, so tests can tell whose text reached the judge.
_TAKES = (
    "start from the simplest option that works and measure before optimising",
    "weigh the trade-offs explicitly, because the right choice depends on scale",
    "check the edge cases first, since that is where most answers go wrong",
    "look at what has worked in practice before reaching for anything new",
    "write down the constraints, then pick the option that violates none of them",
)


def _default_answer(model: str, messages: list[dict[str, Any]]) -> str:
    take = _TAKES[int(hashlib.sha1(model.encode()).hexdigest(), 16) % len(_TAKES)]
    question = _echo(_last(messages, "user")) or "your question"
    return (
        f'{model} here. On "{question}": I would {take}. In short, {model} recommends a careful, incremental approach.'
    )


def is_judge_request(body: dict[str, Any]) -> bool:
    "True when the request asks for JSON: a json_schema/json_object response_format or a system prompt."
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        return True
    messages = body.get("messages") or []
    return any(
        isinstance(m, dict) and m.get("role") in ("system", "developer") and "JSON" in _text_of(m.get("content"))
        for m in messages
    )


def _answers(text: str) -> dict[str, str]:
    "Each member label's answer text, as the judge prompt shows it."
    found = re.findall(r'<answer\s+member="([^"]+)"[^>]*>(.*?)(?=</answer[^>]*>|<answer\s|$)', text, re.S)
    answers: dict[str, str] = {}
    for label, body in found:
        answers.setdefault(label, body.strip())
    return answers


INVENTED_QUOTE = "I alone insist on checking every edge case twice before anything ships."


def quote_from(answer: str, words: int = 15) -> str:
    "A verbatim passage of ``answer`` as a careful judge would quote it: its last sentence of 4+ words."
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", answer) if len(s.split()) >= 4]
    chosen = sentences[-1] if sentences else answer.strip()
    return " ".join(chosen.split()[:words])


def _judge_object(
    model: str, labels: list[str], question: str, answers: dict[str, str], misattribute: bool = False
) -> dict[str, Any]:
    first, second, last = labels[0], labels[min(1, len(labels) - 1)], labels[-1]
    two = len(labels) >= 2

    def cite(label: str) -> dict[str, str]:
        return {"model": label, "quote": quote_from(answers.get(label, ""))}

    # On purpose: the first stance quotes the second member's answer, the insight quotes nobody's.
    first_quote = cite(second)["quote"] if misattribute else cite(first)["quote"]
    insight_quote = INVENTED_QUOTE if misattribute else cite(last)["quote"]
    return {
        "answer": (
            f'Synthesis by {model}: on "{question}" the panel agrees on an incremental approach; '
            f"{first} and {second} differ on where to start, and {last} adds a point the others missed."
        ),
        "consensus": [
            {
                "point": f'Every member answers "{question}" with an incremental approach.',
                "support": [cite(label) for label in labels],
            }
        ],
        "contradictions": [
            {
                "topic": "Where to start",
                "stances": [
                    {"model": first, "quote": first_quote, "stance": "Start from the simplest option that works."},
                    {**cite(second), "stance": "Weigh the trade-offs before choosing anything."},
                ],
            }
        ]
        if two
        else [],
        # "Partial" means not everyone: with two members only the first one covers the point.
        "partial_coverage": [
            {
                "models": (covered := labels[:2] if len(labels) >= 3 else labels[:1]),
                "point": "Measure before optimising.",
                "quotes": [cite(label) for label in covered],
            }
        ]
        if two
        else [],
        "unique_insights": [
            {"model": last, "quote": insight_quote, "insight": f"Only {last} insists on checking the edge cases first."}
        ],
        "blind_spots": ["No member says how to tell, later on, whether the choice worked."],
    }


def _fit_schema(obj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Keep only the schema's top-level properties, filling required ones we do not know."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt, dict) else None
    if not isinstance(schema, dict):
        return obj
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return obj
    empty = {"string": "", "array": [], "object": {}, "integer": 0, "number": 0, "boolean": False}
    out: dict[str, Any] = {}
    for key, spec in props.items():
        if key in obj:
            out[key] = obj[key]
        elif key in (schema.get("required") or []):
            out[key] = empty.get(str(spec.get("type"))) if isinstance(spec, dict) else None
    return out


def rejection(reply: Reply, body: dict[str, Any]) -> str | None:
    "The error message when this reply refuses the request's response_format, else None."
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if reply.rejects and kind in reply.rejects:
        return f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model."
    if reply.rejects and "stream_options" in reply.rejects and "stream_options" in body:
        return "Unrecognized request argument supplied: stream_options"  # older Azure api-versions
    return None


def _without_quotes(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"point", "support"}:
            return value["point"]
        return {k: _without_quotes(v) for k, v in value.items() if k not in ("quote", "quotes", "support")}
    if isinstance(value, list):
        return [_without_quotes(v) for v in value]
    return value


def _shaped(obj: dict[str, Any], shape: str, labels: list[str]) -> str:
    "The judge's JSON written the way a real judge of that kind writes it."
    analysis = {k: v for k, v in obj.items() if k != "answer"}
    if shape in ("fusion", "tool_result"):  # Fusion's own shape: text consensus, no quotes
        analysis = _without_quotes(analysis)
    if shape == "fusion":
        return json.dumps(analysis, ensure_ascii=False)
    if shape == "nested":
        return json.dumps({"answer": obj["answer"], "analysis": analysis}, ensure_ascii=False)
    if shape == "tool_result":
        responses = [{"model": label, "content": "..."} for label in labels]
        return json.dumps({"status": "ok", "analysis": analysis, "responses": responses}, ensure_ascii=False)
    if shape == "near_json":
        camel = {re.sub(r"_(\w)", lambda m: m.group(1).upper(), k): v for k, v in obj.items()}
        text = json.dumps(camel, ensure_ascii=False, indent=1)
        text = re.sub(r"(\]|\}|\")(\n\s*[\]}])", r"\1,\2", text)  # trailing commas
        return f"Here is my analysis of the panel:\n```json\n{text}\n```\nHope this helps {{the user}}."
    return json.dumps(obj, ensure_ascii=False)


def _judge_answer(model: str, body: dict[str, Any], reply: Reply) -> str:
    messages = body.get("messages") or []
    text = prompt_text(messages)
    answers = _answers(text)
    labels = list(answers) or ["A", "B"]
    outside = re.sub(r"<answer\b.*?</answer[^>]*>", " ", _last(messages, "user"), flags=re.S)
    question = _echo(re.sub(r"</?\w+[^>]*>", " ", outside), 60) or "the question"
    if not reply.json_valid:
        return (
            f'Here is my analysis of the panel. {labels[0]} and {labels[-1]} mostly agree on "{question}", '
            "but I would rather explain it in prose than as a structured object."
        )
    obj = _judge_object(model, labels, question, answers, reply.misattribute)
    obj.update(_asked_sections(_system(messages), obj))
    if reply.judge_shape != "ours":
        return _shaped(obj, reply.judge_shape, labels)
    return json.dumps(_fit_schema(obj, body), ensure_ascii=False)


def _system(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content") or "") for m in messages if m.get("role") == "system"), "")


def _asked_sections(system: str, known: dict[str, Any]) -> dict[str, list[str]]:
    'Sections the judge prompt asks for (its `- "name": ...` lines) beyond the usual ones: one point each.'
    asked = re.findall(r'^- "(\w+)": (.+?)[;.]?$', system, flags=re.M)
    return {
        name: [f"One point for {name.replace('_', ' ')}: {what.split(',')[0].strip()}."]
        for name, what in asked
        if name not in known
    }


def answer_text(reply: Reply, model: str, body: dict[str, Any]) -> str:
    "The full content the model would produce for this reply and request."
    if reply.empty:
        return ""
    if reply.tool_calls or tool_round(reply.tool_rounds, body):
        return reply.content or "" if reply.tool_calls else ""
    if reply.content is not None:
        return with_results(reply.content, body) if reply.tool_rounds else reply.content
    if reply.tool_rounds and tool_results(body.get("messages") or []):
        return with_results(_default_answer(model, body.get("messages") or []) + " The tools gave: {result}", body)
    if is_grade_request(body):
        return grade_answer(reply.grade, body, reply.json_valid)
    if methods.is_marks_request(body):
        return methods.marks_answer(reply.marks, body, quote_from)
    if methods.is_round_request(body):
        return methods.round_answer(reply.turn, body)
    if is_judge_request(body):
        return _judge_answer(model, body, reply)
    if callable(reply.answer):
        return str(reply.answer(_last(body.get("messages") or [], "user")))
    return _default_answer(model, body.get("messages") or [])
