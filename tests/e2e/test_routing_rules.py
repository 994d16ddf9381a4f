"""Each routing rule through the live router: a campaign applied, agents on real WebSockets,
conversations nudged through ``route.<ws>``, time moved by hand (no real waiting).

Runs on the embedded backend (SQLite + in-process broker) and on PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from channels.meta.peer import GraphPeer
from core.settings import Settings
from core.transport.topology import alert_key
from router.policy import Assigned, to_epoch
from router.service import ManualClock
from router.wire import AlertEvent, ConversationNudge
from storage.tables import AssignmentRow, ConversationRow, MessageRow, RoutingDecisionRow
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352255001"
WA_TOKEN = "EAA-routing-rules"
# Monday 2026-11-23, 10:00 in Mexico City (UTC-6): inside the usual business hours.
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def manifest(queues: str, agents: str, extra: str = "") -> str:
    return f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: reglas
campaign: {{name: ventas, display_name: Ventas, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 2031"
      waba_id: "300000000000001"
      app_id: "400000000000001"
      app_secret_env: RULES_WA_SECRET
      access_token_env: RULES_WA_TOKEN
      verify_token_env: RULES_WA_VERIFY
      default_queue: ventas
skills:
  - name: ventas
  - name: soporte
queues:
{queues}
agents:
{agents}
{extra}"""


SIMPLE_QUEUE = """\
  - name: ventas
    required_skills: {ventas: 5}
    channels: [whatsapp]
"""

