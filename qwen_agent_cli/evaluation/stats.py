"""The statistics of a comparison, standard library only: the Wilson score interval of a rate
and the exact (binomial) McNemar test on paired outcomes.

Imports nothing from qac.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Z95 = 1.959963984540054
"""The normal quantile of 0.975: a two-sided 95 % interval."""


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval: sound at 0 and n successes and for small n, where the
    normal approximation gives intervals outside [0, 1]."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: under no difference, each discordant task is equally
    likely to favour either arm, so the smaller count is Binomial(n, 1/2)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    low = min(only_a, only_b)
    tail = sum(math.comb(n, k) for k in range(low + 1)) / float(2**n)
    return min(1.0, 2 * tail)


@dataclass(frozen=True, slots=True)
class Paired:
    """Two arms on the tasks both ran: who fixed what, and the test of the difference."""

    a: str
    b: str
    tasks: int
    both: int
    only_a: int
    only_b: int
    neither: int
    p_value: float


def paired(a: str, b: str, fixed_a: Mapping[str, bool], fixed_b: Mapping[str, bool]) -> Paired:
    """Compare two arms' verdicts on the tasks they share."""
    shared = sorted(set(fixed_a) & set(fixed_b))
    both = sum(1 for t in shared if fixed_a[t] and fixed_b[t])
    only_a = sum(1 for t in shared if fixed_a[t] and not fixed_b[t])
    only_b = sum(1 for t in shared if fixed_b[t] and not fixed_a[t])
    neither = len(shared) - both - only_a - only_b
    return Paired(a, b, len(shared), both, only_a, only_b, neither, mcnemar_exact(only_a, only_b))
