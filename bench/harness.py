"""What every benchmark shares: clocks, percentiles, the result registry, tables and JSON.

A benchmark is an ``async def run(ctx: Context) -> None`` that measures something and records
each figure with ``ctx.results.add(...)``.  A figure may name a *ceiling* (the key of another
figure measured earlier in the same run, usually in ``bench.ceilings``); its ratio is then
printed next to it:

- for rates (``higher_is_better=True``) ratio = figure / ceiling;
- for latencies (``higher_is_better=False``) ratio = ceiling / figure;

so a ratio is always "the fraction of the ceiling attained": 1.0 is as good as the raw library,
0.5 is half as good, above 1.0 is better than the raw figure it is compared with.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Benchmark",
    "Context",
    "LatencySummary",
    "Result",
    "Results",
    "Stopwatch",
    "clock",
    "format_table",
    "format_value",
    "load_average",
    "machine_info",
    "percentile",
    "rate",
    "repeated",
    "stop_process",
    "stopwatch",
    "summarize",
    "write_json",
]

clock = time.perf_counter
"""The one clock of the benchmarks: monotonic, sub-microsecond, in seconds."""

Need = Literal["postgres", "rabbitmq"]


# -- statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0–100) with linear interpolation between closest ranks.

    The same definition as NumPy's default: ``percentile([1, 2, 3, 4], 50) == 2.5``.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, not {p}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(ordered[low])
    fraction = position - low
    return float(ordered[low] + (ordered[high] - ordered[low]) * fraction)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latencies in seconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    def as_ms(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "p50_ms": round(self.p50 * 1000, 3),
            "p90_ms": round(self.p90 * 1000, 3),
            "p99_ms": round(self.p99 * 1000, 3),
            "max_ms": round(self.max * 1000, 3),
            "mean_ms": round(self.mean * 1000, 3),
        }


def summarize(latencies: Sequence[float]) -> LatencySummary:
    """p50/p90/p99/max/mean of latencies in seconds; raises ``ValueError`` when there are none."""
    if not latencies:
        raise ValueError("no latencies to summarize")
    return LatencySummary(
        count=len(latencies),
        p50=percentile(latencies, 50),
        p90=percentile(latencies, 90),
        p99=percentile(latencies, 99),
        max=float(max(latencies)),
        mean=float(sum(latencies) / len(latencies)),
    )


def rate(count: int, seconds: float) -> float:
    """Events per second; 0 when nothing was timed."""
    return count / seconds if seconds > 0 else 0.0


async def repeated(times: int, once: Callable[[], Awaitable[float]]) -> tuple[float, list[float]]:
    """Await ``once()`` ``times`` times; the median of the figures it returned, and all of them.

    The machine may be busy with other work: the median of a few runs is steadier than one.
    """
    if times < 1:
        raise ValueError("times must be at least 1")
    samples = [await once() for _ in range(times)]
    return statistics.median(samples), samples


@dataclass(slots=True)
class Stopwatch:
    started: float = field(default_factory=clock)
    stopped: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.stopped if self.stopped is not None else clock()) - self.started

    def stop(self) -> float:
        self.stopped = clock()
        return self.elapsed


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """``with stopwatch() as sw: ...`` then ``sw.elapsed`` (seconds)."""
    watch = Stopwatch()
    try:
        yield watch
    finally:
        if watch.stopped is None:
            watch.stop()


# -- results ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    """One figure.  ``key`` is unique in a run (``rabbitmq.raw.publish.pipelined``)."""

    benchmark: str
    key: str
    label: str
    value: float
    unit: str
    ceiling: str | None = None
    higher_is_better: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    command: str = ""


class Results:
    """The registry of a run's figures, in the order they were measured."""

    def __init__(self) -> None:
        self._by_key: dict[str, Result] = {}
        self._extra: dict[str, list[tuple[str, list[str], list[list[str]]]]] = {}
        self._texts: dict[str, list[tuple[str, str]]] = {}

    def add(
        self,
        benchmark: str,
        key: str,
        label: str,
        value: float,
        unit: str,
        *,
        ceiling: str | None = None,
        higher_is_better: bool = True,
        details: Mapping[str, Any] | None = None,
    ) -> Result:
        if key in self._by_key:
            raise ValueError(f"result {key!r} was already recorded in this run")
        result = Result(
            benchmark=benchmark,
            key=key,
            label=label,
            value=float(value),
            unit=unit,
            ceiling=ceiling,
            higher_is_better=higher_is_better,
            details=dict(details or {}),
        )
        self._by_key[key] = result
        return result

    def get(self, key: str) -> Result | None:
        return self._by_key.get(key)

    def __iter__(self) -> Iterator[Result]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def for_benchmark(self, benchmark: str) -> list[Result]:
        return [r for r in self if r.benchmark == benchmark]

    def ratio(self, result: Result) -> float | None:
        """The fraction of its ceiling the figure attains, or None without a measured ceiling."""
        if result.ceiling is None:
            return None
        ceiling = self._by_key.get(result.ceiling)
        if ceiling is None or ceiling.value <= 0 or result.value <= 0:
            return None
        if result.higher_is_better:
            return result.value / ceiling.value
        return ceiling.value / result.value

    def table(self, benchmark: str, *, markdown: bool = False) -> str:
        """One table for a benchmark: measure, figure, ceiling measured in the same run, ratio."""
        rows: list[list[str]] = []
        for result in self.for_benchmark(benchmark):
            ceiling = self._by_key.get(result.ceiling) if result.ceiling else None
            ratio = self.ratio(result)
            rows.append(
                [
                    result.label,
                    format_value(result.value, result.unit),
                    f"{format_value(ceiling.value, ceiling.unit)} ({ceiling.label})" if ceiling else "",
                    f"{ratio:.2f}" if ratio is not None else "",
                ]
            )
        return format_table(["measure", "figure", "ceiling (same run)", "ratio"], rows, markdown=markdown)

    def add_table(
        self, benchmark: str, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> None:
        """A supplementary table printed after the benchmark's figures (steps of a load test)."""
        self._extra.setdefault(benchmark, []).append((title, list(headers), [list(r) for r in rows]))

    def add_text(self, benchmark: str, title: str, text: str) -> None:
        """Output a benchmark printed itself (another module's ``main``), kept as it was."""
        self._texts.setdefault(benchmark, []).append((title, text.rstrip("\n")))

    def extra_tables(self, benchmark: str, *, markdown: bool = False) -> list[str]:
        tables = [
            f"{title}\n{format_table(headers, rows, markdown=markdown)}"
            for title, headers, rows in self._extra.get(benchmark, [])
        ]
        return tables + [f"$ {title}\n{text}" for title, text in self._texts.get(benchmark, [])]

    def extra_dicts(self) -> list[dict[str, Any]]:
        tables: list[dict[str, Any]] = [
            {"benchmark": name, "title": title, "headers": headers, "rows": rows}
            for name, entries in self._extra.items()
            for title, headers, rows in entries
        ]
        texts = [
            {"benchmark": name, "title": title, "text": text}
            for name, entries in self._texts.items()
            for title, text in entries
        ]
        return tables + texts

    def benchmarks(self) -> list[str]:
        """Names of the benchmarks that recorded something, in order."""
        names = [r.benchmark for r in self]
        names += [name for name in [*self._extra, *self._texts] if name not in names]
        return list(dict.fromkeys(names))

    def to_dicts(self) -> list[dict[str, Any]]:
        out = []
        for result in self:
            item = asdict(result)
            ceiling = self._by_key.get(result.ceiling) if result.ceiling else None
            item["ceiling_value"] = ceiling.value if ceiling else None
            item["ratio"] = self.ratio(result)
            out.append(item)
        return out


# -- formatting ------------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    """``12345.6, "msg/s"`` → ``12,346 msg/s``; small values keep significant decimals."""
    magnitude = abs(value)
    if magnitude >= 100 or value == 0:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:,.1f}"
    elif magnitude >= 1:
        text = f"{value:,.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, markdown: bool = False) -> str:
    """A plain-text (or Markdown) table; the first column left-aligned, the others right-aligned."""
    width = len(headers)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row has {len(row)} cells, the table has {width} columns")
    widths = [max([len(headers[i]), *(len(row[i]) for row in rows)]) for i in range(width)]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(cells)]
        if markdown:
            return "| " + " | ".join(padded) + " |"
        return "  ".join(padded).rstrip()

    if markdown:
        rule = (
            "|"
            + "|".join(
                ("-" * (widths[i] + 1) + ":" if i else ":" + "-" * (widths[i] + 1)) for i in range(width)
            )
            + "|"
        )
    else:
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


