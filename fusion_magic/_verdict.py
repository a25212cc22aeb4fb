"""Salvage the judge's reply: keep every section that can be read, whatever shape it came in.

Judges differ: some honour the JSON schema, some answer in OpenRouter Fusion's shape (the five
analysis lists, no ``answer``), some nest everything under ``analysis``, wrap it in a tool result,
fence it, add prose around it, write camelCase keys, trailing commas, ``null`` sections, stances as
a ``{label: stance}`` mapping, ``models`` as a comma string or items as objects. `salvage` reads
all of these. Items that carry nothing (only a label, punctuation, a JSON fragment, a number) are
dropped and counted, never silently.

How each section's items are read is data: the sections, their keys and item shapes come from
`fusion_magic.sections`; the item fields are `FIELDS`, and a new item field (say a
``quote``) is one entry in `CARRY`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import json_repair

from .sections import SECTIONS as TABLE
from .sections import Shape

__all__ = ["CARRY", "FIELDS", "SECTIONS", "Salvage", "salvage"]

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

_PREFIX = re.compile(
    r"^(panel\s+member|member|answer|model|assistant|panelist|response|respondent|expert|"
    r"candidate|participant)[\s_#:-]*",
    re.I,
)
_STRIP = " \t\r\n\"'`[](){}<>*.:;#,"
_NULLS = frozenset({"null", "none", "n/a", "na", "nil", "true", "false", "undefined", "nothing", "empty", "tbd"})


@dataclass
class Salvage:
    """What could be read from one judge reply."""

    answer: str = ""
    sections: dict[str, list[Any]] = field(default_factory=dict)  # section -> items (str or dict)
    found_json: bool = False  # some JSON object was found at all
    dropped: Counter[str] = field(default_factory=Counter)  # why -> how many items were dropped

    @property
    def usable(self) -> bool:
        "True when the reply carries an analysis or an answer."
        return bool(self.answer.strip()) or any(self.sections.values())

    @property
    def has_analysis(self) -> bool:
        return any(self.sections.values())

    @property
    def failure(self) -> str:
        "Fusion's failure code for a reply that is not usable."
        return "judge_schema_mismatch" if self.found_json else "judge_not_valid_json"

    def notes(self) -> list[str]:
        "One line per kind of item dropped."
        words = {
            "degenerate": "degenerate analysis items (a bare label, punctuation, a fragment, a number)",
            "repeated": "repeated analysis items",
            "unattributed": "analysis items naming no panel member",
        }
        return [f"dropped {n} {words.get(why, why)}" for why, n in self.dropped.items() if n]


def normalise_key(key: object) -> str:
    "camelCase, spaces, hyphens and case folded to snake_case: 'blindSpots' -> 'blind_spots'."
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(key).strip())
    return re.sub(r"[\s\-]+", "_", text).lower()


def salvage(text: str, labels: dict[str, str], aliases: dict[str, str] | None = None) -> Salvage:
    """Read the judge's reply ``text``; ``labels`` maps A, B... to member names.

    ``aliases`` maps other names a judge may use for a member (its model id) to the member's name.
    """
    names = set(labels.values())
    lookup = {k.lower(): v for k, v in labels.items()} | {n.lower(): n for n in names}
    lookup |= {k.lower(): v for k, v in (aliases or {}).items() if v in names}
    reader = _Reader(lookup, labels)
    best = Salvage()
    for candidate in _candidates(text):
        best.found_json = True
        result = reader.read(candidate)
        if _score(result) > _score(best):
            result.found_json = True
            best = result
    return best


def _score(s: Salvage) -> tuple[int, int]:
    return (sum(len(v) for v in s.sections.values()) + (2 if s.answer.strip() else 0), -sum(s.dropped.values()))


# -- finding the JSON ---------------------------------------------------------------------------

_OPENER = re.compile(r"[{\[]")
_KEYED = re.compile(r"""["']\s*:|[{,]\s*\w+\s*:""")  # a quoted key and a colon, or {key: / , key:


def _candidates(text: str) -> list[Any]:
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


# -- reading it ---------------------------------------------------------------------------------


