"""Who a judge's item is about: its labels (A, B...), member names and model ids mapped to panel members.

The judge sees the answers as A, B, C...; it may write 'member A', '[A]', 'Answer A', a member's
name or its model id, one of them or 'A, B and C'. `Labels` resolves all of these to member names
and rewrites label mentions in free text; `fusion_magic._judge.verdict` uses it to attribute items.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from .verdict_keys import FIELDS, as_text, first

__all__ = ["STRIP", "Labels"]

_L = TypeVar("_L", bound="Labels")

_PREFIX = re.compile(
    r"^(panel\s+member|member|answer|model|assistant|panelist|response|respondent|expert|"
    r"candidate|participant)[\s_#:-]*",
    re.I,
)
# Quotes, brackets and punctuation around a label or an item ("[A]", "*B*", "C:").
STRIP = " \t\r\n\"'`[](){}<>*.:;#,"
_MENTION = re.compile(r"\b(?i:member|answer|model|assistant|panelist)\s+([A-Z]\d?)\b|\[([A-Z]\d?)\]")


class Labels:
    """The panel's labels, names and aliases, lower-cased for lookup (``lookup``: any form -> member)."""

    def __init__(self, lookup: dict[str, str], labels: dict[str, str]) -> None:
        self.lookup, self.labels = lookup, labels

    @classmethod
    def of(cls: type[_L], labels: dict[str, str], aliases: dict[str, str] | None = None) -> _L:
        "From ``labels`` (A, B... -> member name) and ``aliases`` (other names, e.g. model ids -> member name)."
        names = set(labels.values())
        lookup = {k.lower(): v for k, v in labels.items()} | {n.lower(): n for n in names}
        lookup |= {k.lower(): v for k, v in (aliases or {}).items() if v in names}
        return cls(lookup, labels)

    def who(self, raw: str) -> str | None:
        "The member a label, name or model id refers to ('A', 'member A', '[A]', 'Answer A', 'a/alpha')."
        key = raw.strip().lower()
        if key in self.lookup:
            return self.lookup[key]
        key = key.strip(STRIP)
        if key in self.lookup:
            return self.lookup[key]
        key = _PREFIX.sub("", key).strip(STRIP)
        return self.lookup.get(key)

    def members(self, raw: Any) -> list[str]:
        "Members named by a label, a list of labels or a string such as 'A, B and C'."
        if raw is None:
            return []
        if isinstance(raw, dict):
            raw = first(raw, FIELDS["model"]) or list(raw)
        values = raw if isinstance(raw, list) else [raw]
        out: list[str] = []
        for value in values:
            text = as_text(value)
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

    def split_labelled(self, text: str) -> tuple[Any, str]:
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