# -- the machine -----------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """CPU model, core count, memory, OS and Python of the machine the run is on."""
    cpu = platform.processor() or platform.machine()
    memory_gib: float | None = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for text in handle:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for text in handle:
                if text.startswith("MemTotal:"):
                    memory_gib = round(int(text.split()[1]) / 1024 / 1024, 1)
                    break
    except OSError:
        pass  # not Linux: the platform module's answers stand
    return {
        "load_average": load_average(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": sys.version.split()[0],
    }


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine shows here."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -- benchmarks ------------------------------------------------------------------------------


@dataclass(slots=True)
class Context:
    """What a benchmark gets: the mode, the services (already reachable) and the registry.

    ``database_url`` is a fresh throwaway PostgreSQL database (SQLAlchemy form,
    ``postgresql+asyncpg://``) created for this run and dropped after it; ``pg_dsn`` is the same
    for asyncpg.  ``prefix`` is unique to the run: put it in front of every exchange and queue
    name and delete them afterwards.  ``workdir`` is a temporary directory (SQLite files).
    """

    quick: bool
    database_url: str
    broker_url: str
    prefix: str
    workdir: Path
    results: Results
    progress: Callable[[str], None] = field(default=lambda _line: None)

    @property
    def pg_dsn(self) -> str:
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def size(self, quick: int, full: int) -> int:
        """The count to use in this mode."""
        return quick if self.quick else full

    @property
    def repeats(self) -> int:
        """How many times a throughput is measured (its median is reported): 1 quick, 3 full."""
        return 1 if self.quick else 3


BenchmarkRun = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A named benchmark for ``python -m bench --only NAME``; ``needs`` lists the services."""

    name: str
    run: BenchmarkRun
    description: str
    needs: frozenset[Need] = frozenset()


def write_json(path: Path, report: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


async def stop_process(process: asyncio.subprocess.Process, timeout_s: float = 10.0) -> None:
    """Terminate a server a benchmark started; kill it if it does not exit within ``timeout_s``."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
