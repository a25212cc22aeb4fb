"""Do two analysis items say the same thing? Text similarity for the jury merge and the judge diff.

Items are compared within one section by their main text (topic, point or insight), case and
punctuation folded, with rapidfuzz's token-set ratio: word order and extra words matter little,
different words matter. Attributed items must also name the same members where that is the
point of the item (a unique insight of B is never the same as one of C).
"""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz, utils

from .._values.sections import shape_of

__all__ = ["THRESHOLD", "cluster", "same", "score", "text_of"]

THRESHOLD = 70.0  # token-set ratio (0-100) above which two items are taken to say the same thing


def text_of(item: Any) -> str:
    "The item's main text: a contradiction's topic, a point, an insight, or the text itself."
    if isinstance(item, str):
        return item
    for name in ("topic", "point", "insight"):
        value = getattr(item, name, None)
        if isinstance(value, str):
            return value
    return str(item)


def score(a: Any, b: Any) -> float:
    "Similarity of two items' texts, 0-100."
    return fuzz.token_set_ratio(text_of(a), text_of(b), processor=utils.default_process)


def _compatible(section: str, a: Any, b: Any) -> bool:
    if shape_of(section) == "member":  # one member's point matches only the same member's
        return getattr(a, "model", None) == getattr(b, "model", None)
    return True


def same(section: str, a: Any, b: Any) -> bool:
    "True when items ``a`` and ``b`` of ``section`` say the same thing."
    return _compatible(section, a, b) and score(a, b) >= THRESHOLD


def cluster(section: str, found: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    """Group (source, item) pairs that say the same thing; one item per source in a group.

    Greedy in the given order: each item joins the most similar group that has nothing from its
    source yet, or starts a new one. The first item of a group is its representative.
    """
    groups: list[list[tuple[str, Any]]] = []
    for source, item in found:
        best, best_score = None, THRESHOLD
        for group in groups:
            if any(s == source for s, _ in group) or not _compatible(section, group[0][1], item):
                continue
            value = score(group[0][1], item)
            if value >= best_score:
                best, best_score = group, value
        if best is None:
            groups.append([(source, item)])
        else:
            best.append((source, item))
    return groups
