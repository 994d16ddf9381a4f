"""``python -m bench [--quick] [--json FILE] [--only NAME,...] [--database-url URL] [--broker-url URL]``

Runs the benchmarks in order — the raw ceilings first, so that every later figure is printed
with the ceiling it is compared with, measured in the same run — and prints one table per
benchmark (``--markdown`` for tables to paste in ``docs/benchmarks.md``).  ``--json FILE``
writes every figure, its details and the machine it ran on.

PostgreSQL: a fresh throwaway database is created on the server ``--database-url`` names (its
database is only used to connect for ``CREATE DATABASE``) and dropped at the end.  RabbitMQ:
every queue carries a unique prefix and is deleted at the end.  Only loopback servers are used.
A server that cannot be reached ends the run with one line saying which and why (exit code 2).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import importlib
import importlib.util
import inspect
import ipaddress
import logging
import secrets
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import asyncpg
import sqlalchemy as sa
from yarl import URL

from bench import ceilings, engine, faults, launch, pipeline, reports, retention, stripped
from bench.harness import (
    Benchmark,
    Context,
    Need,
    Result,
    Results,
    load_average,
    machine_info,
    write_json,
)
from core.errors import ServiceUnavailable
from core.logging import configure_logging

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"

BOTH: frozenset[Need] = frozenset({"postgres", "rabbitmq"})

# Sub-benchmarks written in their own modules by their owners; each is run if its module
# exists and exposes ``run(quick: bool)`` (sync or async, returning results) or ``main(argv)``.
EXTERNAL = (
    ("routing", "bench.routing_decisions", "router decisions per second and their latency"),
    ("identity", "bench.identity_resolution", "identity resolution per second and its latency"),
    ("simulation", "bench.simulation", "simulated contacts per second of the what-if simulator"),
)

OPT_IN = frozenset({"faults"})
"""Run only when named with ``--only``: they break servers on purpose and take minutes."""

EXTERNAL_LIMIT_S = {True: 120.0, False: 3600.0}
"""How long another module's ``main`` may run (quick, full) before it is stopped."""

_SERVICE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    aiormq.exceptions.AMQPError,
    ServiceUnavailable,
)

_CONNECT_ERRORS: tuple[type[Exception], ...] = (*_SERVICE_ERRORS, ValueError)


class ExternalFailed(Exception):
    """Another module's benchmark could not be run or failed; the message is one line."""


class Unreachable(Exception):
    """A server the run needs cannot be reached; the message is the one line to print."""


def benchmarks() -> list[Benchmark]:
    found = [
        Benchmark("ceilings", ceilings.run, "raw aio-pika / asyncpg / aiosqlite, and our transports", BOTH),
        Benchmark("stripped", stripped.run, "the minimal ingress: one INSERT + one confirmed publish", BOTH),
        Benchmark(
            "engine", engine.run, "the engine end to end on PostgreSQL + RabbitMQ: webhook → offer", BOTH
        ),
        Benchmark(
            "engine-embedded", engine.run_embedded, "the engine end to end on SQLite + the in-process broker"
        ),
        Benchmark(
            "launch",
            launch.run,
            "a campaign launch on PostgreSQL + RabbitMQ: 10,000 templates' statuses and the answers",
            BOTH,
        ),
        Benchmark(
            "launch-embedded",
            launch.run_embedded,
            "a campaign launch on SQLite + the in-process broker",
        ),
        Benchmark(
            "pipeline",
            pipeline.run,
            "the pipeline alone: CPU and SQL statements per delivery by batch size",
            frozenset({"postgres"}),
        ),
        Benchmark(
            "reports",
            reports.run,
            "the reports over a month of a busy campaign on PostgreSQL, next to a raw SQL aggregate",
            frozenset({"postgres"}),
        ),
        Benchmark("faults", faults.run, "faults under load on private PostgreSQL + RabbitMQ (--only faults)"),
        Benchmark(
            "retention",
            retention.run,
            "rows purged per second by a retention pass, PostgreSQL and SQLite",
            frozenset({"postgres"}),
        ),
    ]
    for name, module, description in EXTERNAL:
        if importlib.util.find_spec(module) is not None:
            found.append(Benchmark(name, _external_run(name, module), description))
    return found


# -- sub-benchmarks of other modules ---------------------------------------------------------


