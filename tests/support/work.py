"""A collections workspace for the work-API tests: a campaign applied from its manifest, tokens
per role, conversations written straight into the database, a movable clock, and a spy on the
workspace's routing queue that sees every router input without taking it from the router."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import ValidationError

from centralita.web.keys import RUNTIME
from core.ids import AgentId, new_id
from core.transport.protocol import Binding, Delivery, Queue, Topology
from core.transport.topology import ROUTE_EXCHANGE, route_queue
from router.service import ManualClock
from router.wire import decode_router_input
from storage.database import Database
from storage.tables import (
    AgentRow,
    ConversationRow,
    CustomerRow,
    MessageRow,
    OfferRow,
    QueueRow,
    RoutingDecisionRow,
)
from tests.support.campaigns import apply_text, issue_token

if TYPE_CHECKING:  # the e2e conftest builds its work scenes from this module
    from tests.e2e.conftest import Engine

__all__ = [
    "WORK_SECRETS",
    "WorkScene",
    "Workspace",
    "manifest",
    "next_input",
    "route_spy",
    "router_active",
    "seed_workspace_of",
]


# The environment variables the manifest's WhatsApp account names (the e2e fixture sets them).
WORK_SECRETS = {
    "WORK_WA_SECRET": "work-api-secret",
    "WORK_WA_TOKEN": "EAA-work-token",
    "WORK_WA_VERIFY": "work-verify",
}


def manifest(slug: str, phone_number_id: str) -> str:
    """A collections campaign: two queues, two agents and a supervisor, dispositions with follow-ups."""
    return f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: {slug}
campaign: {{name: cobranza-{slug}, display_name: Cobranza {slug}, timezone: America/Bogota}}
channels:
  whatsapp:
    - name: cobranzas
      phone_number_id: "{phone_number_id}"
      display_phone: "+57 601 555 0101"
      waba_id: "109284756300001"
      app_id: "702938475600001"
      app_secret_env: WORK_WA_SECRET
      access_token_env: WORK_WA_TOKEN
      verify_token_env: WORK_WA_VERIFY
      default_queue: mora
skills:
  - name: mora
  - name: negociacion
queues:
  - name: mora
    required_skills: {{mora: 6}}
    channels: [whatsapp]
    sla: {{answer_within_s: 60, target_pct: 80}}
    expansion:
      - {{after_s: 30, min_proficiency: 4}}
  - name: promesas
    required_skills: {{negociacion: 5}}
    priority: 7
    channels: [whatsapp]
    sla: {{answer_within_s: 120, target_pct: 85}}
agents:
  - {{email: ana@{slug}.example, name: Ana, skills: {{mora: 8, negociacion: 7}}, capacity: {{whatsapp: 3}}}}
  - {{email: beto@{slug}.example, name: Beto, skills: {{mora: 4}}, capacity: {{whatsapp: 2}}}}
  - email: carla@{slug}.example
    name: Carla
    role: supervisor
    skills: {{mora: 9}}
    capacity: {{whatsapp: 2}}
templates:
  - {{name: recordatorio_promesa, language: es_CO, purpose: promesa, category: utility, parameters: [nombre]}}
dispositions:
  - code: promesa_de_pago
    label: Promesa de pago
    requires: [date, amount]
    schedules_follow_up: {{on_field: date, queue: promesas, template: recordatorio_promesa}}
  - code: negociacion
    label: En negociación
    requires: [note]
    schedules_follow_up: {{after_days: 2, queue: promesas}}
  - code: pago_realizado
    label: Pago realizado
    requires: [amount]
"""


