"""The customers API: look-up, merges by an agent, conversation continuity, roles and workspaces."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from storage.tables import AuditRow, ConversationRow, MessageRow
from tests.e2e.conftest import StartEngine
from tests.e2e.test_identity_story import (
    IG_ACCOUNT,
    PATIENT_IGSID,
    T0,
    _secrets,  # noqa: F401  (the channel secrets, autouse)
    api,
    customer_by,
    instagram_body,
    send_instagram,
    send_whatsapp,
    start_clinic,
    whatsapp_body,
)

IG_KEY = f"instagram_id:{IG_ACCOUNT}:{PATIENT_IGSID}"
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]


async def test_any_written_form_of_a_phone_finds_the_whatsapp_customer(start_engine: StartEngine) -> None:
    engine, clinic = await start_clinic(start_engine)
    await send_whatsapp(engine, whatsapp_body("wamid.1", "Hola"))
    ids = {
        (await customer_by(engine, clinic, form))["id"]
        for form in ("+52 55 1234 5678", "+5215512345678", "5215512345678", "phone:+525512345678")
    }
    assert len(ids) == 1
    national = await api(
        engine, clinic, "GET", "/api/customers", params={"identifier": "55 1234 5678", "region": "mx"}
    )
    assert [c["id"] for c in national["customers"]] == list(ids)
    unknown = await api(engine, clinic, "GET", "/api/customers", params={"identifier": "nadie@example.com"})
    assert unknown["customers"] == []


async def test_a_customer_of_another_workspace_is_not_found(start_engine: StartEngine) -> None:
    engine, clinic = await start_clinic(start_engine)
    response = await engine.client.get(
        "/api/customers/0198f000-0000-7000-8000-000000000001", headers=clinic.auth("agent")
    )
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_unmerging_and_the_blocklist_need_a_supervisor(start_engine: StartEngine) -> None:
    engine, clinic = await start_clinic(start_engine)
    for method, path, body in (
        ("POST", "/api/customers/unmerge", {"audit_id": "0198f000-0000-7000-8000-000000000001"}),
        ("POST", "/api/identity/blocklist", {"identifier": "+52 55 8888 7777"}),
    ):
        response = await engine.client.request(method, path, json=body, headers=clinic.auth("agent"))
        assert response.status == 403, path


async def test_an_agent_merge_is_previewed_then_applied_and_audited_with_its_actor(
    start_engine: StartEngine,
) -> None:
    engine, clinic = await start_clinic(start_engine)
    await send_whatsapp(engine, whatsapp_body("wamid.1", "Hola"))
    await send_instagram(engine, instagram_body("mid.1", "Hola de nuevo", at_ms=(T0 + 60) * 1000))
    wa = await customer_by(engine, clinic, "+5215512345678")
    ig = await customer_by(engine, clinic, IG_KEY)
    body = {"customer_ids": [ig["id"], wa["id"]]}

    preview = await api(engine, clinic, "POST", "/api/customers/merge/preview", json=body)
    assert preview["would_merge"] and preview["survivor"] == wa["id"] and preview["merged_away"] == [ig["id"]]
    assert preview["conversations"] == 2
    assert (await customer_by(engine, clinic, IG_KEY))["id"] == ig["id"]  # a preview changes nothing

    merged = await api(engine, clinic, "POST", "/api/customers/merge", json=body)
    assert merged["customer_id"] == wa["id"]
    assert merged["audit"]["evidence"][0]["source"] == "agent_link"
    async with engine.database.session() as s:
        row = (await s.execute(sa.select(AUDIT).where(AUDIT.c.id == uuid.UUID(merged["audit"]["id"])))).one()
    assert row.action == "identity.merge" and row.actor == merged["audit"]["actor"] != "system"
    assert row.details["before"] == [wa["id"], ig["id"]]


async def test_after_a_merge_the_older_open_conversation_continues_on_the_channel_last_used(
    start_engine: StartEngine,
) -> None:
    engine, clinic = await start_clinic(start_engine)
    await send_whatsapp(engine, whatsapp_body("wamid.1", "Hola"))
    await send_instagram(engine, instagram_body("mid.1", "Hola por aquí", at_ms=(T0 + 60) * 1000))
    wa = await customer_by(engine, clinic, "+5215512345678")
    ig = await customer_by(engine, clinic, IG_KEY)
    kept, closed = wa["conversations"][0]["id"], ig["conversations"][0]["id"]
    await api(
        engine, clinic, "POST", "/api/customers/merge", json={"identifiers": ["+5215512345678", IG_KEY]}
    )

    await send_instagram(engine, instagram_body("mid.2", "¿Me confirman la cita?", at_ms=(T0 + 120) * 1000))
    async with engine.database.session() as s:
        conversations = (await s.execute(sa.select(CONVERSATION))).all()
        last = (await s.execute(sa.select(MESSAGE).where(MESSAGE.c.external_id == "mid.2"))).one()
        notes = (await s.execute(sa.select(MESSAGE).where(MESSAGE.c.direction == "note"))).all()
    keep_row = next(c for c in conversations if str(c.id) == kept)
    closed_row = next(c for c in conversations if str(c.id) == closed)
    assert last.conversation_id == keep_row.id and str(last.customer_id) == wa["id"]
    assert keep_row.status == "waiting" and keep_row.channel == "instagram"
    assert closed_row.status == "closed" and closed_row.disposition == {
        "code": "merged",
        "into": kept,
        "previous_status": "waiting",
    }
    assert [n.conversation_id for n in notes] == [closed_row.id]


async def test_a_rejected_suggestion_is_never_suggested_again(start_engine: StartEngine) -> None:
    engine, clinic = await start_clinic(start_engine)
    await send_whatsapp(engine, whatsapp_body("wamid.1", "Hola"))
    await send_instagram(
        engine, instagram_body("mid.1", "mi número es +52 55 1234 5678", at_ms=(T0 + 60) * 1000)
    )
    ig = await customer_by(engine, clinic, IG_KEY)
    [suggestion] = ig["suggestions"]
    assert suggestion["evidence"]["source"] == "customer_stated"
    rejected = await api(engine, clinic, "POST", f"/api/suggestions/{suggestion['id']}/reject")
    assert rejected["audit"]["action"] == "reject"
    await send_instagram(
        engine, instagram_body("mid.2", "otra vez: +52 55 1234 5678", at_ms=(T0 + 120) * 1000)
    )
    again = await customer_by(engine, clinic, IG_KEY)
    assert again["suggestions"] == [] and again["id"] == ig["id"]
    response = await engine.client.post(
        f"/api/suggestions/{suggestion['id']}/confirm", headers=clinic.auth("agent")
    )
    assert response.status == 409


async def test_a_blocked_identifier_cannot_be_linked_until_it_is_unblocked(start_engine: StartEngine) -> None:
    engine, clinic = await start_clinic(start_engine)
    await send_whatsapp(engine, whatsapp_body("wamid.1", "Hola"))
    await send_instagram(engine, instagram_body("mid.1", "Hola", at_ms=(T0 + 60) * 1000))
    blocked = await api(
        engine, clinic, "POST", "/api/identity/blocklist", "supervisor", json={"identifier": IG_KEY}
    )
    assert blocked["key"] == IG_KEY and blocked["audit"]["action"] == "block"
    link = {"identifiers": ["+5215512345678", IG_KEY]}
    response = await engine.client.post("/api/customers/merge", json=link, headers=clinic.auth("agent"))
    assert response.status == 409
    unblocked = await api(engine, clinic, "DELETE", f"/api/identity/blocklist/{IG_KEY}", "supervisor")
    assert unblocked["blocked"] is False
    merged = await api(engine, clinic, "POST", "/api/customers/merge", json=link)
    assert merged["audit"]["action"] == "merge"
