"""Outages pause the pipeline, they never discard: a database that goes away (PostgreSQL behind a
proxy that is cut, SQLite locked by another process), a deadlock inside a batch or a broker that
refuses the routing nudges is waited out and tried again — every delivery is stored, none is
dead-lettered — and a message the database could not store as sent (a NUL in its text) is
cleaned and stored."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from broker.memory import InMemoryTransport
from centralita.envelope import RawEnvelope
from centralita.pipeline.worker import Outcome, Pipeline
from centralita.runtime import Runtime, open_runtime
from channels.whatsapp.testing import text_webhook_body
from core.errors import BrokerUnavailable
from core.ids import RawDeliveryId, new_id
from core.settings import Settings
from core.transport.protocol import Message
from core.transport.topology import INGEST_EXCHANGE, ROUTE_EXCHANGE, ingest_queue
from storage.database import Database
from storage.inbound import InboundStore
from storage.tables import ConversationRow, MessageRow, RawDeliveryRow
from tests.support.floor import dead_letters
from tests.support.schema import migrated
from tests.support.seed import seed_workspace
from tests.support.tcpproxy import TcpProxy

PHONE_NUMBER_ID = "106540352242977"


def _webhook(wamid: str, wa_id: str, text: str = "Hola") -> bytes:
    return text_webhook_body(PHONE_NUMBER_ID, wa_id, wamid, text, name="Cliente", waba_id="1")


async def _prepare(url: str) -> None:
    await migrated(url)
    db = Database(url)
    try:
        await seed_workspace(
            db, "cortes", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}]
        )
    finally:
        await db.dispose()


async def _publish(runtime: Runtime, bodies: list[bytes]) -> None:
    now = datetime.now(UTC)
    await runtime.transport.publish(
        [
            RawEnvelope(RawDeliveryId(new_id()), "whatsapp", now, body).to_message(
                INGEST_EXCHANGE, ingest_queue(0)
            )
            for body in bodies
        ]
    )


async def _until(condition: Callable[[], bool | Awaitable[bool]], within_s: float, what: str) -> None:
    async with asyncio.timeout(within_s):
        while True:
            got = condition()
            if got if isinstance(got, bool) else await got:
                return
            await asyncio.sleep(0.02)  # polling interval of a bounded wait, not a fixed delay
    raise AssertionError(what)


async def _stored(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(sa.select(sa.func.count()).select_from(MessageRow))).scalar_one())


@asynccontextmanager
async def _running(runtime: Runtime, **options: Any) -> AsyncIterator[tuple[Pipeline, list[Outcome]]]:
    pipeline = Pipeline(runtime, batch_max=10, retry_base_s=0.05, retry_cap_s=0.4, **options)
    outcomes: list[Outcome] = []
    pipeline.observers.append(lambda _envelope, outcome: outcomes.append(outcome))
    await pipeline.start()
    try:
        yield pipeline, outcomes
    finally:
        await pipeline.stop()


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_a_database_outage_mid_load_pauses_the_pipeline_and_every_delivery_is_stored(
    postgres_url: str, rabbitmq_url: str, unique_prefix: str
) -> None:
    await _prepare(postgres_url)
    proxy = TcpProxy("127.0.0.1", sa.engine.make_url(postgres_url).port or 5432)
    await proxy.start()
    proxied = sa.engine.make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    settings = Settings(
        database_url=proxied.render_as_string(hide_password=False),
        broker_url=rabbitmq_url,
        broker_prefix=unique_prefix,
        broker_ephemeral=True,
        broker_quorum=True,  # the ingest queue's delivery limit (5) is what an outage used to burn
        ingest_partitions=1,
    )
    bodies = [_webhook(f"wamid.cut{i}", f"52155123{i:05d}") for i in range(60)]
    direct = Database(postgres_url)
    try:
        async with open_runtime(settings) as runtime, _running(runtime) as (pipeline, outcomes):
            with capture_logs() as logs:
                await _publish(runtime, bodies)
                await _until(lambda: len(outcomes) >= 10, 20, "the first deliveries were not stored")
                await proxy.cut()
                # Down for more attempts than the queue's delivery limit would have allowed.
                await _until(lambda: pipeline.retries >= 8, 20, "the pipeline did not keep retrying")
                await proxy.restore()
                await _until(lambda: len(outcomes) >= len(bodies), 30, "the pipeline did not resume")
            assert await _stored(direct) == len(bodies)
            assert await dead_letters(settings, [ingest_queue(0)]) == {}
            assert sum(o.stored_messages for o in outcomes) == len(bodies)  # each once, no replays
            events = [e["event"] for e in logs]
            assert events.count("pipeline.paused") >= 1
            assert events.count("pipeline.paused") == events.count("pipeline.resumed")
            assert "pipeline.batch_crashed" not in events
    finally:
        await proxy.cut()
        await direct.dispose()


async def test_a_sqlite_database_locked_by_another_process_pauses_the_pipeline_and_nothing_is_parked(
    sqlite_url: str,
) -> None:
    await _prepare(sqlite_url)
    settings = Settings(database_url=sqlite_url, broker_url="memory://", ingest_partitions=1)
    bodies = [_webhook(f"wamid.lock{i}", f"52155124{i:05d}") for i in range(30)]
    async with open_runtime(settings) as opened:
        # Writers give up on a lock after 0.1 s here ("database is locked"), not after 30 s.
        runtime = replace(opened, database=Database(sqlite_url, lock_timeout_s=0.1))
        other = sqlite3.connect(sa.engine.make_url(sqlite_url).database or "", isolation_level=None)
        try:
            async with _running(runtime) as (pipeline, outcomes):
                other.execute("BEGIN EXCLUSIVE")  # another process holds the only write lock
                await _publish(runtime, bodies)
                await _until(lambda: pipeline.retries >= 8, 20, "the pipeline did not keep retrying")
                other.execute("COMMIT")
                await _until(lambda: len(outcomes) >= len(bodies), 30, "the pipeline did not resume")
            assert await _stored(runtime.database) == len(bodies)
            assert isinstance(runtime.transport, InMemoryTransport)
            assert runtime.transport.queue_depth(f"{ingest_queue(0)}.dlq") == 0
        finally:
            other.close()
            await runtime.database.dispose()


@pytest.mark.postgres
async def test_a_deadlock_inside_a_batch_is_retried_and_every_delivery_is_stored_none_parked(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _prepare(postgres_url)
    settings = Settings(database_url=postgres_url, broker_url="memory://", ingest_partitions=1)
    add_inbound = InboundStore.add_inbound
    deadlocks = 2  # the group commit fails, then its first retry: only the third attempt commits

    async def deadlocking(self: InboundStore, **row: Any) -> bool:
        nonlocal deadlocks
        if deadlocks:
            deadlocks -= 1  # a real PostgreSQL error, SQLSTATE 40P01, raised in the batch's transaction
            await self.session.execute(sa.text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$"))
        return await add_inbound(self, **row)

    monkeypatch.setattr(InboundStore, "add_inbound", deadlocking)
    bodies = [_webhook(f"wamid.dl{i}", f"52155125{i:05d}") for i in range(3)]
    async with open_runtime(settings) as runtime, _running(runtime) as (pipeline, outcomes):
        await _publish(runtime, bodies)
        await _until(lambda: len(outcomes) >= len(bodies), 20, "the deliveries were not stored")
        assert deadlocks == 0 and pipeline.retries == 2
        assert await _stored(runtime.database) == len(bodies)
        assert isinstance(runtime.transport, InMemoryTransport)
        assert runtime.transport.queue_depth(f"{ingest_queue(0)}.dlq") == 0


async def test_a_lane_goes_on_after_a_batch_crashes_and_the_batch_is_stored_when_it_comes_again(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _prepare(sqlite_url)
    settings = Settings(database_url=sqlite_url, broker_url="memory://", ingest_partitions=1)
    add_inbound = InboundStore.add_inbound
    crashes = 1

    async def crashing(self: InboundStore, **row: Any) -> bool:
        nonlocal crashes
        if crashes:
            crashes -= 1
            raise RuntimeError("a bug in processing")
        return await add_inbound(self, **row)

    monkeypatch.setattr(InboundStore, "add_inbound", crashing)
    async with open_runtime(settings) as runtime, _running(runtime) as (_pipeline, outcomes):
        with capture_logs() as logs:
            await _publish(runtime, [_webhook("wamid.crash", "5215512600001")])
            await _until(lambda: len(outcomes) >= 1, 20, "the lane died with its batch")
            await _publish(runtime, [_webhook("wamid.after", "5215512600002")])
            await _until(lambda: len(outcomes) >= 2, 20, "the lane took nothing after the crash")
        crashed = [e for e in logs if e["event"] == "pipeline.batch_crashed"]
        assert crashed == [
            {
                "event": "pipeline.batch_crashed",
                "log_level": "error",
                "error": "RuntimeError",
                "deliveries": 1,
            }
        ]
        assert await _stored(runtime.database) == 2


async def test_a_nul_in_a_whatsapp_text_is_removed_and_the_message_reaches_the_conversation(
    database_url: str,
) -> None:
    await _prepare(database_url)
    settings = Settings(database_url=database_url, broker_url="memory://", ingest_partitions=1)
    body = _webhook("wamid.nul", "5215512700001", text="hola\u0000mundo")
    async with open_runtime(settings) as runtime, _running(runtime) as (_pipeline, outcomes):
        await _publish(runtime, [body])
        await _until(lambda: len(outcomes) >= 1, 20, "the message was not processed")
        assert outcomes[0].stored_messages == 1
        async with runtime.database.session() as session:
            row = (
                await session.execute(
                    sa.select(MessageRow.text, MessageRow.conversation_id, MessageRow.payload)
                )
            ).one()
            conversations = (
                await session.execute(sa.select(sa.func.count()).select_from(ConversationRow))
            ).scalar_one()
            raw = (await session.execute(sa.select(RawDeliveryRow.body))).scalar_one()
        assert raw == body  # the delivery itself is kept as received
        assert row.text == "holamundo"
        assert row.payload["text"] == "holamundo"
        assert row.conversation_id is not None and conversations == 1
        assert isinstance(runtime.transport, InMemoryTransport)
        assert runtime.transport.queue_depth(f"{ingest_queue(0)}.dlq") == 0


class _BrokerDownForNudges:
    """The transport, refusing the routing nudges ``failures`` times as a broker that is down."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.nudges = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish(self, messages: Sequence[Message]) -> None:
        nudges = sum(m.exchange == ROUTE_EXCHANGE for m in messages)
        if nudges and self.failures:
            self.failures -= 1
            raise BrokerUnavailable("cannot reach RabbitMQ")
        await self.inner.publish(messages)
        self.nudges += nudges


async def test_a_broker_refusing_the_routing_nudges_pauses_the_batch_and_the_nudge_goes_out_once(
    sqlite_url: str,
) -> None:
    await _prepare(sqlite_url)
    settings = Settings(database_url=sqlite_url, broker_url="memory://", ingest_partitions=1)
    async with open_runtime(settings) as opened:
        broker = _BrokerDownForNudges(opened.transport, failures=3)
        runtime = replace(opened, transport=broker)
        async with _running(runtime) as (pipeline, outcomes):
            await _publish(runtime, [_webhook("wamid.nudge", "5215512800001")])
            await _until(lambda: len(outcomes) >= 1, 20, "the delivery was not settled")
        assert (broker.failures, broker.nudges, pipeline.retries) == (0, 1, 3)
        assert [o.duplicate for o in outcomes] == [False]  # acked once, never redelivered
        assert await _stored(runtime.database) == 1
        assert opened.transport.queue_depth(f"{ingest_queue(0)}.dlq") == 0