Scene = Callable[..., Awaitable[RoutingScene]]


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RULES_WA_SECRET", "rules-secret")
    monkeypatch.setenv("RULES_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("RULES_WA_VERIFY", "rules-verify")


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    return backend_settings.model_copy(
        update={
            "offer_timeout_s": 30.0,
            "router_ramp_period_s": 0.0,
            "router_disconnect_grace_s": 60.0,
            "router_sticky_wait_s": 30.0,
            "config_poll_s": 3600.0,
        }
    )


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


@pytest.fixture
def scene(settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene) -> Scene:
    async def start(queues: str, agents: str, extra: str = "", at: datetime = MONDAY_10) -> RoutingScene:
        return await start_routing_scene(
            settings,
            manifest(queues, agents, extra),
            ManualClock(at),
            workspace="reglas",
            graph_base_url=graph.base_url,
        )

    return start


async def _decisions(scene: RoutingScene, conversation_id: Any) -> list[dict[str, Any]]:
    async with scene.database.session() as session:
        rows = await session.execute(
            sa.select(RoutingDecisionRow.outcome, RoutingDecisionRow.explanation)
            .where(RoutingDecisionRow.conversation_id == conversation_id)
            .order_by(RoutingDecisionRow.decided_at)
        )
        return [{"outcome": r.outcome, **r.explanation} for r in rows]


async def test_an_agent_is_never_offered_more_than_their_capacity(scene: Scene) -> None:
    s = await scene(
        SIMPLE_QUEUE, "  - {email: ana@r.example, name: Ana, skills: {ventas: 7}, capacity: {whatsapp: 1}}"
    )
    ana = await s.connect("ana@r.example")
    first = await s.conversation()
    offer = await ana.next("offer", conversation_id=first)
    await ana.answer(offer)
    await ana.next("assigned", conversation_id=first)

    second = await s.conversation()
    await s.input_handled(lambda i: isinstance(i, ConversationNudge) and i.conversation_id == second)
    assert ana.received("offer") == [offer]
    decisions = await _decisions(s, second)
    assert decisions[-1]["outcome"] == "no_agent"
    assert decisions[-1]["filtered"] == [{"agent_id": str(ana.agent_id), "reason": "at_capacity:whatsapp"}]

    await s.close(first)
    offer2 = await ana.next("offer", conversation_id=second)
    assert offer2["offer_id"] != offer["offer_id"]
    assert (await s.row(first)).status == "closed"


TWO_AGENTS = """\
  - {email: ana@r.example, name: Ana, skills: {ventas: 9}, capacity: {whatsapp: 3}}
  - {email: beto@r.example, name: Beto, skills: {ventas: 6}, capacity: {whatsapp: 3}}"""


async def test_bullseye_expansion_reaches_a_less_proficient_agent_after_the_step_time(scene: Scene) -> None:
    queue = """\
  - name: ventas
    required_skills: {ventas: 8}
    channels: [whatsapp]
    expansion:
      - {after_s: 30, min_proficiency: 4}
"""
    s = await scene(
        queue, "  - {email: beto@r.example, name: Beto, skills: {ventas: 5}, capacity: {whatsapp: 2}}"
    )
    beto = await s.connect("beto@r.example")
    conversation = await s.conversation()
    await s.input_handled(lambda i: isinstance(i, ConversationNudge) and i.conversation_id == conversation)
    first = (await _decisions(s, conversation))[-1]
    assert first["outcome"] == "no_agent" and first["step"] == 0
    assert first["filtered"] == [{"agent_id": str(beto.agent_id), "reason": "missing_skill:ventas<8"}]
    assert beto.received("offer") == []

    await s.advance(29)
    await s.advance(2)
    offer = await beto.next("offer", conversation_id=conversation)
    assert offer["preview"]["trigger"] == "step"
    decision = (await _decisions(s, conversation))[-1]
    assert (decision["outcome"], decision["step"], decision["min_proficiency"]) == ("offered", 1, 4)


async def test_a_returning_customer_is_offered_first_to_their_previous_agent(scene: Scene) -> None:
    s = await scene(SIMPLE_QUEUE, TWO_AGENTS)
    ana = await s.connect("ana@r.example")
    beto = await s.connect("beto@r.example")
    earlier = await s.conversation(status="closed", agent="beto@r.example", nudge=False)
    customer = (await s.row(earlier)).customer_id
    async with s.database.transaction() as session:
        row = await session.get(ConversationRow, earlier)
        assert row is not None
        row.closed_at = s.clock() - timedelta(days=3)

    again = await s.conversation(customer_id=customer)
    offer = await beto.next("offer", conversation_id=again)
    assert offer["preview"]["trigger"] == "sticky"
    assert ana.received("offer") == []

    stranger = await s.conversation()
    await ana.next("offer", conversation_id=stranger)  # the better agent still gets the others


async def test_an_unanswered_offer_times_out_and_goes_to_another_agent(scene: Scene) -> None:
    s = await scene(SIMPLE_QUEUE, TWO_AGENTS)
    ana = await s.connect("ana@r.example")
    beto = await s.connect("beto@r.example")
    conversation = await s.conversation()
    first = await ana.next("offer", conversation_id=conversation)

    await s.advance(31)
    withdrawn = await ana.next("offer_withdrawn", offer_id=first["offer_id"])
    assert withdrawn["reason"] == "timeout"
    second = await beto.next("offer", conversation_id=conversation)
    decision = (await _decisions(s, conversation))[-1]
    assert decision["winner"] == str(beto.agent_id) and decision["trigger"] == "reroute"
    assert {"agent_id": str(ana.agent_id), "reason": "skipped_timeout"} in decision["filtered"]

    await ana.answer(first)  # too late: nothing changes
    await beto.answer(second)
    await beto.next("assigned", conversation_id=conversation)
    row = await s.row(conversation)
    assert (row.status, row.agent_id) == ("assigned", beto.agent_id)


async def test_an_agent_offline_beyond_the_grace_period_has_their_conversations_requeued_with_their_age(
    scene: Scene,
) -> None:
    s = await scene(SIMPLE_QUEUE, TWO_AGENTS)
    ana = await s.connect("ana@r.example")
    conversation = await s.conversation(enqueued_at=s.clock() - timedelta(seconds=40))
    await ana.answer(await ana.next("offer", conversation_id=conversation))
    await ana.next("assigned", conversation_id=conversation)
    beto = await s.connect("beto@r.example")

    await ana.close()
    await s.input_handled(lambda i: getattr(i, "type", "") == "agent_connection" and not i.connected)
    await s.advance(59)  # within the grace period nothing moves
    await s.processed(lambda r: r.at >= to_epoch(s.clock()))
    assert (await s.row(conversation)).agent_id == ana.agent_id

    await s.advance(2)
    offer = await beto.next("offer", conversation_id=conversation)
    assert offer["preview"]["trigger"] == "requeue"
    row = await s.row(conversation)
    assert row.status == "offered"
    assert to_epoch(row.enqueued_at) == to_epoch(MONDAY_10 - timedelta(seconds=40))
    async with s.database.session() as session:
        ended = (
            await session.execute(
                sa.select(AssignmentRow).where(AssignmentRow.conversation_id == conversation)
            )
        ).scalar_one()
    assert ended.agent_id == ana.agent_id and ended.ended_at is not None and ended.reason == "agent_offline"

    await beto.answer(offer)
    report = await s.processed(
        lambda r: any(isinstance(c, Assigned) and c.agent_id == beto.agent_id for c in r.commands)
    )
    assigned = next(c for c in report.commands if isinstance(c, Assigned))
    assert assigned.waited_s >= 101  # counted from the original arrival, not from the requeue


OUTSIDE_HOURS = """\
  - name: ventas
    required_skills: {ventas: 5}
    channels: [whatsapp]
    business_hours:
      weekly: {mon: ["09:00-18:00"], tue: ["09:00-18:00"]}
      outside_hours_reply: fuera_de_horario
"""
AUTO_REPLIES = """\
auto_replies:
  fuera_de_horario:
    text: "Gracias por escribir. Te atendemos de lunes a martes de 9 a 18 h."
"""


async def test_outside_business_hours_the_customer_gets_the_auto_reply_and_no_offer_until_opening(
    scene: Scene, graph: GraphPeer
) -> None:
    monday_night = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Monday 20:00 in Mexico City
    s = await scene(OUTSIDE_HOURS, TWO_AGENTS, AUTO_REPLIES, at=monday_night)
    ana = await s.connect("ana@r.example")
    conversation = await s.customer_writes("rules-secret", PHONE_NUMBER_ID, "5215512340001", "Hola")

    sent = await graph.wait_for(1)
    assert sent[0]["json"]["text"]["body"].startswith("Gracias por escribir")
    row = await s.row(conversation)
    assert row.status == "waiting" and row.auto_replied_at is not None
    async with s.database.session() as session:
        replies = (
            (await session.execute(sa.select(MessageRow).where(MessageRow.direction == "out")))
            .scalars()
            .all()
        )
    assert [r.payload.get("auto_reply") for r in replies] == [True]
    assert ana.received("offer") == []

    await s.advance(12 * 3600 + 59 * 60)  # Tuesday 08:59: still closed
    await s.processed(lambda r: r.at >= to_epoch(s.clock()))
    assert ana.received("offer") == []
    await s.advance(60)  # 09:00
    offer = await ana.next("offer", conversation_id=conversation)
    assert offer["preview"]["trigger"] == "queue_open"
    assert len(graph.received) == 1  # one auto-reply per conversation


async def test_a_conversation_overflows_to_another_queue_after_waiting(scene: Scene) -> None:
    queues = """\
  - name: soporte
    required_skills: {soporte: 5}
    channels: [whatsapp]
  - name: ventas
    required_skills: {ventas: 5}
    channels: [whatsapp]
    overflow: {to: soporte, after_s: 60}
"""
    agents = """\
  - {email: ana@r.example, name: Ana, skills: {ventas: 9}, capacity: {whatsapp: 3}}
  - {email: carla@r.example, name: Carla, skills: {soporte: 8}, capacity: {whatsapp: 3}}"""
    s = await scene(queues, agents)
    carla = await s.connect("carla@r.example")
    conversation = await s.conversation(queue="ventas")
    await s.input_handled(lambda i: isinstance(i, ConversationNudge) and i.conversation_id == conversation)
    assert carla.received("offer") == []

    await s.advance(61)
    offer = await carla.next("offer", conversation_id=conversation)
    assert offer["queue_id"] == str(s.queues["soporte"])
    assert (await s.row(conversation)).queue_id == s.queues["soporte"]


async def test_a_conversation_whose_reply_window_is_closing_jumps_the_line(scene: Scene) -> None:
    s = await scene(
        SIMPLE_QUEUE, "  - {email: ana@r.example, name: Ana, skills: {ventas: 7}, capacity: {whatsapp: 1}}"
    )
    now = s.clock()
    older = await s.conversation(enqueued_at=now - timedelta(minutes=10))
    closing = await s.conversation(
        enqueued_at=now - timedelta(minutes=8),
        last_customer_message_at=now - timedelta(hours=23, minutes=30),  # window closes in 30 min
    )
    await s.input_handled(lambda i: isinstance(i, ConversationNudge) and i.conversation_id == closing)
    ana = await s.connect("ana@r.example")
    offer = await ana.next("offer")
    assert offer["conversation_id"] == str(closing)
    await ana.answer(offer)
    await s.close(closing)
    assert (await ana.next("offer"))["conversation_id"] == str(older)


async def test_a_conversation_waiting_past_its_sla_raises_an_alert_for_dashboards(scene: Scene) -> None:
    queues = """\
  - name: ventas
    required_skills: {ventas: 5}
    channels: [whatsapp]
    sla: {answer_within_s: 60, target_pct: 80}
"""
    agents = """\
  - {email: ana@r.example, name: Ana, skills: {ventas: 9}, capacity: {whatsapp: 3}}"""
    s = await scene(queues, agents)
    async with s.events(alert_key(str(s.workspace_id))) as alerts:
        conversation = await s.conversation(queue="ventas")  # nobody is logged in to take it
        await s.input_handled(
            lambda i: isinstance(i, ConversationNudge) and i.conversation_id == conversation
        )
        await s.advance(30)
        assert alerts.empty()
        await s.advance(31)
        async with asyncio.timeout(10):
            alert = await alerts.get()
        assert alert["kind"] == "sla_breach" and alert["conversation_id"] == str(conversation)
        assert AlertEvent.model_validate(alert).model_dump(mode="json") == alert  # its model, exactly
        assert alert["queue"] == "ventas" and alert["waited_s"] >= 60


ONE_AGENT = "  - {email: ana@r.example, name: Ana, skills: {ventas: 7}, capacity: {whatsapp: 1}}"


async def _quiet_until_now(s: RoutingScene) -> None:
    """The router has run a round at the scene's current time (its timers up to now fired)."""
    await s.processed(lambda r: r.at >= to_epoch(s.clock()))


async def test_the_agent_is_warned_once_before_the_reply_window_closes_and_again_after_the_customer_writes(
    scene: Scene,
) -> None:
    s = await scene(SIMPLE_QUEUE, ONE_AGENT)  # CENTRALITA_WINDOW_WARNING_S: its default, 3600 s
    ana = await s.connect("ana@r.example")
    conversation = await s.customer_writes("rules-secret", PHONE_NUMBER_ID, "5215512340002", "Hola")
    closes = s.clock() + timedelta(hours=24)
    await ana.answer(await ana.next("offer", conversation_id=conversation))
    await ana.next("assigned", conversation_id=conversation)

    await s.advance(23 * 3600 - 1)  # 1 h and 1 s before the close
    await _quiet_until_now(s)
    assert ana.received("window_warning") == []
    await s.advance(1)
    warning = await ana.next("window_warning", conversation_id=conversation)
    assert datetime.fromisoformat(warning["closes_at"]) == closes

    await s.advance(1800)
    await _quiet_until_now(s)
    assert len(ana.received("window_warning")) == 1  # once per window
    assert ana.received("window_closed") == []
    await s.advance(1800)
    closed = await ana.next("window_closed", conversation_id=conversation)
    assert datetime.fromisoformat(closed["closed_at"]) == closes

    # the window it knew closed: the router hears of the message that opens the next one
    await s.customer_writes("rules-secret", PHONE_NUMBER_ID, "5215512340002", "¿Siguen ahí?", routed=True)
    reopened = s.clock() + timedelta(hours=24)
    await s.advance(23 * 3600)
    again = await ana.next("window_warning", conversation_id=conversation)
    assert datetime.fromisoformat(again["closes_at"]) == reopened
    assert len(ana.received("window_warning")) == 2 and len(ana.received("window_closed")) == 1


async def test_a_follow_up_in_an_assigned_conversation_reaches_the_agent_without_a_router_round(
    scene: Scene,
) -> None:
    s = await scene(SIMPLE_QUEUE, ONE_AGENT)
    ana = await s.connect("ana@r.example")
    conversation = await s.customer_writes("rules-secret", PHONE_NUMBER_ID, "5215512340003", "Hola")
    await ana.answer(await ana.next("offer", conversation_id=conversation))
    await ana.next("assigned", conversation_id=conversation)
    await s.advance(2 * 3600)
    rounds = len(s.reports)

    again = await s.customer_writes(
        "rules-secret", PHONE_NUMBER_ID, "5215512340003", "¿Siguen ahí?", routed=False
    )
    assert again == conversation
    pushed = await ana.next("message", conversation_id=conversation)
    assert pushed["text"] == "¿Siguen ahí?"
    await _quiet_until_now(s)
    assert not any(isinstance(i, ConversationNudge) for r in s.reports[rounds:] for i in r.inputs)

    # The window the router held (from the first message) would warn now; the warning comes for
    # the window the follow-up opened, an hour before it closes.
    moved = s.clock() + timedelta(hours=24)
    await s.advance(21 * 3600)
    await _quiet_until_now(s)
    assert ana.received("window_warning") == []
    await s.advance(2 * 3600)
    warning = await ana.next("window_warning", conversation_id=conversation)
    assert datetime.fromisoformat(warning["closes_at"]) == moved
    assert len(ana.received("window_warning")) == 1


CLOSED_ON_SUNDAY = """\
  - name: ventas
    required_skills: {ventas: 5}
    channels: [whatsapp]
    sla: {answer_within_s: 60, target_pct: 80}
    business_hours:
      weekly: {mon: ["09:00-18:00"], tue: ["09:00-18:00"]}
"""
SUNDAY_NOON = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)  # Sunday 12:00 in Mexico City
MONDAY_9 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