def _external_run(name: str, module_name: str) -> Any:
    """Run another module's benchmark: ``run(quick)`` returning figures is recorded as figures;
    otherwise the module's ``main`` is run as ``python -m MODULE [--quick]`` in a child process
    and what it prints is kept (printed under the benchmark's name and stored in the JSON)."""

    async def run(ctx: Context) -> None:
        module = importlib.import_module(module_name)
        entry = getattr(module, "run", None)
        if callable(entry) and _takes_only_quick(entry):
            outcome = await _call(entry, ctx.quick)
            _record(ctx.results, name, outcome)
            return
        if not callable(getattr(module, "main", None)):
            raise ExternalFailed(f"{module_name} has neither run(quick) nor main(argv)")
        # Its own process: its output, its GC settings and its event loops stay its own.
        argv = ["--quick"] if ctx.quick else []
        limit_s = EXTERNAL_LIMIT_S[ctx.quick]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module_name, *argv, stdout=asyncio.subprocess.PIPE
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=limit_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise ExternalFailed(
                f"python -m {module_name} {' '.join(argv)} took more than {limit_s:g} s"
            ) from None
        ctx.results.add_text(name, f"python -m {module_name} {' '.join(argv)}".strip(), output.decode())
        if process.returncode != 0:
            raise ExternalFailed(f"python -m {module_name} exited with {process.returncode}")

    return run


def _takes_only_quick(entry: Any) -> bool:
    try:
        parameters = list(inspect.signature(entry).parameters)
    except (TypeError, ValueError):
        return False
    return parameters == ["quick"]


async def _call(entry: Any, argument: Any) -> Any:
    if inspect.iscoroutinefunction(entry):
        return await entry(argument)
    # A synchronous entry point may call asyncio.run itself: give it a thread of its own.
    outcome = await asyncio.to_thread(entry, argument)
    return await outcome if inspect.isawaitable(outcome) else outcome


def _record(results: Results, benchmark: str, outcome: Any) -> None:
    """Take the figures a sub-benchmark returned, in whichever of the plain shapes it chose."""
    items: list[Any]
    if outcome is None:
        return
    if isinstance(outcome, Results):
        items = list(outcome)
    elif isinstance(outcome, Mapping):
        items = [
            {"key": key, **value} if isinstance(value, Mapping) else {"key": key, "value": value}
            for key, value in outcome.items()
        ]
    elif isinstance(outcome, Sequence) and not isinstance(outcome, str | bytes):
        items = list(outcome)
    else:
        raise ExternalFailed(f"{benchmark}: cannot read results of type {type(outcome).__name__}")
    for item in items:
        if isinstance(item, Result):
            results.add(
                item.benchmark or benchmark,
                item.key,
                item.label,
                item.value,
                item.unit,
                ceiling=item.ceiling,
                higher_is_better=item.higher_is_better,
                details=item.details,
            )
            continue
        data = dict(item) if isinstance(item, Mapping) else dict(vars(item))
        key = str(data.pop("key", data.get("name", f"{benchmark}.{len(results)}")))
        if not isinstance(data.get("value"), int | float):
            continue
        results.add(
            benchmark,
            key if key.startswith(f"{benchmark}.") else f"{benchmark}.{key}",
            str(data.pop("label", data.pop("name", key))),
            float(data.pop("value")),
            str(data.pop("unit", "")),
            ceiling=data.pop("ceiling", None),
            higher_is_better=bool(data.pop("higher_is_better", True)),
            details=data,
        )


# -- services --------------------------------------------------------------------------------


def _check_loopback(what: str, host: str | None) -> None:
    if host in (None, "", "localhost"):
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise Unreachable(
            f"{what} host {host!r} is not a loopback address; the benchmarks only run on loopback"
        )


def _reason(exc: BaseException) -> str:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, aiormq.exceptions.ProbableAuthenticationError):
            return "authentication refused"
        if isinstance(current, TimeoutError):
            return "timed out"
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = current.__cause__ or current.__context__ or (nested[0] if nested else None)
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


async def _rabbitmq_version(broker_url: str) -> str:
    safe = str(URL(broker_url).with_password(None)) if URL(broker_url).password else broker_url
    try:
        connection = await aio_pika.connect(broker_url, timeout=5)
    except _CONNECT_ERRORS as exc:
        raise Unreachable(f"cannot reach RabbitMQ at {safe}: {_reason(exc)}") from exc
    try:
        transport = connection.transport
        properties = transport.connection.server_properties if transport is not None else {}
        product = properties.get("product", "RabbitMQ")
        version = properties.get("version", "?")
        return f"{_text(product)} {_text(version)}"
    finally:
        await connection.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ThrowawayDatabase:
    """``CREATE DATABASE centralita_bench_<hex>`` on the server, ``DROP … WITH (FORCE)`` after."""

    def __init__(self, url: str) -> None:
        try:
            self.admin = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise Unreachable(f"not a database URL: {url!r}") from exc
        _check_loopback("PostgreSQL", self.admin.host)
        self.name = f"centralita_bench_{secrets.token_hex(5)}"
        self.url = self.admin.set(database=self.name).render_as_string(hide_password=False)
        self.version = "?"

    def _dsn(self, database: str) -> str:
        return self.admin.set(drivername="postgresql", database=database).render_as_string(
            hide_password=False
        )

    @property
    def safe_url(self) -> str:
        return self.admin.render_as_string(hide_password=True)

    async def create(self) -> None:
        try:
            connection = await asyncpg.connect(self._dsn(self.admin.database or "postgres"), timeout=5)
        except _CONNECT_ERRORS as exc:
            raise Unreachable(f"cannot reach PostgreSQL at {self.safe_url}: {_reason(exc)}") from exc
        try:
            self.version = "PostgreSQL " + str(await connection.fetchval("SHOW server_version"))
            await connection.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await connection.close()

    async def drop(self) -> None:
        connection = await asyncpg.connect(self._dsn(self.admin.database or "postgres"), timeout=5)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await connection.close()


