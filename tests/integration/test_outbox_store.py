"""The outbox rows on both databases: claiming, leases, and what a late provider answer does."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from core.delivery import DeliveryState
from core.ids import MessageId, WorkspaceId, new_id
from storage.database import Database
from storage.outbound import OutboundStore
from storage.tables import ConversationRow, CustomerRow, MessageRow, WorkspaceRow

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


async def _queued(
    database: Database, count: int, *, at: datetime = NOW, conversations: int = 0
) -> list[MessageId]:
    """``count`` queued outbound rows, written one after the other at the same clock time: without
    ``conversations`` they belong to none (the store does not need one); with it they go round-robin
    to that many conversations."""
    workspace_id = WorkspaceId(new_id())
    ids = [MessageId(new_id()) for _ in range(count)]
    owners: list[uuid.UUID | None] = [None]
    async with database.transaction() as session:
        session.add(WorkspaceRow(id=workspace_id, slug=f"ws-{workspace_id.hex[:8]}", name="outbox"))
        await session.flush()
        if conversations:
            customer_id = new_id()
            session.add(CustomerRow(id=customer_id, workspace_id=workspace_id))
            await session.flush()
            owners = [new_id() for _ in range(conversations)]
            session.add_all(
                ConversationRow(id=c, workspace_id=workspace_id, customer_id=customer_id, channel="whatsapp")
                for c in owners
            )
            await session.flush()
        session.add_all(
            MessageRow(
                id=message_id,
                workspace_id=workspace_id,
                conversation_id=owners[n % len(owners)],
                direction="out",
                kind="message",
                channel="whatsapp",
                text="Hola",
                payload={},
                delivery_state="queued",
                created_at=at,
                stored_at=at + timedelta(microseconds=n),  # the order they were written in
                due_at=at,
            )
            for n, message_id in enumerate(ids)
        )
    return ids


async def _claim(database: Database, now: datetime, limit: int) -> list[MessageId]:
    async with database.transaction() as session:
        return [c.id for c in await OutboundStore(session).claim_due(now, limit)]


async def _state(database: Database, message_id: MessageId) -> MessageRow:
    async with database.session() as session:
        row = await session.get(MessageRow, message_id)
    assert row is not None
    return row


async def test_workers_claiming_at_the_same_time_never_claim_one_row_twice(database: Database) -> None:
    ids = await _queued(database, 40)
    claimed: list[MessageId] = []
    while len(claimed) < len(ids):
        rounds = await asyncio.gather(*(_claim(database, NOW, 7) for _ in range(3)))
        assert any(rounds), "a round with rows due claims some"
        for batch in rounds:
            claimed.extend(batch)
    assert sorted(claimed) == sorted(ids)  # each exactly once
    assert await _claim(database, NOW, 10) == []
    row = await _state(database, ids[0])
    assert (row.delivery_state, row.attempts) == (DeliveryState.SENDING, 1)


async def test_a_conversations_replies_go_out_one_at_a_time_in_the_order_they_were_written(
    database: Database,
) -> None:
    # Two conversations, three replies each, all due now and all written at the same clock time.
    a1, b1, a2, b2, a3, b3 = await _queued(database, 6, conversations=2)
    assert sorted(await _claim(database, NOW, 10)) == sorted([a1, b1])  # the first of each only
    assert await _claim(database, NOW, 10) == []  # nothing more while those are being sent
    async with database.transaction() as session:
        store = OutboundStore(session)
        await store.mark_sent(a1, "wamid.a1")
        await store.retry_later(b1, NOW + timedelta(seconds=30), {"code": "provider_unavailable"})
    assert await _claim(database, NOW, 10) == [a2]  # b2 waits behind b1's retry, not around it
    async with database.transaction() as session:
        await OutboundStore(session).mark_failed(a2, {"code": "undeliverable"})
    assert await _claim(database, NOW, 10) == [a3]  # a failed reply does not hold the next one
    assert await _claim(database, NOW + timedelta(seconds=30), 10) == [b1]
    async with database.transaction() as session:
        await OutboundStore(session).expire_leases(NOW + timedelta(hours=1))  # b1 and a3: unknown
    assert await _claim(database, NOW + timedelta(hours=1), 10) == [b2]
    async with database.transaction() as session:
        await OutboundStore(session).mark_sent(b2, "wamid.b2")
    assert await _claim(database, NOW + timedelta(hours=1), 10) == [b3]


async def test_a_row_due_later_is_not_claimed_before_its_time(database: Database) -> None:
    (message_id,) = await _queued(database, 1, at=NOW + timedelta(seconds=30))
    assert await _claim(database, NOW, 10) == []
    assert await _claim(database, NOW + timedelta(seconds=30), 10) == [message_id]


async def test_an_unrenewed_lease_makes_the_row_unknown_and_never_queued_again(database: Database) -> None:
    kept, abandoned = await _queued(database, 2)
    assert len(await _claim(database, NOW, 10)) == 2
    async with database.transaction() as session:
        await OutboundStore(session).renew([kept], NOW + timedelta(seconds=50))
    async with database.transaction() as session:
        expired = await OutboundStore(session).expire_leases(NOW + timedelta(seconds=5))
    assert [r.id for r in expired] == [abandoned]
    row = await _state(database, abandoned)
    assert row.delivery_state == DeliveryState.UNKNOWN and row.error["code"] == "delivery_unconfirmed"
    assert (await _state(database, kept)).delivery_state == DeliveryState.SENDING
    assert await _claim(database, NOW + timedelta(hours=1), 10) == []  # unknown is never claimed


async def test_a_provider_answer_recorded_late_settles_an_unknown_row(database: Database) -> None:
    (message_id,) = await _queued(database, 1)
    await _claim(database, NOW, 1)
    async with database.transaction() as session:
        await OutboundStore(session).expire_leases(NOW + timedelta(seconds=1))
    async with database.transaction() as session:
        assert await OutboundStore(session).mark_sent(message_id, "wamid.late")
    row = await _state(database, message_id)
    assert (row.delivery_state, row.external_id, row.error) == (DeliveryState.SENT, "wamid.late", None)


async def test_a_status_by_client_reference_reconciles_only_a_row_without_a_provider_id(
    database: Database,
) -> None:
    unknown, sent = await _queued(database, 2)
    await _claim(database, NOW, 2)
    async with database.transaction() as session:
        store = OutboundStore(session)
        await store.expire_leases(NOW + timedelta(seconds=1))
        await store.mark_sent(sent, "wamid.known")
    async with database.transaction() as session:
        store = OutboundStore(session)
        assert await store.reconcile("whatsapp", unknown, "wamid.first", "delivered", [])
        assert not await store.reconcile("whatsapp", sent, "wamid.other", "read", [])
    assert (await _state(database, unknown)).external_id == "wamid.first"
    assert (await _state(database, unknown)).delivery_state == "delivered"
    assert (await _state(database, sent)).external_id == "wamid.known"
