"""The stripped pipeline: the least an ingress can do, as fast as it can do it.

An aiohttp server on loopback whose handler stores the request (one ``raw_delivery``-shaped
INSERT) and publishes it (one persistent message to a quorum queue, publisher-confirmed), both
at once, and answers 200 only when both are durable.  Nothing else: no signature, no parsing, no
routing.  Concurrent requests share the work:

- **group commit**: rows wait in a ``Batcher``; each of ``writers`` connections takes everything
  pending (up to ``max_batch``) and commits it in one transaction (``executemany``);
- **batched confirms**: messages wait in another ``Batcher``; each flush publishes all that is
  pending on one confirm channel and awaits the confirms together.

The server runs in a child process (``python -m bench.stripped serve``) so that it does not
share an event loop with the load generator; the parent offers rising rates with
``bench.loadgen.run_load`` (reading the server's CPU time and batch sizes around each step)
and reports the highest rate the server sustained.  This is the ceiling the real engine's
end-to-end figure (ingress → pipeline → router) is compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import aio_pika
import aiohttp
import asyncpg
from aiohttp import web

from bench.ceilings import pg_insert_sql, pg_table_ddl
from bench.harness import Context, format_value, stop_process
from bench.loadgen import LoadResult, LoadSpec, json_body, run_load

__all__ = ["Batcher", "build_app", "run", "serve"]

T = TypeVar("T")

FULL_RATES = (250, 500, 750, 1000, 1500, 2000, 3000, 4000)
QUICK_RATES = (200,)
MAX_P99_S = 0.5
"""A step is sustained when it is answered in full, at ≥95 % of the offered rate, p99 under this."""

_ENV_DSN = "BENCH_STRIPPED_PG_DSN"
_ENV_BROKER = "BENCH_STRIPPED_BROKER_URL"


@dataclass(slots=True)
class BatchStats:
    batches: int = 0
    items: int = 0
    largest: int = 0
    busy_s: float = 0.0
    """Wall-clock time spent inside ``flush`` (summed over concurrent flushes)."""

    def as_dict(self) -> dict[str, float | int]:
        return {"batches": self.batches, "items": self.items, "largest": self.largest, "busy_s": self.busy_s}


@dataclass(slots=True)
class Batcher(Generic[T]):
    """Gathers items submitted concurrently and hands them to ``flush`` in batches.

    ``await submit(item)`` returns once the batch holding the item was flushed, or raises what
    ``flush`` raised.  ``concurrency`` flushes may run at once; while they run, new items pile up
    and become the next batch, so the batch size follows the load.
    """

    flush: Callable[[list[T]], Awaitable[None]]
    max_batch: int = 256
    concurrency: int = 2
    stats: BatchStats = field(default_factory=BatchStats)
    _pending: list[tuple[T, asyncio.Future[None]]] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _workers: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for _, future in self._pending:
            future.cancel()

    async def submit(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        await future

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            if not self._pending:
                self._wake.clear()
            if not batch:
                continue
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            started = time.perf_counter()
            try:
                await self.flush([item for item, _ in batch])
            except Exception as exc:  # handed to every waiter, which answers 503
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
            finally:
                self.stats.busy_s += time.perf_counter() - started


# -- the server ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerConfig:
    pg_dsn: str
    broker_url: str
    queue: str
    table: str
    writers: int = 2
    publishers: int = 2
    max_batch: int = 256


_CONFIG = web.AppKey("config", ServerConfig)
_WRITER = web.AppKey("writer", Batcher)
_PUBLISHER = web.AppKey("publisher", Batcher)
_STORE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    aio_pika.exceptions.AMQPError,
    OSError,
)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[_CONFIG]
    pool = await asyncpg.create_pool(config.pg_dsn, min_size=config.writers, max_size=config.writers)
    connection = await aio_pika.connect(config.broker_url, timeout=5)
    channel = await connection.channel(publisher_confirms=True)
    insert = pg_insert_sql(config.table)

    async def write(rows: list[tuple[Any, ...]]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(insert, rows)

    async def publish(bodies: list[bytes]) -> None:
        exchange = channel.default_exchange
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=config.queue,
                )
                for body in bodies
            )
        )

    writer: Batcher[tuple[Any, ...]] = Batcher(write, config.max_batch, config.writers)
    publisher: Batcher[bytes] = Batcher(publish, config.max_batch, config.publishers)
    writer.start()
    publisher.start()
    app[_WRITER] = writer
    app[_PUBLISHER] = publisher
    try:
        yield
    finally:
        await writer.close()
        await publisher.close()
        await connection.close()
        await pool.close()


async def _ingest(request: web.Request) -> web.Response:
    body = await request.read()
    row = (
        uuid.uuid4(),
        "bench",
        datetime.now(UTC),
        json.dumps({"content-type": request.headers.get("Content-Type", "")}),
        body,
        hashlib.sha256(body).hexdigest(),
    )
    try:
        await asyncio.gather(request.app[_WRITER].submit(row), request.app[_PUBLISHER].submit(body))
    except _STORE_ERRORS:
        return web.Response(status=503)
    return web.Response(status=200)


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "cpu_s": time.process_time(),
            "writer": request.app[_WRITER].stats.as_dict(),
            "publisher": request.app[_PUBLISHER].stats.as_dict(),
        }
    )


def build_app(config: ServerConfig) -> web.Application:
    app = web.Application()
    app[_CONFIG] = config
    app.cleanup_ctx.append(_resources)
    app.router.add_post("/ingest", _ingest)
    app.router.add_get("/stats", _stats)
    return app


async def serve(config: ServerConfig, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve until SIGTERM/SIGINT; print ``READY <port>`` on stdout once listening."""
    runner = web.AppRunner(build_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.stripped serve --queue Q --table T`` (DSNs from the environment)."""
    parser = argparse.ArgumentParser(prog="python -m bench.stripped")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--queue", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=256)
    args = parser.parse_args(argv)
    config = ServerConfig(
        pg_dsn=os.environ[_ENV_DSN],
        broker_url=os.environ[_ENV_BROKER],
        queue=args.queue,
        table=args.table,
        writers=args.writers,
        publishers=args.publishers,
        max_batch=args.max_batch,
    )
    asyncio.run(serve(config, port=args.port))
    return 0


# -- the benchmark ---------------------------------------------------------------------------


async def _start_server(ctx: Context, queue: str, table: str) -> tuple[asyncio.subprocess.Process, int]:
    env = dict(os.environ)
    env[_ENV_DSN] = ctx.pg_dsn
    env[_ENV_BROKER] = ctx.broker_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.stripped",
        "serve",
        "--queue",
        queue,
        "--table",
        table,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    except TimeoutError:
        line = b""
    text = line.decode().strip()
    if not text.startswith("READY "):
        await stop_process(process)
        raise RuntimeError(f"the stripped server did not start (exit code {process.returncode})")
    return process, int(text.split()[1])


def _step_row(result: LoadResult, server: dict[str, Any]) -> list[str]:
    latency = result.latency
    return [
        format_value(result.offered_rate, "req/s"),
        format_value(result.achieved_rate, "req/s"),
        format_value(latency.p50 * 1000, "ms") if latency else "",
        format_value(latency.p99 * 1000, "ms") if latency else "",
        str(result.failed),
        str(result.dropped),
        "yes" if result.sustained(max_p99_s=MAX_P99_S) else "no",
        f"{result.client_cpu_share:.2f}",
        f"{server['cpu_share']:.2f}",
        f"{server['writer']['mean_batch']:g} rows, {server['writer']['mean_flush_ms']:g} ms",
        f"{server['publisher']['mean_batch']:g} msgs, {server['publisher']['mean_flush_ms']:g} ms",
    ]


async def _steps(
    ctx: Context, url: str, stats_url: str, rates: Sequence[float], step_s: float
) -> tuple[list[LoadResult], list[dict[str, Any]]]:
    """``step_load`` by hand, reading the server's counters around each step."""
    steps: list[LoadResult] = []
    server: list[dict[str, Any]] = []
    first = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1000), timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def stats() -> dict[str, Any]:
            async with session.get(stats_url) as response:
                return dict(await response.json())

        for offered in rates:
            before = await stats()
            spec = LoadSpec(
                url=url, rate=offered, count=int(offered * step_s), duration_s=step_s, first_index=first
            )
            result = await run_load(spec, session)
            after = await stats()
            first += result.due
            steps.append(result)
            server.append(_server_delta(before, after, result.elapsed_s))
            p99 = result.latency.p99 * 1000 if result.latency else float("nan")
            ctx.progress(
                f"stripped pipeline: offered {offered:g}/s → {result.achieved_rate:,.0f}/s, p99 {p99:.1f} ms"
            )
            if not result.sustained(max_p99_s=MAX_P99_S):
                break
    return steps, server