# -- the run ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="small counts, same code paths (< 1 min)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every result as JSON")
    parser.add_argument("--only", metavar="NAME,...", help="run only these benchmarks")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, metavar="URL")
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL, metavar="URL")
    parser.add_argument("--markdown", action="store_true", help="print tables as Markdown")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _select(available: Sequence[Benchmark], only: str | None) -> list[Benchmark]:
    if not only:
        return [b for b in available if b.name not in OPT_IN]
    names = [n.strip() for n in only.split(",") if n.strip()]
    by_name = {b.name: b for b in available}
    for name in names:
        if name not in by_name:
            close = difflib.get_close_matches(name, by_name, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise Unreachable(f"unknown benchmark {name!r}{hint} (known: {', '.join(by_name)})")
    return [b for b in available if b.name in names]


def _progress(started: float) -> Any:
    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    return say


async def _run(args: argparse.Namespace, command: str) -> int:
    selected = _select(benchmarks(), args.only)
    needs: set[Need] = set().union(*(b.needs for b in selected)) if selected else set()
    started = time.monotonic()
    say = _progress(started)
    machine = machine_info()
    database: ThrowawayDatabase | None = None
    if "rabbitmq" in needs:
        _check_loopback("RabbitMQ", URL(args.broker_url).host)
        machine["rabbitmq"] = await _rabbitmq_version(args.broker_url)
    if "postgres" in needs:
        database = ThrowawayDatabase(args.database_url)
        await database.create()
        machine["postgresql"] = database.version
    results = Results()
    printed: set[str] = set()
    failure: str | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="centralita-bench-") as workdir:
            ctx = Context(
                quick=args.quick,
                database_url=database.url if database else "",
                broker_url=args.broker_url,
                prefix=f"bench{secrets.token_hex(4)}.",
                workdir=Path(workdir),
                results=results,
                progress=say,
            )
            print(_header(machine, command, args.quick), flush=True)
            for benchmark in selected:
                say(f"{benchmark.name}: {benchmark.description}")
                try:
                    await benchmark.run(ctx)
                except _SERVICE_ERRORS as exc:
                    failure = f"{benchmark.name}: a server stopped answering: {_reason(exc)}"
                    break
                except ExternalFailed as exc:
                    failure = f"{benchmark.name}: {exc}"
                    say(f"bench: {failure}")
                    continue
                for name in [n for n in results.benchmarks() if n not in printed]:
                    printed.add(name)
                    _print_benchmark(results, name, args.markdown)
    finally:
        if database is not None:
            await database.drop()
    elapsed = time.monotonic() - started
    machine["load_average_at_end"] = load_average()
    print(
        f"\nfinished in {elapsed:.1f} s; load average at the end {machine['load_average_at_end']}", flush=True
    )
    if args.json:
        write_json(
            args.json,
            {
                "command": command,
                "quick": args.quick,
                "started_at": datetime.now(UTC).isoformat(),
                "duration_s": round(elapsed, 1),
                "machine": machine,
                "results": results.to_dicts(),
                "tables": results.extra_dicts(),
                "failure": failure,
            },
        )
    if failure:
        print(f"bench: {failure}", file=sys.stderr)
        return 1
    return 0


def _print_benchmark(results: Results, name: str, markdown: bool) -> None:
    print(f"\n## {name}\n" if markdown else f"\n== {name}")
    if results.for_benchmark(name):
        print(results.table(name, markdown=markdown))
    for extra in results.extra_tables(name, markdown=markdown):
        print("\n" + extra)
    sys.stdout.flush()


def _header(machine: Mapping[str, Any], command: str, quick: bool) -> str:
    lines = [
        f"centralita benchmarks ({'quick' if quick else 'full'} run): {command}",
        f"  machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB RAM, "
        f"{machine['os']}",
        f"  load average at the start: {machine['load_average']} (other work on the machine shows here)",
        f"  python {machine['python']}"
        + (f"; {machine['postgresql']}" if "postgresql" in machine else "")
        + (f"; {machine['rabbitmq']}" if "rabbitmq" in machine else ""),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for benchmark in benchmarks():
            print(f"{benchmark.name:10} {benchmark.description}")
        return 0
    configure_logging("WARNING")
    # aiormq logs a connection failure before raising it; the run prints its own one line.
    for name in ("aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(_run(args, command.strip()))
    except Unreachable as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
