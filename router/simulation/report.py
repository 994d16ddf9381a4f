"""Readable tables of a run or a sweep (``centralita simulate`` without ``--json``)."""

from __future__ import annotations

from router.simulation.runner import Sweep
from router.simulation.statistics import Estimate
from router.simulation.summary import Figures, Summary, threshold_key

__all__ = ["format_summary", "format_sweep"]


def _pct(value: Estimate) -> str:
    text = f"{100 * value.mean:5.1f}%"
    return text if value.halfwidth is None else f"{text} ±{100 * value.halfwidth:.1f}"


def _secs(value: Estimate) -> str:
    text = f"{value.mean:7.1f}s"
    return text if value.halfwidth is None else f"{text} ±{value.halfwidth:.1f}"


def _count(value: Estimate) -> str:
    return f"{value.mean:,.0f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _row(name: str, figures: Figures, keys: list[str]) -> list[str]:
    return [
        name,
        _count(figures.offered),
        _count(figures.answered),
        _count(figures.abandoned),
        _secs(figures.asa_s),
        _pct(figures.p_wait),
        *(_pct(figures.sl[key]) for key in keys),
        _pct(figures.p_abandon),
        _pct(figures.occupancy),
    ]


def format_summary(summary: Summary) -> str:
    scenario = summary.scenario
    run = scenario.run
    keys = [threshold_key(t) for t in scenario.thresholds_s]
    if run.hours is not None:
        length = f"{run.hours} h from an empty start"
    else:
        length = f"{run.contacts:,} contacts after {run.warmup_contacts:,} of warm-up"
    lines = [
        f"{scenario.source}: {summary.seeds} seed{'s' if summary.seeds != 1 else ''} × {length}"
        + ("  (means ± 95% CI half-width)" if summary.seeds > 1 else ""),
        "",
    ]
    header = ["queue", "offered", "answered", "abandoned", "ASA", "P(wait)", *(f"SL {k}s" for k in keys)]
    header += ["P(abandon)", "occupancy"]
    rows = [_row(name, figures, keys) for name, figures in summary.queues.items()]
    if len(summary.queues) > 1:
        rows.append(_row("(all)", summary.overall, keys))
    lines.append(_table(header, rows))
    lines.append("")
    lines.append(
        _table(
            ["agent group", "agents", "occupancy"],
            [
                [name, str(group.count), _pct(summary.groups[name])]
                for name, group in ((g.group, g) for g in scenario.agents)
            ],
        )
    )
    if summary.by_hour:
        lines.append("")
        lines.append(
            _table(
                ["hour", "offered", *(f"SL {k}s" for k in keys), "ASA", "P(abandon)"],
                [
                    [
                        f"{h.hour:02d}:00",
                        _count(h.offered),
                        *(_pct(h.sl[k]) for k in keys),
                        _secs(h.asa_s),
                        _pct(h.p_abandon),
                    ]
                    for h in summary.by_hour
                ],
            )
        )
    rate = summary.contacts_simulated / summary.cpu_s if summary.cpu_s else 0.0
    lines.append("")
    lines.append(
        f"{summary.contacts_simulated:,} contacts simulated in {summary.cpu_s:.1f} CPU-seconds "
        f"({rate:,.0f} per CPU-second)"
    )
    return "\n".join(lines)


def format_sweep(result: Sweep) -> str:
    scenario = result.points[0].summary.scenario
    keys = [threshold_key(t) for t in scenario.thresholds_s]
    header = [result.group, *(f"SL {k}s" for k in keys), "ASA", "P(wait)", "P(abandon)", "occupancy"]
    rows = []
    for point in result.points:
        figures = point.summary.overall
        rows.append(
            [
                str(point.count),
                *(_pct(figures.sl[k]) for k in keys),
                _secs(figures.asa_s),
                _pct(figures.p_wait),
                _pct(figures.p_abandon),
                _pct(figures.occupancy),
            ]
        )
    lines = [
        f"{scenario.source}: sweep of agent group {result.group!r}, {scenario.run.seeds} seeds per size",
        "",
        _table(header, rows),
    ]
    target = scenario.target
    if target is not None:
        best = result.recommended()
        goal = f"{100 * target.fraction:g}% answered within {target.threshold_s:g} s"
        lines.append("")
        if best is None:
            lines.append(f"no size in the sweep reaches {goal}")
        else:
            lines.append(f"smallest size reaching {goal}: {best} agents in {result.group!r}")
    return "\n".join(lines)
