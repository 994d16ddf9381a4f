"""``centralita simulate SCENARIO.yaml [--json] [--seeds N] [--plot FILE.png]
[--sweep agents=GROUP:FROM..TO] [--jobs N] [--progress | --no-progress]``

Runs the production routing policy against a synthetic day or a steady state (see
``docs/simulation.md``) and prints per queue and overall: offered, answered, abandoned, ASA,
P(wait), service levels, P(abandon) and occupancy, each as a mean over seeds with its 95%
confidence interval.  ``--json`` prints the same as one JSON object.  ``--plot`` draws service
level and ASA by hour (day runs), or the staffing curve of a ``--sweep``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TextIO

from router.simulation import (
    default_jobs,
    format_summary,
    format_sweep,
    load_scenario,
    parse_sweep,
    simulate,
    stability_warnings,
    sweep,
)

__all__ = ["ProgressBar", "register"]


class ProgressBar:
    """A one-line bar on a terminal stream, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, label: str, width: int = 30) -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self.started = time.monotonic()
        self.drawn_at = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1 and now - self.drawn_at < 0.1:
            return
        self.drawn_at = now
        filled = int(self.width * min(1.0, fraction))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = now - self.started
        self.stream.write(f"\r{self.label} [{bar}] {100 * fraction:5.1f}%  {elapsed:6.1f}s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "simulate",
        help="what-if simulation of the router against synthetic traffic",
        description="Run the real routing policy on a virtual clock against a scenario file.",
    )
    parser.add_argument("scenario", metavar="SCENARIO.yaml")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument(
        "--seeds", type=int, default=None, metavar="N", help="replications (default: the scenario's)"
    )
    parser.add_argument(
        "--plot", default=None, metavar="FILE.png", help="SL and ASA by hour, or the sweep's curve"
    )
    parser.add_argument(
        "--sweep", default=None, metavar="agents=GROUP:FROM..TO", help="run once per size of an agent group"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, metavar="N", help=f"parallel processes (default: {default_jobs()})"
    )
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="always show progress"
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    parser.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    if args.seeds is not None:
        scenario = scenario.with_seeds(args.seeds)
    jobs = default_jobs() if args.jobs is None else max(1, args.jobs)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(sys.stderr, "simulating") if show else None
    if args.sweep is not None:
        group, start, stop = parse_sweep(args.sweep)
        scenario.with_group_count(group, start)  # an unknown group fails before any work
        try:
            result = sweep(scenario, group, start, stop, jobs=jobs, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        if args.plot:
            from router.simulation.plot import plot_sweep

            plot_sweep(result, args.plot)
        print(json.dumps(result.to_dict(), indent=2) if args.json else format_sweep(result))
        return 0
    for warning in stability_warnings(scenario):
        print(f"centralita: warning: {warning}", file=sys.stderr)
    try:
        summary = simulate(scenario, jobs=jobs, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if args.plot:
        from router.simulation.plot import plot_by_hour

        plot_by_hour(summary, args.plot)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else format_summary(summary))
    return 0
