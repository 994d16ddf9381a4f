"""A signed delivery is never refused for its content (issue 11, "Nothing lost").

Through the real path — signed webhook over HTTP → ingress → broker → pipeline → database → the
timeline API — on both backends: a batch mixing known messages with parts the parser does not
know (a new interactive type, an unknown message type, an interactive message without its body,
a status sent to a group, unknown fields) is answered 200; the known message is stored and
routed as before, each unknown customer part is on the timeline as ``unsupported``, and nothing
else in the batch is lost.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from channels.instagram.testing import text_event
from channels.instagram.testing import webhook_body as ig_webhook_body
from channels.meta.signature import sign_body
from channels.whatsapp.testing import WABA_ID, contact, webhook_body
from storage.tables import ConversationRow, MessageRow, RawDeliveryRow
from tests.e2e.conftest import Engine, StartEngine
from tests.e2e.test_identity_story import (
    IG_ACCOUNT,
    IG_SECRET,
    PATIENT_IGSID,
    PATIENT_WA,
    PHONE_NUMBER_ID,
    T0,
    WA_SECRET,
    Clinic,
    _secrets,  # noqa: F401  (the channel secrets, autouse)
    api,
    customer_by,
    start_clinic,
)


def _signed(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign_body(body, secret), "Content-Type": "application/json"}


def _wa_message(wamid: str, kind: str, **content: Any) -> dict[str, Any]:
    return {"from": PATIENT_WA, "id": wamid, "timestamp": str(T0), "type": kind, **content}


def _whatsapp_batch(messages: list[dict[str, Any]], statuses: tuple[dict[str, Any], ...] = ()) -> bytes:
    return webhook_body(
        PHONE_NUMBER_ID,
        messages=messages,
        statuses=statuses,
        contacts=[contact(PATIENT_WA)],
        waba_id=WABA_ID,
        extra={"a_field_meta_added_later": {"anything": True}},
    )


CALL_PERMISSION = _wa_message(
    "wamid.call-permission",
    "interactive",
    interactive={
        "type": "call_permission_reply",
        "call_permission_reply": {
            "response": "accept",
            "is_permanent": False,
            "expiration_timestamp": T0 + 604800,
        },
    },
)
POLL = _wa_message("wamid.poll", "poll", poll={"name": "¿Turno?", "options": ["mañana", "tarde"]})
INTERACTIVE_WITHOUT_BODY = _wa_message("wamid.no-body", "interactive")
GROUP_STATUS = {
    "id": "wamid.to-a-group",
    "status": "delivered",
    "timestamp": str(T0),
    "recipient_id": "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjMwNDc5MDk2NjU1MzMZD",
    "recipient_type": "group",
    "recipient_participant_id": PATIENT_WA,
}


async def _post(engine: Engine, path: str, body: bytes, secret: str) -> int:
    response = await engine.client.post(path, data=body, headers=_signed(body, secret))
    await response.read()
    return response.status


async def _count(engine: Engine, table: type, *where: Any) -> int:
    async with engine.database.session() as s:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int((await s.execute(query)).scalar_one())


async def _customer_timeline(engine: Engine, clinic: Clinic, identifier: str) -> list[dict[str, Any]]:
    customer = await customer_by(engine, clinic, identifier)
    page = await api(engine, clinic, "GET", f"/api/customers/{customer['id']}/timeline", role="supervisor")
    return list(page["entries"])


async def test_a_whatsapp_batch_with_unknown_parts_is_200_the_known_message_routed_the_rest_unsupported(
    start_engine: StartEngine,
) -> None:
    engine, clinic = await start_clinic(start_engine)
    text = _wa_message("wamid.hola", "text", text={"body": "Hola, quiero una cita"})
    body = _whatsapp_batch([CALL_PERMISSION, text, POLL, INTERACTIVE_WITHOUT_BODY], (GROUP_STATUS,))

    assert await _post(engine, "/webhooks/whatsapp", body, WA_SECRET) == 200
    outcome = await engine.next_outcome()
    assert outcome.stored_messages == 4 and outcome.nudges  # the message opened a routed conversation

    conversations = await api(engine, clinic, "GET", "/api/conversations", role="supervisor")
    (conversation,) = conversations["items"]
    detail = await api(engine, clinic, "GET", f"/api/conversations/{conversation['id']}", role="supervisor")
    timeline = [(e["kind"], e["text"]) for e in detail["timeline"]]
    assert ("message", "Hola, quiero una cita") in timeline
    assert timeline.count(("unsupported", None)) == 3
    customer_kinds = sorted(e["kind"] for e in await _customer_timeline(engine, clinic, "+" + PATIENT_WA))
    assert customer_kinds == ["message", "unsupported", "unsupported", "unsupported"]
    assert await _count(engine, RawDeliveryRow) == 1


async def test_an_unsupported_part_alone_joins_the_timeline_but_opens_no_conversation(
    start_engine: StartEngine,
) -> None:
    engine, clinic = await start_clinic(start_engine)
    assert await _post(engine, "/webhooks/whatsapp", _whatsapp_batch([CALL_PERMISSION]), WA_SECRET) == 200
    assert (await engine.next_outcome()).stored_messages == 1
    assert await _count(engine, ConversationRow) == 0
    (entry,) = await _customer_timeline(engine, clinic, "+" + PATIENT_WA)
    assert entry["kind"] == "unsupported" and entry["external_id"] == "wamid.call-permission"


async def test_a_status_sent_to_a_group_next_to_a_message_loses_neither(start_engine: StartEngine) -> None:
    engine, clinic = await start_clinic(start_engine)
    text = _wa_message("wamid.tras-grupo", "text", text={"body": "¿Siguen abiertos?"})
    assert (
        await _post(engine, "/webhooks/whatsapp", _whatsapp_batch([text], (GROUP_STATUS,)), WA_SECRET) == 200
    )
    assert (await engine.next_outcome()).stored_messages == 1
    (entry,) = await _customer_timeline(engine, clinic, "+" + PATIENT_WA)
    assert (entry["kind"], entry["text"]) == ("message", "¿Siguen abiertos?")


async def test_signed_json_that_is_no_webhook_is_200_kept_raw_and_recorded_unroutable(
    start_engine: StartEngine,
) -> None:
    engine, _clinic = await start_clinic(start_engine)
    assert await _post(engine, "/webhooks/whatsapp", b'{"hola": "mundo"}', WA_SECRET) == 200
    assert (await engine.next_outcome()).stored_messages == 0
    async with engine.database.session() as s:
        (status,) = (await s.execute(sa.select(RawDeliveryRow.status))).scalars().all()  # type: ignore[call-overload]
    assert status == "unroutable"
    assert await _count(engine, MessageRow) == 0


async def test_an_instagram_batch_with_an_unknown_event_kind_keeps_the_message_and_the_unknown(
    start_engine: StartEngine,
) -> None:
    engine, clinic = await start_clinic(start_engine)
    people = {"sender": {"id": PATIENT_IGSID}, "recipient": {"id": IG_ACCOUNT}}
    body = ig_webhook_body(
        IG_ACCOUNT,
        [
            text_event(PATIENT_IGSID, IG_ACCOUNT, "mid.hola", "Hola", timestamp_ms=T0 * 1000),
            {
                **people,
                "timestamp": T0 * 1000 + 1,
                "pass_thread_control": {"new_owner_app_id": "263902037430900", "metadata": "x"},
            },
            {**people, "timestamp": T0 * 1000 + 2, "message": {"mid": 12}},
        ],
        time_ms=T0 * 1000,
    )
    assert await _post(engine, "/webhooks/instagram", body, IG_SECRET) == 200
    assert (await engine.next_outcome()).stored_messages == 3
    entries = await _customer_timeline(engine, clinic, f"instagram_id:{IG_ACCOUNT}:{PATIENT_IGSID}")
    assert sorted((e["kind"], e["text"]) for e in entries) == [
        ("message", "Hola"),
        ("unsupported", None),
        ("unsupported", None),
    ]