def _server_delta(before: dict[str, Any], after: dict[str, Any], elapsed_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"cpu_share": (after["cpu_s"] - before["cpu_s"]) / elapsed_s if elapsed_s else 0.0}
    for part in ("writer", "publisher"):
        batches = after[part]["batches"] - before[part]["batches"]
        items = after[part]["items"] - before[part]["items"]
        busy = after[part]["busy_s"] - before[part]["busy_s"]
        out[part] = {
            "batches": batches,
            "mean_batch": round(items / batches, 1) if batches else 0,
            "mean_flush_ms": round(busy / batches * 1000, 1) if batches else 0,
        }
    return out


async def run(ctx: Context) -> None:
    results = ctx.results
    table = "bench_stripped_delivery"
    queue = f"{ctx.prefix}stripped.ingest"
    admin = await asyncpg.connect(ctx.pg_dsn, timeout=5)
    connection = await aio_pika.connect(ctx.broker_url, timeout=5)
    try:
        await admin.execute(pg_table_ddl(table))
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        process, port = await _start_server(ctx, queue, table)
        url = f"http://127.0.0.1:{port}/ingest"
        try:
            ctx.progress("stripped pipeline: warm-up")
            warm = LoadSpec(url=url, rate=100, count=100, duration_s=1.0, body=json_body, first_index=10**9)
            await run_load(warm)
            rates = QUICK_RATES if ctx.quick else FULL_RATES
            step_s = 2.0 if ctx.quick else 5.0
            steps, server = await _steps(ctx, url, f"http://127.0.0.1:{port}/stats", rates, step_s)
        finally:
            await stop_process(process)
    finally:
        with suppress(aio_pika.exceptions.AMQPError, OSError):
            cleanup = await connection.channel()
            await cleanup.queue_delete(queue)
        await connection.close()
        await admin.execute(f"DROP TABLE IF EXISTS {table}")
        await admin.close()

    sustained = [s for s in steps if s.sustained(max_p99_s=MAX_P99_S)]
    best = max(sustained, key=lambda s: s.achieved_rate) if sustained else None
    details: dict[str, Any] = {
        "steps": [s.as_dict() for s in steps],
        "server": server,
        "criterion": f"all answered 200, ≥95% of offered rate, p99 ≤ {MAX_P99_S * 1000:g} ms",
        "step_s": step_s,
    }
    ceiling = _lowest(ctx, ("rabbitmq.raw.publish.pipelined", "postgres.raw.insert.executemany100"))
    results.add(
        "stripped",
        "stripped.max_sustained",
        "stripped pipeline, max sustained throughput",
        best.achieved_rate if best else 0.0,
        "req/s",
        ceiling=ceiling,
        details=details,
    )
    if best is not None and best.latency is not None:
        for stat in ("p50", "p99"):
            results.add(
                "stripped",
                f"stripped.{stat}",
                f"stripped pipeline latency {stat} at {best.offered_rate:g} req/s offered",
                getattr(best.latency, stat) * 1000,
                "ms",
                higher_is_better=False,
                details={"offered_rate": best.offered_rate},
            )
    results.add_table(
        "stripped",
        f"Steps (open loop, {step_s:g} s each; CPU = cores busy in the load generator / the server; "
        "rows and msgs = mean batch size, ms = mean flush time of the group-commit writer and the "
        "confirm batcher):",
        [
            "offered",
            "achieved",
            "p50",
            "p99",
            "failed",
            "dropped",
            "sustained",
            "client CPU",
            "server CPU",
            "INSERT batch",
            "publish batch",
        ],
        [_step_row(s, d) for s, d in zip(steps, server, strict=True)],
    )


def _lowest(ctx: Context, keys: Sequence[str]) -> str | None:
    """The key of the lowest of these figures measured in this run (the binding ceiling)."""
    present = [r for r in (ctx.results.get(k) for k in keys) if r is not None]
    return min(present, key=lambda r: r.value).key if present else None


if __name__ == "__main__":
    sys.exit(main())
