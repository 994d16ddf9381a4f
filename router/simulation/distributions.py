"""Random durations (handle time, patience) and Poisson arrivals with hourly rates.

Each distribution gives a sampler bound to one ``random.Random`` — a plain closure, because the
simulator draws one or two numbers per contact and a method lookup per draw shows in profiles.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.errors import InvalidInput

__all__ = ["Distribution", "Kind", "Sampler", "next_arrival"]

Sampler = Callable[[], float]
HOUR_S = 3600.0


class Kind(StrEnum):
    EXPONENTIAL = "exponential"
    LOGNORMAL = "lognormal"
    CONSTANT = "constant"


@dataclass(frozen=True, slots=True)
class Distribution:
    """A positive duration in seconds: ``exponential`` (mean), ``lognormal`` (mean and coefficient
    of variation ``cv`` = std / mean) or ``constant``."""

    kind: Kind
    mean_s: float
    cv: float = 1.0

    def __post_init__(self) -> None:
        if not self.mean_s > 0 or math.isinf(self.mean_s):
            raise InvalidInput("mean_s must be a positive number of seconds", field="mean_s")
        if self.kind is Kind.LOGNORMAL and not self.cv > 0:
            raise InvalidInput("cv must be positive", field="cv")

    @property
    def std_s(self) -> float:
        if self.kind is Kind.EXPONENTIAL:
            return self.mean_s
        if self.kind is Kind.LOGNORMAL:
            return self.cv * self.mean_s
        return 0.0

    def sampler(self, rng: random.Random) -> Sampler:
        mean = self.mean_s
        if self.kind is Kind.CONSTANT:
            return lambda: mean
        uniform = rng.random
        log = math.log
        if self.kind is Kind.EXPONENTIAL:
            return lambda: -mean * log(1.0 - uniform())
        sigma = math.sqrt(math.log1p(self.cv * self.cv))
        mu = math.log(mean) - sigma * sigma / 2
        gauss = rng.gauss
        exp = math.exp
        return lambda: exp(mu + sigma * gauss(0.0, 1.0))


def next_arrival(now: float, rates_per_hour: Sequence[float], uniform: Callable[[], float]) -> float:
    """The next arrival after ``now`` of a Poisson process whose rate is constant within each hour
    (``rates_per_hour[h % len]`` per hour).  Exact: an exponential gap that crosses an hour boundary
    is redrawn from the boundary at the next hour's rate (memorylessness)."""
    count = len(rates_per_hour)
    if not any(rate > 0 for rate in rates_per_hour):
        return math.inf
    while True:
        hour = int(now // HOUR_S)
        rate = rates_per_hour[hour % count] / HOUR_S
        boundary = (hour + 1) * HOUR_S
        if rate > 0:
            candidate = now - math.log(1.0 - uniform()) / rate
            if candidate < boundary:
                return candidate
        now = boundary
