"""The agent's work through HTTP: who am I, my conversations, a conversation with the customer's
timeline and reply window, notes, transfer, close with a disposition and the follow-up it
schedules, presence.  On the embedded backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from centralita.web.keys import FOLLOWUPS
from core.facts import CloseReason, WorkAction
from router.wire import ConversationClosedInput, ConversationNudge, PresenceInput, TransferInput
from storage.facts import AUDIT
from storage.tables import ConversationRow, MessageRow
from storage.work import FollowUpOpened
from tests.e2e.conftest import StartWorkScene
from tests.support.campaigns import signed, whatsapp_text
from tests.support.work import (
    WORK_SECRETS,
    WorkScene,
    next_input,
    route_spy,
)

PHONE_NUMBER_ID = "113829475016301"
WA_SECRET = WORK_SECRETS["WORK_WA_SECRET"]
# Tuesday 10 March 2026, 10:00 in Bogotá (the campaign's time zone).
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


Scene = WorkScene  # Ana's by default


@pytest.fixture
async def scene(start_work_scene: StartWorkScene) -> Scene:
    return await start_work_scene("alfa", PHONE_NUMBER_ID, now=NOW, who="ana")


# ------------------------------------------------------------------------------------ auth


async def test_a_request_without_a_token_is_401_naming_the_header(scene: Scene) -> None:
    response = await scene.engine.client.get("/api/me")
    body = await response.json()
    assert response.status == 401
    assert body["error"]["code"] == "unauthenticated" and body["error"]["field"] == "Authorization"


async def test_an_unknown_token_is_401(scene: Scene) -> None:
    response = await scene.engine.client.get(
        "/api/conversations", headers={"Authorization": "Bearer ctl_nope"}
    )
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthenticated"


async def test_an_agent_on_a_supervisors_route_is_403(scene: Scene) -> None:
    for path in ("/api/queues/stats", "/api/agents"):
        status, body = await scene.get(path, "ana")
        assert status == 403, path
        assert body["error"]["code"] == "forbidden"


async def test_me_tells_the_workspace_the_role_and_the_agent(scene: Scene) -> None:
    status, body = await scene.get("/api/me", "ana")
    assert status == 200
    assert body["workspace"] == {"id": str(scene.ws.id), "slug": "alfa"}
    assert body["role"] == "agent"
    assert body["agent"]["id"] == str(scene.ws.agents["ana"]) and body["agent"]["name"] == "Ana"
    status, body = await scene.get("/api/me", "admin")
    assert status == 200 and body["role"] == "admin" and body["agent"] is None


# ------------------------------------------------------------------------------------ my conversations


async def test_an_agent_lists_only_the_conversations_assigned_or_offered_to_them(scene: Scene) -> None:
    mine = await scene.conversation(agent="ana")
    offered = await scene.conversation(status="offered", agent=None, assigned_ago_s=None)
    await scene.ws.offer(scene.engine.database, offered, "ana", now=scene.clock())
    betos = await scene.conversation(agent="beto")
    await scene.conversation(status="waiting", agent=None, assigned_ago_s=None)

    status, body = await scene.get("/api/conversations", "ana")
    assert status == 200
    assert {c["id"] for c in body["items"]} == {str(mine), str(offered)}
    offered_item = next(c for c in body["items"] if c["id"] == str(offered))
    assert [o["agent_id"] for o in offered_item["offers"]] == [str(scene.ws.agents["ana"])]
    status, body = await scene.get("/api/conversations", "beto")
    assert [c["id"] for c in body["items"]] == [str(betos)]


async def test_an_agent_cannot_open_a_conversation_that_is_not_theirs(scene: Scene) -> None:
    betos = await scene.conversation(agent="beto")
    status, body = await scene.get(f"/api/conversations/{betos}", "ana")
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_the_conversation_list_pages_with_a_cursor(scene: Scene) -> None:
    created = [await scene.conversation(enqueued_ago_s=600 - 10 * i) for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        status, body = await scene.get("/api/conversations", "carla", **params)
        assert status == 200
        seen += [c["id"] for c in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(c) for c in reversed(created)]  # newest first, each once


async def test_a_bad_filter_or_cursor_is_400_naming_it(scene: Scene) -> None:
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"cursor": "%%%"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"queue_id": "nope"}, "queue_id"),
    ):
        status, body = await scene.get("/api/conversations", "carla", **params)
        assert status == 400, params
        assert body["error"]["field"] == field


# ------------------------------------------------------------------------------------ one conversation


async def test_a_conversation_shows_its_reply_window_from_the_channels_capabilities(scene: Scene) -> None:
    whatsapp = await scene.conversation(last_customer_message_ago_s=2 * 3600)
    status, body = await scene.get(f"/api/conversations/{whatsapp}")
    assert status == 200
    last = NOW - timedelta(hours=2)
    assert body["last_customer_message_at"] == last.isoformat()
    assert body["window_closes_at"] == (last + timedelta(hours=24)).isoformat()
    assert body["window"]["open"] is True
    assert body["queue"]["name"] == "mora" and body["channel"] == "whatsapp"

    email = await scene.conversation(channel="email")
    status, body = await scene.get(f"/api/conversations/{email}")
    assert body["window"]["open"] is True and body["window"]["always_open"] is True
    assert body["window_closes_at"] is None


async def test_a_closed_window_shows_as_closed(scene: Scene) -> None:
    stale = await scene.conversation(last_customer_message_ago_s=30 * 3600)
    status, body = await scene.get(f"/api/conversations/{stale}")
    assert status == 200 and body["window"]["open"] is False
    assert body["window"]["templates_allowed"] is True


async def test_a_conversation_shows_the_customers_timeline_across_channels_and_conversations(
    scene: Scene,
) -> None:
    db = scene.engine.database
    customer = await scene.ws.add_customer(db, "Marta")
    earlier = await scene.conversation(customer_id=customer, channel="email", closed=True, agent="beto")
    current = await scene.conversation(customer_id=customer)
    texts = ["correo 1", "respuesta correo", "whatsapp 1", "whatsapp 2"]
    at = NOW - timedelta(days=3)
    for i, text in enumerate(texts):
        conversation, channel = (earlier, "email") if i < 2 else (current, "whatsapp")
        await scene.ws.add_message(
            db,
            conversation,
            at=at + timedelta(hours=i),
            text=text,
            channel=channel,
            direction="out" if i == 1 else "in",
        )

    status, body = await scene.get(f"/api/conversations/{current}", limit="3")
    assert status == 200
    assert body["customer"] == {"id": str(customer), "name": "Marta"}
    assert [e["text"] for e in body["timeline"]] == texts[1:]  # the most recent 3, oldest first
    assert [e["channel"] for e in body["timeline"]] == ["email", "whatsapp", "whatsapp"]
    assert body["timeline"][0]["conversation_id"] == str(earlier)
    status, older = await scene.get(f"/api/conversations/{current}", limit="3", cursor=body["next_cursor"])
    assert [e["text"] for e in older["timeline"]] == texts[:1] and older["next_cursor"] is None


async def test_an_unknown_conversation_is_404(scene: Scene) -> None:
    status, body = await scene.get(f"/api/conversations/{uuid.uuid4()}", "carla")
    assert status == 404 and body["error"]["field"] == "conversation_id"
    status, body = await scene.get("/api/conversations/not-a-uuid", "carla")
    assert status == 400 and body["error"]["field"] == "conversation_id"


async def test_a_signed_whatsapp_message_opens_a_conversation_the_supervisor_sees(scene: Scene) -> None:
    body = whatsapp_text(PHONE_NUMBER_ID, "573001112233", "wamid.work-1", "Hola, quiero pagar", "Marta")
    response = await scene.engine.client.post(
        "/webhooks/whatsapp", data=body, headers=signed(body, WA_SECRET)
    )
    assert response.status == 200, await response.text()
    await scene.engine.next_outcome()
    status, listed = await scene.get("/api/conversations", "carla")
    assert status == 200 and len(listed["items"]) == 1
    conversation = listed["items"][0]
    assert conversation["channel"] == "whatsapp" and conversation["customer"]["name"] == "Marta"
    status, detail = await scene.get(f"/api/conversations/{conversation['id']}", "carla")
    assert [e["text"] for e in detail["timeline"]] == ["Hola, quiero pagar"]
    written = datetime.fromtimestamp(1763720000, UTC)  # the message's own timestamp
    assert detail["window_closes_at"] == (written + timedelta(hours=24)).isoformat()


# ------------------------------------------------------------------------------------ notes


async def test_a_note_joins_the_timeline_and_is_never_sent(scene: Scene) -> None:
    conversation = await scene.conversation()
    status, note = await scene.send(
        "POST", f"/api/conversations/{conversation}/notes", {"text": "Cliente pide llamar a las 5"}
    )
    assert status == 201
    assert note["direction"] == "note" and note["kind"] == "note"
    assert note["agent_id"] == str(scene.ws.agents["ana"])
    status, detail = await scene.get(f"/api/conversations/{conversation}")
    assert [(e["direction"], e["text"]) for e in detail["timeline"]] == [
        ("note", "Cliente pide llamar a las 5")
    ]
    async with scene.engine.database.session() as session:
        rows = (await session.execute(sa.select(MessageRow))).scalars().all()
    assert [(r.direction, r.delivery_state, r.external_id) for r in rows] == [("note", None, None)]


async def test_an_empty_note_is_400_naming_text(scene: Scene) -> None:
    conversation = await scene.conversation()
    status, body = await scene.send("POST", f"/api/conversations/{conversation}/notes", {"text": "  "})
    assert status == 400 and body["error"]["field"] == "text"


# ------------------------------------------------------------------------------------ closing


async def test_a_promise_to_pay_requires_a_date(scene: Scene) -> None:
    conversation = await scene.conversation()
    status, body = await scene.send(
        "POST",
        f"/api/conversations/{conversation}/close",
        {"disposition": {"code": "promesa_de_pago", "amount": 150000}},
    )
    assert status == 400 and body["error"]["field"] == "disposition.date"


async def test_a_promise_to_pay_requires_an_amount(scene: Scene) -> None:
    conversation = await scene.conversation()
    status, body = await scene.send(
        "POST",
        f"/api/conversations/{conversation}/close",
        {"disposition": {"code": "promesa_de_pago", "date": "2026-03-13"}},
    )
    assert status == 400 and body["error"]["field"] == "disposition.amount"


async def test_an_unknown_disposition_code_is_400_listing_the_campaigns_codes(scene: Scene) -> None:
    conversation = await scene.conversation()
    status, body = await scene.send(
        "POST", f"/api/conversations/{conversation}/close", {"disposition": {"code": "se_fue"}}
    )
    assert status == 400 and body["error"]["field"] == "disposition.code"
    assert body["error"]["details"]["codes"] == ["negociacion", "pago_realizado", "promesa_de_pago"]


async def test_closing_without_a_disposition_is_400_when_the_campaign_has_them(scene: Scene) -> None:
    conversation = await scene.conversation()
    status, body = await scene.send("POST", f"/api/conversations/{conversation}/close", {})
    assert status == 400 and body["error"]["field"] == "disposition"


async def test_a_promise_to_pay_in_the_past_is_400(scene: Scene) -> None:
    conversation = await scene.conversation()
    status, body = await scene.send(
        "POST",
        f"/api/conversations/{conversation}/close",
        {"disposition": {"code": "promesa_de_pago", "date": "2026-03-09", "amount": "100"}},
    )
    assert status == 400 and body["error"]["field"] == "disposition.date"


async def test_closing_stores_the_disposition_schedules_the_follow_up_and_tells_the_router(
    scene: Scene,
) -> None:
    conversation = await scene.conversation()
    async with route_spy(scene.engine, scene.ws.id) as seen:
        status, body = await scene.send(
            "POST",
            f"/api/conversations/{conversation}/close",
            {"disposition": {"code": "promesa_de_pago", "date": "2026-03-13", "amount": 150000}},
        )
        assert status == 200, body
        closed = await next_input(seen, ConversationClosedInput)
    assert closed.conversation_id == conversation
    assert body["status"] == "closed" and body["closed_at"] == NOW.isoformat()
    # Due at the start of the promised day in the campaign's time zone (Bogotá, UTC-5).
    assert body["follow_up_at"] == datetime(2026, 3, 13, 5, 0, tzinfo=UTC).isoformat()
    disposition = body["disposition"]
    assert disposition["code"] == "promesa_de_pago" and disposition["label"] == "Promesa de pago"
    assert disposition["date"] == "2026-03-13" and disposition["amount"] == "150000"
    assert disposition["follow_up"]["queue"] == "promesas"
    assert disposition["follow_up"]["queue_id"] == str(scene.ws.queues["promesas"])
    assert disposition["follow_up"]["template"] == "recordatorio_promesa"


async def test_an_agent_cannot_close_a_conversation_only_offered_to_them(scene: Scene) -> None:
    offered = await scene.conversation(status="offered", agent=None, assigned_ago_s=None)
    await scene.ws.offer(scene.engine.database, offered, "ana", now=scene.clock())
    status, body = await scene.send(
        "POST",
        f"/api/conversations/{offered}/close",
        {"disposition": {"code": "pago_realizado", "amount": 10}},
    )
    assert status == 403 and body["error"]["code"] == "forbidden"


async def test_closing_a_closed_conversation_is_409(scene: Scene) -> None:
    conversation = await scene.conversation()
    request = {"disposition": {"code": "pago_realizado", "amount": "99.50"}}
    status, _ = await scene.send("POST", f"/api/conversations/{conversation}/close", request)
    assert status == 200
    status, body = await scene.send("POST", f"/api/conversations/{conversation}/close", request)
    assert status == 409 and body["error"]["code"] == "conflict"


async def test_the_desk_learns_the_campaigns_dispositions_templates_and_queues_of_a_conversation(
    scene: Scene,
) -> None:
    conversation = await scene.conversation()
    status, options = await scene.get(f"/api/conversations/{conversation}/options")
    assert status == 200
    promise = next(d for d in options["dispositions"] if d["code"] == "promesa_de_pago")
    assert promise == {
        "code": "promesa_de_pago",
        "label": "Promesa de pago",
        "requires": ["amount", "date"],
        "schedules_follow_up": True,
    }
    assert {d["code"] for d in options["dispositions"]} == {
        "promesa_de_pago",
        "negociacion",
        "pago_realizado",
    }
    assert options["templates"] == [
        {
            "name": "recordatorio_promesa",
            "language": "es_CO",
            "parameters": ["nombre"],
            "category": "utility",
            "body": None,
        }
    ]
    assert sorted(q["name"] for q in options["queues"]) == ["mora", "promesas"]


async def test_a_closed_conversation_takes_no_reply_and_no_note(scene: Scene) -> None:
    conversation = await scene.conversation()
    close = {"disposition": {"code": "pago_realizado", "amount": "99.50"}}
    assert (await scene.send("POST", f"/api/conversations/{conversation}/close", close))[0] == 200
    status, body = await scene.send("POST", f"/api/conversations/{conversation}/messages", {"text": "hola"})
    assert status == 409 and body["error"]["field"] == "conversation_id"
    assert "closed" in body["error"]["message"]
    status, body = await scene.send("POST", f"/api/conversations/{conversation}/notes", {"text": "nota"})
    assert status == 409 and body["error"]["field"] == "conversation_id"
    status, shown = await scene.get(f"/api/conversations/{conversation}")
    assert status == 200
    assert not [e for e in shown["timeline"] if e["direction"] in ("out", "note")]


async def test_a_follow_up_re_enters_routing_when_due(scene: Scene) -> None:
    db = scene.engine.database
    conversation = await scene.conversation()
    scheduler = scene.engine.client.server.app[FOLLOWUPS]
    status, body = await scene.send(
        "POST",
        f"/api/conversations/{conversation}/close",
        {"disposition": {"code": "negociacion", "note": "Pide plazo hasta el jueves"}},
    )
    assert status == 200
    assert body["follow_up_at"] == (NOW + timedelta(days=2)).isoformat()

    scene.clock.advance(86400)
    assert await scheduler.run_due() == []  # not due yet

    async with route_spy(scene.engine, scene.ws.id) as seen:
        scene.clock.advance(86400 + 1)  # moving the clock wakes the scheduler
        nudge = await next_input(seen, ConversationNudge)
    assert nudge.reason == "follow_up"
    async with db.session() as session:
        reopened = await session.get(ConversationRow, nudge.conversation_id)
        original = await session.get(ConversationRow, conversation)
    assert reopened is not None and original is not None
    assert reopened.id != conversation and reopened.customer_id == original.customer_id
    assert reopened.queue_id == scene.ws.queues["promesas"]
    assert reopened.status != "closed" and reopened.opened_at.replace(tzinfo=UTC) == scene.clock()
    assert original.follow_up_at is None
    assert original.disposition is not None
    assert original.disposition["follow_up"]["conversation_id"] == str(reopened.id)
    status, detail = await scene.get(f"/api/conversations/{reopened.id}", "carla")
    assert detail["timeline"][-1]["kind"] == "system"
    assert detail["timeline"][-1]["text"] == "Seguimiento programado: En negociación"
    assert await scheduler.run_due() == []  # done once


async def test_a_close_and_the_follow_up_it_schedules_are_recorded_with_their_actors(scene: Scene) -> None:
    conversation = await scene.conversation()
    status, _ = await scene.send(
        "POST",
        f"/api/conversations/{conversation}/close",
        {"disposition": {"code": "negociacion", "note": "Pide plazo hasta el jueves"}},
    )
    assert status == 200
    opened: asyncio.Queue[FollowUpOpened] = asyncio.Queue()
    scene.engine.client.server.app[FOLLOWUPS].observers.append(opened.put_nowait)
    scene.clock.advance(2 * 86400 + 1)  # moving the clock wakes the scheduler
    async with asyncio.timeout(10):
        taken = await opened.get()

    async with scene.engine.database.session() as session:
        rows = (
            (
                await session.execute(
                    sa.select(AUDIT).where(AUDIT.c.conversation_id.in_([conversation, taken.conversation_id]))
                )
            )
            .mappings()
            .all()
        )
    closed = [r for r in rows if r["action"] == WorkAction.CLOSED]
    assert [(r["conversation_id"], r["actor"], r["agent_id"]) for r in closed] == [
        (conversation, f"agent:{scene.ws.agents['ana']}", scene.ws.agents["ana"])
    ]
    disposition = closed[0]["details"]["disposition"]
    assert closed[0]["details"]["reason"] == CloseReason.AGENT
    assert (disposition["code"], disposition["note"]) == ("negociacion", "Pide plazo hasta el jueves")
    assert disposition["follow_up"]["queue"] == "promesas"
    follow_up = [r for r in rows if r["action"] == WorkAction.OPENED]
    assert [(r["conversation_id"], r["actor"], r["queue_id"]) for r in follow_up] == [
        (taken.conversation_id, "system", scene.ws.queues["promesas"])
    ]
    assert follow_up[0]["details"]["follow_up_of"] == str(conversation)


async def test_a_follow_up_joins_the_customers_open_conversation_if_there_is_one(scene: Scene) -> None:
    customer = await scene.ws.add_customer(scene.engine.database, "Marta")
    conversation = await scene.conversation(customer_id=customer)
    status, _ = await scene.send(
        "POST",
        f"/api/conversations/{conversation}/close",
        {"disposition": {"code": "negociacion", "note": "Vuelve a escribir el jueves"}},
    )
    assert status == 200
    wrote_again = await scene.conversation(
        customer_id=customer, status="waiting", agent=None, assigned_ago_s=None
    )
    opened: asyncio.Queue[FollowUpOpened] = asyncio.Queue()
    scene.engine.client.server.app[FOLLOWUPS].observers.append(opened.put_nowait)
    scene.clock.advance(2 * 86400 + 1)  # moving the clock wakes the scheduler
    async with asyncio.timeout(10):
        taken = await opened.get()
    assert (taken.follow_up_of, taken.conversation_id, taken.reopened) == (conversation, wrote_again, True)
    status, listed = await scene.get("/api/conversations", "carla", status="waiting")
    assert [c["id"] for c in listed["items"]] == [str(wrote_again)]


# ------------------------------------------------------------------------------------ transfer, presence


async def test_an_agent_transfers_their_conversation_to_a_queue(scene: Scene) -> None:
    conversation = await scene.conversation()
    async with route_spy(scene.engine, scene.ws.id) as seen:
        status, body = await scene.send(
            "POST",
            f"/api/conversations/{conversation}/transfer",
            {"queue_id": str(scene.ws.queues["promesas"])},
        )
        assert status == 202, body
        transfer = await next_input(seen, TransferInput)
    assert transfer.conversation_id == conversation
    assert transfer.to_queue_id == scene.ws.queues["promesas"] and transfer.to_agent_id is None
    assert transfer.actor == f"agent:{scene.ws.agents['ana']}"
    assert body["router_input"]["type"] == "transfer"


async def test_an_agent_transfers_their_conversation_to_another_agent(scene: Scene) -> None:
    conversation = await scene.conversation()
    async with route_spy(scene.engine, scene.ws.id) as seen:
        status, _ = await scene.send(
            "POST", f"/api/conversations/{conversation}/transfer", {"agent_id": str(scene.ws.agents["beto"])}
        )
        assert status == 202
        transfer = await next_input(seen, TransferInput)
    assert transfer.to_agent_id == scene.ws.agents["beto"] and transfer.to_queue_id is None


async def test_a_transfer_needs_exactly_one_known_target(scene: Scene) -> None:
    conversation = await scene.conversation()
    path = f"/api/conversations/{conversation}/transfer"
    both = {"queue_id": str(scene.ws.queues["mora"]), "agent_id": str(scene.ws.agents["beto"])}
    for body, status_code, field in (
        ({}, 400, "queue_id"),
        (both, 400, "queue_id"),
        ({"queue_id": "mora"}, 400, "queue_id"),
        ({"queue_id": str(uuid.uuid4())}, 404, "queue_id"),
        ({"agent_id": str(uuid.uuid4())}, 404, "agent_id"),
    ):
        status, answer = await scene.send("POST", path, body)
        assert (status, answer["error"]["field"]) == (status_code, field), body


async def test_an_agent_cannot_transfer_someone_elses_conversation(scene: Scene) -> None:
    betos = await scene.conversation(agent="beto")
    status, _ = await scene.send(
        "POST", f"/api/conversations/{betos}/transfer", {"queue_id": str(scene.ws.queues["promesas"])}
    )
    assert status == 403


async def test_an_agent_sets_their_presence(scene: Scene) -> None:
    async with route_spy(scene.engine, scene.ws.id) as seen:
        status, body = await scene.send("PUT", "/api/agents/me/presence", {"presence": "away"}, "beto")
        assert status == 202 and body["router_input"]["type"] == "presence"
        presence = await next_input(seen, PresenceInput)
    assert presence.agent_id == scene.ws.agents["beto"] and presence.presence == "away"


async def test_an_unknown_presence_is_400_and_a_token_without_agent_is_403(scene: Scene) -> None:
    status, body = await scene.send("PUT", "/api/agents/me/presence", {"presence": "wrap_up"})
    assert status == 400 and body["error"]["field"] == "presence"
    status, body = await scene.send("PUT", "/api/agents/me/presence", {"presence": "away"}, "admin")
    assert status == 403
