"""The raw ceilings: what the libraries and servers do with none of our code in the way.

Measured first in every run, on the same machine and servers, so that every later figure can be
read as a fraction of them:

- RabbitMQ through aio-pika directly (durable quorum queues, persistent messages, as in
  production): publish with the confirm awaited one by one (``exchange.publish``); publish with
  1000 confirms in flight (frames written with aiormq's ``basic_publish(wait=False)`` on the
  aio-pika channel, then the confirms awaited together — aio-pika's ``exchange.publish``
  awaits each write and is markedly slower under concurrency); consume with a manual ack per
  message; a two-hop round trip (publish → consume → publish → consume) one message at a time
  (latency) and pipelined (rate);
- PostgreSQL through asyncpg: one row per transaction (one connection, and 16 concurrent ones),
  and 100 rows per transaction as one multi-row ``INSERT``, as ``executemany`` and as ``COPY``;
- SQLite through aiosqlite (the embedded default, WAL, ``synchronous=NORMAL``): one row per
  commit, and 100 rows per commit;
- our ``RabbitMQTransport`` and ``InMemoryTransport`` doing the same publish / consume / round
  trip, reported against the raw aio-pika figures.

The rows are shaped like ``raw_delivery`` (what the ingress stores): a UUID key, the channel,
a timestamp, JSON headers, a ~600-byte body and its SHA-256 under a unique index.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import struct
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import aio_pika
import aiormq
import aiosqlite
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pamqp import commands as spec

from bench.harness import Context, clock, rate, repeated, stopwatch, summarize
from broker import InMemoryTransport
from broker.rabbitmq import RabbitMQTransport
from core.transport import Message, Queue, Topology, Transport
from core.transport.protocol import Delivery

__all__ = ["BATCH", "IN_FLIGHT", "PREFETCH", "make_body", "make_rows", "run"]

IN_FLIGHT = 1000
"""Messages published before their confirms are awaited together (pipelined publish)."""
PREFETCH = 128
"""Unacked deliveries per consumer, raw and through our transport alike."""
BATCH = 100
"""Rows per transaction in the batched INSERTs."""
CONCURRENT_CONNECTIONS = 16

_PAYLOAD = json.dumps(
    {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "0",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "0", "phone_number_id": "0"},
                            "contacts": [{"profile": {"name": "Cliente"}, "wa_id": "0"}],
                            "messages": [
                                {
                                    "from": "0",
                                    "id": "wamid.",
                                    "timestamp": "0",
                                    "type": "text",
                                    "text": {"body": "Hola, quisiera saber el estado de mi pedido " * 4},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    },
    separators=(",", ":"),
).encode()


def make_body(i: int) -> bytes:
    """A ~600-byte webhook-like body whose first 8 bytes carry ``i``."""
    return struct.pack(">q", i) + _PAYLOAD


def _index(body: bytes) -> int:
    return int(struct.unpack(">q", body[:8])[0])


Row = tuple[uuid.UUID, str, datetime, str, bytes, str]


def make_rows(count: int, start: int = 0) -> list[Row]:
    """``raw_delivery``-shaped rows with unique bodies."""
    now = datetime.now(UTC)
    headers = json.dumps({"content-type": "application/json", "x-hub-signature-256": "sha256=0" * 1})
    rows = []
    for i in range(start, start + count):
        body = make_body(i)
        rows.append((uuid.uuid4(), "whatsapp", now, headers, body, hashlib.sha256(body).hexdigest()))
    return rows


COLUMNS = ("id", "channel", "received_at", "headers", "body", "body_sha256")


def pg_table_ddl(table: str) -> str:
    return f"""
        CREATE TABLE {table} (
            id uuid PRIMARY KEY,
            channel varchar(40) NOT NULL,
            received_at timestamptz NOT NULL,
            headers jsonb NOT NULL,
            body bytea NOT NULL,
            body_sha256 varchar(64) NOT NULL,
            status varchar(20) NOT NULL DEFAULT 'accepted',
            UNIQUE (channel, body_sha256)
        );
        CREATE INDEX ON {table} (received_at);
    """


def pg_insert_sql(table: str, rows: int = 1) -> str:
    width = len(COLUMNS)
    values = ", ".join(
        "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(rows)
    )
    return f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES {values}"


def _chunks(rows: Sequence[Row], size: int) -> list[Sequence[Row]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


# -- RabbitMQ, raw ---------------------------------------------------------------------------


def _amqp_message(body: bytes, i: int) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        content_type="application/json",
        message_id=str(i),
    )


async def _raw_queue(channel: AbstractChannel, name: str) -> aio_pika.abc.AbstractQueue:
    return await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})


async def _raw_publish_pipelined(channel: AbstractChannel, queue: str, count: int, start: int = 0) -> None:
    """``IN_FLIGHT`` publishes written at once (aiormq's ``wait=False``), then their confirms."""
    underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
    for first in range(start, start + count, IN_FLIGHT):
        await _raw_send(underlay, queue, range(first, min(first + IN_FLIGHT, start + count)))


async def _raw_send(underlay: aiormq.Channel, queue: str, indexes: Iterable[int]) -> None:
    await asyncio.gather(
        *(
            underlay.basic_publish(
                make_body(i),
                exchange="",
                routing_key=queue,
                properties=spec.Basic.Properties(
                    delivery_mode=2, content_type="application/json", message_id=str(i)
                ),
                wait=False,
            )
            for i in indexes
        )
    )


async def _raw_consume_all(connection: aio_pika.abc.AbstractConnection, queue: str, count: int) -> float:
    """Consume ``count`` messages with a manual ack each; seconds from consume to the last ack."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    amqp_queue = await channel.declare_queue(queue, passive=True)
    done = asyncio.Event()
    seen = 0

    async def on_message(message: AbstractIncomingMessage) -> None:
        nonlocal seen
        await message.ack()
        seen += 1
        if seen >= count:
            done.set()

    with stopwatch() as watch:
        tag = await amqp_queue.consume(on_message)
        await asyncio.wait_for(done.wait(), timeout=120)
    await amqp_queue.cancel(tag)
    await channel.close()
    return watch.elapsed


class _RawRabbit:
    """aio-pika straight onto quorum queues, with none of our code in the way."""

    label = "RabbitMQ raw"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.names = [f"{ctx.prefix}raw.{part}" for part in ("q", "hop1", "hop2")]
        self.confirm_latencies: list[float] = []

    async def open(self) -> None:
        self.connection = await aio_pika.connect(self.ctx.broker_url, timeout=5)
        self.consumer_connection = await aio_pika.connect(self.ctx.broker_url, timeout=5)
        self.channel = await self.connection.channel(publisher_confirms=True)
        for name in self.names:
            await _raw_queue(self.channel, name)
        self.queue = await self.channel.declare_queue(self.names[0], passive=True)
        await _raw_publish_pipelined(self.channel, self.names[0], 200)  # warm up
        await self.queue.purge()

    async def close(self) -> None:
        cleanup = await self.connection.channel()
        for name in self.names:
            await cleanup.queue_delete(name)
        await cleanup.close()
        await self.consumer_connection.close()
        await self.connection.close()

    async def publish_one(self, count: int) -> float:
        exchange = self.channel.default_exchange
        with stopwatch() as watch:
            for i in range(count):
                started = clock()
                await exchange.publish(_amqp_message(make_body(i), i), routing_key=self.names[0])
                self.confirm_latencies.append(clock() - started)
        await self.queue.purge()
        return rate(count, watch.elapsed)

    async def publish_then_consume(self, count: int) -> tuple[float, float]:
        with stopwatch() as watch:
            await _raw_publish_pipelined(self.channel, self.names[0], count)
        # The queue now holds exactly ``count`` messages: consume them.
        consumed = await _raw_consume_all(self.consumer_connection, self.names[0], count)
        return rate(count, watch.elapsed), rate(count, consumed)

    async def round_trip(self) -> None:
        await _raw_round_trip(
            self.ctx, self.connection, self.consumer_connection, self.channel, self.names[1], self.names[2]
        )


async def _raw_round_trip(
    ctx: Context,
    connection: aio_pika.abc.AbstractConnection,
    worker_connection: aio_pika.abc.AbstractConnection,
    channel: AbstractChannel,
    hop1: str,
    hop2: str,
) -> None:
    """publish → hop1 → worker (publish with confirm, then ack) → hop2 → sink."""
    worker_in = await worker_connection.channel()
    await worker_in.set_qos(prefetch_count=PREFETCH)
    worker_out = await worker_connection.channel(publisher_confirms=True)
    sink = await connection.channel()
    await sink.set_qos(prefetch_count=PREFETCH)

    out = cast(aiormq.Channel, await worker_out.get_underlay_channel())
    into = cast(aiormq.Channel, await channel.get_underlay_channel())

    async def forward(message: AbstractIncomingMessage) -> None:
        await out.basic_publish(
            message.body,
            exchange="",
            routing_key=hop2,
            properties=spec.Basic.Properties(delivery_mode=2, content_type="application/json"),
            wait=False,
        )
        await message.ack()

    arrivals = _Arrivals()

    async def arrive(message: AbstractIncomingMessage) -> None:
        await message.ack()
        arrivals.arrived(_index(message.body))

    hop1_queue = await worker_in.declare_queue(hop1, passive=True)
    hop2_queue = await sink.declare_queue(hop2, passive=True)
    forward_tag = await hop1_queue.consume(forward)
    sink_tag = await hop2_queue.consume(arrive)

    async def send(indexes: Sequence[int]) -> None:
        await _raw_send(into, hop1, indexes)

    try:
        await _round_trip(ctx, "ceilings", "rabbitmq.raw", "RabbitMQ raw", send, arrivals, ceilings=None)
    finally:
        await hop1_queue.cancel(forward_tag)
        await hop2_queue.cancel(sink_tag)
        for ch in (worker_in, worker_out, sink):
            await ch.close()


class _Arrivals:
    """When each message, by index, was sent and came out of the second hop."""

    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._all: asyncio.Event = asyncio.Event()
        self._expected = 0
        self.last = 0.0

    def expect(self, indexes: Sequence[int]) -> None:
        now = clock()
        for i in indexes:
            self.sent[i] = now
        self._expected += len(indexes)
        self._all.clear()

    def waiter(self, i: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[i] = future
        return future

    def arrived(self, i: int) -> None:
        now = clock()
        sent = self.sent.pop(i, None)
        if sent is None:
            return  # a redelivery: counted once
        self.latencies.append(now - sent)
        self.last = now
        future = self._waiters.pop(i, None)
        if future is not None and not future.done():
            future.set_result(None)
        if len(self.latencies) >= self._expected:
            self._all.set()

    async def wait_all(self, limit_s: float) -> None:
        await asyncio.wait_for(self._all.wait(), limit_s)

    def reset(self) -> None:
        self.latencies = []
        self._expected = 0


async def _round_trip(
    ctx: Context,
    benchmark: str,
    key: str,
    label: str,
    send: Callable[[Sequence[int]], Awaitable[None]],
    arrivals: _Arrivals,
    *,
    ceilings: str | None,
) -> None:
    results = ctx.results
    count = ctx.size(50, 1000)
    ctx.progress(f"{label}: two-hop round trip, {count} messages one at a time")
    for i in range(count):
        arrived = arrivals.waiter(i)
        arrivals.expect([i])
        await send([i])
        await asyncio.wait_for(arrived, timeout=30)
    latency = summarize(arrivals.latencies)
    for stat in ("p50", "p99"):
        results.add(
            benchmark,
            f"{key}.roundtrip.{stat}",
            f"{label} two-hop round trip {stat}, one in flight",
            getattr(latency, stat) * 1000,
            "ms",
            ceiling=f"{ceilings}.roundtrip.{stat}" if ceilings else None,
            higher_is_better=False,
            details={"count": count, "latency": latency.as_ms()},
        )
    arrivals.reset()

    count = ctx.size(2000, 10000)
    ctx.progress(f"{label}: two-hop round trip, {count} messages pipelined")
    start = clock()
    base = 1_000_000
    for first in range(base, base + count, IN_FLIGHT):
        indexes = list(range(first, min(first + IN_FLIGHT, base + count)))
        arrivals.expect(indexes)
        await send(indexes)
    await arrivals.wait_all(120)
    latency = summarize(arrivals.latencies)
    results.add(
        benchmark,
        f"{key}.roundtrip.rate",
        f"{label} two-hop round trip, pipelined",
        rate(count, arrivals.last - start),
        "msg/s",
        ceiling=f"{ceilings}.roundtrip.rate" if ceilings else None,
        details={"count": count, "in_flight": IN_FLIGHT, "latency_under_load": latency.as_ms()},
    )
    arrivals.reset()


# -- our transports --------------------------------------------------------------------------


class _OurTransport:
    """The same measures through our ``Transport``."""

    topology = Topology(queues=(Queue("q"), Queue("hop1"), Queue("hop2")))

    def __init__(self, ctx: Context, transport: Transport, kind: str, label: str) -> None:
        self.ctx = ctx
        self.transport = transport
        self.kind = kind
        self.label = label

    async def open(self) -> None:
        await self.transport.declare(self.topology)
        await self.transport.publish([Message(make_body(i), routing_key="q") for i in range(200)])  # warm up
        await _drain(self.transport, "q", 200)

    async def close(self) -> None:
        if isinstance(self.transport, RabbitMQTransport):
            await self.transport.delete_topology(self.topology)
        await self.transport.close()

    async def publish_one(self, count: int) -> float:
        with stopwatch() as watch:
            for i in range(count):
                await self.transport.publish([Message(make_body(i), routing_key="q", message_id=str(i))])
        await _drain(self.transport, "q", count)
        return rate(count, watch.elapsed)

    async def publish_then_consume(self, count: int) -> tuple[float, float]:
        with stopwatch() as watch:
            for first in range(0, count, IN_FLIGHT):
                await self.transport.publish(
                    [
                        Message(make_body(i), routing_key="q", message_id=str(i))
                        for i in range(first, min(first + IN_FLIGHT, count))
                    ]
                )
        consumed = await _drain(self.transport, "q", count)
        return rate(count, watch.elapsed), rate(count, consumed)

    async def round_trip(self) -> None:
        transport = self.transport
        arrivals = _Arrivals()

        async def forward(delivery: Delivery) -> None:
            await transport.publish([Message(delivery.body, routing_key="hop2")])
            await delivery.ack()

        async def arrive(delivery: Delivery) -> None:
            await delivery.ack()
            arrivals.arrived(_index(delivery.body))

        async def send(indexes: Sequence[int]) -> None:
            await transport.publish([Message(make_body(i), routing_key="hop1") for i in indexes])

        forwarder = await transport.consume("hop1", forward, prefetch=PREFETCH)
        sink = await transport.consume("hop2", arrive, prefetch=PREFETCH)
        try:
            await _round_trip(
                self.ctx,
                "transport",
                f"transport.{self.kind}",
                self.label,
                send,
                arrivals,
                ceilings="rabbitmq.raw",
            )
        finally:
            await forwarder.cancel()
            await sink.cancel()


Subject = _RawRabbit | _OurTransport


async def _throughputs(ctx: Context, subjects: Sequence[Subject]) -> None:
    """Publish one by one, publish pipelined, consume: each subject in turn, ``ctx.repeats``
    times, so that raw and ours see the same moments of a busy machine; medians recorded."""
    one = ctx.size(200, 2000)
    many = ctx.size(3000, 20000)
    samples: dict[str, dict[str, list[float]]] = {
        s.label: {"one": [], "batch": [], "consume": []} for s in subjects
    }
    names = " and ".join(s.label for s in subjects)
    for round_ in range(ctx.repeats):
        ctx.progress(f"{names}: {one} publishes one by one (round {round_ + 1}/{ctx.repeats})")
        for subject in subjects:
            samples[subject.label]["one"].append(await subject.publish_one(one))
        ctx.progress(
            f"{names}: {many} publishes, {IN_FLIGHT} confirms in flight, then consume + ack "
            f"(round {round_ + 1}/{ctx.repeats})"
        )
        for subject in subjects:
            published, consumed = await subject.publish_then_consume(many)
            samples[subject.label]["batch"].append(published)
            samples[subject.label]["consume"].append(consumed)
    for subject in subjects:
        got = samples[subject.label]
        if isinstance(subject, _RawRabbit):
            rows = [
                ("one", "rabbitmq.raw.publish.one", "RabbitMQ raw publish, confirm awaited one by one", one),
                (
                    "batch",
                    "rabbitmq.raw.publish.pipelined",
                    f"RabbitMQ raw publish, {IN_FLIGHT} confirms in flight",
                    many,
                ),
                (
                    "consume",
                    "rabbitmq.raw.consume",
                    f"RabbitMQ raw consume + ack each, prefetch {PREFETCH}",
                    many,
                ),
            ]
            for measure, key, label, count in rows:
                details: dict[str, Any] = {"count": count, "samples": got[measure]}
                if measure == "one":
                    details["confirm_latency"] = summarize(subject.confirm_latencies).as_ms()
                ctx.results.add(
                    "ceilings", key, label, statistics.median(got[measure]), "msg/s", details=details
                )
            continue
        rows = [
            ("one", "publish.one", f"{subject.label} publish([one message])", one),
            ("batch", "publish.batch", f"{subject.label} publish(batch of {IN_FLIGHT})", many),
            ("consume", "consume", f"{subject.label} consume + ack each, prefetch {PREFETCH}", many),
        ]
        ceilings = {"one": "publish.one", "batch": "publish.pipelined", "consume": "consume"}
        for measure, key, label, count in rows:
            ctx.results.add(
                "transport",
                f"transport.{subject.kind}.{key}",
                label,
                statistics.median(got[measure]),
                "msg/s",
                ceiling=f"rabbitmq.raw.{ceilings[measure]}",
                details={"count": count, "samples": got[measure]},
            )


async def _drain(transport: Transport, queue: str, count: int) -> float:
    """Consume ``count`` messages with an ack each; seconds from consume to the last ack."""
    done = asyncio.Event()
    seen = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal seen
        await delivery.ack()
        seen += 1
        if seen >= count:
            done.set()

    with stopwatch() as watch:
        consumer = await transport.consume(queue, handler, prefetch=PREFETCH)
        await asyncio.wait_for(done.wait(), timeout=120)
    await consumer.cancel()
    return watch.elapsed


# -- PostgreSQL, raw -------------------------------------------------------------------------


async def _postgres_raw(ctx: Context) -> None:
    results = ctx.results
    table = "bench_raw_delivery"
    connection = await asyncpg.connect(ctx.pg_dsn, timeout=5)
    try:
        await connection.execute(pg_table_ddl(table))
        one = pg_insert_sql(table)

        count = ctx.size(200, 2000)
        ctx.progress(f"asyncpg: {count} single-row INSERTs, one transaction each (×{ctx.repeats})")
        latencies: list[float] = []

        async def single() -> float:
            rows = make_rows(count)
            with stopwatch() as watch:
                for row in rows:
                    started = clock()
                    await connection.execute(one, *row)
                    latencies.append(clock() - started)
            await connection.execute(f"TRUNCATE {table}")
            return rate(count, watch.elapsed)

        figure, samples = await repeated(ctx.repeats, single)
        results.add(
            "ceilings",
            "postgres.raw.insert.one",
            "PostgreSQL raw INSERT, 1 row per transaction, 1 connection",
            figure,
            "rows/s",
            details={"count": count, "samples": samples, "commit_latency": summarize(latencies).as_ms()},
        )

        connections = 4 if ctx.quick else CONCURRENT_CONNECTIONS
        count = ctx.size(400, 8000)
        ctx.progress(f"asyncpg: {count} single-row INSERTs over {connections} connections (×{ctx.repeats})")
        pool = await asyncpg.create_pool(ctx.pg_dsn, min_size=connections, max_size=connections)

        async def writer(part: Sequence[Row]) -> None:
            async with pool.acquire() as conn:
                for row in part:
                    await conn.execute(one, *row)

        async def concurrent() -> float:
            rows = make_rows(count)
            share = -(-count // connections)
            with stopwatch() as watch:
                await asyncio.gather(*(writer(rows[i : i + share]) for i in range(0, count, share)))
            await connection.execute(f"TRUNCATE {table}")
            return rate(count, watch.elapsed)

        try:
            figure, samples = await repeated(ctx.repeats, concurrent)
        finally:
            await pool.close()
        results.add(
            "ceilings",
            "postgres.raw.insert.one_concurrent",
            f"PostgreSQL raw INSERT, 1 row per transaction, {connections} connections",
            figure,
            "rows/s",
            details={"count": count, "connections": connections, "samples": samples},
        )

        count = ctx.size(2000, 30000)
        many = pg_insert_sql(table, BATCH)

        async def values(batch: Sequence[Row]) -> None:
            await connection.execute(many, *(value for row in batch for value in row))

        async def executemany(batch: Sequence[Row]) -> None:
            async with connection.transaction():
                await connection.executemany(one, batch)

        async def copy(batch: Sequence[Row]) -> None:
            await connection.copy_records_to_table(table, records=batch, columns=COLUMNS)

        methods: list[tuple[str, str, Callable[[Sequence[Row]], Awaitable[None]]]] = [
            ("values", f"PostgreSQL raw INSERT of {BATCH} rows per statement", values),
            ("executemany", f"PostgreSQL raw executemany, {BATCH} rows per transaction", executemany),
            ("copy", f"PostgreSQL raw COPY, {BATCH} rows per transaction", copy),
        ]
        for name, label, method in methods:
            ctx.progress(f"asyncpg: {count} rows, {name}, {BATCH} per transaction (×{ctx.repeats})")

            async def batched(method: Callable[[Sequence[Row]], Awaitable[None]] = method) -> float:
                rows = make_rows(count)
                with stopwatch() as watch:
                    for batch in _chunks(rows, BATCH):
                        await method(batch)
                await connection.execute(f"TRUNCATE {table}")
                return rate(count, watch.elapsed)

            figure, samples = await repeated(ctx.repeats, batched)
            results.add(
                "ceilings",
                f"postgres.raw.insert.{name}{BATCH}",
                label,
                figure,
                "rows/s",
                details={"count": count, "batch": BATCH, "samples": samples},
            )
    finally:
        await connection.execute(f"DROP TABLE IF EXISTS {table}")
        await connection.close()


# -- SQLite, raw -----------------------------------------------------------------------------


async def _sqlite_raw(ctx: Context) -> None:
    results = ctx.results
    path = ctx.workdir / "bench.db"
    async with aiosqlite.connect(path) as db:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            await db.execute(f"PRAGMA {pragma}")
        await db.execute(
            """CREATE TABLE raw_delivery (
                id TEXT PRIMARY KEY, channel TEXT NOT NULL, received_at TEXT NOT NULL,
                headers TEXT NOT NULL, body BLOB NOT NULL, body_sha256 TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'accepted', UNIQUE (channel, body_sha256))"""
        )
        await db.execute("CREATE INDEX ix_received ON raw_delivery (received_at)")
        await db.commit()
        sql = f"INSERT INTO raw_delivery ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"

        def lite(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
            return [(str(r[0]), r[1], r[2].isoformat(), r[3], r[4], r[5]) for r in rows]

        count = ctx.size(200, 2000)
        ctx.progress(f"aiosqlite: {count} single-row INSERTs, one commit each (×{ctx.repeats})")

        async def single() -> float:
            rows = lite(make_rows(count))
            with stopwatch() as watch:
                for row in rows:
                    await db.execute(sql, row)
                    await db.commit()
            await db.execute("DELETE FROM raw_delivery")
            await db.commit()
            return rate(count, watch.elapsed)

        figure, samples = await repeated(ctx.repeats, single)
        results.add(
            "ceilings",
            "sqlite.raw.insert.one",
            "SQLite raw INSERT, 1 row per commit (WAL, synchronous=NORMAL)",
            figure,
            "rows/s",
            details={"count": count, "samples": samples},
        )

        count = ctx.size(2000, 30000)
        ctx.progress(f"aiosqlite: {count} rows, executemany, {BATCH} per commit (×{ctx.repeats})")

        async def batched() -> float:
            rows = lite(make_rows(count))
            with stopwatch() as watch:
                for i in range(0, count, BATCH):
                    await db.executemany(sql, rows[i : i + BATCH])
                    await db.commit()
            await db.execute("DELETE FROM raw_delivery")
            await db.commit()
            return rate(count, watch.elapsed)

        figure, samples = await repeated(ctx.repeats, batched)
        results.add(
            "ceilings",
            f"sqlite.raw.insert.executemany{BATCH}",
            f"SQLite raw executemany, {BATCH} rows per commit",
            figure,
            "rows/s",
            details={"count": count, "batch": BATCH, "samples": samples},
        )


# -- entry point -----------------------------------------------------------------------------


async def run(ctx: Context) -> None:
    """Every ceiling, with our transports measured alongside and against them."""
    raw = _RawRabbit(ctx)
    ours = _OurTransport(
        ctx,
        await RabbitMQTransport.connect(ctx.broker_url, prefix=f"{ctx.prefix}t."),
        "rabbitmq",
        "RabbitMQTransport",
    )
    try:
        await raw.open()
        await ours.open()
        await _throughputs(ctx, [raw, ours])
        await raw.round_trip()
        await ours.round_trip()
    finally:
        await raw.close()
        await ours.close()
    await _postgres_raw(ctx)
    await _sqlite_raw(ctx)
    memory = _OurTransport(ctx, InMemoryTransport(), "memory", "InMemoryTransport")
    try:
        await memory.open()
        await _throughputs(ctx, [memory])
        await memory.round_trip()
    finally:
        await memory.close()