class _Reader:
    def __init__(self, lookup: dict[str, str], labels: dict[str, str]) -> None:
        self.lookup, self.labels = lookup, labels

    def read(self, value: Any) -> Salvage:
        out = Salvage()
        fields = self._fields(value, depth=0)
        answer = fields.pop("answer", None)
        if answer is not None:
            text = self.relabel(_as_text(answer))
            if text and _degenerate(text, self.who):
                out.dropped["degenerate"] += 1
            else:
                out.answer = text
        for section in TABLE:
            items = self._section(section.shape, fields.get(section.name), out.dropped)
            out.sections[section.name] = _dedupe(items, out.dropped)
        return out

    def _fields(self, value: Any, depth: int) -> dict[str, Any]:
        "Canonical key -> raw value, unwrapping nests, tool results, arguments strings and lists."
        if depth > 4:
            return {}
        if isinstance(value, str):
            value = _loads(value)
        if isinstance(value, list):
            found: dict[str, Any] = {}
            for item in value[:8]:
                for key, v in self._fields(item, depth + 1).items():
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
                inner = self._fields(v, depth + 1)
                if inner and (set(inner) - {"answer"} or not own):
                    for canon, iv in inner.items():
                        if canon not in own or _empty(own[canon]):
                            own[canon] = iv
        return own

    # -- sections -------------------------------------------------------------------------------
    def _section(self, shape: Shape, raw: Any, dropped: Counter[str]) -> list[Any]:
        if raw is None or raw == "":
            return []
        read = getattr(self, "_read_" + shape)
        items: list[Any] = []
        for entry in _entries(raw, shape):
            item = read(entry)
            if item is None:
                dropped["unattributed" if _has_text(entry, self.who) else "degenerate"] += 1
            elif item == "degenerate":
                dropped["degenerate"] += 1
            else:
                items.append(item)
        return items

    def _text_item(self, entry: Any) -> Any:
        text = self.relabel(_pick(entry, FIELDS["text"]) if isinstance(entry, dict) else _as_text(entry))
        if _degenerate(text, self.who):
            return "degenerate"
        return text

    _read_text = _text_item

    def _read_supported(self, entry: Any) -> Any:
        "A point, or {point, support} when the judge named the members stating it (with quotes)."
        text = self._text_item(entry)
        support = self._quotes(_carried(entry).get("support")) if isinstance(entry, dict) else []
        return {"point": text, "support": support} if support and text != "degenerate" else text

    def _quotes(self, raw: Any) -> list[dict[str, str]]:
        "[{model, quote}] with labels mapped to members; entries naming nobody are left out."
        out = []
        for entry in raw if isinstance(raw, list) else []:
            who = self.members(_first(entry, FIELDS["model"])) if isinstance(entry, dict) else self.members(entry)
            quote = _as_text(entry.get("quote")) if isinstance(entry, dict) else ""
            out += [{"model": model, "quote": quote} for model in who[:1]]
        return out

    def _read_stances(self, entry: Any) -> Any:
        if isinstance(entry, tuple):  # from a {topic: stances} mapping
            topic, raw = entry
        elif isinstance(entry, dict):
            topic = _pick(entry, FIELDS["topic"], skip=FIELDS["stances"])
            raw = _first(entry, FIELDS["stances"])
            if raw is None:  # {"topic": ..., "A": "...", "B": "..."}
                raw = {k: v for k, v in entry.items() if self.who(str(k))}
        else:
            topic, raw = _as_text(entry), None
        topic = self.relabel(_as_text(topic))
        stances = self._stances(raw)
        if _degenerate(topic, self.who):
            if not stances:
                return "degenerate"
            topic = ""
        return {"topic": topic, "stances": stances, **_carried(entry)}

    def _stances(self, raw: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pairs: list[tuple[Any, ...]] = []  # (who, stance) or (who, stance, quote)
        if isinstance(raw, dict):
            pairs = list(raw.items())
        elif isinstance(raw, list):
            for s in raw:
                if isinstance(s, dict):
                    who = _first(s, ("models", "members", "labels"))
                    who = who if who is not None else _first(s, FIELDS["model"])
                    pairs.append(
                        (
                            who,
                            _pick(s, FIELDS["stance"], skip=FIELDS["model"] + ("quote",)) or "",
                            _as_text(s.get("quote")),
                        )
                    )
                elif isinstance(s, str):
                    pairs.append(self._split_labelled(s))
        elif isinstance(raw, str):
            pairs = [self._split_labelled(part) for part in re.split(r"[;\n]+", raw) if part.strip()]
        for who, stance, *quote in pairs:  # quote: [] or [text]
            text = self.relabel(_as_text(stance))
            for model in self.members(who):
                if not _degenerate(text, self.who):
                    out.append({"model": model, "stance": text, **({"quote": quote[0]} if quote and quote[0] else {})})
        return out

    def _read_members(self, entry: Any) -> Any:
        if isinstance(entry, tuple):  # from a {point: models} or {models: point} mapping
            key, value = entry
            models = self.members(key)
            point, models = (value, models) if models else (key, self.members(value))
        elif isinstance(entry, dict):
            point = _pick(entry, FIELDS["text"], skip=FIELDS["models"])
            models = self.members(_first(entry, FIELDS["models"]))
        else:
            who, point = self._split_labelled(_as_text(entry))
            models = self.members(who) if who else self.mentioned(point)
        point = self.relabel(_as_text(point))
        if _degenerate(point, self.who):
            return "degenerate"
        carried = _carried(entry)
        if "quotes" in carried:
            carried["quotes"] = self._quotes(carried["quotes"])
        return {"models": models, "point": point, **carried}

    def _read_member(self, entry: Any) -> Any:
        if isinstance(entry, tuple):  # from a {label: insight} mapping
            who, text = entry
        elif isinstance(entry, dict):
            who = _first(entry, FIELDS["model"])
            text = _pick(entry, FIELDS["text"], skip=FIELDS["model"])
        else:
            who, text = self._split_labelled(_as_text(entry))
            if not who:
                found = self.mentioned(_as_text(entry))
                who = found[0] if found else None
        text = self.relabel(_as_text(text))
        if _degenerate(text, self.who):
            return "degenerate"
        models = self.members(who)
        if not models:
            return None
        return {"model": models[0], "insight": text, **_carried(entry)}

    # -- members --------------------------------------------------------------------------------
    def who(self, raw: str) -> str | None:
        "The member a label, name or model id refers to ('A', 'member A', '[A]', 'Answer A', 'a/alpha')."
        key = raw.strip().lower()
        if key in self.lookup:
            return self.lookup[key]
        key = key.strip(_STRIP)
        if key in self.lookup:
            return self.lookup[key]
        key = _PREFIX.sub("", key).strip(_STRIP)
        return self.lookup.get(key)

    def members(self, raw: Any) -> list[str]:
        "Members named by a label, a list of labels or a string such as 'A, B and C'."
        if raw is None:
            return []
        if isinstance(raw, dict):
            raw = _first(raw, FIELDS["model"]) or list(raw)
        values = raw if isinstance(raw, list) else [raw]
        out: list[str] = []
        for value in values:
            text = _as_text(value)
            if (one := self.who(text)) is not None:
                out.append(one)
                continue
            for part in re.split(r"\s*(?:,|;|&|\band\b|\+)\s*", text):
                if (one := self.who(part)) is not None:
                    out.append(one)
                else:
                    out += [m for p in part.split("/") if (m := self.who(p))]
        return list(dict.fromkeys(out))

    def mentioned(self, text: str) -> list[str]:
        "Members a free-text item names as 'member A', '[A]' or by name."
        found = [
            self.labels[label] for m in _MENTION.finditer(text) if (label := m.group(1) or m.group(2)) in self.labels
        ]
        return list(dict.fromkeys(found))

    def _split_labelled(self, text: str) -> tuple[Any, str]:
        "'A: text' / 'Member B - text' / '[A, B] text' -> (who, text)."
        m = re.match(r"^\s*([^:\n]{1,60}?)\s*(?::|—|–| - |\))\s*(.+)$", text, re.S)
        if m and self.members(m.group(1)):
            return m.group(1), m.group(2)
        m = re.match(r"^\s*\[([^\]]{1,60})\]\s*(.+)$", text, re.S)
        if m and self.members(m.group(1)):
            return m.group(1), m.group(2)
        return None, text

    def relabel(self, value: str) -> str:
        "'member A' / 'Answer B' / '[C]' in free text -> the member's name."

        def sub(match: re.Match[str]) -> str:
            name = self.labels.get(match.group(1) or match.group(2))
            return name if name else match.group(0)

        return _MENTION.sub(sub, value).strip()


_MENTION = re.compile(r"\b(?i:member|answer|model|assistant|panelist)\s+([A-Z]\d?)\b|\[([A-Z]\d?)\]")


def _entries(raw: Any, shape: Shape) -> list[Any]:
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


def _dedupe(items: list[Any], dropped: Counter[str]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = " ".join(json.dumps(item, sort_keys=True, ensure_ascii=False).lower().split())
        if key in seen:
            dropped["repeated"] += 1
            continue
        seen.add(key)
        out.append(item)
    return out


def _first(entry: dict[str, Any], keys: tuple[str, ...]) -> Any:
    norm = {normalise_key(k): v for k, v in entry.items()}
    for key in keys:
        if norm.get(key) is not None:
            return norm[key]
    return None


def _pick(entry: dict[str, Any], keys: tuple[str, ...], skip: tuple[str, ...] = ()) -> str:
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


def _carried(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        return {}
    norm = {normalise_key(k): v for k, v in entry.items()}
    return {k: norm[k] for k in CARRY if norm.get(k) is not None}


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return _pick(value, FIELDS["text"]).strip()
    if isinstance(value, list):
        return "; ".join(t for t in (_as_text(v) for v in value) if t)
    return str(value)


def _has_text(entry: Any, who: Any) -> bool:
    "True when a dropped item had readable text (so it was dropped for its members, not its text)."
    text = entry[1] if isinstance(entry, tuple) else entry
    return not _degenerate(_as_text(text), who)


def _degenerate(text: str, who: Any) -> bool:
    "Nothing to read: empty, a bare label, punctuation, a number or timestamp, a JSON fragment."
    t = text.strip()
    if not t or t.lower().strip(_STRIP) in _NULLS:
        return True
    if not re.search(r"[^\W\d_]{2,}", t):  # no word of two letters: "A", "][{", "12", "2024-05-01T10:00Z"
        return True
    if who(t) is not None:
        return True
    return bool(t.startswith(("{", "[{", "[[", '["')) or re.match(r'^\s*[\[{]*\s*"[^"]{0,40}"\s*:', t))


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
