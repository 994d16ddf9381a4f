"""What the desk's customer panel and transfer dialog read through HTTP: "why was this routed to
me" for the agent holding the conversation (and no one else's), the customer's past
conversations with their queue, disposition and follow-up, the agents a conversation can be
transferred to, and the messages a customer edited or deleted marked on the timeline.  On the
embedded backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from channels.instagram.testing import webhook_body as ig_webhook_body
from core.ids import new_id
from storage.tables import MessageRow
from tests.e2e.conftest import StartEngine, StartWorkScene
from tests.e2e.test_identity_story import (
    IG_ACCOUNT,
    PATIENT_IGSID,
    T0,
    _secrets,  # noqa: F401  (the channel secrets, autouse)
    api,
    customer_by,
    instagram_body,
    send_instagram,
    start_clinic,
)
from tests.support.work import WorkScene

PHONE_NUMBER_ID = "113829475016309"
# Tuesday 10 March 2026, 10:00 in Bogotá (the campaign's time zone).
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)

Scene = WorkScene  # Ana's by default


@pytest.fixture
async def scene(start_work_scene: StartWorkScene) -> Scene:
    return await start_work_scene("panel", PHONE_NUMBER_ID, now=NOW, who="ana")


async def test_an_agent_reads_why_their_conversation_was_routed_to_them_in_names(scene: Scene) -> None:
    # Closed, so the scene's live router adds no decision of its own.
    mine = await scene.conversation(agent="ana", closed=True)
    ana, beto = str(scene.ws.agents["ana"]), str(scene.ws.agents["beto"])
    explanation = {
        "queue_id": str(scene.ws.queues["mora"]),
        "trigger": "arrival",
        "candidates": [{"agent_id": ana, "score": 8, "load": 0.0, "idle_since": 0.0}],
        "filtered": [{"agent_id": beto, "reason": "missing_skill:mora<6"}],
        "winner": ana,
    }
    await scene.ws.decide(scene.engine.database, mine, at=NOW, outcome="offered", explanation=explanation)

    status, body = await scene.get(f"/api/conversations/{mine}/routing")
    assert status == 200, body
    assert [d["explanation"] for d in body["decisions"]] == [explanation]
    assert body["agents"] == sorted(
        [{"id": ana, "name": "Ana"}, {"id": beto, "name": "Beto"}], key=lambda a: a["id"]
    )
    assert body["queues"] == [
        {"id": str(scene.ws.queues["mora"]), "name": "mora", "required_skills": {"mora": 6}}
    ]


async def test_an_agent_cannot_read_the_routing_of_a_conversation_not_assigned_to_them(scene: Scene) -> None:
    betos = await scene.conversation(agent="beto")
    offered = await scene.conversation(status="offered", agent=None, assigned_ago_s=None)
    await scene.ws.offer(scene.engine.database, offered, "ana", now=scene.clock())
    for conversation in (betos, offered):
        status, body = await scene.get(f"/api/conversations/{conversation}/routing")
        assert status == 403 and body["error"]["code"] == "forbidden", conversation
    status, _ = await scene.get(f"/api/conversations/{betos}/routing", "carla")  # a supervisor: any
    assert status == 200


async def test_the_customer_lists_past_conversations_with_queue_disposition_and_follow_up(
    scene: Scene,
) -> None:
    past = await scene.conversation(agent="ana")
    follow_up = (NOW + timedelta(days=3)).replace(hour=14)
    status, closed = await scene.post(
        f"/api/conversations/{past}/close",
        {
            "disposition": {"code": "pago_realizado", "amount": "120.50"},
            "follow_up_at": follow_up.isoformat(),
        },
    )
    assert status == 200, closed
    customer = uuid.UUID(closed["customer"]["id"])
    now_open = await scene.conversation(agent="ana", customer_id=customer)

    status, record = await scene.get(f"/api/customers/{customer}")
    assert status == 200
    first, second = record["conversations"]
    assert (first["id"], second["id"]) == (str(past), str(now_open))
    assert first["status"] == "closed" and first["closed_at"] == NOW.isoformat()
    assert first["queue"] == {"id": str(scene.ws.queues["mora"]), "name": "mora"}
    disposition = first["disposition"]
    assert (disposition["code"], disposition["label"]) == ("pago_realizado", "Pago realizado")
    assert first["follow_up_at"] == follow_up.isoformat()
    assert second["status"] == "assigned" and second["closed_at"] is None and second["disposition"] is None


async def test_the_desk_learns_the_agents_a_conversation_can_be_transferred_to(scene: Scene) -> None:
    await scene.conversation(agent="beto")  # Beto holds one of his two WhatsApp conversations
    mine = await scene.conversation(agent="ana")
    status, options = await scene.get(f"/api/conversations/{mine}/options")
    assert status == 200
    assert [(a["name"], a["free"]) for a in options["agents"]] == [("Beto", 1), ("Carla", 2)]
    assert {a["id"] for a in options["agents"]} == {
        str(scene.ws.agents["beto"]),
        str(scene.ws.agents["carla"]),
    }  # not Ana herself
    assert all(a["presence"] in ("available", "away", "offline", "wrap_up") for a in options["agents"])


async def test_a_message_the_customer_deleted_is_marked_and_its_deletion_points_at_it(scene: Scene) -> None:
    mine = await scene.conversation(agent="ana")
    db = scene.engine.database
    said = await scene.ws.add_message(db, mine, at=NOW - timedelta(minutes=2), text="Mi clave es 1234")
    async with db.session() as session:
        external = (await session.get(MessageRow, said)).external_id  # type: ignore[union-attr]
    async with db.transaction() as session:
        row = await session.get(MessageRow, said)
        assert row is not None
        deletion = new_id()
        session.add(
            MessageRow(
                id=deletion,
                workspace_id=scene.ws.id,
                conversation_id=mine,
                customer_id=row.customer_id,
                direction="in",
                kind="deleted",
                channel="whatsapp",
                external_id=f"{external}#deleted",
                payload={"kind": "deleted", "target_external_id": external},
                created_at=NOW - timedelta(minutes=1),
                stored_at=NOW - timedelta(minutes=1),
            )
        )
    kept = await scene.ws.add_message(db, mine, at=NOW, text="Perdón, no debí escribir eso")

    status, body = await scene.get(f"/api/conversations/{mine}")
    assert status == 200
    entries = {e["id"]: e for e in body["timeline"]}
    assert entries[str(said)]["deleted"] is True
    assert entries[str(deletion)]["kind"] == "deleted" and entries[str(deletion)]["about_id"] == str(said)
    assert entries[str(kept)]["deleted"] is False and entries[str(kept)]["about_id"] is None


async def test_an_instagram_edit_and_unsend_mark_the_customers_messages(start_engine: StartEngine) -> None:
    """Through Instagram's signed webhooks: the customer edits one message and unsends another."""
    engine, clinic = await start_clinic(start_engine)
    await send_instagram(engine, instagram_body("mid.beca", "¿Tienen becas?", at_ms=T0 * 1000))
    await send_instagram(engine, instagram_body("mid.tel", "Mi tarjeta es 4111", at_ms=(T0 + 10) * 1000))
    people = {"sender": {"id": PATIENT_IGSID}, "recipient": {"id": IG_ACCOUNT}}
    for event in (
        {
            **people,
            "timestamp": (T0 + 20) * 1000,
            "message_edit": {"mid": "mid.beca", "text": "¿Tienen becas para el doctorado?", "num_edit": 1},
        },
        {**people, "timestamp": (T0 + 30) * 1000, "message": {"mid": "mid.tel", "is_deleted": True}},
    ):
        await send_instagram(engine, ig_webhook_body(IG_ACCOUNT, [event], time_ms=(T0 + 30) * 1000))

    customer = await customer_by(engine, clinic, f"instagram_id:{IG_ACCOUNT}:{PATIENT_IGSID}")
    page = await api(engine, clinic, "GET", f"/api/customers/{customer['id']}/timeline")
    by_external = {e["external_id"]: e for e in page["entries"]}
    asked, card = by_external["mid.beca"], by_external["mid.tel"]
    assert (asked["text"], asked["edited"], asked["deleted"]) == ("¿Tienen becas?", True, False)
    assert (card["edited"], card["deleted"]) == (False, True)
    edit = by_external["mid.beca#edit:1"]
    assert (edit["kind"], edit["text"], edit["about_id"]) == (
        "edited",
        "¿Tienen becas para el doctorado?",
        asked["id"],
    )
    assert by_external["mid.tel#deleted"]["about_id"] == card["id"]
