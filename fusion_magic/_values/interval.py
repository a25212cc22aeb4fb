"""The Wilson score interval: how sure a proportion of wins (or a mean score in [0, 1]) is.

A value's statistic, so `Comparison` can summarise itself; `fusion_magic._studies.grading`
re-exports it with the scorers.
"""

from __future__ import annotations

import math

__all__ = ["Z95", "wilson"]

Z95 = 1.959963984540054  # the two-sided 95 % quantile of the standard normal


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion of ``successes`` out of ``n`` (None when n = 0).

    Exact for 0/1 outcomes; for scores in [0, 1] (or ties counted as half a win) the successes
    are the sum of the scores. Such a score has at most the variance of a 0/1 outcome with the
    same mean, so the interval is then, if anything, a little wide.
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    return low, 1.0 if successes >= n else min(1.0, centre + half)
