"""A batch is read and written as sets: one batch of a partition mixing new customers, follow-ups,
redeliveries, statuses of our own and of unknown messages, and a poison delivery gives each
delivery the outcome it would have had alone, on both databases."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from centralita.envelope import RawEnvelope
from centralita.ingress import Ingress
from centralita.pipeline.worker import Outcome, Pipeline
from centralita.runtime import open_runtime
from channels.whatsapp.testing import text_webhook_body, webhook_body
from core.ids import RawDeliveryId, new_id
from core.settings import Settings
from core.states import MessageDirection
from core.transport.protocol import Message
from core.transport.topology import INGEST_EXCHANGE, ingest_queue
from storage.database import Database
from storage.tables import (
    ConversationRow,
    CustomerRow,
    IdentifierRow,
    MessageRow,
    RawDeliveryRow,
    SuggestionRow,
)
from tests.support.pipeline import one_batch
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

PHONE_NUMBER_ID = "106540352242988"


def _text(wa_id: str, wamid: str, text: str = "Hola") -> bytes:
    return text_webhook_body(PHONE_NUMBER_ID, wa_id, wamid, text, name=f"Cliente {wa_id[-2:]}", waba_id="1")


def _status(wamid: str, status: str, at: str = "1763720100") -> bytes:
    return webhook_body(
        PHONE_NUMBER_ID,
        statuses=[{"id": wamid, "status": status, "timestamp": at, "recipient_id": "5215512349999"}],
        waba_id="1",
    )


def _without_envelope(body: bytes) -> Message:
    """A body published without the raw-delivery envelope's headers (no id, channel or time)."""
    message = RawEnvelope(RawDeliveryId(new_id()), "whatsapp", datetime.now(UTC), body).to_message(
        INGEST_EXCHANGE, ingest_queue(0)
    )
    return dataclasses.replace(message, headers={})


async def test_a_mixed_batch_gives_each_delivery_its_own_outcome(database_url: str) -> None:
    settings = Settings(database_url=database_url, broker_url="memory://", ingest_partitions=1)
    await migrated(database_url)
    db = Database(database_url)
    seeded = await seed_workspace(
        db, "sets", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}]
    )
    await db.dispose()
    known, new, twice = "5215512340201", "5215512340202", "5215512340203"
    async with open_runtime(settings) as runtime:
        pipeline = Pipeline(runtime)
        outcomes: list[Outcome] = []
        pipeline.observers.append(lambda _envelope, outcome: outcomes.append(outcome))
        # Before the batch: a known customer with an open conversation, and one reply of ours.
        earlier = _text(known, "wamid.known-1", "Buenos días")
        await one_batch(runtime, pipeline, [earlier])
        async with runtime.database.transaction() as session:
            await session.execute(
                sa.insert(MessageRow).values(
                    id=new_id(),
                    workspace_id=seeded.workspace_id,
                    direction=MessageDirection.OUT,
                    kind="text",
                    channel="whatsapp",
                    external_id="wamid.ours",
                    payload={},
                    delivery_state="sent",
                    created_at=datetime.now(UTC),
                    stored_at=datetime.now(UTC),
                )
            )
        outcomes.clear()

        batch = await one_batch(
            runtime,
            pipeline,
            [
                _text(known, "wamid.known-2", "Sigo esperando"),  # a follow-up
                _text(new, "wamid.new-1", "Primera vez"),  # a new customer
                _text(new, "wamid.new-2", "Otra cosa"),  # ... who writes again in the same batch
                earlier,  # a redelivery of a body already kept
                _text(twice, "wamid.twice"),  # a body that comes twice in this batch
                _text(twice, "wamid.twice"),
                _status("wamid.ours", "read"),  # a status of ours
                _status("wamid.ours", "delivered"),  # ... and an older one, late: it changes nothing
                _status("wamid.ours", "read", at="1763720160"),  # ... the same one again: no news
                _status("wamid.nobody-knows", "delivered"),  # a status of no message of ours
                # Poison: not a raw delivery the ingress could have published.
                _without_envelope(_text(new, "wamid.poison")),
            ],
        )

        assert [d.outcome for d in batch] == ["ack"] * 10 + ["park"]
        assert batch[-1].reason == "bad_envelope"
        assert [(o.duplicate, o.stored_messages, o.statuses) for o in outcomes] == [
            (False, 1, 0),
            (False, 1, 0),
            (False, 1, 0),
            (True, 0, 0),
            (False, 1, 0),
            (True, 0, 0),
            (False, 0, 1),
            (False, 0, 0),
            (False, 0, 0),
            (False, 0, 0),
        ]
        async with runtime.database.session() as session:
            conversations = {
                row.external: row.conversations
                for row in await session.execute(
                    sa.select(
                        MessageRow.customer_id.label("customer"),
                        sa.func.min(MessageRow.external_id).label("external"),
                        sa.func.count(sa.distinct(MessageRow.conversation_id)).label("conversations"),
                    )
                    .where(MessageRow.direction == MessageDirection.IN)
                    .group_by(MessageRow.customer_id)
                )
            }
            customers = (
                await session.execute(sa.select(sa.func.count()).select_from(CustomerRow))
            ).scalar_one()
            opened = (
                await session.execute(sa.select(sa.func.count()).select_from(ConversationRow))
            ).scalar_one()
            ours = (
                await session.execute(
                    sa.select(MessageRow.delivery_state).where(MessageRow.external_id == "wamid.ours")
                )
            ).scalar_one()
            raws = (
                await session.execute(sa.select(sa.func.count()).select_from(RawDeliveryRow))
            ).scalar_one()
            latest = (
                await session.execute(
                    sa.select(ConversationRow.last_customer_message_at)
                    .join(MessageRow, MessageRow.conversation_id == ConversationRow.id)
                    .where(MessageRow.external_id == "wamid.known-2")
                )
            ).scalar_one()
        # Each customer's messages are in one conversation: the new customer's second message
        # joined the conversation its first one opened in the same batch.
        assert conversations == {"wamid.known-1": 1, "wamid.new-1": 1, "wamid.twice": 1}
        assert customers == 3
        assert opened == 3
        assert ours == "read"
        assert raws == 1 + 8  # the earlier one, then every body of the batch kept once (not the poison)
        assert latest is not None


