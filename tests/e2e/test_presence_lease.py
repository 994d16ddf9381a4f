"""Presence with a lease: a gateway renews the presence of the agents whose sockets it holds; an
agent whose gateway died (its sockets never closed, nobody told the router) goes offline once
the lease runs out, and its offer goes to another agent with the conversation's original age.
Assigned conversations stay with the agent.  Runs on the embedded backend and on PostgreSQL +
RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from centralita.gateway import AgentGateway
from centralita.web.keys import RUNTIME
from core.ids import AgentId
from core.settings import Settings
from router.policy import Presence, to_epoch
from router.service import ManualClock, RouterService
from storage.tables import AgentRow, OfferRow
from storage.tokens import Principal
from tests.e2e.conftest import StartRoutingScene
from tests.support.routing import RoutingScene

LEASE_S = 30.0
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

MANIFEST = """\
apiVersion: centralita/v1
kind: Campaign
workspace: turnos
campaign: {name: soporte, display_name: Soporte, timezone: America/Mexico_City}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "106540352266077"
      display_phone: "+52 55 4170 2077"
      waba_id: "300000000000077"
      app_id: "400000000000077"
      app_secret_env: LEASE_WA_SECRET
      access_token_env: LEASE_WA_TOKEN
      verify_token_env: LEASE_WA_VERIFY
      default_queue: general
skills:
  - name: soporte
queues:
  - name: general
    required_skills: {soporte: 1}
    channels: [whatsapp]
agents:
  - {email: ana@turnos.example, name: Ana, skills: {soporte: 9}, capacity: {whatsapp: 3}}
  - {email: beto@turnos.example, name: Beto, skills: {soporte: 6}, capacity: {whatsapp: 3}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEASE_WA_SECRET", "LEASE_WA_TOKEN", "LEASE_WA_VERIFY"):
        monkeypatch.setenv(name, "x")


@pytest.fixture
async def scene(backend_settings: Settings, start_routing_scene: StartRoutingScene) -> RoutingScene:
    return await start_routing_scene(
        backend_settings,
        MANIFEST,
        ManualClock(MONDAY_10),
        workspace="turnos",
        graph_base_url="http://127.0.0.1:9",
        router_ramp_period_s=0.0,
        offer_timeout_s=600.0,
        router_disconnect_grace_s=60.0,
        presence_lease_s=LEASE_S,
        presence_renew_s=0.2,
        config_poll_s=3600.0,
    )


def _router(scene: RoutingScene) -> RouterService:
    supervisor = scene.client.server.app[RUNTIME].routers
    assert supervisor is not None
    return supervisor.services[scene.workspace_id]


async def _lease_checked(scene: RoutingScene) -> None:
    """Until the router checked the leases at the scene's current time."""
    router, at = _router(scene), to_epoch(scene.clock())
    await scene.processed(lambda _: (router.leases_checked_at or 0.0) >= at)


class _DyingGateway:
    """A second server's gateway holding Ana's socket: a send callable that records its frames."""

    def __init__(self, scene: RoutingScene, agent_id: AgentId) -> None:
        self.gateway = AgentGateway(scene.client.server.app[RUNTIME])
        self.principal = Principal(scene.workspace_id, "agent", agent_id, "test")
        self.frames: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()

    async def send(self, text: str) -> None:
        async with self.arrived:
            self.frames.append(json.loads(text))
            self.arrived.notify_all()

    async def next_offer(self, conversation_id: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next(
                (f for f in self.frames if f["type"] == "offer" and f["conversation_id"] == conversation_id),
                None,
            )

        async with asyncio.timeout(10), self.arrived:
            await self.arrived.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found


async def test_an_agent_whose_gateway_died_goes_offline_after_the_lease_and_the_offer_moves_with_its_age(
    scene: RoutingScene,
) -> None:
    ana_id = scene.agents["ana@turnos.example"]
    dying = _DyingGateway(scene, ana_id)
    await dying.gateway.prepare(dying.principal)
    ana = await dying.gateway.open(dying.principal, dying.send)
    assert await ana.handle_text(json.dumps({"type": "presence", "presence": "available"})) is None
    await scene.input_handled(lambda i: getattr(i, "type", "") == "presence" and i.agent_id == ana_id)
    enqueued = scene.clock()
    conversation = await scene.conversation(queue="general")
    offer = await dying.next_offer(str(conversation))
    beto = await scene.connect("beto@turnos.example")

    # The server dies: no renewal, no more pushes consumed, and nobody tells the router.
    assert dying.gateway.renewal is not None and ana.consumer is not None
    dying.gateway.renewal.cancel()
    await ana.consumer.cancel()
    await scene.advance(LEASE_S - 5)
    await _lease_checked(scene)
    snapshot = _router(scene).state.agent_snapshot(ana_id)  # type: ignore[union-attr]
    assert snapshot is not None and snapshot.presence is Presence.AVAILABLE and snapshot.connected
    assert beto.received("offer") == []

    await scene.advance(10)
    moved = await beto.next("offer", conversation_id=conversation)
    assert moved["offer_id"] != offer["offer_id"]
    state = _router(scene).state
    assert state is not None
    conv = state.conversation_snapshot(conversation)
    assert conv is not None and conv.enqueued_at == to_epoch(enqueued)  # its original age
    row = await scene.row(conversation)
    assert (row.enqueued_at or MONDAY_10).replace(tzinfo=UTC) == enqueued
    async with scene.database.session() as session:
        old = (
            await session.execute(sa.select(OfferRow).where(OfferRow.id == uuid.UUID(offer["offer_id"])))
        ).scalar_one()
        agent = (await session.execute(sa.select(AgentRow).where(AgentRow.id == ana_id))).scalar_one()
    assert (old.status, old.reason) == ("withdrawn", "agent_offline")
    assert (agent.presence, agent.connected) == ("offline", False)


async def test_a_living_gateway_keeps_its_agent_online_past_several_lease_periods(
    scene: RoutingScene,
) -> None:
    ana = await scene.connect("ana@turnos.example")
    conversation = await scene.conversation(queue="general")
    offer = await ana.next("offer", conversation_id=conversation)
    for _ in range(5):  # 100 s of the clock: more than three lease periods
        await scene.advance(LEASE_S * 2 / 3)
        await _lease_checked(scene)
        snapshot = _router(scene).state.agent_snapshot(ana.agent_id)  # type: ignore[union-attr]
        assert snapshot is not None and snapshot.presence is Presence.AVAILABLE and snapshot.connected
    assert ana.received("offer_withdrawn") == []
    row = await scene.row(conversation)
    assert (row.status, str(row.offer_id)) == ("offered", offer["offer_id"])
