"""The supervisor's view through HTTP: every conversation of the workspace, force-assign and
re-queue, the router's stored explanations, agents with their load, and live queue statistics.
On the embedded backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from router.wire import ForceAssignInput, RequeueInput
from storage.tables import AgentRow
from tests.e2e.conftest import StartWorkScene
from tests.support.work import (
    WorkScene,
    next_input,
    route_spy,
)

PHONE_NUMBER_ID = "113829475016302"
# Tuesday 10 March 2026, 10:00 in Bogotá (the campaign's and the queues' time zone).
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


Scene = WorkScene  # Carla's (the supervisor's) by default


@pytest.fixture
async def scene(start_work_scene: StartWorkScene) -> Scene:
    return await start_work_scene("beta", PHONE_NUMBER_ID, now=NOW, who="carla")


async def test_a_supervisor_sees_every_conversation_and_filters_them(scene: Scene) -> None:
    anas = await scene.conversation(agent="ana")
    betos = await scene.conversation(agent="beto", queue="promesas")
    waiting = await scene.conversation(status="waiting", agent=None, assigned_ago_s=None)

    status, body = await scene.get("/api/conversations")
    assert status == 200 and {c["id"] for c in body["items"]} == {str(anas), str(betos), str(waiting)}
    _, body = await scene.get("/api/conversations", status="waiting")
    assert [c["id"] for c in body["items"]] == [str(waiting)]
    _, body = await scene.get("/api/conversations", queue_id=str(scene.ws.queues["promesas"]))
    assert [c["id"] for c in body["items"]] == [str(betos)]
    _, body = await scene.get("/api/conversations", agent_id=str(scene.ws.agents["ana"]))
    assert [c["id"] for c in body["items"]] == [str(anas)]


async def test_a_supervisor_force_assigns_a_conversation(scene: Scene) -> None:
    waiting = await scene.conversation(status="waiting", agent=None, assigned_ago_s=None)
    async with route_spy(scene.engine, scene.ws.id) as seen:
        status, body = await scene.post(
            f"/api/conversations/{waiting}/assign", {"agent_id": str(scene.ws.agents["beto"])}
        )
        assert status == 202, body
        forced = await next_input(seen, ForceAssignInput)
    assert forced.conversation_id == waiting and forced.agent_id == scene.ws.agents["beto"]
    assert forced.actor == f"agent:{scene.ws.agents['carla']}"


async def test_force_assign_needs_a_known_agent_of_the_workspace(scene: Scene) -> None:
    waiting = await scene.conversation(status="waiting", agent=None, assigned_ago_s=None)
    for body, code, field in (
        ({}, 400, "agent_id"),
        ({"agent_id": "beto"}, 400, "agent_id"),
        ({"agent_id": str(uuid.uuid4())}, 404, "agent_id"),
        ({"agent_id": str(scene.ws.agents["beto"]), "queue_id": "x"}, 400, "queue_id"),
    ):
        status, answer = await scene.post(f"/api/conversations/{waiting}/assign", body)
        assert (status, answer["error"]["field"]) == (code, field), body


async def test_an_agent_cannot_force_assign_or_requeue(scene: Scene) -> None:
    anas = await scene.conversation(agent="ana")
    status, body = await scene.post(
        f"/api/conversations/{anas}/assign", {"agent_id": str(scene.ws.agents["ana"])}, who="ana"
    )
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, _ = await scene.post(f"/api/conversations/{anas}/requeue", {}, who="ana")
    assert status == 403


async def test_a_supervisor_requeues_a_conversation_to_another_queue(scene: Scene) -> None:
    anas = await scene.conversation(agent="ana")
    async with route_spy(scene.engine, scene.ws.id) as seen:
        status, _ = await scene.post(
            f"/api/conversations/{anas}/requeue", {"queue_id": str(scene.ws.queues["promesas"])}
        )
        assert status == 202
        requeue = await next_input(seen, RequeueInput)
        assert requeue.conversation_id == anas and requeue.queue_id == scene.ws.queues["promesas"]
        response = await scene.engine.client.post(
            f"/api/conversations/{anas}/requeue", headers=scene.ws.auth("carla")
        )
        assert response.status == 202  # no body: back to its own queue
        again = await next_input(seen, RequeueInput)
    assert again.queue_id is None


async def test_a_closed_conversation_cannot_be_moved(scene: Scene) -> None:
    closed = await scene.conversation(closed=True)
    for path, body in (
        ("assign", {"agent_id": str(scene.ws.agents["ana"])}),
        ("requeue", {}),
        ("transfer", {"queue_id": str(scene.ws.queues["mora"])}),
    ):
        status, answer = await scene.post(f"/api/conversations/{closed}/{path}", body)
        assert status == 409 and answer["error"]["code"] == "conflict", path


async def test_routing_shows_every_stored_decision_in_order(scene: Scene) -> None:
    db = scene.engine.database
    # Closed, so the scene's live router adds no decision of its own (a waiting one gets "no_agent").
    conversation = await scene.conversation(closed=True, agent=None, assigned_ago_s=None)
    first = {
        "candidates": 3,
        "filtered": [{"agent_id": str(scene.ws.agents["beto"]), "reason": "proficiency"}],
        "scores": [{"agent_id": str(scene.ws.agents["ana"]), "score": 8}],
        "winner": str(scene.ws.agents["ana"]),
    }
    await scene.ws.decide(
        db, conversation, at=NOW - timedelta(seconds=30), outcome="offered", explanation=first
    )
    await scene.ws.decide(db, conversation, at=NOW, outcome="requeued", explanation={"reason": "timeout"})

    status, body = await scene.get(f"/api/conversations/{conversation}/routing")
    assert status == 200
    assert [d["outcome"] for d in body["decisions"]] == ["offered", "requeued"]
    assert body["decisions"][0]["explanation"] == first
    assert body["decisions"][0]["decided_at"] == (NOW - timedelta(seconds=30)).isoformat()
    status, _ = await scene.get(f"/api/conversations/{conversation}/routing", "ana")
    assert status == 403


async def test_agents_show_presence_load_skills_and_pending_offers(scene: Scene) -> None:
    db = scene.engine.database
    await scene.conversation(agent="ana")
    await scene.conversation(agent="ana", channel="email")
    offered = await scene.conversation(status="offered", agent=None, assigned_ago_s=None)
    await scene.ws.offer(db, offered, "beto", now=NOW)
    async with db.transaction() as session:
        await session.execute(
            sa.update(AgentRow).where(AgentRow.id == scene.ws.agents["ana"]).values(presence="available")
        )

    status, body = await scene.get("/api/agents")
    assert status == 200
    agents = {a["name"]: a for a in body["items"]}
    assert set(agents) == {"Ana", "Beto", "Carla"}
    assert agents["Ana"]["load"] == {"whatsapp": 1, "email": 1} and agents["Ana"]["open_conversations"] == 2
    assert agents["Ana"]["presence"] == "available"
    assert agents["Ana"]["skills"] == {"mora": 8, "negociacion": 7}
    assert agents["Ana"]["capacity"] == {"whatsapp": 3}
    assert agents["Beto"]["pending_offers"] == 1 and agents["Beto"]["load"] == {}
    assert agents["Carla"]["role"] == "supervisor"


async def test_queue_stats_count_waiting_longest_wait_agents_answered_and_sla_today(scene: Scene) -> None:
    db = scene.engine.database
    # In "mora" (SLA: 80% within 60 s) now: two waiting (300 s and 100 s), one offered (50 s).
    await scene.conversation(status="waiting", agent=None, assigned_ago_s=None, enqueued_ago_s=300)
    await scene.conversation(status="waiting", agent=None, assigned_ago_s=None, enqueued_ago_s=100)
    offered = await scene.conversation(status="offered", agent=None, assigned_ago_s=None, enqueued_ago_s=50)
    await scene.ws.offer(db, offered, "beto", now=NOW)
    # Answered today (since 00:00 Bogotá = 05:00 UTC) after 30 s, 50 s and 90 s: two within the SLA.
    for waited in (30, 50, 90):
        await scene.conversation(agent="ana", enqueued_ago_s=3600 + waited, assigned_ago_s=3600)
    # Answered yesterday in Bogotá (23:00 local): not today's.
    await scene.conversation(
        agent="ana", enqueued_ago_s=11 * 3600 + 10, assigned_ago_s=11 * 3600, closed=True
    )
    presences = {"ana": "available", "beto": "available", "carla": "away"}
    async with db.transaction() as session:
        for who, presence in presences.items():
            await session.execute(
                sa.update(AgentRow).where(AgentRow.id == scene.ws.agents[who]).values(presence=presence)
            )

    status, body = await scene.get("/api/queues/stats")
    assert status == 200
    assert body["at"] == NOW.isoformat()
    queues = {q["name"]: q for q in body["queues"]}
    mora = queues["mora"]
    assert (mora["waiting"], mora["offered"], mora["longest_wait_s"]) == (2, 1, 300.0)
    assert mora["day"] == "2026-03-10" and mora["timezone"] == "America/Bogota"
    assert (mora["answered_today"], mora["answered_within_sla_today"]) == (3, 2)
    assert mora["sla_pct_today"] == 66.67
    assert (mora["sla_target_pct"], mora["sla_threshold_s"]) == (80.0, 60.0)
    # Eligible for "mora" (mora ≥ 4 at its loosest step): Ana (busy: 3 assigned), Beto (busy: an
    # offer pending), Carla (away).
    assert mora["agents"] == {"available": 0, "busy": 2, "away": 1, "offline": 0}
    promesas = queues["promesas"]
    assert (promesas["waiting"], promesas["answered_today"], promesas["sla_pct_today"]) == (0, 0, None)
    # Eligible for "promesas" (negociacion ≥ 5): Ana only.
    assert promesas["agents"] == {"available": 0, "busy": 1, "away": 0, "offline": 0}
