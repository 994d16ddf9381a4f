"""Pipeline batches, erasures and retention passes over one campaign never deadlock on PostgreSQL.

The pipeline writes follow-ups and delivery statuses for its customers; erasures scrub other
customers of the workspace whose conversations are closed (and who shared raw webhook batches
with the pipeline's customers); retention purges the campaign's closed conversations.  An
erasure locks customers by id, then their conversations by id (``FOR NO KEY UPDATE``); a
retention batch locks one kind of row in id order with ``SKIP LOCKED``.

The test has its own database, so ``pg_stat_database.deadlocks`` counts exactly its own."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import sqlalchemy as sa

from centralita.pipeline.worker import Pipeline
from centralita.retention import run_retention
from centralita.runtime import open_runtime
from channels.whatsapp.testing import contact, text_message, webhook_body
from core.errors import DatabaseConflict, DatabaseUnavailable
from core.ids import WorkspaceId, new_id
from core.settings import Settings
from identity import phone_identifier
from storage.database import Database, sqlstate
from storage.erasure import ConversationOpen, erase_customer
from storage.tables import CampaignRow, ConversationRow, IdentifierRow, MessageRow
from tests.integration.test_lock_order import PHONE_NUMBER_ID, _Delivery, _plain, _stat
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

pytestmark = [pytest.mark.postgres]

PIPED = 16  # customers the pipeline keeps writing for
ERASED = 12  # customers erased, again and again; the first keeps an open conversation
RUN_S = 5.0
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
IDENT = IdentifierRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
MANIFEST = {
    "apiVersion": "centralita/v1",
    "kind": "Campaign",
    "workspace": "privacidad",
    "campaign": {"name": "atencion", "display_name": "Atención", "timezone": "America/Mexico_City"},
    "queues": [{"name": "general", "display_name": "General", "channels": ["whatsapp"]}],
    "retention": {"raw_deliveries_days": 30, "closed_conversations_days": 90},
}


def _texts(*wa_ids: str) -> bytes:
    """One webhook batch with a text from each of ``wa_ids``."""
    return webhook_body(
        PHONE_NUMBER_ID,
        messages=[text_message(w, f"wamid.{new_id().hex}", "Hola, sigo esperando") for w in wa_ids],
        contacts=[contact(w, "Cliente") for w in wa_ids],
        display_phone_number="15550783882",
        waba_id="1",
    )


def _statuses(status: str, items: list[tuple[str, str]]) -> bytes:
    """One webhook batch of ``status`` for replies: (wamid of our reply, recipient)."""
    return webhook_body(
        PHONE_NUMBER_ID,
        statuses=[
            {"id": wamid, "status": status, "timestamp": "1763720000", "recipient_id": wa_id}
            for wamid, wa_id in items
        ],
        display_phone_number="15550783882",
        waba_id="1",
    )


@dataclass
class _Tally:
    pipeline_batches: int = 0
    not_acked: int = 0
    erasures: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    retention_passes: int = 0
    purged: int = 0
    lock_waits: int = 0
    errors: list[str] = field(default_factory=list)


async def test_pipeline_batches_erasures_and_retention_passes_on_one_campaign_never_deadlock(
    postgres_url: str,
) -> None:
    dsn = _plain(postgres_url)
    await migrated(postgres_url)
    db = Database(postgres_url)
    seeded = await seed_workspace(
        db, "privacidad", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}]
    )
    ws = WorkspaceId(seeded.workspace_id)
    async with db.transaction() as session:
        await session.execute(
            sa.update(CampaignRow)
            .where(CampaignRow.id == seeded.campaign_id)  # type: ignore[arg-type]
            .values(manifest=MANIFEST)
        )
    await db.dispose()
    piped = [f"52155520{n:05d}" for n in range(PIPED)]
    erased = [f"52155530{n:05d}" for n in range(ERASED)]
    settings = Settings(database_url=postgres_url, broker_url="memory://", ingest_partitions=1)
    tally = _Tally()
    rng = random.Random(15)
    now = datetime.now(UTC)
    async with open_runtime(settings) as runtime:
        database = runtime.database
        pipeline = Pipeline(runtime)
        # Each erased customer wrote in the same webhook batch as one of the pipeline's customers.
        seed = [_Delivery("", _texts(piped[i % PIPED], e)) for i, e in enumerate(erased)]
        seed += [_Delivery("", _texts(p)) for p in piped[ERASED:]]
        await pipeline.handle_batch(seed)  # type: ignore[arg-type]
        assert all(d.outcome == "ack" for d in seed)
        async with database.transaction() as session:
            rows = (
                await session.execute(
                    sa.select(IDENT.c.key, CONV.c.id, CONV.c.customer_id).join(
                        CONV, CONV.c.identifier_id == IDENT.c.id
                    )
                )
            ).all()
            by_key = {r.key: (r.id, r.customer_id) for r in rows}
            of = {w: by_key[phone_identifier(f"+{w}").key] for w in (*piped, *erased)}
            closing = [of[e][0] for e in erased[1:]]
            await session.execute(
                sa.update(CONV)
                .where(CONV.c.id.in_(closing))
                .values(
                    status="closed",
                    closed_at=now - timedelta(days=200),
                    disposition={"code": "resuelto", "note": "llamar el lunes"},
                )
            )
            # One reply in each conversation, so the pipeline has delivery statuses to write.
            replies = {w: f"wamid.out.{w}" for w in (*piped, *erased)}
            await session.execute(
                sa.insert(MSG),
                [
                    {
                        "id": new_id(),
                        "workspace_id": ws,
                        "conversation_id": of[w][0],
                        "customer_id": of[w][1],
                        "direction": "out",
                        "kind": "message",
                        "channel": "whatsapp",
                        "external_id": wamid,
                        "text": "Le atendemos enseguida",
                        "payload": {},
                        "delivery_state": "sent",
                        "created_at": now,
                        "stored_at": now,
                    }
                    for w, wamid in replies.items()
                ],
            )
        deadlocks_before = await _stat(
            dsn, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
        stop = asyncio.Event()

        async def pipeline_lane(lane: list[str], told_of: list[str]) -> None:
            while not stop.is_set():
                texts = [_Delivery(p) for p in rng.sample(lane, len(lane))]
                # statuses of replies to some of the lane's customers and to its erased ones (as
                # partitions do, one lane hears of each customer); a reply an erasure renamed
                # is not found, its status changes nothing
                told = [(replies[w], w) for w in rng.sample(lane, 3) + rng.sample(told_of, len(told_of))]
                # delivered first, read after the texts: a reply's row is written twice per batch
                read = _Delivery("", _statuses("read", told))
                batch = [_Delivery("", _statuses("delivered", told)), *texts, read]
                try:
                    await pipeline.handle_batch(batch)  # type: ignore[arg-type]
                except (DatabaseConflict, DatabaseUnavailable) as exc:
                    tally.errors.append(f"pipeline: {sqlstate(exc.__cause__ or exc) or exc.message}")
                tally.pipeline_batches += 1
                tally.not_acked += sum(d.outcome != "ack" for d in batch)

        async def erasures() -> None:
            while not stop.is_set():
                wa_id = rng.choice(erased)
                try:
                    await erase_customer(
                        database,
                        ws,
                        of[wa_id][1],
                        "solicitud del titular",
                        actor="dpo",
                        now=datetime.now(UTC),
                    )
                except ConversationOpen as exc:
                    tally.refused[exc.code] = tally.refused.get(exc.code, 0) + 1
                    assert wa_id == erased[0], exc.message
                except (DatabaseConflict, DatabaseUnavailable) as exc:
                    tally.errors.append(f"erasure: {sqlstate(exc.__cause__ or exc) or exc.message}")
                else:
                    tally.erasures += 1

        async def retention() -> None:
            while not stop.is_set():
                try:
                    done = await run_retention(database, datetime.now(UTC), batch=4)
                except (DatabaseConflict, DatabaseUnavailable) as exc:
                    tally.errors.append(f"retention: {sqlstate(exc.__cause__ or exc) or exc.message}")
                else:
                    tally.retention_passes += 1
                    tally.purged += done.total

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
                    await asyncio.sleep(0)
            finally:
                await conn.close()

        half = PIPED // 2
        tasks = [
            asyncio.create_task(pipeline_lane(piped[:half], erased[: ERASED // 2])),
            asyncio.create_task(pipeline_lane(piped[half:], erased[ERASED // 2 :])),
            asyncio.create_task(erasures()),
            asyncio.create_task(erasures()),
            asyncio.create_task(retention()),
            asyncio.create_task(watch_lock_waits()),
        ]
        await asyncio.wait(tasks, timeout=RUN_S)
        stop.set()
        await asyncio.gather(*tasks)
        async with database.session() as session:
            kept = (
                await session.execute(
                    sa.select(sa.func.count()).where(
                        MSG.c.customer_id.in_([of[e][1] for e in erased[1:]]), MSG.c.text.is_not(None)
                    )
                )
            ).scalar_one()
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
    assert tally.errors == [] and tally.not_acked == 0, tally
    assert tally.pipeline_batches >= 10 and tally.erasures >= 10 and tally.retention_passes >= 3, tally
    assert tally.refused.get("conversation_open", 0) >= 1 and set(tally.refused) == {"conversation_open"}
    assert tally.purged > 0 and kept == 0, tally
    assert tally.lock_waits > 0, "the writers never waited on each other: not contended"
