"""Queueing theory the simulator is checked against: Erlang B, Erlang C (M/M/c) and Erlang A
(M/M/c+M, exponential patience).  Pure functions of rates in events per second.

- ``λ`` (``arrival_rate``): contacts per second; ``μ`` (``service_rate``): 1 / mean handle time;
  ``θ`` (``abandon_rate``): 1 / mean patience; ``c``: servers — for agents with several concurrent
  conversations of one channel, ``c = agents × slots`` and the handle time is per slot.
- "Wait" is the time from arrival to the start of service (an agent accepting).  ``asa`` is the
  mean wait of *answered* contacts, those answered at once included (zeros count).
- ``service_level(t)`` is the fraction of all offered contacts answered within ``t`` seconds
  (with no abandonment every contact is answered, so it is also the share of answered ones).

Erlang A is solved exactly from its birth–death chain (truncated where the tail is below 1e-15),
and the wait of an arrival that finds ``k`` contacts ahead of it is a sum of exponential phases
(each one ends when one of the ``c`` servers frees or one of those ahead abandons), which gives the
answered/abandoned split and the ASA of answered contacts without approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import InvalidInput

__all__ = ["ErlangA", "ErlangC", "erlang_a", "erlang_b", "erlang_c", "servers_for_service_level"]


def erlang_b(servers: int, offered_load: float) -> float:
    """Blocking probability of M/M/c/c with ``offered_load`` = λ/μ Erlangs (stable recursion)."""
    if servers < 0 or offered_load < 0:
        raise InvalidInput("servers and load must be non-negative")
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return blocking


@dataclass(frozen=True, slots=True)
class ErlangC:
    """M/M/c: Poisson arrivals, exponential handle time, ``servers`` in parallel, infinite patience."""

    servers: int
    arrival_rate: float
    service_rate: float

    def __post_init__(self) -> None:
        if self.servers < 1 or self.arrival_rate <= 0 or self.service_rate <= 0:
            raise InvalidInput("Erlang C needs servers >= 1 and positive rates")
        if self.load >= self.servers:
            raise InvalidInput(f"unstable: load {self.load:.2f} Erlangs on {self.servers} servers")

    @property
    def load(self) -> float:
        """Offered load in Erlangs (a = λ/μ)."""
        return self.arrival_rate / self.service_rate

    @property
    def occupancy(self) -> float:
        """ρ = a / c, the share of server time busy."""
        return self.load / self.servers

    @property
    def p_wait(self) -> float:
        """Probability that an arriving contact waits (the Erlang C formula)."""
        blocking = erlang_b(self.servers, self.load)
        return blocking / (1 - self.occupancy * (1 - blocking))

    @property
    def asa(self) -> float:
        """Mean wait over all contacts, zeros included: C / (cμ − λ)."""
        return self.p_wait / (self.servers * self.service_rate - self.arrival_rate)

    def service_level(self, threshold_s: float) -> float:
        """P(wait ≤ t) = 1 − C·e^(−(cμ − λ)t)."""
        return 1 - self.p_wait * math.exp(
            -(self.servers * self.service_rate - self.arrival_rate) * threshold_s
        )


@dataclass(frozen=True, slots=True)
class ErlangA:
    """M/M/c+M: as Erlang C, and a waiting contact abandons after an exponential patience."""

    servers: int
    arrival_rate: float
    service_rate: float
    abandon_rate: float

    def __post_init__(self) -> None:
        if self.servers < 1 or self.arrival_rate <= 0 or self.service_rate <= 0 or self.abandon_rate <= 0:
            raise InvalidInput("Erlang A needs servers >= 1 and positive rates")

    @property
    def load(self) -> float:
        return self.arrival_rate / self.service_rate

    def _distribution(self) -> list[float]:
        """Stationary probabilities of the number in system, 0 … N (tail below 1e-15 dropped)."""
        c, lam, mu, theta = self.servers, self.arrival_rate, self.service_rate, self.abandon_rate
        weights = [1.0]
        n = 0
        while True:
            death = min(n + 1, c) * mu + max(n + 1 - c, 0) * theta
            weights.append(weights[-1] * lam / death)
            n += 1
            if n > c and weights[-1] < 1e-15 * sum(weights):
                break
            if weights[-1] > 1e250:  # rescale to stay finite on very large loads
                weights = [w / 1e250 for w in weights]
        total = sum(weights)
        return [w / total for w in weights]

    def _answer_paths(self, ahead: int) -> tuple[float, float]:
        """For an arrival with ``ahead`` contacts waiting before it: P(answered) and
        E[wait · 1{answered}] (each phase lasts Exp(cμ + kθ + θ) whichever way it ends)."""
        c, mu, theta = self.servers, self.service_rate, self.abandon_rate
        p_answer, mean_time, expected = 1.0, 0.0, 0.0
        for k in range(ahead, -1, -1):
            advance = c * mu + k * theta
            rate = advance + theta
            mean_time += 1 / rate
            p_answer *= advance / rate
        expected = p_answer * mean_time
        return p_answer, expected

    def _figures(self) -> tuple[float, float, float, float]:
        probabilities = self._distribution()
        c = self.servers
        p_wait = sum(probabilities[c:])
        answered = sum(probabilities[:c])
        answered_wait = 0.0
        for n in range(c, len(probabilities)):
            p_answer, wait = self._answer_paths(n - c)
            answered += probabilities[n] * p_answer
            answered_wait += probabilities[n] * wait
        queue_length = sum((n - c) * p for n, p in enumerate(probabilities) if n > c)
        return p_wait, 1 - answered, answered_wait / answered, queue_length

    @property
    def p_wait(self) -> float:
        """Probability that an arriving contact finds every server busy (PASTA)."""
        return self._figures()[0]

    @property
    def p_abandon(self) -> float:
        """Share of contacts that abandon (= θ·E[queue length] / λ)."""
        return self._figures()[1]

    @property
    def asa(self) -> float:
        """Mean wait of answered contacts, zeros included."""
        return self._figures()[2]

    @property
    def mean_queue_length(self) -> float:
        return self._figures()[3]

    @property
    def mean_wait_all(self) -> float:
        """Mean time in queue over all contacts, abandoned ones included (Little: E[Q] / λ)."""
        return self.mean_queue_length / self.arrival_rate

    @property
    def occupancy(self) -> float:
        """Share of server time busy: the answered load over the servers."""
        return self.load * (1 - self.p_abandon) / self.servers


def erlang_c(servers: int, arrival_rate: float, service_rate: float) -> ErlangC:
    return ErlangC(servers, arrival_rate, service_rate)


def erlang_a(servers: int, arrival_rate: float, service_rate: float, abandon_rate: float) -> ErlangA:
    return ErlangA(servers, arrival_rate, service_rate, abandon_rate)


def servers_for_service_level(
    arrival_rate: float, service_rate: float, threshold_s: float, target: float
) -> int:
    """The fewest servers whose Erlang C service level at ``threshold_s`` reaches ``target``."""
    if not 0 < target < 1:
        raise InvalidInput("the target is a fraction between 0 and 1")
    servers = max(1, math.floor(arrival_rate / service_rate) + 1)
    while ErlangC(servers, arrival_rate, service_rate).service_level(threshold_s) < target:
        servers += 1
    return servers
