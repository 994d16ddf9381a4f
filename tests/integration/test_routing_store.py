"""The router's repository on SQLite and PostgreSQL: what it loads, and its compare-and-set writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from core.ids import AgentId, CampaignId, ConversationId, CustomerId, OfferId, QueueId, WorkspaceId, new_id
from storage.database import Database
from storage.routing import RoutingStore
from storage.tables import (
    AgentRow,
    AssignmentRow,
    ConversationRow,
    CustomerRow,
    OfferRow,
    QueueRow,
)
from tests.support.seed import Seeded, seed_workspace

T0 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


async def _seed(db: Database) -> tuple[Seeded, QueueId, AgentId, AgentId, CustomerId]:
    seeded = await seed_workspace(db, f"ws-{uuid.uuid4().hex[:8]}", [])
    queue = QueueRow(
        id=new_id(), workspace_id=seeded.workspace_id, campaign_id=seeded.campaign_id, name="ventas"
    )
    ana = AgentRow(id=new_id(), workspace_id=seeded.workspace_id, email="ana@x.example", name="Ana")
    beto = AgentRow(id=new_id(), workspace_id=seeded.workspace_id, email="beto@x.example", name="Beto")
    customer = CustomerRow(id=new_id(), workspace_id=seeded.workspace_id)
    async with db.transaction() as session:
        session.add_all([queue, ana, beto, customer])
    return seeded, QueueId(queue.id), AgentId(ana.id), AgentId(beto.id), CustomerId(customer.id)


async def _conversation(
    db: Database,
    seeded: Seeded,
    customer: CustomerId,
    *,
    status: str = "waiting",
    enqueued_at: datetime = T0,
    agent: AgentId | None = None,
    closed_at: datetime | None = None,
) -> ConversationId:
    row = ConversationRow(
        id=new_id(),
        workspace_id=seeded.workspace_id,
        campaign_id=seeded.campaign_id,
        customer_id=customer,
        status=status,
        channel="whatsapp",
        opened_at=enqueued_at,
        enqueued_at=enqueued_at,
        agent_id=agent,
        closed_at=closed_at,
    )
    async with db.transaction() as session:
        session.add(row)
    return ConversationId(row.id)


async def test_each_router_that_becomes_active_gets_a_higher_epoch_and_fences_the_previous_one(
    database: Database,
) -> None:
    seeded, *_ = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    async with database.transaction() as session:
        first = await RoutingStore(session).take_epoch(ws, "a", T0)
    async with database.transaction() as session:
        second = await RoutingStore(session).take_epoch(ws, "b", T0)
    assert (first, second) == (1, 2)
    async with database.transaction() as session:
        store = RoutingStore(session)
        assert await store.check_epoch(ws, 2) is True
        assert await store.check_epoch(ws, 1) is False


async def test_an_offer_moves_only_a_waiting_conversation(database: Database) -> None:
    seeded, queue, ana, beto, customer = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    conversation = await _conversation(database, seeded, customer)
    first, second = OfferId(new_id()), OfferId(new_id())
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        assert writes.offer(first, conversation, ana, queue, T0, T0 + timedelta(seconds=30))
        assert not writes.offer(second, conversation, beto, queue, T0, T0 + timedelta(seconds=30))
        await writes.flush()
    async with database.session() as session:
        row = await session.get(ConversationRow, conversation)
        offers = {o.id: o.status for o in (await session.execute(sa.select(OfferRow))).scalars()}
    assert row is not None and (row.status, row.offer_id, row.queue_id) == ("offered", first, queue)
    assert offers == {first: "offered", second: "withdrawn"}


async def test_accepting_assigns_once_and_a_stale_answer_changes_nothing(database: Database) -> None:
    seeded, queue, ana, beto, customer = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    conversation = await _conversation(database, seeded, customer)
    offer = OfferId(new_id())
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        writes.offer(offer, conversation, ana, queue, T0, T0 + timedelta(seconds=30))
        await writes.flush()
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        assert writes.assign(conversation, ana, queue, offer, T0)
        assert not writes.assign(conversation, beto, queue, offer, T0)
        await writes.flush()
    async with database.session() as session:
        row = await session.get(ConversationRow, conversation)
        assignments = (await session.execute(sa.select(AssignmentRow))).scalars().all()
        status = (await session.execute(sa.select(OfferRow.status))).scalar_one()
    assert row is not None and (row.status, row.agent_id, row.offer_id) == ("assigned", ana, None)
    assert [(a.agent_id, a.ended_at) for a in assignments] == [(ana, None)]
    assert status == "accepted"


async def test_a_declined_offer_puts_the_conversation_back_to_waiting(database: Database) -> None:
    seeded, queue, ana, _, customer = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    conversation = await _conversation(database, seeded, customer)
    offer = OfferId(new_id())
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        writes.offer(offer, conversation, ana, queue, T0, T0 + timedelta(seconds=30))
        await writes.flush()
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        writes.end_offer(offer, conversation, "declined", None, T0)
        await writes.flush()
    async with database.session() as session:
        row = await session.get(ConversationRow, conversation)
        status = (await session.execute(sa.select(OfferRow.status))).scalar_one()
    assert row is not None and (row.status, row.offer_id) == ("waiting", None)
    assert status == "declined"


async def test_unassigning_keeps_the_original_age_and_ends_the_assignment(database: Database) -> None:
    seeded, queue, ana, _, customer = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    arrived = T0 - timedelta(minutes=7)
    conversation = await _conversation(database, seeded, customer, enqueued_at=arrived)
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        assert writes.assign(conversation, ana, queue, None, T0)
        await writes.flush()
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        writes.unassign(conversation, ana, queue, T0 + timedelta(minutes=1), "agent_offline")
        await writes.flush()
    async with database.session() as session:
        loaded = await RoutingStore(session).open_conversations(ws)
        assignment = (await session.execute(sa.select(AssignmentRow))).scalar_one()
    assert [(c.id, c.status, c.agent_id, c.enqueued_at) for c in loaded] == [
        (conversation, "waiting", None, arrived)
    ]
    assert assignment.ended_at is not None and assignment.reason == "agent_offline"


async def test_closing_ends_the_open_offer_and_the_conversation_leaves_the_open_ones(
    database: Database,
) -> None:
    seeded, queue, ana, _, customer = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    conversation = await _conversation(database, seeded, customer)
    offer = OfferId(new_id())
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        writes.offer(offer, conversation, ana, queue, T0, T0 + timedelta(seconds=30))
        writes.close(conversation, T0)  # within one round: the new offer ends with the conversation
        await writes.flush()
    async with database.session() as session:
        assert await RoutingStore(session).open_conversations(ws) == []
        assert await RoutingStore(session).live_offers(ws) == []


async def test_the_sticky_agent_is_the_one_of_the_most_recent_closed_conversation(database: Database) -> None:
    seeded, _, ana, beto, customer = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    await _conversation(
        database, seeded, customer, status="closed", agent=ana, closed_at=T0 - timedelta(days=9)
    )
    await _conversation(
        database, seeded, customer, status="closed", agent=beto, closed_at=T0 - timedelta(days=2)
    )
    key = (customer, CampaignId(seeded.campaign_id))
    async with database.session() as session:
        found = await RoutingStore(session).last_agents(ws, [key, (CustomerId(new_id()), None)])
    assert found == {key: beto}


async def test_the_outside_hours_auto_reply_is_claimed_once(database: Database) -> None:
    seeded, _, _, _, customer = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    conversation = await _conversation(database, seeded, customer)
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        assert writes.claim_auto_reply(conversation, T0) is True
        assert writes.claim_auto_reply(conversation, T0) is False
        await writes.flush()
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [conversation])
        assert writes.claim_auto_reply(conversation, T0) is False


async def test_agents_load_with_their_persisted_presence(database: Database) -> None:
    seeded, _, ana, beto, _ = await _seed(database)
    ws = WorkspaceId(seeded.workspace_id)
    async with database.transaction() as session:
        writes = await RoutingStore(session).begin_writes(ws, [])
        writes.presence(ana, "available", None, connected=True)
        writes.presence(beto, "wrap_up", T0)
        await writes.flush()
    async with database.session() as session:
        agents = {a.id: a for a in await RoutingStore(session).agents(ws)}
    assert (agents[ana].presence, agents[ana].connected) == ("available", True)
    assert (agents[beto].presence, agents[beto].presence_until, agents[beto].connected) == (
        "wrap_up",
        T0,
        False,
    )
    async with database.session() as session:
        assert await RoutingStore(session).active_workspaces() == [ws]
