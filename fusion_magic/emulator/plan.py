"""What one chat response will contain (text, tool calls, tokens, prices), decided before its first byte."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import dialects, wire
from .replies import Reply, answer_text, estimate_tokens, prompt_text, split_pieces
from .tools import tool_round

__all__ = ["Plan"]


@dataclass
class Plan:
    """Everything one chat response needs; the writers in `respond` only pace and frame it."""

    reply: Reply
    model: str  # as requested: the key of scripts and charges
    gen: wire.Generation
    text: str
    prompt_tokens: int
    completion_tokens: int
    prices: tuple[Decimal, Decimal]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str = ""  # thoughts sent in a reasoning field (inline ones are part of `text`)
    reasoning_tokens: int = 0
    spec: bool = False  # OpenAI's shapes (see `dialects`)
    usage_asked: bool = False  # the request's stream_options.include_usage

    @classmethod
    def build(
        cls, reply: Reply, model: str, body: dict[str, Any], prices: tuple[Decimal, Decimal], *, spec: bool = False
    ) -> Plan:
        "Resolve the reply's defaults (content, token counts, ids) against this request."
        served = reply.served_model or model
        calls = []
        for call in tool_round(reply.tool_rounds, body, reply.tool_calls):
            args = call.get("arguments", {})
            calls.append({"id": call.get("id") or "call_" + secrets.token_hex(12), "name": call["name"],
                          "arguments": args if isinstance(args, str) else json.dumps(args)})  # fmt: skip
        text = reply.refusal if reply.refusal is not None else answer_text(reply, model, body)
        reasoning = reply.reasoning or ""
        if reasoning and reply.reasoning_field in ("think", "think_close"):
            text, reasoning = dialects.inline_thoughts(reply.reasoning_field, reasoning, text), ""
        generated = text + "".join(c["name"] + c["arguments"] for c in calls)
        prompt_tokens, completion_tokens = reply.prompt_tokens, reply.completion_tokens
        options = body.get("stream_options")
        return cls(
            reasoning=reasoning,
            reasoning_tokens=reply.reasoning_tokens
            if reply.reasoning_tokens is not None
            else estimate_tokens(reasoning),
            spec=spec,
            usage_asked=isinstance(options, dict) and options.get("include_usage") is True,
            reply=reply,
            model=model,
            gen=wire.Generation(model=served, provider=reply.provider or wire.provider_for(served)),
            text=text,
            prompt_tokens=max(1, estimate_tokens(prompt_text(body["messages"])))
            if prompt_tokens is None
            else prompt_tokens,
            completion_tokens=estimate_tokens(generated) if completion_tokens is None else completion_tokens,
            prices=prices,
            tool_calls=calls,
        )

    def usage(self, sent: str | None = None, cost: float | None = None) -> dict[str, Any]:
        """The usage block for the whole answer, or for the `sent` part of it; `cost` overrides the price.

        Reasoning tokens are billed either way; inside ``completion_tokens`` (OpenAI's layout, with
        ``completion_tokens_details.reasoning_tokens``) or outside it (Gemini's: only in ``total_tokens``).
        """
        ctoks = self.completion_tokens if sent is None else estimate_tokens(sent)
        billed = ctoks + self.reasoning_tokens
        pc, cc = float(self.prompt_tokens * self.prices[0]), float(billed * self.prices[1])
        if cost is not None:
            total = pc + cc
            pc, cc = (cost * pc / total, cost * cc / total) if total else (cost, 0.0)
        outside = self.reply.reasoning_billed == "outside"
        usage = wire.usage_block(self.prompt_tokens, ctoks if outside else billed, pc, cc)
        usage["total_tokens"] = self.prompt_tokens + billed
        if outside:
            usage.pop("completion_tokens_details")
        else:
            usage["completion_tokens_details"]["reasoning_tokens"] = self.reasoning_tokens
        return usage

    def sse(self, obj: dict[str, Any]) -> bytes:
        "One chunk on the wire, in this server's dialect."
        return wire.sse(dialects.spec_frame(obj, streamed=True) if self.spec else obj)

    def body(self, obj: dict[str, Any]) -> dict[str, Any]:
        "A whole chat.completion in this server's dialect: reasoning, refusal and filter results added."
        choice, r = obj["choices"][0], self.reply
        message = choice["message"]
        if self.reasoning:
            message.update(dialects.reasoning_part(r.reasoning_field, self.reasoning))
        if r.refusal is not None:
            message.update(content=None, refusal=r.refusal)
        if choice["finish_reason"] == "content_filter":
            choice["content_filter_results"] = dialects.filter_results(r.filter_categories)
        return dialects.spec_frame(obj, streamed=False) if self.spec else obj

    def text_chunk(self, piece: str) -> dict[str, Any]:
        "One streamed piece of the answer (of the refusal, for a refusing reply)."
        if self.reply.refusal is None:
            return wire.chunk(self.gen, piece)
        out = wire.chunk(self.gen, None)
        out["choices"][0]["delta"]["refusal"] = piece
        return out

    def reasoning_chunks(self) -> list[dict[str, Any]]:
        "The streamed thoughts, before the answer (content empty on those chunks)."
        out = []
        for piece in split_pieces(self.reasoning):
            event = wire.chunk(self.gen, "")
            event["choices"][0]["delta"].update(dialects.reasoning_part(self.reply.reasoning_field, piece))
            out.append(event)
        return out

    def finish(self) -> str:
        "The finish_reason of the whole answer."
        if self.reply.filter_after is not None:
            return "content_filter"
        return self.reply.finish_reason or ("tool_calls" if self.tool_calls else "stop")

    def midstream_error(self) -> dict[str, Any]:
        "The scripted in-band error, or a realistic provider failure when the script gave {}."
        return self.reply.midstream_error or {
            "code": 502,
            "message": "Provider returned error",
            "metadata": {"error_type": "provider_unavailable", "provider_name": self.gen.provider},
        }
