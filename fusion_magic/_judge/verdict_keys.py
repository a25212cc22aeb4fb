"""The judge reply's shape: where its JSON is, which key means which section, how an item's fields are read.

This is the vocabulary half of salvaging a verdict (`fusion_magic._judge.verdict` turns what is found
here into items): the keys a judge may write each section and item field under, camelCase and
spacing folded (`normalise_key`), the JSON values hidden in prose, fences or tool-call strings
(`candidates`), wrappers unwrapped into canonical section -> raw value (`canonical_fields`), and a
section's raw value cut into entries. Nothing here knows the panel's labels.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import json_repair

from .._values.sections import SECTIONS as TABLE
from .._values.sections import Shape

__all__ = [
    "CARRY",
    "FIELDS",
    "SECTIONS",
    "WRAPPERS",
    "as_text",
    "candidates",
    "canonical_fields",
    "carried",
    "entries",
    "first",
    "normalise_key",
    "pick",
]

# Canonical section (or "answer") for each normalised key a judge may use.
SECTIONS: dict[str, str] = {
    **{key: s.name for s in TABLE for key in (s.name, *s.aliases)},
    **dict.fromkeys(
        (
            "answer",
            "final_answer",
            "synthesis",
            "synthesized_answer",
            "synthesised_answer",
            "best_answer",
            "answer_markdown",
            "final_response",
            "synthesized_response",
        ),
        "answer",
    ),
}
# Keys whose value may hold the whole analysis (tool results, wrappers, tool-call arguments).
WRAPPERS = (
    "analysis",
    "verdict",
    "judgement",
    "judgment",
    "result",
    "output",
    "data",
    "arguments",
    "parameters",
    "fusion",
    "evaluation",
    "response",
    "content",
    "function",
)

# The fields of an item, each with the keys a judge may write it under (first match wins).
FIELDS: dict[str, tuple[str, ...]] = {
    "text": (
        "point",
        "claim",
        "text",
        "statement",
        "insight",
        "description",
        "summary",
        "content",
        "item",
        "finding",
        "detail",
        "note",
        "value",
        "consensus",
        "blind_spot",
        "gap",
        "issue",
        "topic",
        "stance",
    ),
    "model": (
        "model",
        "member",
        "label",
        "who",
        "model_id",
        "name",
        "by",
        "from",
        "panelist",
        "source",
        "assistant",
        "answer",
        "respondent",
        "id",
    ),
    "models": ("models", "members", "labels", "covered_by", "sources", "who", "by", "model", "member"),
    "topic": ("topic", "issue", "point", "question", "subject", "claim", "title", "about", "description", "text"),
    "stances": ("stances", "positions", "views", "sides", "opinions", "stance_by_model", "by_model", "stance"),
    "stance": (
        "stance",
        "position",
        "view",
        "claim",
        "text",
        "says",
        "opinion",
        "argument",
        "point",
        "answer",
        "content",
        "statement",
    ),
}
# Extra item fields carried through as they are (the result's models keep those they know).
CARRY: tuple[str, ...] = ("quote", "quotes", "support", "verified", "agreement", "evidence")


@lru_cache(maxsize=4096)  # a reply's keys are few and come back in every item: read each once
def normalise_key(key: object) -> str:
    "camelCase, spaces, hyphens and case folded to snake_case: 'blindSpots' -> 'blind_spots'."
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(key).strip())
    return re.sub(r"[\s\-]+", "_", text).lower()


# -- finding the JSON ---------------------------------------------------------------------------

_OPENER = re.compile(r"[{\[]")
_KEYED = re.compile(r"""["']\s*:|[{,]\s*\w+\s*:""")  # a quoted key and a colon, or {key: / , key:


