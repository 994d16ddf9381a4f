"""A routing scene for end-to-end tests: the real app on loopback with a hand-moved clock, a
campaign applied from YAML, agents on real WebSockets, conversations seeded in the database and
nudged through ``route.<ws>`` as the pipeline does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from broker.factory import open_transport
from centralita.web.app import create_app
from centralita.web.keys import RUNTIME
from core.ids import AgentId, ConversationId, QueueId, WorkspaceId, new_id
from core.settings import Settings
from core.states import ConversationStatus
from core.transport.protocol import Delivery, Message
from core.transport.topology import (
    ROUTE_EXCHANGE,
    agent_topology,
    app_topology,
    events_subscription,
    route_queue,
    workspace_topology,
)
from router.service import BatchReport, ManualClock
from router.wire import ConversationClosedInput, ConversationNudge
from storage.database import Database
from storage.tables import AgentRow, ChannelAccountRow, ConversationRow, CustomerRow, MessageRow, QueueRow
from tests.support.campaigns import apply_text, issue_token, signed, whatsapp_text
from tests.support.schema import migrated
from tests.support.ws_frames import unmodelled

__all__ = ["AgentSocket", "RoutingScene", "delete_broker_state", "start_scene"]


class AgentSocket:
    """An agent's browser: a WebSocket to ``/ws/agent`` and the frames it received (each checked
    against ``ServerFrame``: one the models do not describe fails ``next``, ``received`` and the
    scene's ``stop``)."""

    def __init__(self, ws: ClientWebSocketResponse, agent_id: AgentId) -> None:
        self.ws = ws
        self.agent_id = agent_id
        self.frames: list[dict[str, Any]] = []
        self.unmodelled: list[str] = []
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == WSMsgType.TEXT:
                if (problem := unmodelled(message.data)) is not None:
                    self.unmodelled.append(problem)
                async with self._arrived:
                    self.frames.append(json.loads(message.data))
                    self._arrived.notify_all()

    async def next(self, kind: str, within_s: float = 10.0, **match: Any) -> dict[str, Any]:
        """The first frame of ``kind`` (matching ``match``) not taken yet; waits for it."""

        def find() -> dict[str, Any] | None:
            for frame in self.frames:
                if frame.get("type") == kind and not frame.get("_taken"):
                    if all(str(frame.get(k)) == str(v) for k, v in match.items()):
                        return frame
            return None

        async with asyncio.timeout(within_s), self._arrived:
            await self._arrived.wait_for(lambda: find() is not None)
            frame = find()
            assert frame is not None
            frame["_taken"] = True
        self.assert_modelled()
        return frame

    def received(self, kind: str) -> list[dict[str, Any]]:
        self.assert_modelled()
        return [f for f in self.frames if f.get("type") == kind]

    def assert_modelled(self) -> None:
        assert not self.unmodelled, f"frames the models do not describe: {self.unmodelled}"

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_json(frame)

    async def answer(self, offer: dict[str, Any], accepted: bool = True) -> None:
        await self.send({"type": "offer_answer", "offer_id": offer["offer_id"], "accepted": accepted})

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


