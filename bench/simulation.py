"""Simulated contacts per second of the what-if simulator (``router.simulation``).

    python -m bench.simulation            # 200,000 contacts per scenario, 3 repetitions
    python -m bench.simulation --quick    # 40,000 contacts, 2 repetitions
    python -m bench.simulation --markdown # a table for docs/benchmarks.md

Each scenario is a replication of ``run_once`` — the production ``RouterState`` on a virtual clock
with Poisson arrivals, exponential handle times and immediate acceptance — timed end to end
(setup, warm-up, every ``handle()`` call, the engine's own bookkeeping).  A "contact" is one
arrival: it costs three ``handle()`` calls (arrival → offer, acceptance → assigned, close) plus
any ``Tick``.  Reported: the best of the repetitions on one core, per CPU-second of the process
(so that other work on a shared machine does not count against it), and the aggregate wall-clock
rate of one replication per core run in parallel processes (how ``centralita simulate`` spreads
its seeds), which does feel the neighbours.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from router.policy import ExplainDetail, RouterConfig
from router.simulation import (
    AgentGroupSpec,
    Distribution,
    Kind,
    PolicySpec,
    QueueSpec,
    RunSpec,
    Scenario,
    run_once,
)

CHAT = "whatsapp"


def _scenario(
    agents: int, slots: int, per_hour: float, handle_s: float, patience_s: float | None = None
) -> Scenario:
    return Scenario(
        run=RunSpec(contacts=100_000, warmup_contacts=0, seeds=1),
        queues=(
            QueueSpec(
                name="q",
                skills={"ventas": 1},
                channel=CHAT,
                arrivals_per_hour=(per_hour,),
                handle_time=Distribution(Kind.EXPONENTIAL, handle_s),
                patience=None if patience_s is None else Distribution(Kind.EXPONENTIAL, patience_s),
            ),
        ),
        agents=(AgentGroupSpec(group="g", count=agents, skills={"ventas": 5}, capacity={CHAT: slots}),),
        policy=PolicySpec(router=RouterConfig(explain=ExplainDetail.MINIMAL, ramp_period_s=0)),
    )


def _multi_skill() -> Scenario:
    queues = tuple(
        QueueSpec(
            name=name,
            skills={name: 1},
            channel=CHAT,
            arrivals_per_hour=(300,),
            handle_time=Distribution(Kind.EXPONENTIAL, 240),
        )
        for name in ("ventas", "soporte")
    )
    agents = (
        AgentGroupSpec(group="ventas", count=8, skills={"ventas": 5}, capacity={CHAT: 3}),
        AgentGroupSpec(group="soporte", count=8, skills={"soporte": 5}, capacity={CHAT: 3}),
        AgentGroupSpec(group="mixto", count=8, skills={"ventas": 3, "soporte": 3}, capacity={CHAT: 3}),
    )
    base = _scenario(1, 1, 1, 1)
    return replace(base, queues=queues, agents=agents)


SCENARIOS: dict[str, tuple[str, Callable[[], Scenario]]] = {
    "mmc_20x1": ("single skill, 20 agents × 1 chat, ρ = 0.85", lambda: _scenario(20, 1, 255, 240)),
    "whatsapp_10x3": ("single skill, 10 agents × 3 WhatsApp, ρ = 0.89", lambda: _scenario(10, 3, 400, 240)),
    "erlang_a_10x1": (
        "single skill, 10 agents, patience 120 s, a = 10",
        lambda: _scenario(10, 1, 150, 240, 120),
    ),
    "multi_skill": ("2 queues, 24 agents × 3 WhatsApp in 3 groups (not single-skill)", _multi_skill),
}


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    label: str
    value: float
    unit: str = "contacts/s"


def _one(job: tuple[Scenario, int]) -> tuple[int, float]:
    scenario, seed = job
    counts = run_once(scenario, seed)
    return counts.contacts_simulated, counts.cpu_s


def measure(contacts: int, repetitions: int, only: list[str] | None = None) -> list[Figure]:
    figures: list[Figure] = []
    cores = os.cpu_count() or 1
    for key, (label, build) in SCENARIOS.items():
        if only and key not in only:
            continue
        scenario = build()
        scenario = replace(scenario, run=replace(scenario.run, contacts=contacts, warmup_contacts=0))
        best = 0.0
        for seed in range(1, repetitions + 1):
            done, elapsed = _one((scenario, seed))
            best = max(best, done / elapsed)
        figures.append(Figure(f"{key}.one_core", f"{label} — one core (per CPU-second)", best))
        if cores > 1:
            started = time.perf_counter()
            with ProcessPoolExecutor(max_workers=cores) as pool:
                results = list(pool.map(_one, [(scenario, seed) for seed in range(1, cores + 1)]))
            wall = time.perf_counter() - started
            total = sum(done for done, _ in results)
            figures.append(
                Figure(f"{key}.all_cores", f"{label} — {cores} processes (wall clock)", total / wall)
            )
    return figures


def run(quick: bool) -> list[dict[str, object]]:
    """Entry point for ``python -m bench``: the figures as plain records."""
    contacts, repetitions = (40_000, 2) if quick else (200_000, 3)
    return [
        {"key": f.key, "label": f.label, "value": f.value, "unit": f.unit, "higher_is_better": True}
        for f in measure(contacts, repetitions)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulation", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40,000 contacts × 2 repetitions")
    parser.add_argument("--contacts", type=int, default=None)
    parser.add_argument("--only", default=None, help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    contacts, repetitions = (40_000, 2) if args.quick else (200_000, 3)
    contacts = args.contacts or contacts
    only = args.only.split(",") if args.only else None
    figures = measure(contacts, repetitions, only)
    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# simulated contacts per second ({contacts:,} contacts per replication; {machine}; load {load:.2f})"
    )
    if args.markdown:
        print("| scenario | contacts/s |")
        print("|---|---:|")
        for f in figures:
            print(f"| {f.label} | {f.value:,.0f} |")
    else:
        width = max(len(f.label) for f in figures)
        for f in figures:
            print(f"{f.label.ljust(width)}  {f.value:>10,.0f} {f.unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
