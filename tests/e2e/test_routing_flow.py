"""A customer's message reaches the best agent through the live router and the agent's WebSocket:
signed WhatsApp webhook → pipeline → ``route.<ws>`` → router → ``agent.<id>`` → ``/ws/agent`` →
accept → reply through the loopback Graph peer → close with a disposition.

Runs on the embedded backend and on PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from channels.meta.peer import GraphPeer
from channels.meta.signature import sign_body
from channels.whatsapp.testing import webhook_body
from core.settings import Settings
from core.transport.topology import queue_stats_key
from router.service import ManualClock
from router.wire import AgentConnection, ConversationClosedInput, QueueStatsEvent
from storage.outbound import OutboundStore
from storage.tables import AgentRow, AssignmentRow, MessageRow, OfferRow, RoutingDecisionRow
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352266001"
SECRET = "flow-app-secret"
WA_TOKEN = "EAA-routing-flow"
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: flujo
campaign: {{name: admisiones, display_name: Admisiones, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 2031"
      waba_id: "300000000000001"
      app_id: "400000000000001"
      app_secret_env: FLOW_WA_SECRET
      access_token_env: FLOW_WA_TOKEN
      verify_token_env: FLOW_WA_VERIFY
      default_queue: informes
skills:
  - name: maestrias
queues:
  - name: informes
    required_skills: {{maestrias: 5}}
    channels: [whatsapp]
    sla: {{answer_within_s: 60, target_pct: 80}}
agents:
  - {{email: ana@flujo.example, name: Ana, skills: {{maestrias: 9}}, capacity: {{whatsapp: 3}}}}
  - {{email: beto@flujo.example, name: Beto, skills: {{maestrias: 6}}, capacity: {{whatsapp: 3}}}}
dispositions:
  - {{code: interesado, label: Interesado}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOW_WA_SECRET", SECRET)
    monkeypatch.setenv("FLOW_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("FLOW_WA_VERIFY", "flow-verify")


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    return backend_settings


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


@pytest.fixture
async def scene(settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene) -> RoutingScene:
    return await start_routing_scene(
        settings,
        MANIFEST,
        ManualClock(MONDAY_10),
        workspace="flujo",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        router_stats_interval_s=0.2,
        config_poll_s=3600.0,
    )


async def test_a_whatsapp_message_reaches_the_best_agent_who_accepts_replies_and_closes(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    ana = await scene.connect("ana@flujo.example")
    beto = await scene.connect("beto@flujo.example")

    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512349001", "Quiero informes")
    offer = await ana.next("offer", conversation_id=conversation)
    assert offer["queue_id"] == str(scene.queues["informes"]) and offer["channel"] == "whatsapp"
    assert beto.received("offer") == []
    await ana.answer(offer)
    assigned = await ana.next("assigned", conversation_id=conversation)
    assert assigned["forced"] is False
    row = await scene.row(conversation)
    assert (row.status, row.agent_id, row.queue_id) == ("assigned", ana.agent_id, scene.queues["informes"])

    token = await issue_token(scene.database, "flujo", "agent", ana.agent_id)
    auth = {"Authorization": f"Bearer {token}"}
    reply = await scene.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"text": "¡Hola! Con gusto te informo."},
        headers=auth,
    )
    assert reply.status in (200, 201, 202), await reply.text()
    sent = await graph.wait_for(1, within_s=10)
    assert sent[0]["json"]["text"]["body"] == "¡Hola! Con gusto te informo."

    closed = await scene.client.post(
        f"/api/conversations/{conversation}/close", json={"disposition": {"code": "interesado"}}, headers=auth
    )
    assert closed.status == 200, await closed.text()
    await scene.input_handled(
        lambda i: isinstance(i, ConversationClosedInput) and i.conversation_id == conversation
    )
    async with scene.database.session() as session:
        assignment = (
            await session.execute(
                sa.select(AssignmentRow).where(AssignmentRow.conversation_id == conversation)
            )
        ).scalar_one()
        offers = (await session.execute(sa.select(OfferRow.status))).scalars().all()
        decision = (
            await session.execute(
                sa.select(RoutingDecisionRow).where(RoutingDecisionRow.conversation_id == conversation)
            )
        ).scalar_one()
    assert assignment.agent_id == ana.agent_id and assignment.ended_at is not None
    assert offers == ["accepted"]
    assert decision.outcome == "offered"
    assert decision.explanation["winner"] == str(ana.agent_id)
    assert [c["agent_id"] for c in decision.explanation["candidates"]] == [
        str(ana.agent_id),
        str(beto.agent_id),
    ]
    assert (await scene.row(conversation)).status == "closed"


async def test_the_desk_hears_the_customers_next_message_and_the_ticks_of_its_reply_without_asking(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    ana = await scene.connect("ana@flujo.example")
    conversation = await scene.customer_writes(
        SECRET,
        PHONE_NUMBER_ID,
        "5215512349002",
        "Hola, quiero informes de la maestría en datos",
        name="Marta Gómez",
    )
    offer = await ana.next("offer", conversation_id=conversation)
    assert offer["preview"]["customer_name"] == "Marta Gómez"
    assert offer["preview"]["text"] == "Hola, quiero informes de la maestría en datos"
    assert offer["preview"]["message_kind"] == "message" and offer["preview"]["queue"] == "informes"
    assert offer["preview"]["attachments"] == []
    await ana.answer(offer)
    await ana.next("assigned", conversation_id=conversation)

    await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512349002", "¿Tienen modalidad en línea?")
    pushed = await ana.next("message", conversation_id=conversation)
    assert (pushed["direction"], pushed["kind"], pushed["channel"]) == ("in", "message", "whatsapp")
    assert pushed["attachments"] == []
    assert pushed["text"] == "¿Tienen modalidad en línea?"
    token = await issue_token(scene.database, "flujo", "agent", ana.agent_id)
    auth = {"Authorization": f"Bearer {token}"}
    shown = await (await scene.client.get(f"/api/conversations/{conversation}", headers=auth)).json()
    assert shown["timeline"][-1]["id"] == pushed["message_id"]

    reply = await scene.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"text": "Sí, en línea y presencial."},
        headers=auth,
    )
    assert reply.status == 202, await reply.text()
    message_id = (await reply.json())["id"]
    (sent,) = await graph.wait_for(1, within_s=10)
    for state in ("delivered", "read"):
        body = webhook_body(PHONE_NUMBER_ID, statuses=[GraphPeer.whatsapp_status(sent, state)])
        headers = {"X-Hub-Signature-256": sign_body(body, SECRET), "Content-Type": "application/json"}
        assert (await scene.client.post("/webhooks/whatsapp", data=body, headers=headers)).status == 200
        tick = await ana.next("message_status", message_id=message_id, delivery_state=state)
        assert tick["conversation_id"] == str(conversation) and tick["errors"] == []
    assert ana.received("message") == [pushed]  # our own reply is not echoed back as news
    ana.assert_modelled()


async def test_a_tick_that_outruns_the_record_of_its_send_still_reaches_the_desk(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    ana = await scene.connect("ana@flujo.example")
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512349003", "Hola")
    await ana.answer(await ana.next("offer", conversation_id=conversation))
    await ana.next("assigned", conversation_id=conversation)
    token = await issue_token(scene.database, "flujo", "agent", ana.agent_id)
    graph.hold_next()  # Meta has the message; our worker has not heard back yet
    reply = await scene.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"text": "Enseguida"},
        headers={"Authorization": f"Bearer {token}"},
    )
    message_id = (await reply.json())["id"]
    (sent,) = await graph.wait_for(1, within_s=10)
    body = webhook_body(PHONE_NUMBER_ID, statuses=[GraphPeer.whatsapp_status(sent, "delivered")])
    headers = {"X-Hub-Signature-256": sign_body(body, SECRET), "Content-Type": "application/json"}
    assert (await scene.client.post("/webhooks/whatsapp", data=body, headers=headers)).status == 200
    tick = await ana.next("message_status", message_id=message_id)
    assert tick["delivery_state"] == "delivered"
    graph.release()


async def test_the_socket_needs_an_agent_token(scene: RoutingScene) -> None:
    missing = await scene.client.get("/ws/agent")
    assert missing.status == 401
    supervisor = await issue_token(scene.database, "flujo", "supervisor")
    refused = await scene.client.get("/ws/agent", params={"access_token": supervisor})
    assert refused.status == 403


async def test_a_malformed_frame_is_answered_with_an_error_and_the_socket_stays_open(
    scene: RoutingScene,
) -> None:
    ana = await scene.connect("ana@flujo.example", presence=None)
    await ana.send({"type": "presence", "presence": "dancing"})
    error = await ana.next("error")
    assert error["error"]["code"] == "invalid_input" and error["error"]["field"] == "presence"
    await ana.ws.send_str("not json")
    assert (await ana.next("error"))["error"]["field"] == "frame"
    await ana.send({"type": "offer_answer", "offer_id": "x", "accepted": "yes"})
    assert (await ana.next("error"))["error"]["field"] == "accepted"
    await ana.send({"type": "ping"})
    await ana.next("pong")
    await scene.presence(ana, "available")  # still works
    async with scene.database.session() as session:
        agent = await session.get(AgentRow, ana.agent_id, populate_existing=True)
        assert agent is not None and (agent.presence, agent.connected) == ("available", True)


async def test_closing_the_socket_tells_the_router(scene: RoutingScene) -> None:
    ana = await scene.connect("ana@flujo.example")
    await ana.close()
    await scene.input_handled(lambda i: isinstance(i, AgentConnection) and not i.connected)
    async with scene.database.session() as session:
        agent = await session.get(AgentRow, ana.agent_id, populate_existing=True)
        assert agent is not None and agent.connected is False


async def test_queue_statistics_are_published_on_the_events_exchange(scene: RoutingScene) -> None:
    async with scene.events(queue_stats_key(str(scene.workspace_id))) as got:
        await scene.connect("ana@flujo.example")
        await scene.conversation()
        async with asyncio.timeout(10):
            while True:
                event = await got.get()
                queues = event["queues"]
                assert isinstance(queues, list)
                if queues and queues[0]["agents_busy"] == 1:
                    break
        assert event["workspace_id"] == str(scene.workspace_id)
        assert QueueStatsEvent.model_validate(event).model_dump(mode="json") == event  # its model, exactly
        assert queues[0]["name"] == "informes" and queues[0]["offered"] == 1


# PostgreSQL only: on SQLite's single writer the worker cannot record while the pipeline writes,
# so this interleaving cannot happen there.
@pytest.mark.parametrize(
    "backend", [pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.rabbitmq])]
)
async def test_a_tick_that_arrives_while_the_send_is_being_recorded_still_reaches_the_desk(
    scene: RoutingScene, graph: GraphPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline looks the status's provider id up (not recorded yet), then the outbound
    worker records the send, then the pipeline tries the reconciliation (the row is no longer
    ``sending``): the tick is applied all the same.  The interleaving is forced: the
    reconciliation waits until the worker has recorded the send."""
    ana = await scene.connect("ana@flujo.example")
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512349004", "Hola")
    await ana.answer(await ana.next("offer", conversation_id=conversation))
    await ana.next("assigned", conversation_id=conversation)
    token = await issue_token(scene.database, "flujo", "agent", ana.agent_id)

    original = OutboundStore.reconcile

    async def after_the_record(self: OutboundStore, *args: Any, **kwargs: Any) -> bool:
        graph.release()  # Meta answers the worker, which records the send
        for _ in range(200):
            async with scene.database.session() as session:
                state = (
                    await session.execute(
                        sa.select(MessageRow.delivery_state).where(MessageRow.id == message_id)
                    )
                ).scalar_one()
            if state == "sent":
                break
            await asyncio.sleep(0.02)
        assert state == "sent"
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(OutboundStore, "reconcile", after_the_record)
    graph.hold_next()
    reply = await scene.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"text": "Enseguida"},
        headers={"Authorization": f"Bearer {token}"},
    )
    message_id = (await reply.json())["id"]
    (sent,) = await graph.wait_for(1, within_s=10)
    body = webhook_body(PHONE_NUMBER_ID, statuses=[GraphPeer.whatsapp_status(sent, "delivered")])
    headers = {"X-Hub-Signature-256": sign_body(body, SECRET), "Content-Type": "application/json"}
    assert (await scene.client.post("/webhooks/whatsapp", data=body, headers=headers)).status == 200
    tick = await ana.next("message_status", message_id=message_id)
    assert tick["delivery_state"] == "delivered"
