"""Salvage the judge's reply: keep every section that can be read, whatever shape it came in.

Judges differ: some honour the JSON schema, some answer in OpenRouter Fusion's shape (the five
analysis lists, no ``answer``), some nest everything under ``analysis``, wrap it in a tool result,
fence it, add prose around it, write camelCase keys, trailing commas, ``null`` sections, stances as
a ``{label: stance}`` mapping, ``models`` as a comma string or items as objects. `salvage` reads
all of these. Items that carry nothing (only a label, punctuation, a JSON fragment, a number) are
dropped and counted, never silently.

This module coerces each section's entries into items of its shape and drops the junk. Finding
the JSON and the key vocabulary are `fusion_magic._judge.verdict_keys` (the sections, their keys and
item shapes come from `fusion_magic._values.sections`; a new item field, say a ``quote``, is one entry in
its `CARRY`); mapping labels to members is `fusion_magic._judge.verdict_labels`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from .._values.sections import SECTIONS as TABLE
from .._values.sections import Shape
from .unscaffold import unscaffold
from .verdict_keys import FIELDS, as_text, candidates, canonical_fields, carried, entries, first, pick
from .verdict_labels import STRIP, Labels

__all__ = ["Salvage", "salvage"]

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
            # fusion_magic._judge.verdict_prune's reasons
            "no_topic": "contradictions without a topic",
            "one_sided": "contradictions without the stances of two members",
            "no_members": "partial-coverage points naming no member",
            "copied": "analysis items that copy a member's answer",
            "scaffolding": "judge texts that were only our prompt's markup",
        }
        return [f"dropped {n} {words.get(why, why)}" for why, n in self.dropped.items() if n]


def salvage(text: str, labels: dict[str, str], aliases: dict[str, str] | None = None) -> Salvage:
    """Read the judge's reply ``text``; ``labels`` maps A, B... to member names.

    ``aliases`` maps other names a judge may use for a member (its model id) to the member's name.
    A reply read before for the same panel is not read again (a cached re-run meets the same
    replies). The reading is shared; what is returned is a copy of its lists and counts, so `prune`
    may drop items from it (the items themselves are shared: read them, never change them).
    """
    shared = _salvaged(text, tuple(labels.items()), tuple((aliases or {}).items()))
    sections = {name: list(items) for name, items in shared.sections.items()}
    return replace(shared, sections=sections, dropped=Counter(shared.dropped))


@lru_cache(maxsize=512)
def _salvaged(text: str, label_items: tuple[tuple[str, str], ...], alias_items: tuple[tuple[str, str], ...]) -> Salvage:
    reader = _Reader.of(dict(label_items), dict(alias_items))
    best = Salvage()
    for candidate in candidates(text):
        best.found_json = True
        result = reader.read(candidate)
        if _score(result) > _score(best):
            result.found_json = True
            best = result
    return best


def _score(s: Salvage) -> tuple[int, int]:
    return (sum(len(v) for v in s.sections.values()) + (2 if s.answer.strip() else 0), -sum(s.dropped.values()))


# -- reading it ---------------------------------------------------------------------------------


class _Reader(Labels):
    "Items of each section's shape from the canonical fields, members resolved through `Labels`."

    def relabel(self, value: str) -> str:
        "Every text the judge writes passes here: our prompt's scaffolding out, then labels to members."
        return super().relabel(unscaffold(value))

    def read(self, value: Any) -> Salvage:
        out = Salvage()
        fields = canonical_fields(value)
        answer = fields.pop("answer", None)
        if answer is not None:
            text = self.relabel(as_text(answer))
            if text and _degenerate(text, self.who):
                out.dropped["degenerate"] += 1
            else:
                out.answer = text
        for section in TABLE:
            items = self._section(section.shape, fields.get(section.name), out.dropped)
            out.sections[section.name] = _dedupe(items, out.dropped)
        return out

    # -- sections -------------------------------------------------------------------------------
    def _section(self, shape: Shape, raw: Any, dropped: Counter[str]) -> list[Any]:
        if raw is None or raw == "":
            return []
        read = getattr(self, "_read_" + shape)
        items: list[Any] = []
        for entry in entries(raw, shape):
            item = read(entry)
            if item is None:
                dropped["unattributed" if _has_text(entry, self.who) else "degenerate"] += 1
            elif item == "degenerate":
                dropped["degenerate"] += 1
            else:
                items.append(item)
        return items

    def _text_item(self, entry: Any) -> Any:
        text = self.relabel(pick(entry, FIELDS["text"]) if isinstance(entry, dict) else as_text(entry))
        if _degenerate(text, self.who):
            return "degenerate"
        return text

    _read_text = _text_item

    def _read_supported(self, entry: Any) -> Any:
        "A point, or {point, support} when the judge named the members stating it (with quotes)."
        text = self._text_item(entry)
        support = self._quotes(carried(entry).get("support")) if isinstance(entry, dict) else []
        return {"point": text, "support": support} if support and text != "degenerate" else text

    def _quotes(self, raw: Any) -> list[dict[str, str]]:
        "[{model, quote}] with labels mapped to members; entries naming nobody are left out."
        out = []
        for entry in raw if isinstance(raw, list) else []:
            who = self.members(first(entry, FIELDS["model"])) if isinstance(entry, dict) else self.members(entry)
            quote = as_text(entry.get("quote")) if isinstance(entry, dict) else ""
            out += [{"model": model, "quote": quote} for model in who[:1]]
        return out

    def _read_stances(self, entry: Any) -> Any:
        if isinstance(entry, tuple):  # from a {topic: stances} mapping
            topic, raw = entry
        elif isinstance(entry, dict):
            topic = pick(entry, FIELDS["topic"], skip=FIELDS["stances"])
            raw = first(entry, FIELDS["stances"])
            if raw is None:  # {"topic": ..., "A": "...", "B": "..."}
                raw = {k: v for k, v in entry.items() if self.who(str(k))}
        else:
            topic, raw = as_text(entry), None
        topic = self.relabel(as_text(topic))
        stances = self._stances(raw)
        if _degenerate(topic, self.who):
            if not stances:
                return "degenerate"
            topic = ""
        return {"topic": topic, "stances": stances, **carried(entry)}

    def _stances(self, raw: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pairs: list[tuple[Any, ...]] = []  # (who, stance) or (who, stance, quote)
        if isinstance(raw, dict):
            pairs = list(raw.items())
        elif isinstance(raw, list):
            for s in raw:
                if isinstance(s, dict):
                    who = first(s, ("models", "members", "labels"))
                    who = who if who is not None else first(s, FIELDS["model"])
                    pairs.append(
                        (
                            who,
                            pick(s, FIELDS["stance"], skip=FIELDS["model"] + ("quote",)) or "",
                            as_text(s.get("quote")),
                        )
                    )
                elif isinstance(s, str):
                    pairs.append(self.split_labelled(s))
        elif isinstance(raw, str):
            pairs = [self.split_labelled(part) for part in re.split(r"[;\n]+", raw) if part.strip()]
        for who, stance, *quote in pairs:  # quote: [] or [text]
            text = self.relabel(as_text(stance))
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
            point = pick(entry, FIELDS["text"], skip=FIELDS["models"])
            models = self.members(first(entry, FIELDS["models"]))
        else:
            who, point = self.split_labelled(as_text(entry))
            models = self.members(who) if who else self.mentioned(point)
        point = self.relabel(as_text(point))
        if _degenerate(point, self.who):
            return "degenerate"
        extra = carried(entry)
        if "quotes" in extra:
            extra["quotes"] = self._quotes(extra["quotes"])
        return {"models": models, "point": point, **extra}

    def _read_member(self, entry: Any) -> Any:
        if isinstance(entry, tuple):  # from a {label: insight} mapping
            who, text = entry
        elif isinstance(entry, dict):
            # `model` as asked, or Fusion-style `models: ["C"]`: a unique insight is one member's,
            # so of several listed members the first is kept (its quote is checked against its answer).
            who = first(entry, FIELDS["model"])
            who = who if who is not None else first(entry, FIELDS["models"])
            text = pick(entry, FIELDS["text"], skip=FIELDS["model"] + FIELDS["models"])
        else:
            who, text = self.split_labelled(as_text(entry))
            if not who:
                found = self.mentioned(as_text(entry))
                who = found[0] if found else None
        text = self.relabel(as_text(text))
        if _degenerate(text, self.who):
            return "degenerate"
        models = self.members(who)
        if not models:
            return None
        return {"model": models[0], "insight": text, **self._own_quote(carried(entry), models[0])}

    def _own_quote(self, extra: dict[str, Any], model: str) -> dict[str, Any]:
        "An item's carried fields; `quotes: [{model, quote}]` becomes the member's own `quote`."
        quotes = extra.pop("quotes", None)
        if "quote" not in extra:
            for q in self._quotes(quotes):
                if q["model"] == model and q["quote"]:
                    extra["quote"] = q["quote"]
                    break
        return extra


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


def _has_text(entry: Any, who: Any) -> bool:
    "True when a dropped item had readable text (so it was dropped for its members, not its text)."
    text = entry[1] if isinstance(entry, tuple) else entry
    return not _degenerate(as_text(text), who)


def _degenerate(text: str, who: Any) -> bool:
    "Nothing to read: empty, a bare label, punctuation, a number or timestamp, a JSON fragment."
    t = text.strip()
    if not t or t.lower().strip(STRIP) in _NULLS:
        return True
    if not re.search(r"[^\W\d_]{2,}", t):  # no word of two letters: "A", "][{", "12", "2024-05-01T10:00Z"
        return True
    if who(t) is not None:
        return True
    return bool(t.startswith(("{", "[{", "[[", '["')) or re.match(r'^\s*[\[{]*\s*"[^"]{0,40}"\s*:', t))
