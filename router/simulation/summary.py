"""From the raw tallies of each replication to the figures a planner reads: per queue and overall,
``offered``, ``answered``, ``abandoned``, ``asa_s``, ``p_wait``, ``sl`` (per threshold),
``p_abandon``, ``occupancy``, each as the mean over seeds with a 95% Student-t interval.

Definitions (per replication, over the measured contacts):

- ``asa_s``: mean wait of answered contacts, those answered at once included; wait = arrival to
  the router's ``Assigned`` (accept delay included).
- ``p_wait``: share of offered contacts not offered to an agent the instant they arrived.
- ``sl[t]``: share of *offered* contacts answered within ``t`` seconds (an abandoned contact
  counts as a miss; with no abandonment this is the share of answered ones).
- ``p_abandon``: share of offered contacts that abandoned before being answered.
- ``occupancy``: slot-seconds holding a conversation (from the offer to the close) over the
  slot-seconds available, over the measurement window; per queue, over the slots of the agents
  able to serve it; per agent group, over that group's slots.  Wrap-up time is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.simulation.engine import RunCounts
from router.simulation.scenario import Scenario
from router.simulation.statistics import Estimate, estimate

__all__ = ["METRICS", "Figures", "Summary", "summarize", "threshold_key"]

METRICS = ("offered", "answered", "abandoned", "asa_s", "p_wait", "sl", "p_abandon", "occupancy")


def threshold_key(threshold_s: float) -> str:
    """``20.0`` → ``"20"`` (the JSON key of a service-level threshold)."""
    return f"{threshold_s:g}"


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True, slots=True)
class Figures:
    """One row of the report (a queue, or all of them): each metric as an ``Estimate``."""

    offered: Estimate
    answered: Estimate
    abandoned: Estimate
    asa_s: Estimate
    p_wait: Estimate
    sl: dict[str, Estimate]
    p_abandon: Estimate
    occupancy: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "offered": _json(self.offered),
            "answered": _json(self.answered),
            "abandoned": _json(self.abandoned),
            "asa_s": _json(self.asa_s),
            "p_wait": _json(self.p_wait),
            "sl": {key: _json(value) for key, value in self.sl.items()},
            "p_abandon": _json(self.p_abandon),
            "occupancy": _json(self.occupancy),
        }


def _json(value: Estimate) -> dict[str, Any]:
    interval = None if value.halfwidth is None else [value.low, value.high]
    return {"mean": value.mean, "ci95": interval}


def _figures(
    thresholds: Sequence[float],
    rows: Sequence[tuple[float, float, float, float, float, Sequence[float], float, float]],
) -> Figures:
    """``rows``: one per seed, (offered, answered, abandoned, waited, wait_sum, within, busy, capacity)."""
    return Figures(
        offered=estimate([r[0] for r in rows]),
        answered=estimate([r[1] for r in rows]),
        abandoned=estimate([r[2] for r in rows]),
        asa_s=estimate([_ratio(r[4], r[1]) for r in rows]),
        p_wait=estimate([_ratio(r[3], r[0]) for r in rows]),
        sl={
            threshold_key(t): estimate([_ratio(r[5][j], r[0]) for r in rows])
            for j, t in enumerate(thresholds)
        },
        p_abandon=estimate([_ratio(r[2], r[0]) for r in rows]),
        occupancy=estimate([_ratio(r[6], r[7]) for r in rows]),
    )


@dataclass(frozen=True, slots=True)
class HourFigures:
    hour: int
    offered: Estimate
    sl: dict[str, Estimate]
    asa_s: Estimate
    p_abandon: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "hour": self.hour,
            "offered": _json(self.offered),
            "sl": {key: _json(value) for key, value in self.sl.items()},
            "asa_s": _json(self.asa_s),
            "p_abandon": _json(self.p_abandon),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """The report of a scenario run over several seeds."""

    scenario: Scenario
    seeds: int
    overall: Figures
    queues: dict[str, Figures]
    groups: dict[str, Estimate]
    by_hour: tuple[HourFigures, ...]
    contacts_simulated: int
    handle_calls: int
    cpu_s: float

    def to_dict(self) -> dict[str, Any]:
        run = self.scenario.run
        out: dict[str, Any] = {
            "scenario": self.scenario.source,
            "mode": run.mode,
            "seeds": self.seeds,
        }
        if run.hours is not None:
            out["hours"] = run.hours
        else:
            out["contacts"] = run.contacts
            out["warmup_contacts"] = run.warmup_contacts
        out["overall"] = self.overall.to_dict()
        out["queues"] = {name: figures.to_dict() for name, figures in self.queues.items()}
        out["agent_groups"] = {name: {"occupancy": _json(value)} for name, value in self.groups.items()}
        if self.by_hour:
            out["by_hour"] = [hour.to_dict() for hour in self.by_hour]
        return out


def summarize(scenario: Scenario, runs: Sequence[RunCounts]) -> Summary:
    thresholds = scenario.thresholds_s
    nth = len(thresholds)
    queues: dict[str, Figures] = {}
    for q, queue in enumerate(scenario.queues):
        rows = [
            (
                r.offered[q],
                r.answered[q],
                r.abandoned[q],
                r.waited[q],
                r.wait_sum[q],
                r.within[q],
                r.busy[q],
                r.capacity[q],
            )
            for r in runs
        ]
        queues[queue.name] = _figures(thresholds, rows)
    overall_rows = [
        (
            sum(r.offered),
            sum(r.answered),
            sum(r.abandoned),
            sum(r.waited),
            sum(r.wait_sum),
            [sum(row[j] for row in r.within) for j in range(nth)],
            sum(r.group_busy),
            sum(r.group_capacity),
        )
        for r in runs
    ]
    groups = {
        group.group: estimate([_ratio(r.group_busy[g], r.group_capacity[g]) for r in runs])
        for g, group in enumerate(scenario.agents)
    }
    by_hour: list[HourFigures] = []
    hours = scenario.run.hours or 0
    for hour in range(hours):
        totals = [
            [sum(r.hourly[q][hour][k] for q in range(len(scenario.queues))) for k in range(4 + nth)]
            for r in runs
        ]
        by_hour.append(
            HourFigures(
                hour=hour,
                offered=estimate([t[0] for t in totals]),
                sl={
                    threshold_key(th): estimate([_ratio(t[4 + j], t[0]) for t in totals])
                    for j, th in enumerate(thresholds)
                },
                asa_s=estimate([_ratio(t[3], t[1]) for t in totals]),
                p_abandon=estimate([_ratio(t[2], t[0]) for t in totals]),
            )
        )
    return Summary(
        scenario=scenario,
        seeds=len(runs),
        overall=_figures(thresholds, overall_rows),
        queues=queues,
        groups=groups,
        by_hour=tuple(by_hour),
        contacts_simulated=sum(r.contacts_simulated for r in runs),
        handle_calls=sum(r.handle_calls for r in runs),
        cpu_s=sum(r.cpu_s for r in runs),
    )