@dataclass
class RoutingScene:
    client: TestClient
    settings: Settings
    clock: ManualClock
    workspace: str
    workspace_id: WorkspaceId
    agents: dict[str, AgentId]
    queues: dict[str, QueueId]
    account_id: uuid.UUID
    campaign_id: uuid.UUID
    reports: list[BatchReport] = field(default_factory=list)
    sockets: list[AgentSocket] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def database(self) -> Database:
        return self.client.server.app[RUNTIME].database

    def _observe(self, report: BatchReport) -> None:
        self.reports.append(report)

        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async def processed(self, done: Callable[[BatchReport], bool], within_s: float = 10.0) -> BatchReport:
        """Wait until the router committed a round for which ``done(report)``."""

        def find() -> BatchReport | None:
            return next((r for r in self.reports if done(r)), None)

        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    async def input_handled(self, predicate: Callable[[Any], bool], within_s: float = 10.0) -> BatchReport:
        return await self.processed(lambda r: any(predicate(i) for i in r.inputs), within_s)

    async def connect(self, email: str, presence: str | None = "available") -> AgentSocket:
        """The agent opens the console (and, by default, becomes available)."""
        agent_id = self.agents[email]
        token = await issue_token(self.database, self.workspace, "agent", agent_id)
        ws = await self.client.ws_connect("/ws/agent", params={"access_token": token})
        socket = AgentSocket(ws, agent_id)
        self.sockets.append(socket)
        if presence is not None:
            await self.presence(socket, presence)
        return socket

    async def presence(self, socket: AgentSocket, presence: str) -> None:
        await socket.send({"type": "presence", "presence": presence})
        await self.input_handled(
            lambda i: (
                getattr(i, "type", "") == "presence"
                and i.agent_id == socket.agent_id
                and i.presence == presence
            )
        )

    @contextlib.asynccontextmanager
    async def events(self, routing_key: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """The JSON events published on the ``events`` exchange under ``routing_key`` while open."""
        transport = self.client.server.app[RUNTIME].transport
        name = f"watch-{routing_key.replace('.', '-')[:40]}-{new_id().hex[:8]}"
        await transport.declare(events_subscription(name, [routing_key]))
        got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def on_event(delivery: Delivery) -> None:
            got.put_nowait(json.loads(delivery.body))
            await delivery.ack()

        consumer = await transport.consume(name, on_event)
        try:
            yield got
        finally:
            await consumer.cancel()

    async def publish(self, *messages: Any) -> None:
        transport = self.client.server.app[RUNTIME].transport
        await transport.publish(
            [
                Message(
                    body=m.model_dump_json().encode(),
                    exchange=ROUTE_EXCHANGE,
                    routing_key=route_queue(str(self.workspace_id)),
                )
                for m in messages
            ]
        )

    async def conversation(
        self,
        *,
        customer_id: uuid.UUID | None = None,
        enqueued_at: datetime | None = None,
        last_customer_message_at: datetime | None = None,
        queue: str | None = None,
        status: str = "waiting",
        agent: str | None = None,
        closed_at: datetime | None = None,
        nudge: bool = True,
    ) -> ConversationId:
        """A customer's conversation as the pipeline stores it (then the router is nudged)."""
        now = self.clock()
        conversation_id = ConversationId(new_id())
        async with self.database.transaction() as session:
            if customer_id is None:
                customer_id = new_id()
                session.add(CustomerRow(id=customer_id, workspace_id=self.workspace_id))
                await session.flush()
            session.add(
                ConversationRow(
                    id=conversation_id,
                    workspace_id=self.workspace_id,
                    campaign_id=self.campaign_id,
                    customer_id=customer_id,
                    queue_id=self.queues[queue] if queue else None,
                    agent_id=self.agents[agent] if agent else None,
                    status=status,
                    channel="whatsapp",
                    channel_account_id=self.account_id,
                    opened_at=enqueued_at or now,
                    enqueued_at=enqueued_at or now,
                    last_customer_message_at=last_customer_message_at or enqueued_at or now,
                    closed_at=closed_at,
                )
            )
        if nudge:
            await self.publish(ConversationNudge(conversation_id=conversation_id, reason="opened"))
        return conversation_id

    async def close(self, conversation_id: ConversationId) -> None:
        await self.publish(ConversationClosedInput(conversation_id=conversation_id))
        await self.input_handled(
            lambda i: isinstance(i, ConversationClosedInput) and i.conversation_id == conversation_id
        )

    async def customer_writes(
        self,
        secret: str,
        phone_number_id: str,
        wa_id: str,
        text: str,
        *,
        name: str = "Ana Pérez",
        routed: bool | None = None,
    ) -> ConversationId:
        """A signed WhatsApp webhook, stamped with the scene's clock; returns the conversation the
        pipeline opened (or continued) once the router handled its nudge (``customer_sends``)."""
        return await self.customer_sends(
            secret, phone_number_id, wa_id, {"type": "text", "text": {"body": text}}, name=name, routed=routed
        )

    async def customer_sends(
        self,
        secret: str,
        phone_number_id: str,
        wa_id: str,
        content: dict[str, Any],
        *,
        name: str = "Ana Pérez",
        routed: bool | None = None,
    ) -> ConversationId:
        """As ``customer_writes``, for any message ``content`` (``{"type": "image", "image": {…}}``).
        ``routed``: whether the router hears of the message (``None``: unless its conversation is
        assigned — its agent hears of it directly); returns once the router handled the nudge, or
        once the pipeline stored a message the router does not hear of."""
        at = self.clock()
        body = whatsapp_text(phone_number_id, wa_id, f"wamid.{new_id().hex}", "", name=name)
        data = json.loads(body)
        message = data["entry"][0]["changes"][0]["value"]["messages"][0]
        message.pop("text", None)
        message.update(content, timestamp=str(int(at.timestamp())))
        body = json.dumps(data).encode()
        seen = len(self.reports)
        response = await self.client.post("/webhooks/whatsapp", data=body, headers=signed(body, secret))
        assert response.status == 200, await response.text()
        if not routed:  # None: the pipeline tells the router unless the conversation is assigned
            stored = await self._stored(message["id"])
            if routed is not None or (await self.row(stored)).status == ConversationStatus.ASSIGNED:
                return stored
        report = await self.processed(
            lambda r: r in self.reports[seen:] and any(isinstance(i, ConversationNudge) for i in r.inputs)
        )
        nudge = next(i for i in report.inputs if isinstance(i, ConversationNudge))
        return ConversationId(nudge.conversation_id)

    async def _stored(self, external_id: str, within_s: float = 10.0) -> ConversationId:
        """The conversation of the inbound message ``external_id`` once the pipeline stored it."""
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            async with self.database.session() as session:
                found = (
                    await session.execute(
                        sa.select(MessageRow.conversation_id).where(MessageRow.external_id == external_id)
                    )
                ).scalar()
            if found is not None:
                return ConversationId(found)
            assert asyncio.get_running_loop().time() < deadline, f"message {external_id} never stored"
            await asyncio.sleep(0.05)

    async def row(self, conversation_id: ConversationId) -> ConversationRow:
        async with self.database.session() as session:
            row = await session.get(ConversationRow, conversation_id, populate_existing=True)
            assert row is not None
            return row

    async def advance(self, seconds: float) -> None:
        """Move the clock; the router's timer fires what became due."""
        self.clock.advance(seconds)

    async def stop(self) -> None:
        for socket in self.sockets:
            await socket.close()
        await self.client.close()
        await delete_broker_state(self.settings, [self.workspace_id], list(self.agents.values()))
        for socket in self.sockets:
            socket.assert_modelled()


async def delete_broker_state(
    settings: Settings, workspaces: list[WorkspaceId], agents: list[AgentId]
) -> None:
    """Delete what the app declared on RabbitMQ under the test's prefix (quorum queues are not free)."""
    if settings.uses_memory_broker:
        return
    transport = await open_transport(settings.model_copy(update={"broker_ephemeral": False}))
    try:
        topology = app_topology(settings.ingest_partitions)
        for workspace_id in workspaces:
            topology = topology + workspace_topology(str(workspace_id))
        for agent_id in agents:
            topology = topology + agent_topology(str(agent_id))
        await transport.delete_topology(topology)  # type: ignore[attr-defined]
    finally:
        await transport.close()


async def start_scene(
    settings: Settings, manifest: str, clock: ManualClock, *, workspace: str, **overrides: Any
) -> RoutingScene:
    """Migrate, apply ``manifest``, start the app with ``clock``; wait for the router to be active."""
    s = settings.model_copy(update=overrides) if overrides else settings
    await migrated(s.database_url)
    db = Database(s.database_url)
    try:
        await apply_text(db, manifest)
        async with db.session() as session:
            agents = (await session.execute(sa.select(AgentRow.id, AgentRow.email))).all()
            queues = (
                await session.execute(sa.select(QueueRow.id, QueueRow.name, QueueRow.workspace_id))
            ).all()
            account = (await session.execute(sa.select(ChannelAccountRow))).scalars().first()
            assert account is not None and account.campaign_id is not None
    finally:
        await db.dispose()
    client = TestClient(TestServer(create_app(s, clock=clock)))
    await client.start_server()
    workspace_id = WorkspaceId(queues[0].workspace_id)
    scene = RoutingScene(
        client=client,
        settings=s,
        clock=clock,
        workspace=workspace,
        workspace_id=workspace_id,
        agents={r.email: AgentId(r.id) for r in agents},
        queues={r.name: QueueId(r.id) for r in queues},
        account_id=account.id,
        campaign_id=account.campaign_id,
    )
    supervisor = client.server.app[RUNTIME].routers
    assert supervisor is not None
    supervisor.observers.append(scene._observe)
    service = supervisor.services[workspace_id]
    if not service.active:
        await scene.processed(lambda r: r.activated)
    return scene