async def _get(s: RoutingScene, path: str) -> dict[str, Any]:
    token = await issue_token(s.database, s.workspace, "supervisor")
    response = await s.client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _why(s: RoutingScene, conversation: Any) -> tuple[Any, Any]:
    """What the wall's queue tile and the conversation's routing page say about it now."""
    stats = await _get(s, "/api/queues/stats")
    tile = next(q for q in stats["queues"] if q["name"] == "ventas")
    routing = await _get(s, f"/api/conversations/{conversation}/routing")
    assert tile["not_offered"] == routing["not_offered"]
    return tile["not_offered"], tile


async def test_stats_and_routing_say_why_a_waiting_conversation_is_not_offered(scene: Scene) -> None:
    s = await scene(CLOSED_ON_SUNDAY, ONE_AGENT, at=SUNDAY_NOON)
    waiting = await s.conversation(queue="ventas")
    await s.input_handled(lambda i: isinstance(i, ConversationNudge) and i.conversation_id == waiting)
    why, tile = await _why(s, waiting)
    assert why == {"reason": "queue_closed", "next_opening_at": MONDAY_9.isoformat()}
    assert (tile["open"], tile["next_change_at"]) == (False, MONDAY_9.isoformat())

    await s.advance((MONDAY_9 - SUNDAY_NOON).total_seconds())
    await _quiet_until_now(s)
    why, tile = await _why(s, waiting)
    assert why == {"reason": "no_agent_signed_in", "next_opening_at": None}
    assert (tile["open"], tile["next_change_at"]) == (True, "2026-11-24T00:00:00+00:00")  # 18:00 there
    ana = await s.connect("ana@r.example", presence="away")
    assert (await _why(s, waiting))[0]["reason"] == "no_agent_available"

    busy = await s.conversation(queue="ventas", status="assigned", agent="ana@r.example")
    await s.input_handled(lambda i: isinstance(i, ConversationNudge) and i.conversation_id == busy)
    await s.presence(ana, "available")  # her one place is taken
    assert (await _why(s, waiting))[0]["reason"] == "all_at_capacity"

    await s.close(busy)
    await ana.next("offer", conversation_id=waiting)
    routing = await _get(s, f"/api/conversations/{waiting}/routing")
    assert routing["not_offered"] is None  # offered: flowing


