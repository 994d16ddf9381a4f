"""Router rounds, pipeline batches and identity merges over the same conversations never deadlock
on PostgreSQL: they lock rows in one global order (conversations by id, then agents by id) and
the router's row locks (``FOR NO KEY UPDATE``) do not conflict with the key-share locks of
message inserts.

Each test has its own database, so ``pg_stat_database.deadlocks`` counts exactly this test's."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import sqlalchemy as sa

from centralita.envelope import RawEnvelope
from centralita.pipeline.worker import Pipeline
from centralita.runtime import open_runtime
from channels.whatsapp.testing import text_webhook_body
from core.errors import DatabaseConflict, DatabaseUnavailable
from core.ids import AgentId, ConversationId, OfferId, QueueId, RawDeliveryId, WorkspaceId, new_id
from core.settings import Settings
from core.transport.topology import INGEST_EXCHANGE, ingest_queue
from identity import Observation, email_identifier, phone_identifier
from storage.database import Database, sqlstate
from storage.identity_store import IdentityStore
from storage.routing import RoutingStore
from storage.tables import AgentRow, ConversationRow, IdentifierRow, QueueRow
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

pytestmark = [pytest.mark.postgres]

PHONE_NUMBER_ID = "106540352242978"
CUSTOMERS = 24
AGENTS = 6
RUN_S = 6.0


def _webhook(wamid: str, wa_id: str) -> bytes:
    return text_webhook_body(
        PHONE_NUMBER_ID, wa_id, wamid, "Hola", name="Cliente", display_phone_number="15550783882", waba_id="1"
    )


class _Delivery:
    """A raw delivery as the ingest queue hands it to the pipeline (settled in memory)."""

    def __init__(self, wa_id: str, body: bytes | None = None) -> None:
        body = body if body is not None else _webhook(f"wamid.{new_id().hex}", wa_id)
        envelope = RawEnvelope(RawDeliveryId(new_id()), "whatsapp", datetime.now(UTC), body)
        message = envelope.to_message(INGEST_EXCHANGE, ingest_queue(0))
        self.body = message.body
        self.headers: Mapping[str, str] = dict(message.headers or {})  # type: ignore[arg-type]
        self.routing_key = ingest_queue(0)
        self.message_id = message.message_id
        self.redelivered = False
        self.outcome: str | None = None

    @property
    def settled(self) -> bool:
        return self.outcome is not None

    async def ack(self) -> None:
        self.outcome = "ack"

    async def requeue(self) -> None:
        self.outcome = "requeue"

    async def reject(self) -> None:
        self.outcome = "reject"


@dataclass
class _Tally:
    router_rounds: int = 0
    router_failures: int = 0
    pipeline_batches: int = 0
    pipeline_failures: int = 0
    not_acked: int = 0
    lock_waits: int = 0
    errors: list[str] = field(default_factory=list)


async def _stat(dsn: str, query: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_router_rounds_against_pipeline_batches_on_the_same_conversations_never_deadlock(
    postgres_url: str,
) -> None:
    dsn = _plain(postgres_url)
    await migrated(postgres_url)
    db = Database(postgres_url)
    seeded = await seed_workspace(
        db, "cerrojos", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}]
    )
    workspace_id = WorkspaceId(seeded.workspace_id)
    queue_id = QueueId(new_id())
    agents = [AgentId(new_id()) for _ in range(AGENTS)]
    async with db.transaction() as session:
        session.add(
            QueueRow(id=queue_id, workspace_id=workspace_id, campaign_id=seeded.campaign_id, name="q")
        )
        session.add_all(
            AgentRow(id=a, workspace_id=workspace_id, email=f"a{i}@x.test", name=f"A{i}")
            for i, a in enumerate(agents)
        )
    await db.dispose()
    customers = [f"52155512{n:05d}" for n in range(CUSTOMERS)]
    settings = Settings(database_url=postgres_url, broker_url="memory://", ingest_partitions=1)
    tally = _Tally()
    rng = random.Random(11)
    async with open_runtime(settings) as runtime:
        pipeline = Pipeline(runtime)
        await pipeline.handle_batch([_Delivery(c) for c in customers])  # type: ignore[list-item]
        async with runtime.database.session() as session:
            conversations = [
                ConversationId(c) for c in (await session.execute(sa.select(ConversationRow.id))).scalars()
            ]
        assert len(conversations) == CUSTOMERS
        deadlocks_before = await _stat(
            dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
        stop = asyncio.Event()

        async def pipeline_lane(lane: list[str]) -> None:
            while not stop.is_set():
                batch = [_Delivery(c) for c in rng.sample(lane, len(lane))]
                try:
                    await pipeline.handle_batch(batch)  # type: ignore[arg-type]
                except DatabaseUnavailable as exc:
                    tally.pipeline_failures += 1
                    tally.errors.append(f"pipeline: {exc.message}")
                tally.pipeline_batches += 1
                tally.not_acked += sum(d.outcome != "ack" for d in batch)

        async def router_rounds() -> None:
            async with runtime.database.transaction() as session:
                epoch = await RoutingStore(session).take_epoch(workspace_id, "test", datetime.now(UTC))
            offers: dict[ConversationId, OfferId] = {}  # as committed
            while not stop.is_set():
                touched = rng.sample(conversations, CUSTOMERS // 2)
                at = datetime.now(UTC)
                made: dict[ConversationId, OfferId | None] = {}
                try:
                    async with runtime.database.transaction() as session:
                        store = RoutingStore(session)
                        assert await store.check_epoch(workspace_id, epoch)
                        writes = await store.begin_writes(workspace_id, touched)
                        for cid in touched:
                            agent = rng.choice(agents)
                            held = offers.get(cid)
                            if held is None:
                                offer = OfferId(new_id())
                                writes.offer(offer, cid, agent, queue_id, at, at + timedelta(seconds=30))
                                made[cid] = offer
                            else:
                                writes.end_offer(held, cid, "withdrawn", "test", at)
                                made[cid] = None
                            writes.presence(agent, "available", None, connected=True)
                        await writes.flush()
                except (DatabaseConflict, DatabaseUnavailable) as exc:  # translated by the storage edge
                    tally.router_failures += 1
                    cause = exc.__cause__ or exc
                    tally.errors.append(f"router: {sqlstate(cause) or type(cause).__name__}")
                else:
                    for cid, offer_or_none in made.items():
                        if offer_or_none is None:
                            offers.pop(cid, None)
                        else:
                            offers[cid] = offer_or_none
                tally.router_rounds += 1

        async def watch_lock_waits() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                while not stop.is_set():
                    tally.lock_waits += int(
                        await conn.fetchval(
                            "SELECT count(*) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    )
            finally:
                await conn.close()

        half = CUSTOMERS // 2
        tasks = [
            asyncio.create_task(pipeline_lane(customers[:half])),
            asyncio.create_task(pipeline_lane(customers[half:])),
            asyncio.create_task(router_rounds()),
            asyncio.create_task(watch_lock_waits()),
        ]
        started = time.monotonic()
        # Run for RUN_S at least, and until the two sides were seen waiting on each other's locks
        # (bounded: the test fails below if they never were).
        while not any(t.done() for t in tasks):
            elapsed = time.monotonic() - started
            if elapsed >= 30 or (elapsed >= RUN_S and tally.lock_waits > 0):
                break
            await asyncio.wait(tasks, timeout=0.2)
        stop.set()
        await asyncio.gather(*tasks)
    # Every connection is closed: their statistics are flushed when their backends exit.
    deadline = time.monotonic() + 10
    while await _stat(
        dsn,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    ):
        assert time.monotonic() < deadline, "the test's connections did not close"
        await asyncio.sleep(0.05)
    deadlocks = (
        await _stat(dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        - deadlocks_before
    )
    assert deadlocks == 0, tally
    assert tally.lock_waits > 0, "the router and the pipeline never waited on each other: not contended"
    assert tally.router_rounds >= 20 and tally.pipeline_batches >= 10, tally
    assert tally.router_failures == tally.pipeline_failures == tally.not_acked == 0, tally.errors


async def test_a_merge_against_a_router_round_on_the_same_two_conversations_never_deadlocks(
    postgres_url: str,
) -> None:
    """The merge re-points the retired customer's conversation (the higher id, kept: it is older)
    and closes the survivor's (the lower id); a router round locks the lower, then the higher.
    Taken in the merge's write order these two wait on each other; the merge locks both by id
    first, so it waits for the round instead."""
    dsn = _plain(postgres_url)
    await migrated(postgres_url)
    db = Database(postgres_url)
    seeded = await seed_workspace(db, "fusiones", [])
    ws = WorkspaceId(seeded.workspace_id)
    phone, mail = phone_identifier("+5215512345678"), email_identifier("ana.perez@gmail.com")
    now = datetime.now(UTC)
    async with db.transaction() as session:
        store = IdentityStore(session)
        survivor = (await store.resolve(ws, Observation(sender=phone), now)).customer_id
        retired = (await store.resolve(ws, Observation(sender=mail), now + timedelta(seconds=1))).customer_id
        idents = IdentifierRow.__table__  # type: ignore[attr-defined]
        ident_of = dict((await session.execute(sa.select(idents.c.customer_id, idents.c.id))).all())
    low, high = sorted(uuid.uuid4() for _ in range(2))
    async with db.transaction() as session:
        for cid, customer, opened in ((high, retired, now - timedelta(hours=1)), (low, survivor, now)):
            session.add(
                ConversationRow(
                    id=cid,
                    workspace_id=ws,
                    campaign_id=seeded.campaign_id,
                    customer_id=customer,
                    channel="email" if customer == retired else "whatsapp",
                    identifier_id=ident_of[customer],
                    origin_identifier_id=ident_of[customer],
                    opened_at=opened,
                )
            )
    deadlocks_before = await _stat(
        dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )

    async def merge() -> None:
        async with db.transaction() as session:
            await IdentityStore(session).run(
                ws, [phone.key, mail.key], lambda g: g.link(phone, mail, now, actor="agent-1"), now=now
            )

    async with db.transaction() as session:
        store = RoutingStore(session)
        await store.begin_writes(ws, [ConversationId(low)])
        merging = asyncio.create_task(merge())
        deadline = time.monotonic() + 10
        while not await _stat(
            dsn,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ):
            assert not merging.done() and time.monotonic() < deadline, "the merge never waited on the round"
            await asyncio.sleep(0.02)
        await store.begin_writes(ws, [ConversationId(high)])
    await asyncio.wait_for(merging, timeout=15)
    async with db.session() as session:
        rows = dict((await session.execute(sa.select(ConversationRow.id, ConversationRow.status))).all())
    await db.dispose()
    assert rows == {high: "waiting", low: "closed"}
    deadline = time.monotonic() + 10
    while await _stat(
        dsn,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    ):
        assert time.monotonic() < deadline, "the test's connections did not close"
        await asyncio.sleep(0.05)
    deadlocks = (
        await _stat(dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        - deadlocks_before
    )
    assert deadlocks == 0