@dataclass
class Workspace:
    """One applied workspace: its ids and a token per person (``admin`` has no agent)."""

    slug: str
    id: uuid.UUID
    campaign_id: uuid.UUID
    queues: dict[str, uuid.UUID]
    agents: dict[str, uuid.UUID]
    tokens: dict[str, str]
    conversations: list[uuid.UUID] = field(default_factory=list)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def add_customer(self, db: Database, name: str = "Cliente") -> uuid.UUID:
        customer_id = new_id()
        async with db.transaction() as session:
            session.add(CustomerRow(id=customer_id, workspace_id=self.id, display_name=name))
        return customer_id

    async def add_conversation(
        self,
        db: Database,
        *,
        now: datetime,
        status: str = "assigned",
        queue: str | None = "mora",
        agent: str | None = "ana",
        customer_id: uuid.UUID | None = None,
        channel: str = "whatsapp",
        enqueued_ago_s: float = 120.0,
        assigned_ago_s: float | None = 60.0,
        last_customer_message_ago_s: float | None = 3600.0,
        closed: bool = False,
    ) -> uuid.UUID:
        """A conversation written as the pipeline and the router would have left it."""
        customer_id = customer_id or await self.add_customer(db)
        conversation_id = new_id()
        enqueued_at = now - timedelta(seconds=enqueued_ago_s)
        row = ConversationRow(
            id=conversation_id,
            workspace_id=self.id,
            campaign_id=self.campaign_id,
            customer_id=customer_id,
            queue_id=self.queues[queue] if queue else None,
            agent_id=self.agents[agent] if agent else None,
            status="closed" if closed else status,
            channel=channel,
            opened_at=enqueued_at,
            enqueued_at=enqueued_at,
            assigned_at=now - timedelta(seconds=assigned_ago_s) if assigned_ago_s is not None else None,
            closed_at=now if closed else None,
            last_customer_message_at=(
                now - timedelta(seconds=last_customer_message_ago_s)
                if last_customer_message_ago_s is not None
                else None
            ),
        )
        async with db.transaction() as session:
            session.add(row)
        self.conversations.append(conversation_id)
        return conversation_id

    async def add_message(
        self,
        db: Database,
        conversation_id: uuid.UUID,
        *,
        at: datetime,
        text: str,
        direction: str = "in",
        channel: str = "whatsapp",
    ) -> uuid.UUID:
        async with db.transaction() as session:
            conv = await session.get(ConversationRow, conversation_id)
            assert conv is not None
            message_id = new_id()
            session.add(
                MessageRow(
                    id=message_id,
                    workspace_id=self.id,
                    conversation_id=conversation_id,
                    customer_id=conv.customer_id,
                    direction=direction,
                    kind="message",
                    channel=channel,
                    external_id=f"ext-{message_id}",
                    text=text,
                    created_at=at,
                    stored_at=at,
                )
            )
        return message_id

    async def offer(
        self, db: Database, conversation_id: uuid.UUID, agent: str, *, now: datetime
    ) -> uuid.UUID:
        offer_id = new_id()
        async with db.transaction() as session:
            session.add(
                OfferRow(
                    id=offer_id,
                    workspace_id=self.id,
                    conversation_id=conversation_id,
                    agent_id=self.agents[agent],
                    status="offered",
                    created_at=now,
                    expires_at=now + timedelta(seconds=30),
                )
            )
        return offer_id

    async def decide(
        self,
        db: Database,
        conversation_id: uuid.UUID,
        *,
        at: datetime,
        outcome: str,
        explanation: dict[str, Any],
    ) -> None:
        async with db.transaction() as session:
            session.add(
                RoutingDecisionRow(
                    workspace_id=self.id,
                    conversation_id=conversation_id,
                    decided_at=at,
                    outcome=outcome,
                    explanation=explanation,
                )
            )


@dataclass
class WorkScene:
    """A running engine serving one applied workspace, its clock moved by hand; requests carry
    the token of ``who`` unless told otherwise."""

    engine: Engine
    clock: ManualClock
    ws: Workspace
    who: str = "ana"

    async def get(self, path: str, who: str | None = None, **params: Any) -> tuple[int, Any]:
        response = await self.engine.client.get(path, headers=self.ws.auth(who or self.who), params=params)
        return response.status, await response.json()

    async def send(self, method: str, path: str, body: Any, who: str | None = None) -> tuple[int, Any]:
        response = await self.engine.client.request(
            method, path, json=body, headers=self.ws.auth(who or self.who)
        )
        return response.status, await response.json()

    async def post(self, path: str, body: Any, who: str | None = None) -> tuple[int, Any]:
        return await self.send("POST", path, body, who)

    async def conversation(self, **kwargs: Any) -> uuid.UUID:
        return await self.ws.add_conversation(self.engine.database, now=self.clock(), **kwargs)


