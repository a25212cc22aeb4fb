"""A targeted round: the members of each contradiction get one more turn, then the judge again.

Only the members holding a stance in a contradiction are asked (one call per member and
contradiction, at most `MAX_CONTRADICTIONS` contradictions: one bounded round). Each sees the
question, its own answer and stance, and the opposing stances without names, and replies
``concede`` (with a reason) or ``rebut`` (with a new argument or evidence). A concession without
a reason counts as none (the member is recorded as holding its position). The judge then reads
each member's answer followed by what it said in the round and updates the analysis. The result
keeps, per contradiction, the positions before and after and who moved (``result.rounds``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from .._base.config import Member
from .._values.result import FusionResult, Response
from .context import RunContext
from .structured import ask_json, defang, objects_in

__all__ = ["MAX_CONTRADICTIONS", "read_turn", "turns_needed"]

MAX_CONTRADICTIONS = 4
SYSTEM = """\
You answered the question below; your answer and your position on one disputed point are shown, \
with the positions other panel members took on it. Reconsider once. Either concede (you now think \
an opposing position is right: say why in "reason") or rebut (you keep your position: give a NEW \
argument or evidence in "reason", not a repetition). Reply with ONE JSON object and nothing else: \
{"decision": "concede" | "rebut", "reason": "...", "position": "your position now, one sentence"}."""
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {"type": "string", "enum": ["concede", "rebut"]},
        "reason": {"type": "string"},
        "position": {"type": "string"},
    },
    "required": ["decision", "reason", "position"],
    "additionalProperties": False,
}
_WORDS = {"concede": "concede", "concedes": "concede", "conceded": "concede", "accept": "concede", "yield": "concede",
          "rebut": "rebut", "rebuts": "rebut", "rebutted": "rebut", "maintain": "rebut", "hold": "rebut",
          "keep": "rebut", "defend": "rebut"}  # fmt: skip


def read_turn(text: str) -> dict[str, str] | None:
    "``{decision, reason, position}`` from a reply; None when no decision is readable."
    for found in objects_in(text):
        word = re.sub(r"\W+", " ", str(found.get("decision") or found.get("action") or "")).strip().lower()
        decision = _WORDS.get(word.split(" ")[0] if word else "")
        if decision is None:
            continue
        reason, position = (str(found.get(k) or "").strip() for k in ("reason", "position"))
        return {"decision": decision, "reason": reason, "position": position}
    return None


def turns_needed(result: FusionResult) -> list[tuple[int, str]]:
    "(contradiction index, member) for every answered member holding a stance, bounded."
    answered = {r.model for r in result.responses if r.ok}
    return [
        (i, s.model)
        for i, c in enumerate(result.analysis.contradictions[:MAX_CONTRADICTIONS])
        for s in dict((s.model, s) for s in c.stances).values()
        if s.model in answered
    ]


async def _turn(
    ctx: RunContext, seat: Member, result: FusionResult, index: int, member: str, timeout: float | None
) -> tuple[dict[str, Any], list[Response]]:
    c = result.analysis.contradictions[index]
    own = next(s.stance for s in c.stances if s.model == member)
    # The opposing positions: the other members' stances unlike this one (a member agreeing with it is no opponent).
    others = list(dict.fromkeys(s.stance for s in c.stances if s.model != member and s.stance.strip() != own.strip()))
    answer = next(r.content for r in result.responses if r.model == member)
    line = lambda text: defang(" ".join(str(text).split()))  # noqa: E731 - one line each, no tags
    opposing = "\n".join(f"- {line(text)}" for text in others) or "- (none)"
    body = (
        f"<question>\n{defang(result.prompt)}\n</question>\n\n<your_answer>\n{defang(answer)}\n</your_answer>\n\n"
        f"Disputed point: {line(c.topic)}\nYour position: {line(own)}\nOther members' positions:\n{opposing}"
    )
    turn, calls = await ask_json(
        ctx,
        seat,
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}],
        name="fusion_round",
        schema=_SCHEMA,
        read=read_turn,
        key=f"{member} (round 2)",
        timeout=timeout,
        params={"temperature": 0.0},
    )
    after = {"model": member, "decision": None, "reason": "", "position": own, "moved": False}
    if turn is not None:
        moved = turn["decision"] == "concede" and bool(turn["reason"])
        decision = turn["decision"] if moved or turn["decision"] == "rebut" else "held"
        after |= {"decision": decision, "reason": turn["reason"], "position": turn["position"] or own, "moved": moved}
    return after, [dataclasses.replace(call, model=f"{call.model} (round 2)") for call in calls]


def _revised(result: FusionResult, rounds: list[dict[str, Any]]) -> list[Response]:
    "Each member's answer followed by what it said in the round: what the judge reads the second time."
    said: dict[str, list[str]] = {}
    for entry in rounds:
        for a in entry["after"]:
            if a["decision"] == "concede":
                said.setdefault(a["model"], []).append(f"On {entry['topic']}, I concede: {a['reason']}")
                if result.vote is not None:  # a vote reads the final answer line: the new position is it
                    said[a["model"]].append(
                        "Answer: " + re.sub(r"(?i)^the answer is\s*", "", a["position"]).rstrip(".")
                    )
            elif a["decision"] in ("rebut", "held"):
                said.setdefault(a["model"], []).append(
                    f"On {entry['topic']}, I maintain: {a['position']} {a['reason']}"
                )
    return [
        dataclasses.replace(
            r, content=r.content + "\n\nAfter one round on the disagreements:\n" + "\n".join(said[r.model])
        )
        if r.ok and r.model in said
        else r
        for r in result.responses
    ]


async def run_round(
    ctx: RunContext, panel: dict[str, Member], result: FusionResult, timeout: float | None
) -> tuple[list[dict[str, Any]], list[Response], list[Response]]:
    "(per contradiction before/after/moved, the round's calls, the answers as the judge reads them now)."
    needed = turns_needed(result)
    done = await asyncio.gather(
        *(_turn(ctx, panel.get(m) or Member(m, name=m), result, i, m, timeout) for i, m in needed)
    )
    rounds = []
    for i, c in enumerate(result.analysis.contradictions[:MAX_CONTRADICTIONS]):
        after = [a for (j, _), (a, _) in zip(needed, done, strict=True) if j == i]
        rounds.append({
            "topic": c.topic,
            "before": [{"model": s.model, "stance": s.stance} for s in c.stances],
            "after": after,
            "moved": [a["model"] for a in after if a["moved"]],
        })  # fmt: skip
    calls = [call for _, cs in done for call in cs]
    return rounds, calls, _revised(result, rounds)
