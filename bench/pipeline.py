"""The pipeline alone: what one delivery costs it, by batch size, on PostgreSQL and on SQLite.

``python -m bench --only pipeline``.  The engine's traffic mix (``bench.engine.Traffic``: one in
ten a new customer's first message, seven in ten follow-ups, two in ten delivery statuses) is fed
straight to ``Pipeline.handle_batch`` in this process, batches of 1, 10 and 100 deliveries, with
the in-process broker taking the routing nudges.  No HTTP, no broker round trips, no router: the
CPU time per delivery and the SQL statements per delivery are the pipeline's own (its parsing,
identity, conversations, timeline and the database driver).  A batch of 1 is what the pipeline
sees at a low rate; 100 is what a burst gives it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa

from bench.engine import ENV, Traffic, prepare
from bench.harness import Context, format_value

__all__ = ["run"]

BATCHES = (1, 10, 100)


class _Delivery:
    """A delivery as the transport hands it over, settled in memory."""

    def __init__(self, body: bytes, index: int) -> None:
        from centralita.envelope import RawEnvelope
        from core.ids import RawDeliveryId, new_id

        envelope = RawEnvelope(RawDeliveryId(new_id()), "whatsapp", datetime.now(UTC), body)
        message = envelope.to_message("", "ingest.0")
        self.body = message.body
        self.headers = message.headers
        self.message_id = message.message_id
        self.routing_key = "ingest.0"
        self.redelivered = False
        self.settled = False
        self.index = index

    async def ack(self) -> None:
        self.settled = True

    async def requeue(self) -> None:
        self.settled = True

    async def reject(self) -> None:
        self.settled = True

    async def park(self, reason: str) -> None:
        self.settled = True


async def _measure(database_url: str, batch: int, count: int, run_id: str) -> dict[str, Any]:
    import os

    from centralita.pipeline.worker import Pipeline
    from centralita.runtime import open_runtime
    from core.settings import Settings

    os.environ.update(ENV)  # the campaign's WhatsApp number names its secrets by variable
    settings = Settings(database_url=database_url, broker_url="memory://", ingest_partitions=1)
    traffic = Traffic(run=run_id, rate=100.0)  # a follow-up comes 100 deliveries after its opening
    bodies = [traffic.body(i) for i in range(count)]
    async with open_runtime(settings) as runtime:
        pipeline = Pipeline(runtime, batch_max=batch)
        statements = 0

        def counted(*_args: Any) -> None:
            nonlocal statements
            statements += 1

        sync_engine = runtime.database.engine.sync_engine
        sa.event.listen(sync_engine, "before_cursor_execute", counted)
        deliveries = [_Delivery(body, i) for i, body in enumerate(bodies)]
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, count, batch):
            await pipeline.handle_batch(deliveries[start : start + batch])  # type: ignore[arg-type]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        sa.event.remove(sync_engine, "before_cursor_execute", counted)
    return {
        "batch": batch,
        "deliveries": count,
        "per_s": count / wall,
        "cpu_ms": 1000 * cpu / count,
        "statements": statements / count,
        "kinds": dict(traffic.kinds),
    }


async def _fresh_postgres(ctx: Context) -> tuple[str, Callable[[], Awaitable[None]]]:
    name = f"centralita_bench_pipeline_{secrets.token_hex(4)}"
    admin = ctx.pg_dsn
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    base = ctx.database_url.rsplit("/", 1)[0]
    return f"{base}/{name}", drop


async def run(ctx: Context) -> None:
    count = ctx.size(quick=200, full=3000)
    rows: list[list[str]] = []
    for backend in ("postgresql", "sqlite"):
        for batch in BATCHES:
            ctx.progress(f"pipeline: {backend}, {count} deliveries in batches of {batch}")
            drop: Callable[[], Awaitable[None]] | None = None
            if backend == "postgresql":
                url, drop = await _fresh_postgres(ctx)
            else:
                url = f"sqlite+aiosqlite:///{ctx.workdir}/pipeline-{batch}.db"
            try:
                await prepare(url, agents=1)
                figures = await _measure(url, batch, count, f"{secrets.token_hex(3)}")
            finally:
                if drop is not None:
                    await drop()
            key = f"pipeline.{backend}.batch{batch}"
            ctx.results.add(
                "pipeline",
                f"{key}.cpu_ms",
                f"pipeline CPU per delivery, {backend}, batches of {batch}",
                figures["cpu_ms"],
                "ms",
                higher_is_better=False,
                details=figures,
            )
            rows.append(
                [
                    backend,
                    str(batch),
                    format_value(figures["per_s"], "deliveries/s"),
                    f"{figures['cpu_ms']:.2f} ms",
                    f"{figures['statements']:.1f}",
                ]
            )
    ctx.results.add_table(
        "pipeline",
        f"The pipeline alone, {count} deliveries of the engine's mix (10% new customers, 70% "
        "follow-ups, 20% statuses) per row, in this process with the in-process broker:",
        ["database", "batch", "throughput", "CPU per delivery", "SQL statements per delivery"],
        rows,
    )