@pytest.mark.parametrize("lanes", [1, 2])
async def test_lanes_share_the_partitions_and_each_customer_keeps_their_order(
    sqlite_url: str, lanes: int
) -> None:
    """Four partitions into one lane (the default) or two: every message is stored, and each
    customer's messages are stored in the order they were published."""
    settings = Settings(
        database_url=sqlite_url, broker_url="memory://", ingest_partitions=4, pipeline_lanes=lanes
    )
    await migrated(sqlite_url)
    db = Database(sqlite_url)
    await seed_workspace(db, "lanes", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}])
    await db.dispose()
    customers = [f"52155123403{n:02d}" for n in range(8)]
    async with open_runtime(settings) as runtime:
        ingress = Ingress(runtime.adapters, runtime.directory, runtime.transport, 4, runtime.clock)
        pipeline = Pipeline(runtime)
        await pipeline.start()
        try:
            await asyncio.sleep(0.05)  # the lanes' tasks start running
            assert sorted(w.name for w in runtime.workers.all() if w.name.startswith("pipeline.")) == [
                f"pipeline.lane.{n}" for n in range(lanes)
            ]
            for turn in range(5):
                for wa_id in customers:
                    await ingress.accept(
                        "whatsapp", _text(wa_id, f"wamid.{wa_id}.{turn}", f"mensaje {turn}"), headers={}
                    )
            async with asyncio.timeout(20):
                while True:
                    async with runtime.database.session() as session:
                        stored = (
                            (
                                await session.execute(
                                    sa.select(MessageRow.external_id)
                                    .where(MessageRow.direction == MessageDirection.IN)
                                    .order_by(MessageRow.stored_at, MessageRow.id)
                                )
                            )
                            .scalars()
                            .all()
                        )
                    if len(stored) == 5 * len(customers):
                        break
                    await asyncio.sleep(0.05)
        finally:
            await pipeline.stop()
    for wa_id in customers:
        mine = [external for external in stored if external.startswith(f"wamid.{wa_id}.")]
        assert mine == [f"wamid.{wa_id}.{turn}" for turn in range(5)]


async def _identities_after(database_url: str, batches: list[list[bytes]]) -> dict[str, object]:
    """Who is who after the pipeline handled ``batches``: each customer's identifiers and name,
    and the suggestions, in terms of the senders' keys (ids differ from one run to another)."""
    settings = Settings(database_url=database_url, broker_url="memory://", ingest_partitions=1)
    await migrated(database_url)
    db = Database(database_url)
    await seed_workspace(db, "who", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}])
    await db.dispose()
    async with open_runtime(settings) as runtime:
        pipeline = Pipeline(runtime)
        for batch in batches:
            assert {d.outcome for d in await one_batch(runtime, pipeline, list(batch))} == {"ack"}
        async with runtime.database.session() as session:
            rows = (
                await session.execute(
                    sa.select(IdentifierRow.key, IdentifierRow.customer_id, CustomerRow.display_name).join(
                        CustomerRow, CustomerRow.id == IdentifierRow.customer_id
                    )
                )
            ).all()
            suggestions = (await session.execute(sa.select(SuggestionRow.a_key, SuggestionRow.b_key))).all()
            messages = (
                await session.execute(
                    sa.select(MessageRow.external_id, IdentifierRow.key)
                    .join(IdentifierRow, IdentifierRow.id == MessageRow.identifier_id)
                    .where(MessageRow.direction == MessageDirection.IN)
                )
            ).all()
    by_customer: dict[object, set[str]] = {}
    names: dict[object, str | None] = {}
    for key, customer, name in rows:
        by_customer.setdefault(customer, set()).add(key)
        names[customer] = name
    return {
        "customers": sorted((sorted(keys), names[c]) for c, keys in by_customer.items()),
        "suggestions": sorted(tuple(sorted(pair)) for pair in suggestions),
        "messages": sorted(messages),
    }


async def test_a_batch_resolves_its_new_customers_as_one_delivery_at_a_time_would(
    database_url: str, tmp_path: object
) -> None:
    """New senders are resolved together before the batch is processed: the outcome is the same
    customers, names, suggestions and messages as resolving each delivery in its own batch —
    including a sender whose number another new customer states in the same batch (resolved in
    its turn), and a new customer writing twice."""
    deliveries = [
        _text("5215512340401", "wamid.a-1", "Hola"),
        _text("5215512340402", "wamid.b-1", "Mi número es 55 1234 0403, el de mi esposa"),
        _text("5215512340403", "wamid.c-1", "Hola, soy la esposa"),
        _text("5215512340401", "wamid.a-2", "¿Me ayudan?"),
        _text("5215512340404", "wamid.d-1", "Buenas tardes"),
    ]
    together = await _identities_after(database_url, [deliveries])
    alone = await _identities_after(f"sqlite+aiosqlite:///{tmp_path}/alone.db", [[d] for d in deliveries])
    assert together == alone
    assert len(together["customers"]) == 4  # type: ignore[arg-type]
    assert together["suggestions"]  # the stated number links the two customers for an agent to decide
