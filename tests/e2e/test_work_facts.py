"""Every step of a conversation's life is recorded once, where it happens, with its time and
actor: the audit trail (``audit_log``) says who did what and when, and the conversation's report
row (``conversation_report``) holds what the reports count — both written in the transaction of
the change they report, through the real path (signed webhook → pipeline → router → agents on
WebSockets → the agent API → replies out to the loopback Graph peer).

Runs on the embedded backend and on PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from centralita.web.keys import PIPELINE
from channels.meta.peer import GraphPeer
from core.facts import CloseReason, WorkAction
from core.ids import ConversationId, new_id
from core.settings import Settings
from router.service import ManualClock
from router.wire import ConversationClosedInput, TransferInput
from storage.facts import AUDIT, REPORT, TRAFFIC
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token, signed, whatsapp_text
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352266016"
SECRET = "facts-app-secret"
WA_TOKEN = "EAA-facts"
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
WRAP_UP_S = 20.0

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: hechos
campaign: {{name: cobranza, display_name: Cobranza, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 2099"
      waba_id: "300000000000016"
      app_id: "400000000000016"
      app_secret_env: FACTS_WA_SECRET
      access_token_env: FACTS_WA_TOKEN
      verify_token_env: FACTS_WA_VERIFY
      default_queue: cobranza
skills:
  - name: cobranza
queues:
  - name: cobranza
    required_skills: {{cobranza: 5}}
    channels: [whatsapp]
    sla: {{answer_within_s: 60, target_pct: 80}}
agents:
  - {{email: ana@hechos.example, name: Ana, skills: {{cobranza: 9}}, capacity: {{whatsapp: 3}}}}
  - {{email: beto@hechos.example, name: Beto, skills: {{cobranza: 6}}, capacity: {{whatsapp: 3}}}}
dispositions:
  - {{code: promesa, label: Promesa de pago, requires: [amount, date]}}
  - {{code: sin_interes, label: Sin interés}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTS_WA_SECRET", SECRET)
    monkeypatch.setenv("FACTS_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("FACTS_WA_VERIFY", "facts-verify")


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
        workspace="hechos",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        router_wrap_up_s=WRAP_UP_S,
        config_poll_s=3600.0,
    )


async def _trail(scene: RoutingScene, conversation: ConversationId) -> list[dict[str, Any]]:
    async with scene.database.session() as session:
        rows = (
            (await session.execute(sa.select(AUDIT).where(AUDIT.c.conversation_id == conversation)))
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def _by_second(trail: list[dict[str, Any]]) -> list[tuple[float, Counter[tuple[str, str]]]]:
    """The trail as (seconds since MONDAY_10, the (action, actor) pairs of that moment), in time
    order: the steps of one moment come in one transaction, in no order of their own."""
    moments: dict[float, Counter[tuple[str, str]]] = {}
    for row in trail:
        second = (row["at"].astimezone(UTC) - MONDAY_10).total_seconds()
        moments.setdefault(second, Counter())[(row["action"], row["actor"])] += 1
    return sorted(moments.items())


async def _report(scene: RoutingScene, conversation: ConversationId) -> dict[str, Any]:
    async with scene.database.session() as session:
        row = (
            (await session.execute(sa.select(REPORT).where(REPORT.c.conversation_id == conversation)))
            .mappings()
            .one()
        )
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}


async def _auth(scene: RoutingScene, email: str) -> dict[str, str]:
    token = await issue_token(scene.database, "hechos", "agent", scene.agents[email])
    return {"Authorization": f"Bearer {token}"}


async def _accept(scene: RoutingScene, socket: Any, conversation: ConversationId) -> None:
    offer = await socket.next("offer", conversation_id=conversation)
    await socket.answer(offer)
    await socket.next("assigned", conversation_id=conversation)


async def test_a_conversations_life_is_recorded_step_by_step_with_its_actors_and_counts(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    ana = await scene.connect("ana@hechos.example")
    beto = await scene.connect("beto@hechos.example")
    agent = {"ana": f"agent:{ana.agent_id}", "beto": f"agent:{beto.agent_id}"}

    conversation = await scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, "5215512340016", "Hola, quiero pagar mi deuda"
    )
    await ana.next("offer", conversation_id=conversation)
    await scene.advance(31)  # Ana lets the offer time out; Beto gets it
    await ana.next("offer_withdrawn")
    offer = await beto.next("offer", conversation_id=conversation)
    await scene.advance(1)
    await beto.answer(offer)
    await beto.next("assigned", conversation_id=conversation)

    beto_auth = await _auth(scene, "beto@hechos.example")
    for seconds, text in ((10, "Hola, soy Beto."), (5, "¿Cuánto puede pagar?")):
        await scene.advance(seconds)
        reply = await scene.client.post(
            f"/api/conversations/{conversation}/messages", json={"text": text}, headers=beto_auth
        )
        assert reply.status == 202, await reply.text()
    await graph.wait_for(2, within_s=10)
    await scene.advance(3)
    note = await scene.client.post(
        f"/api/conversations/{conversation}/notes",
        json={"text": "Cliente con deuda de 1500"},
        headers=beto_auth,
    )
    assert note.status == 201, await note.text()

    await scene.advance(10)
    transfer = await scene.client.post(
        f"/api/conversations/{conversation}/transfer", json={"agent_id": str(ana.agent_id)}, headers=beto_auth
    )
    assert transfer.status == 202, await transfer.text()
    await scene.input_handled(lambda i: isinstance(i, TransferInput))
    offer = await ana.next("offer", conversation_id=conversation)
    await scene.advance(2)
    await ana.answer(offer)
    await ana.next("assigned", conversation_id=conversation)

    await scene.advance(38)
    closed = await scene.client.post(
        f"/api/conversations/{conversation}/close",
        json={"disposition": {"code": "promesa", "amount": "1500.50", "date": "2026-11-30"}},
        headers=await _auth(scene, "ana@hechos.example"),
    )
    assert closed.status == 200, await closed.text()
    await scene.input_handled(
        lambda i: isinstance(i, ConversationClosedInput) and i.conversation_id == conversation
    )

    trail = await _trail(scene, conversation)
    W = WorkAction
    assert _by_second(trail) == [
        (0, Counter({(W.OPENED, "customer"): 1, (W.OFFERED, "router"): 1})),
        (31, Counter({(W.OFFER_EXPIRED, "router"): 1, (W.OFFERED, "router"): 1})),
        (32, Counter({(W.OFFER_ACCEPTED, agent["beto"]): 1, (W.ASSIGNED, "router"): 1})),
        (42, Counter({(W.REPLIED, agent["beto"]): 1})),
        (47, Counter({(W.REPLIED, agent["beto"]): 1})),
        (50, Counter({(W.NOTE, agent["beto"]): 1})),
        (
            60,
            Counter(
                {
                    (W.TRANSFERRED, agent["beto"]): 1,
                    (W.ASSIGNMENT_ENDED, "router"): 1,
                    (W.OFFERED, "router"): 1,
                }
            ),
        ),
        (62, Counter({(W.OFFER_ACCEPTED, agent["ana"]): 1, (W.ASSIGNED, "router"): 1})),
        (
            100,
            Counter(
                {
                    (W.CLOSED, agent["ana"]): 1,
                    (W.ASSIGNMENT_ENDED, "router"): 1,
                    (W.WRAP_UP, "router"): 1,
                }
            ),
        ),
    ]
    details = {(r["action"], (r["at"].astimezone(UTC) - MONDAY_10).total_seconds()): r for r in trail}
    opened = details[(W.OPENED, 0)]
    assert opened["details"] == {
        "channel": "whatsapp",
        "channel_account_id": str(scene.account_id),
        "triage": False,
    }
    assert "deuda" not in json.dumps([r["details"] for r in trail])  # no message text in the trail
    first, second = details[(W.REPLIED, 42)], details[(W.REPLIED, 47)]
    assert (first["details"]["first"], second["details"]["first"]) == (True, False)
    assigned, again = details[(W.ASSIGNED, 32)], details[(W.ASSIGNED, 62)]
    assert (assigned["agent_id"], assigned["details"]["how"], assigned["details"]["waited_s"]) == (
        beto.agent_id,
        "offer",
        32.0,
    )
    assert (again["agent_id"], again["details"]["how"], again["details"]["waited_s"]) == (
        ana.agent_id,
        "transfer",
        None,
    )
    moved = details[(W.TRANSFERRED, 60)]["details"]
    assert (moved["from_agent_id"], moved["to_agent_id"], moved["reason"]) == (
        str(beto.agent_id),
        str(ana.agent_id),
        "transfer",
    )
    ended = details[(W.ASSIGNMENT_ENDED, 100)]
    assert (ended["agent_id"], ended["details"]["active_s"]) == (ana.agent_id, 38.0)
    close = details[(W.CLOSED, 100)]["details"]
    assert close["reason"] == CloseReason.AGENT
    assert {k: close["disposition"][k] for k in ("code", "label", "amount", "date")} == {
        "code": "promesa",
        "label": "Promesa de pago",
        "amount": "1500.50",
        "date": "2026-11-30",
    }
    wrap_up = details[(W.WRAP_UP, 100)]
    assert wrap_up["agent_id"] == ana.agent_id
    assert wrap_up["details"]["until"] == (MONDAY_10 + timedelta(seconds=100 + WRAP_UP_S)).isoformat()

    report = await _report(scene, conversation)
    at = {s: MONDAY_10 + timedelta(seconds=s) for s in (0, 32, 42, 100)}
    assert {
        k: report[k]
        for k in (
            "offers",
            "timeouts",
            "declines",
            "assignments",
            "agent_replies",
            "notes",
            "transfers",
            "requeues",
            "active_s",
            "waited_s",
        )
    } == {
        "offers": 3,
        "timeouts": 1,
        "declines": 0,
        "assignments": 2,
        "agent_replies": 2,
        "notes": 1,
        "transfers": 1,
        "requeues": 0,
        "active_s": 28.0 + 38.0,
        "waited_s": 32.0,
    }
    assert (report["opened_at"], report["enqueued_at"], report["first_offered_at"]) == (at[0], at[0], at[0])
    assert (report["assigned_at"], report["agent_id"], report["last_agent_id"]) == (
        at[32],
        beto.agent_id,
        ana.agent_id,
    )
    assert (report["first_response_at"], report["first_response_agent_id"]) == (at[42], beto.agent_id)
    assert (report["closed_at"], report["close_reason"], report["disposition_code"]) == (
        at[100],
        "agent",
        "promesa",
    )
    assert (report["disposition_amount"], report["disposition_date"]) == ("1500.50", "2026-11-30")
    assert report["answered_queue_id"] == report["queue_id"] == scene.queues["cobranza"]
    assert report["first_text"] == "Hola, quiero pagar mi deuda"

    async with scene.database.session() as session:
        traffic = (
            await session.execute(
                sa.select(TRAFFIC.c.direction, TRAFFIC.c.messages).where(
                    TRAFFIC.c.campaign_id == scene.campaign_id
                )
            )
        ).all()
    assert sorted(traffic) == [("in", 1), ("out", 2)]


async def test_a_redelivered_webhook_records_nothing_twice(scene: RoutingScene) -> None:
    pipeline = scene.client.server.app[PIPELINE]
    processed: asyncio.Queue[Any] = asyncio.Queue()
    pipeline.observers.append(lambda _envelope, outcome: processed.put_nowait(outcome))
    wamid = f"wamid.{new_id().hex}"
    body = whatsapp_text(PHONE_NUMBER_ID, "5215512340017", wamid, "Buenas tardes")
    outcomes = []
    for _ in range(2):
        response = await scene.client.post("/webhooks/whatsapp", data=body, headers=signed(body, SECRET))
        assert response.status == 200
        async with asyncio.timeout(10):
            outcomes.append(await processed.get())
    assert [o.stored_messages for o in outcomes] == [1, 0]

    conversation = await scene._stored(wamid)
    trail = await _trail(scene, conversation)
    assert [r["action"] for r in trail] == [WorkAction.OPENED]
    async with scene.database.session() as session:
        counted = (await session.execute(sa.select(sa.func.sum(TRAFFIC.c.messages)))).scalar()
    assert counted == 1


async def test_a_conversation_closed_before_any_agent_had_it_is_recorded_as_abandoned(
    scene: RoutingScene,
) -> None:
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512340018", "¿Hay alguien?")
    await scene.advance(45)
    await scene.close(conversation)  # gone while waiting: nobody was connected

    trail = await _trail(scene, conversation)
    assert [(r["action"], r["actor"]) for r in trail] == [
        (WorkAction.OPENED, "customer"),
        (WorkAction.CLOSED, "router"),
    ]
    assert trail[1]["details"]["reason"] == CloseReason.ABANDONED
    report = await _report(scene, conversation)
    assert (report["close_reason"], report["assigned_at"], report["offers"]) == ("abandoned", None, 0)
    assert report["closed_at"] == MONDAY_10 + timedelta(seconds=45)
    assert report["queue_id"] == scene.queues["cobranza"]  # the queue it waited in


async def _closed_by_ana(scene: RoutingScene, ana: Any, wa_id: str, text: str) -> ConversationId:
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, wa_id, text)
    await _accept(scene, ana, conversation)
    closed = await scene.client.post(
        f"/api/conversations/{conversation}/close",
        json={"disposition": {"code": "sin_interes"}},
        headers=await _auth(scene, "ana@hechos.example"),
    )
    assert closed.status == 200, await closed.text()
    await scene.input_handled(
        lambda i: isinstance(i, ConversationClosedInput) and i.conversation_id == conversation
    )
    return conversation


async def test_a_customer_back_within_24_hours_reopens_their_previous_conversation(
    scene: RoutingScene,
) -> None:
    ana = await scene.connect("ana@hechos.example")
    first = await _closed_by_ana(scene, ana, "5215512340019", "Quiero saber mi saldo")

    await scene.advance(23 * 3600)
    second = await _closed_by_ana(scene, ana, "5215512340019", "Otra pregunta")
    assert second != first
    reopened = [r for r in await _trail(scene, first) if r["action"] == WorkAction.REOPENED]
    assert [(r["actor"], r["details"]) for r in reopened] == [("customer", {"conversation_id": str(second)})]
    assert (await _report(scene, first))["reopened_at"] == MONDAY_10 + timedelta(hours=23)

    await scene.advance(24 * 3600 + 60)  # more than a day after the second one closed
    third = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512340019", "Hola de nuevo")
    assert third != second
    assert WorkAction.REOPENED not in [r["action"] for r in await _trail(scene, second)]
    assert (await _report(scene, second))["reopened_at"] is None
