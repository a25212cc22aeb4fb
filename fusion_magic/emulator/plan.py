"""What one chat response will contain (text, tool calls, tokens, prices), decided before its first byte."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import wire
from .replies import Reply, answer_text, estimate_tokens, prompt_text
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

    @classmethod
    def build(cls, reply: Reply, model: str, body: dict[str, Any], prices: tuple[Decimal, Decimal]) -> Plan:
        "Resolve the reply's defaults (content, token counts, ids) against this request."
        served = reply.served_model or model
        calls = []
        for call in tool_round(reply.tool_rounds, body, reply.tool_calls):
            args = call.get("arguments", {})
            calls.append({"id": call.get("id") or "call_" + secrets.token_hex(12), "name": call["name"],
                          "arguments": args if isinstance(args, str) else json.dumps(args)})  # fmt: skip
        text = answer_text(reply, model, body)
        generated = text + "".join(c["name"] + c["arguments"] for c in calls)
        prompt_tokens, completion_tokens = reply.prompt_tokens, reply.completion_tokens
        return cls(
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
        "The usage block for the whole answer, or for the `sent` part of it; `cost` overrides the price."
        ctoks = self.completion_tokens if sent is None else estimate_tokens(sent)
        pc, cc = float(self.prompt_tokens * self.prices[0]), float(ctoks * self.prices[1])
        if cost is not None:
            total = pc + cc
            pc, cc = (cost * pc / total, cost * cc / total) if total else (cost, 0.0)
        return wire.usage_block(self.prompt_tokens, ctoks, pc, cc)

    def midstream_error(self) -> dict[str, Any]:
        "The scripted in-band error, or a realistic provider failure when the script gave {}."
        return self.reply.midstream_error or {
            "code": 502,
            "message": "Provider returned error",
            "metadata": {"error_type": "provider_unavailable", "provider_name": self.gen.provider},
        }
