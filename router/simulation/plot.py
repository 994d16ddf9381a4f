"""PNG charts of a run (service level and ASA by hour) or of a sweep (the staffing curve).

matplotlib is optional (the ``sim`` extra); without it ``plot_*`` raise ``InvalidInput`` with one
line saying how to install it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from router.simulation.runner import Sweep
from router.simulation.summary import Summary, threshold_key

__all__ = ["plot_by_hour", "plot_sweep"]


def _pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as exc:
        raise InvalidInput(
            "--plot needs matplotlib: pip install 'centralita[sim]' (or pip install matplotlib)"
        ) from exc
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def _errors(values: list[Any]) -> list[float]:
    return [0.0 if v.halfwidth is None else v.halfwidth for v in values]


def plot_by_hour(summary: Summary, path: str | Path) -> None:
    """Service level per threshold (left axis) and ASA (right axis) by hour of arrival."""
    if not summary.by_hour:
        raise InvalidInput(
            "--plot by hour needs a day run (run: {hours: 24}); or use --sweep for a staffing curve"
        )
    plt = _pyplot()
    hours = [h.hour for h in summary.by_hour]
    figure, left = plt.subplots(figsize=(9, 4.8))
    for threshold in summary.scenario.thresholds_s:
        key = threshold_key(threshold)
        values = [h.sl[key] for h in summary.by_hour]
        left.errorbar(
            hours,
            [100 * v.mean for v in values],
            yerr=[100 * e for e in _errors(values)],
            marker="o",
            capsize=3,
            label=f"SL {key} s",
        )
    target = summary.scenario.target
    if target is not None:
        left.axhline(
            100 * target.fraction,
            color="grey",
            linestyle="--",
            linewidth=1,
            label=f"target {100 * target.fraction:g}% in {target.threshold_s:g} s",
        )
    left.set_xlabel("hour of arrival")
    left.set_ylabel("service level (% of offered)")
    left.set_ylim(0, 105)
    left.set_xticks(hours)
    right = left.twinx()
    asa = [h.asa_s for h in summary.by_hour]
    right.errorbar(
        hours,
        [v.mean for v in asa],
        yerr=_errors(asa),
        color="tab:red",
        marker="s",
        linestyle=":",
        capsize=3,
        label="ASA (s)",
    )
    right.set_ylabel("ASA (s)")
    lines = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left", fontsize="small")
    left.set_title(f"{Path(summary.scenario.source).name}: by hour ({summary.seeds} seeds, 95% CI)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_sweep(result: Sweep, path: str | Path) -> None:
    """The staffing curve: service level per threshold and ASA against the group's size."""
    plt = _pyplot()
    scenario = result.points[0].summary.scenario
    counts = [p.count for p in result.points]
    figure, left = plt.subplots(figsize=(9, 4.8))
    for threshold in scenario.thresholds_s:
        key = threshold_key(threshold)
        values = [p.summary.overall.sl[key] for p in result.points]
        left.errorbar(
            counts,
            [100 * v.mean for v in values],
            yerr=[100 * e for e in _errors(values)],
            marker="o",
            capsize=3,
            label=f"SL {key} s",
        )
    target = scenario.target
    best = result.recommended()
    if target is not None:
        left.axhline(
            100 * target.fraction,
            color="grey",
            linestyle="--",
            linewidth=1,
            label=f"target {100 * target.fraction:g}% in {target.threshold_s:g} s",
        )
    if best is not None:
        left.axvline(best, color="tab:green", linestyle=":", linewidth=1.5, label=f"{best} agents")
    left.set_xlabel(f"agents in {result.group!r}")
    left.set_ylabel("service level (% of offered)")
    left.set_ylim(0, 105)
    left.set_xticks(counts)
    right = left.twinx()
    asa = [p.summary.overall.asa_s for p in result.points]
    right.errorbar(
        counts,
        [v.mean for v in asa],
        yerr=_errors(asa),
        color="tab:red",
        marker="s",
        linestyle=":",
        capsize=3,
        label="ASA (s)",
    )
    right.set_ylabel("ASA (s)")
    right.set_yscale("symlog", linthresh=1.0)
    lines = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="center right", fontsize="small")
    left.set_title(
        f"{Path(scenario.source).name}: staffing curve ({scenario.run.seeds} seeds per size, 95% CI)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
