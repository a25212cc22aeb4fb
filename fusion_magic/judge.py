"""The judge: its prompt, its JSON schema, and turning its reply into an `Analysis`.

Panel answers reach the judge under anonymous labels (A, B, C...) so that brand names do not
sway it; every model named in its reply is mapped back to a panel member, and names that are
not panel members are dropped, never invented.
"""

from __future__ import annotations

import copy
import json
import re
import string
from typing import Any

from pydantic import Field, ValidationError

from .result import Analysis, Contradiction, PartialCoverage, Stance, UniqueInsight

__all__ = ["Verdict", "build_messages", "labels_for", "parse_verdict", "reask_message", "response_format"]

INSTRUCTIONS = """\
You are the judge of a panel. Several assistants answered the same question; their answers \
are below, each inside an answer tag whose member attribute is an anonymous label.
Read every answer critically, then reply with ONE JSON object and nothing else:
- "answer": the best possible answer to the question in Markdown, synthesized from the panel \
(keep what is right, fix what is wrong, fill the blind spots);
- "consensus": claims all members agree on;
- "contradictions": points where members disagree, each with the stance of every member involved;
- "partial_coverage": points covered by some members but not all, with those members' labels;
- "unique_insights": valuable points made by exactly one member;
- "blind_spots": what every member missed that matters.
Refer to members only by their labels ({labels}): in "model" fields the bare label, in text \
"member X". The answer must stand on its own, without mentioning members. Keep each item to one \
or two sentences. Use empty lists where nothing applies."""


class Verdict(Analysis):
    """The judge's reply: the analysis plus the synthesized answer."""

    answer: str = Field(description="the synthesized answer to the question, in Markdown")


def labels_for(names: list[str]) -> dict[str, str]:
    "Anonymous labels A, B, ... (then A2, B2, ...) for the given member names, in order."
    letters = string.ascii_uppercase
    return {
        (letters[i % 26] + (str(i // 26 + 1) if i >= 26 else "")): name for i, name in enumerate(names)
    }


def build_messages(question: str, answers: dict[str, str]) -> list[dict[str, str]]:
    """Judge messages for ``answers`` (label -> text)."""
    blocks = "\n\n".join(
        f'<answer member="{label}">\n{_defang(text)}\n</answer>' for label, text in answers.items()
    )
    return [
        {"role": "system", "content": INSTRUCTIONS.format(labels=", ".join(answers))},
        {"role": "user", "content": f"<question>\n{_defang(question)}\n</question>\n\n{blocks}"},
    ]


def _defang(text: str) -> str:
    # A panel answer must not be able to close its own tag and impersonate another member.
    return re.sub(r"</?\s*(answer|question)\b", lambda m: m.group(0).replace("<", "&lt;"), text, flags=re.I)


def response_format(labels: list[str]) -> dict[str, Any]:
    """OpenAI-style structured-output request for a `Verdict` about members ``labels``.

    Model fields are limited to the labels (an enum: every structured-output API accepts it),
    so a judge cannot invent members.
    """
    return {
        "type": "json_schema",
        "json_schema": {"name": "fusion_verdict", "strict": True, "schema": _strict(_SCHEMA, labels)},
    }


_SCHEMA = Verdict.model_json_schema()


def _strict(schema: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    # Strict structured output wants every property required and no extra properties.
    schema = copy.deepcopy(schema)

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
                node["additionalProperties"] = False
                for name, prop in node["properties"].items():
                    prop.pop("default", None)
                    if name == "model":
                        prop["enum"] = list(labels)
                    elif name == "models":
                        prop["items"] = {"type": "string", "enum": list(labels)}
            for value in node.values():
                fix(value)
        elif isinstance(node, list):
            for value in node:
                fix(value)

    fix(schema)
    return schema


def parse_verdict(text: str, labels: dict[str, str]) -> Verdict:
    """Parse the judge's reply and map labels back to member names.

    Raises `ValueError` (JSON) or `pydantic.ValidationError` (shape) for the re-ask.
    """
    # strict=False: accept raw newlines inside strings, which small judges and some grammars emit.
    data = json.loads(_json_part(text), strict=False)
    verdict = Verdict.model_validate(data)
    return _map_names(verdict, labels)


def reask_message(error: Exception) -> dict[str, str]:
    "The follow-up turn asking the judge to fix its JSON."
    if isinstance(error, ValidationError):
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:12])
    else:
        detail = str(error)
    return {
        "role": "user",
        "content": f"Your reply was not valid JSON for the required schema ({detail}). "
        "Reply again with the corrected JSON object only, no prose and no code fences.",
    }


def _json_part(text: str) -> str:
    text = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        text = fence.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start != -1 and end > start else text


def _map_names(verdict: Verdict, labels: dict[str, str]) -> Verdict:
    names = set(labels.values())
    lookup = {k.lower(): v for k, v in labels.items()} | {n.lower(): n for n in names}

    def who(model: str) -> str | None:
        key = re.sub(r"^(member|answer|model|assistant)\s+", "", model.strip(), flags=re.I).strip(" \"'[]()")
        return lookup.get(key.lower())

    def text(value: str) -> str:
        return _relabel(value, labels)

    contradictions = []
    for c in verdict.contradictions:
        stances = [Stance(model=m, stance=text(s.stance)) for s in c.stances if (m := who(s.model))]
        if len(stances) >= 2:
            contradictions.append(Contradiction(topic=text(c.topic), stances=stances))
    partial = []
    for p in verdict.partial_coverage:
        models = list(dict.fromkeys(m for x in p.models if (m := who(x))))
        if models:
            partial.append(PartialCoverage(models=models, point=text(p.point)))
    unique = [UniqueInsight(model=m, insight=text(u.insight)) for u in verdict.unique_insights if (m := who(u.model))]
    return Verdict(
        answer=text(verdict.answer),
        consensus=[text(c) for c in verdict.consensus],
        contradictions=contradictions,
        partial_coverage=partial,
        unique_insights=unique,
        blind_spots=[text(b) for b in verdict.blind_spots],
    )


def _relabel(value: str, labels: dict[str, str]) -> str:
    "Replace 'member A' / 'answer B' in free text with the member's name."
    def sub(match: re.Match[str]) -> str:
        name = labels.get(match.group(2).upper())
        return name if name else match.group(0)

    return re.sub(r"\b((?i:member|answer|model|assistant))\s+([A-Z]\d?)\b", sub, value)
