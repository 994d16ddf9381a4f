"""A floor of agents for the router's burst and failover tests: a campaign with an agent group
applied to PostgreSQL, conversations inserted as the pipeline stores them, nudges to publish, and
the checks on what the router wrote."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import aio_pika
import sqlalchemy as sa

from core.ids import AgentId, ConversationId, WorkspaceId, new_id
from core.settings import Settings
from core.transport.protocol import Message
from core.transport.topology import ROUTE_EXCHANGE, route_queue
from router.wire import ConversationNudge
from storage.database import Database
from storage.tables import AgentRow, AssignmentRow, ChannelAccountRow, ConversationRow, CustomerRow
from tests.support.campaigns import apply_text
from tests.support.schema import migrated

__all__ = [
    "Floor",
    "assignment_problems",
    "dead_letters",
    "everything_closed",
    "insert_conversations",
    "manifest",
    "nudges",
    "seed_floor",
]

CAPACITY = 3


def manifest(agents: int) -> str:
    return f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: rafaga
campaign: {{name: ventas, display_name: Ventas, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "106540352277001"
      display_phone: "+52 55 4170 2031"
      waba_id: "300000000000001"
      app_id: "400000000000001"
      app_secret_env: BURST_WA_SECRET
      access_token_env: BURST_WA_TOKEN
      verify_token_env: BURST_WA_VERIFY
      default_queue: ventas
skills:
  - name: ventas
queues:
  - name: ventas
    required_skills: {{ventas: 5}}
    channels: [whatsapp]
agents:
  - group: asesores
    count: {agents}
    name_pattern: "Asesor {{n}}"
    email_pattern: "asesor{{n}}@rafaga.example"
    skills: {{ventas: 6}}
    capacity: {{whatsapp: {CAPACITY}}}
"""


@dataclass
class Floor:
    settings: Settings
    database: Database
    workspace_id: WorkspaceId
    agents: list[AgentId]
    account_id: uuid.UUID
    campaign_id: uuid.UUID


async def seed_floor(settings: Settings, agents: int) -> Floor:
    await migrated(settings.database_url)
    db = Database(settings.database_url)
    applied = await apply_text(db, manifest(agents))
    async with db.session() as session:
        ids = (await session.execute(sa.select(AgentRow.id))).scalars().all()
        account = (await session.execute(sa.select(ChannelAccountRow))).scalars().one()
    assert account.campaign_id is not None
    return Floor(
        settings,
        db,
        WorkspaceId(applied.workspace_id),
        [AgentId(i) for i in ids],
        account.id,
        account.campaign_id,
    )


async def insert_conversations(floor: Floor, count: int, at: datetime) -> list[ConversationId]:
    """``count`` new WhatsApp conversations as the pipeline stores them (no queue chosen yet)."""
    customers = [new_id() for _ in range(count)]
    conversations = [ConversationId(new_id()) for _ in range(count)]
    async with floor.database.transaction() as session:
        await session.execute(
            sa.insert(CustomerRow),
            [{"id": c, "workspace_id": floor.workspace_id, "created_at": at} for c in customers],
        )
        await session.execute(
            sa.insert(ConversationRow),
            [
                {
                    "id": conversation,
                    "workspace_id": floor.workspace_id,
                    "campaign_id": floor.campaign_id,
                    "customer_id": customer,
                    "status": "waiting",
                    "channel": "whatsapp",
                    "channel_account_id": floor.account_id,
                    "priority": 5,
                    "opened_at": at + timedelta(milliseconds=n),
                    "enqueued_at": at + timedelta(milliseconds=n),
                    "last_customer_message_at": at + timedelta(milliseconds=n),
                }
                for n, (conversation, customer) in enumerate(zip(conversations, customers, strict=True))
            ],
        )
    return conversations


async def everything_closed(floor: Floor, conversations: list[ConversationId]) -> None:
    """Wait until the database shows every one of these conversations closed (what a supervisor
    sees), however many rounds or routers it took."""
    wanted = set(conversations)
    while True:
        async with floor.database.session() as session:
            closed = set(
                (
                    await session.execute(
                        sa.select(ConversationRow.id).where(
                            ConversationRow.status == "closed", ConversationRow.id.in_(wanted)
                        )
                    )
                ).scalars()
            )
        if closed == wanted:
            return
        await asyncio.sleep(0.2)


def nudges(workspace_id: WorkspaceId, conversations: list[ConversationId]) -> list[Message]:
    return [
        Message(
            body=ConversationNudge(conversation_id=c, reason="opened").model_dump_json().encode(),
            exchange=ROUTE_EXCHANGE,
            routing_key=route_queue(str(workspace_id)),
        )
        for c in conversations
    ]


async def assignment_problems(floor: Floor, capacity: int) -> list[str]:
    """From the ``assignment`` rows: no conversation held twice at once, no agent above capacity."""
    async with floor.database.session() as session:
        rows = (await session.execute(sa.select(AssignmentRow))).scalars().all()
    problems: list[str] = []
    by_conversation: dict[uuid.UUID, list[AssignmentRow]] = defaultdict(list)
    events: dict[uuid.UUID, list[tuple[datetime, int]]] = defaultdict(list)
    for row in rows:
        by_conversation[row.conversation_id].append(row)
        if row.ended_at is None:
            problems.append(f"assignment of {row.conversation_id} never ended")
            continue
        events[row.agent_id] += [(row.assigned_at, 1), (row.ended_at, -1)]
    for conversation, held in by_conversation.items():
        spans = sorted((r.assigned_at, r.ended_at or datetime.max.replace(tzinfo=UTC)) for r in held)
        for (_, end), (start, _) in pairwise(spans):
            if start < end:
                problems.append(f"conversation {conversation} assigned twice at once")
    for agent, changes in events.items():
        load = 0
        for _, change in sorted(changes, key=lambda e: (e[0], e[1])):  # ends before starts
            load += change
            if load > capacity:
                problems.append(f"agent {agent} held {load} > {capacity}")
                break
    return problems


async def dead_letters(settings: Settings, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue's dead-letter queue (a queue never declared has none)."""
    connection = await aio_pika.connect(settings.broker_url)
    depths: dict[str, int] = {}
    try:
        for name in queues:
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(f"{settings.broker_prefix}{name}.dlq", passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                continue
            depths[name] = declared.declaration_result.message_count or 0
            await channel.close()
        return {k: v for k, v in depths.items() if v}
    finally:
        await connection.close()
