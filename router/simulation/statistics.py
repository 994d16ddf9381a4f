"""Means over independent replications (seeds) with Student-t confidence intervals.

The t quantile is computed here (regularized incomplete beta by continued fraction, then
bisection), so the simulator needs neither scipy nor numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InvalidInput

__all__ = ["Estimate", "estimate", "student_t_cdf", "student_t_quantile"]


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1) / (a + b + 2):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise InvalidInput("degrees of freedom must be positive")
    tail = 0.5 * _regularized_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (e.g. ``p=0.975, df=9`` → 2.262)."""
    if not 0 < p < 1:
        raise InvalidInput("a quantile's probability is strictly between 0 and 1")
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if student_t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean over ``n`` replications and its confidence interval (``None`` with one replication)."""

    mean: float
    halfwidth: float | None
    n: int
    level: float = 0.95

    @property
    def low(self) -> float | None:
        return None if self.halfwidth is None else self.mean - self.halfwidth

    @property
    def high(self) -> float | None:
        return None if self.halfwidth is None else self.mean + self.halfwidth

    def contains(self, value: float) -> bool:
        return self.halfwidth is not None and abs(value - self.mean) <= self.halfwidth

    def at_level(self, level: float) -> Estimate:
        """The same mean with the interval at another confidence level."""
        if self.halfwidth is None:
            return Estimate(self.mean, None, self.n, level)
        base = student_t_quantile(0.5 + self.level / 2, self.n - 1)
        wanted = student_t_quantile(0.5 + level / 2, self.n - 1)
        return Estimate(self.mean, self.halfwidth * wanted / base, self.n, level)

    def to_dict(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "ci95_low": self.low, "ci95_high": self.high, "halfwidth": self.halfwidth}


def estimate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean and Student-t interval of independent replications."""
    n = len(values)
    if n == 0:
        raise InvalidInput("no replications to average")
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, None, 1, level)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    halfwidth = student_t_quantile(0.5 + level / 2, n - 1) * math.sqrt(variance / n)
    return Estimate(mean, halfwidth, n, level)