async def test_the_sla_does_not_run_while_the_queue_is_closed(scene: Scene) -> None:
    s = await scene(CLOSED_ON_SUNDAY, ONE_AGENT, at=SUNDAY_NOON)
    async with s.events(alert_key(str(s.workspace_id))) as alerts:
        early = await s.conversation(queue="ventas")  # 21 h before the opening
        await s.input_handled(lambda i: isinstance(i, ConversationNudge) and i.conversation_id == early)
        await s.advance((MONDAY_9 - SUNDAY_NOON).total_seconds() + 30)
        await _quiet_until_now(s)
        assert alerts.empty()  # 30 s of open time so far: no breach

        ana = await s.connect("ana@r.example")
        await ana.answer(await ana.next("offer", conversation_id=early))
        await ana.next("assigned", conversation_id=early)
        late = await s.conversation(queue="ventas")  # ana is full: this one waits
        await s.input_handled(lambda i: isinstance(i, ConversationNudge) and i.conversation_id == late)
        await s.advance(61)
        async with asyncio.timeout(10):
            alert = await alerts.get()
        assert alert["conversation_id"] == str(late)  # the early one never breached
        assert alerts.empty()

    _, tile = await _why(s, late)
    assert (tile["answered_today"], tile["answered_within_sla_today"], tile["sla_pct_today"]) == (1, 1, 100.0)