async def seed_workspace_of(db: Database, slug: str, phone_number_id: str) -> Workspace:
    """Apply the workspace's manifest and issue tokens for Ana, Beto (agents), Carla (supervisor)
    and an admin."""
    applied = await apply_text(db, manifest(slug, phone_number_id))
    async with db.session() as session:
        queues = {
            r.name: r.id
            for r in (
                await session.execute(
                    sa.select(QueueRow.id, QueueRow.name).where(QueueRow.workspace_id == applied.workspace_id)
                )
            ).all()
        }
        agents = {
            r.email.split("@")[0]: r.id
            for r in (
                await session.execute(
                    sa.select(AgentRow.id, AgentRow.email).where(
                        AgentRow.workspace_id == applied.workspace_id
                    )
                )
            ).all()
        }
    tokens = {
        "ana": await issue_token(db, slug, "agent", AgentId(agents["ana"])),
        "beto": await issue_token(db, slug, "agent", AgentId(agents["beto"])),
        "carla": await issue_token(db, slug, "supervisor", AgentId(agents["carla"])),
        "admin": await issue_token(db, slug, "admin"),
    }
    return Workspace(slug, applied.workspace_id, applied.campaign_id, queues, agents, tokens)


@asynccontextmanager
async def route_spy(engine: Engine, workspace_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[Any]]:
    """Every router input published to ``route.<workspace_id>`` from now on, decoded.

    A queue of its own bound with the same routing key gets a copy; the router's queue (and a
    live router consuming it) is untouched."""
    runtime = engine.client.server.app[RUNTIME]
    name = f"spy.route.{uuid.uuid4().hex}"
    await runtime.transport.declare(
        Topology(
            queues=(Queue(name, durable=False, exclusive=True, dead_letter=False, delivery_limit=None),),
            bindings=(Binding(name, ROUTE_EXCHANGE, route_queue(str(workspace_id))),),
        )
    )
    seen: asyncio.Queue[Any] = asyncio.Queue()

    async def collect(delivery: Delivery) -> None:
        try:
            seen.put_nowait(decode_router_input(delivery.body))
        except ValidationError:  # a kind of input this test does not know: kept as bytes
            seen.put_nowait(delivery.body)
        await delivery.ack()

    consumer = await runtime.transport.consume(name, collect)
    try:
        yield seen
    finally:
        await consumer.cancel()


async def next_input(seen: asyncio.Queue[Any], kind: type, within_s: float = 10.0) -> Any:
    """The next router input of type ``kind`` (others published meanwhile are skipped)."""
    async with asyncio.timeout(within_s):
        while True:
            item = await seen.get()
            if isinstance(item, kind):
                return item


async def router_active(engine: Engine, workspace_id: uuid.UUID, within_s: float = 15.0) -> None:
    """Wait until this server's router of the workspace is active (it loaded the database).

    Rows a test writes afterwards are not touched by the router's loading (which withdraws the
    offers it finds in flight); its next resync is ``router_resync_s`` away."""
    supervisor = engine.client.server.app[RUNTIME].routers
    assert supervisor is not None, "the server runs no router"
    service = supervisor.services.get(workspace_id)
    if service is None:
        await supervisor.ensure(workspace_id)
        service = supervisor.services[workspace_id]
    if service.active:
        return
    activated = asyncio.Event()
    service.observers.append(lambda report: activated.set() if report.activated else None)
    if not service.active:
        async with asyncio.timeout(within_s):
            await activated.wait()