def candidates(text: str) -> list[Any]:
    "JSON values found in the reply, most literal reading first."
    text = re.sub(r"<think>.*?</think>", " ", text or "", flags=re.S | re.I).strip().lstrip("\ufeff")
    out: list[Any] = []
    try:
        out.append(json.loads(text, strict=False))  # strict=False: raw newlines inside strings
        return out
    except ValueError:
        pass
    decoder = json.JSONDecoder(strict=False)
    pos, tries = 0, 0
    while tries < 40 and (m := _OPENER.search(text, pos)):
        tries += 1
        try:
            value, end = decoder.raw_decode(text, m.start())
        except ValueError:
            pos = m.start() + 1
            continue
        if isinstance(value, (dict, list)) and value:
            out.append(value)
        pos = end
    for fence in re.findall(r"```[\w-]*\s*\n?(.*?)```", text, re.S):
        out.append(_repaired(fence))
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start >= 0 and _KEYED.search(text, start, start + 4000):  # only text that looks like an object
        out.append(_repaired(text[start:]))
    return [c for c in out if isinstance(c, (dict, list)) and c]


def _repaired(text: str) -> Any:
    try:
        return json_repair.loads(text)
    except Exception:  # noqa: BLE001 - a repair library failing means "nothing here", not a crash
        return None


def canonical_fields(value: Any, depth: int = 0) -> dict[str, Any]:
    "Canonical key -> raw value, unwrapping nests, tool results, arguments strings and lists."
    if depth > 4:
        return {}
    if isinstance(value, str):
        value = _loads(value)
    if isinstance(value, list):
        found: dict[str, Any] = {}
        for item in value[:8]:
            for key, v in canonical_fields(item, depth + 1).items():
                found.setdefault(key, v)
        return found
    if not isinstance(value, dict):
        return {}
    own: dict[str, Any] = {}
    for key, v in value.items():
        canon = SECTIONS.get(normalise_key(key))
        if canon and canon not in own:
            own[canon] = v
    for key, v in value.items():
        if normalise_key(key) in WRAPPERS and isinstance(v, (dict, list, str)):
            inner = canonical_fields(v, depth + 1)
            if inner and (set(inner) - {"answer"} or not own):
                for canon, iv in inner.items():
                    if canon not in own or _empty(own[canon]):
                        own[canon] = iv
    return own


# -- reading a section's items ------------------------------------------------------------------


def entries(raw: Any, shape: Shape) -> list[Any]:
    "The items of a section: a list as it is, a mapping as (key, value) pairs, text split into bullets."
    if isinstance(raw, list):
        return raw
    if isinstance(raw, dict):
        if shape in ("supported", "text"):
            if any(k in {normalise_key(x) for x in raw} for k in FIELDS["text"]):
                return [raw]  # one object item, not a mapping
            return list(raw.values())
        keys = {normalise_key(k) for k in raw}
        if keys & set(FIELDS["text"] + FIELDS["model"] + FIELDS["stances"] + FIELDS["models"]):
            return [raw]
        pairs: list[Any] = []
        for k, v in raw.items():
            if shape == "member" and isinstance(v, list):
                pairs += [(k, x) for x in v]
            else:
                pairs.append((k, v))
        return pairs
    if isinstance(raw, str):
        parts = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", p) for p in re.split(r"\n+", raw)]
        return [p for p in parts if p.strip()]
    return [raw]


def first(entry: dict[str, Any], keys: tuple[str, ...]) -> Any:
    norm = {normalise_key(k): v for k, v in entry.items()}
    for key in keys:
        if norm.get(key) is not None:
            return norm[key]
    return None


def pick(entry: dict[str, Any], keys: tuple[str, ...], skip: tuple[str, ...] = ()) -> str:
    "The first text field of an object item, else its only string value not in ``skip``."
    norm = {normalise_key(k): v for k, v in entry.items()}
    for key in keys:
        if key in skip:
            continue
        value = norm.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    rest = [v for k, v in norm.items() if isinstance(v, str) and k not in skip and k not in CARRY]
    return max(rest, key=len) if rest else ""


def carried(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        return {}
    norm = {normalise_key(k): v for k, v in entry.items()}
    return {k: norm[k] for k in CARRY if norm.get(k) is not None}


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return pick(value, FIELDS["text"]).strip()
    if isinstance(value, list):
        return "; ".join(t for t in (as_text(v) for v in value) if t)
    return str(value)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _loads(text: str) -> Any:
    text = text.strip()
    if not text.startswith(("{", "[")):
        return None
    try:
        return json.loads(text, strict=False)
    except ValueError:
        return _repaired(text)
