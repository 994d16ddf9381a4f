"""Replications and sweeps: run a scenario over its seeds (in parallel processes when asked), and
a staffing sweep over one agent group's size."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInput
from router.simulation.engine import RunCounts, run_once
from router.simulation.scenario import Scenario
from router.simulation.summary import Summary, summarize, threshold_key

__all__ = ["ProgressSink", "Sweep", "SweepPoint", "default_jobs", "parse_sweep", "simulate", "sweep"]

ProgressSink = Callable[[float], None]
"""Told the share of all the work done (0 … 1)."""


def default_jobs() -> int:
    return max(1, os.cpu_count() or 1)


def _run_job(job: tuple[Scenario, int]) -> RunCounts:
    scenario, seed = job
    return run_once(scenario, seed)


def _run_all(
    jobs: Sequence[tuple[Scenario, int]], workers: int, progress: ProgressSink | None
) -> list[RunCounts]:
    """Run every (scenario, seed) job; in ``workers`` processes when more than one."""
    total = len(jobs)
    if workers <= 1 or total == 1:
        results: list[RunCounts] = []
        for done, (scenario, seed) in enumerate(jobs):
            sink = None
            if progress is not None:
                base = done

                def sink(fraction: float, base: int = base) -> None:
                    progress((base + fraction) / total)

            results.append(run_once(scenario, seed, sink))
        return results
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=context) as pool:
        futures = [pool.submit(_run_job, job) for job in jobs]
        out: list[RunCounts] = []
        for done, future in enumerate(futures, start=1):
            out.append(future.result())
            if progress is not None:
                progress(done / total)
        return out


def _seeds(scenario: Scenario) -> list[int]:
    return [scenario.run.seed + index for index in range(scenario.run.seeds)]


def simulate(scenario: Scenario, *, jobs: int = 1, progress: ProgressSink | None = None) -> Summary:
    """Run the scenario once per seed and average."""
    runs = _run_all([(scenario, seed) for seed in _seeds(scenario)], jobs, progress)
    return summarize(scenario, runs)


@dataclass(frozen=True, slots=True)
class SweepPoint:
    count: int
    summary: Summary


@dataclass(frozen=True, slots=True)
class Sweep:
    """A staffing curve: the scenario with group ``group`` at each size."""

    group: str
    points: tuple[SweepPoint, ...]

    def recommended(self) -> int | None:
        """The smallest size whose mean service level reaches the scenario's target (``None``
        without a target, or when no size does)."""
        scenario = self.points[0].summary.scenario if self.points else None
        if scenario is None or scenario.target is None:
            return None
        key = threshold_key(scenario.target.threshold_s)
        for point in self.points:
            if point.summary.overall.sl[key].mean >= scenario.target.fraction:
                return point.count
        return None

    def to_dict(self) -> dict[str, Any]:
        scenario = self.points[0].summary.scenario
        target = scenario.target
        return {
            "scenario": scenario.source,
            "sweep": {"group": self.group, "from": self.points[0].count, "to": self.points[-1].count},
            "seeds": scenario.run.seeds,
            "target": None
            if target is None
            else {"threshold_s": target.threshold_s, "fraction": target.fraction},
            "recommended": self.recommended(),
            "points": [
                {
                    "agents": point.count,
                    "overall": point.summary.overall.to_dict(),
                    "queues": {n: f.to_dict() for n, f in point.summary.queues.items()},
                    "agent_groups": {
                        n: {
                            "occupancy": {
                                "mean": e.mean,
                                "ci95": None if e.halfwidth is None else [e.low, e.high],
                            }
                        }
                        for n, e in point.summary.groups.items()
                    },
                }
                for point in self.points
            ],
        }


def parse_sweep(text: str) -> tuple[str, int, int]:
    """``agents=GROUP:FROM..TO`` → (group, from, to)."""
    what, _, rest = text.partition("=")
    group, _, bounds = rest.rpartition(":")
    low, _, high = bounds.partition("..")
    if what != "agents" or not group or not low.isdigit() or not high.isdigit():
        raise InvalidInput(
            f"--sweep expects agents=GROUP:FROM..TO (e.g. agents=generalistas:10..20), got {text!r}"
        )
    start, stop = int(low), int(high)
    if start > stop:
        raise InvalidInput(f"--sweep range {start}..{stop} is empty")
    if stop - start > 200:
        raise InvalidInput("--sweep covers at most 201 sizes")
    return group, start, stop


def sweep(
    scenario: Scenario,
    group: str,
    start: int,
    stop: int,
    *,
    jobs: int = 1,
    progress: ProgressSink | None = None,
) -> Sweep:
    """Run the scenario with ``group`` at every size from ``start`` to ``stop``."""
    variants = [scenario.with_group_count(group, count) for count in range(start, stop + 1)]
    jobs_list = [(variant, seed) for variant in variants for seed in _seeds(variant)]
    runs = _run_all(jobs_list, jobs, progress)
    per = scenario.run.seeds
    points = tuple(
        SweepPoint(count, summarize(variant, runs[i * per : (i + 1) * per]))
        for i, (count, variant) in enumerate(zip(range(start, stop + 1), variants, strict=True))
    )
    return Sweep(group, points)
