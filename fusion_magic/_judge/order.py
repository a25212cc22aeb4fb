"""The order in which the judge reads the panel's answers: shuffled, seeded per question, or fixed.

A judge favours some positions (often the first or the last answer). Shuffling with a seed taken
from the question and the members answering averages that bias out over many questions while a
re-run asks exactly the same thing (and hits the cache). The order used is recorded in
``FusionResult.judge_order``; the anonymous labels follow it (A is the first answer the judge reads),
so every label still maps back to its member.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence

__all__ = ["ORDERS", "judge_order"]

ORDERS = ("shuffled", "fixed")


def judge_order(question: str, names: Sequence[str], order: str = "shuffled") -> list[str]:
    """``names`` (the members answering, in panel order) in the order the judge reads them.

    "fixed" keeps the panel order; "shuffled" permutes them with a seed derived from the question
    and the names (a stable hash, not Python's per-process ``hash``), so the same question to the
    same panel is always read in the same order.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    names = list(names)
    if order == "fixed" or len(names) < 2:
        return names
    digest = hashlib.sha256(json.dumps([question, names], ensure_ascii=False).encode("utf-8")).digest()
    shuffled = names[:]
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(shuffled)
    return shuffled
