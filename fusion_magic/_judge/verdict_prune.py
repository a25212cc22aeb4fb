"""Analysis items whose text reads but which say nothing: `prune`, run once the members are known.

`fusion_magic._judge.verdict` drops junk text (a bare label, punctuation, a fragment). A small judge
also writes items that are well-formed text yet carry nothing, and this drops them, counted in
the salvage's ``dropped`` (so in ``result.notes``, worded by `Salvage.notes`), never silently:

- a contradiction with no topic, or with the stances of fewer than two members (none, one, or a
  member against itself);
- a partial-coverage point naming no member;
- any item whose text is a member's whole answer, copied (the judge pasting an answer as a blind
  spot or an insight): it tells nothing the panel answer does not;
- the code that closes each answer in the judge's prompt (``fence``), written back: it is taken out
  of the answer (an answer that was only that is dropped), and an item holding it is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .verdict import Salvage

__all__ = ["prune"]

_MIN_COPY = 40  # shorter answers ("Paris.") may well be what a point says


def prune(found: Salvage, answers: Mapping[str, str], fence: str = "") -> None:
    """Drop the items above from ``found`` in place; ``answers`` maps member name -> answer text."""
    copies = {_norm(text) for text in answers.values() if len(_norm(text)) >= _MIN_COPY}
    if fence and fence in found.answer:
        found.answer = found.answer.replace(fence, "").strip()
        if not re.search(r"[^\W\d_]{2,}", found.answer):  # nothing left to read
            found.answer = ""
            found.dropped["scaffolding"] += 1
    for name, items in found.sections.items():
        kept = []
        for item in items:
            why = "scaffolding" if fence and any(fence in t for t in _texts(item)) else _why(name, item, copies)
            if why:
                found.dropped[why] += 1
            else:
                kept.append(item)
        found.sections[name] = kept


def _why(section: str, item: Any, copies: set[str]) -> str | None:
    if section == "contradictions" and isinstance(item, dict):
        if not str(item.get("topic") or "").strip():
            return "no_topic"
        if len({s.get("model") for s in item.get("stances") or []}) < 2:
            return "one_sided"
    if section == "partial_coverage" and isinstance(item, dict) and not item.get("models"):
        return "no_members"
    return "copied" if copies and any(_norm(text) in copies for text in _texts(item)) else None


def _texts(item: Any) -> list[str]:
    "The judge's own words in an item (not its quotes, which are meant to copy)."
    if isinstance(item, str):
        return [item]
    if not isinstance(item, dict):
        return []
    out = [str(item.get(k) or "") for k in ("point", "topic", "insight")]
    return out + [str(s.get("stance") or "") for s in item.get("stances") or [] if isinstance(s, dict)]


@lru_cache(maxsize=4096)
def _norm(text: str) -> str:
    "Text as compared for copies; once per text (a cached re-run prunes the same answers and items again)."
    return " ".join(re.sub(r"[*_`#>]", "", text).lower().split()).strip(" .")
