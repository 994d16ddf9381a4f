"""Erasing a person through the API, on the embedded backend and on PostgreSQL + RabbitMQ.

Lucía writes from two WhatsApp numbers (one webhook batch shared with Marta, a caption and a
photo, an email stated in a message, a delivery status naming her number), an agent merges her
two records, a supervisor adds a note and closes her conversations with a disposition.  After
the erasure a scan of every text, JSON and binary column of every table finds none of her
numbers, email, names or texts; the report counts are what they were; Marta, and the other
workspace where the same number is a customer too, keep everything; and her number writing
again is a new customer.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from channels.whatsapp.testing import contact, text_message, webhook_body
from core.ids import new_id
from router.service import ManualClock
from storage.database import Database
from storage.tables import ConversationRow, MessageRow, RawDeliveryRow, metadata
from tests.e2e.conftest import Engine, StartWorkspaces
from tests.support.campaigns import signed
from tests.support.work import WORK_SECRETS, Workspace

ALFA_NUMBER = "113829475016311"
BETA_NUMBER = "113829475016322"
WA_SECRET = WORK_SECRETS["WORK_WA_SECRET"]
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
T0 = 1773150000  # a few minutes before NOW

LUCIA = "5215512345678"
LUCIA_OTHER = "5215587654321"
LUCIA_NAME = "Lucía Fernández"
LUCIA_EMAIL = "lucia.fernandez@correo.example"
MARTA = "573001112233"

TEXTS = {
    "first": "Hola, soy Lucía y debo tres cuotas del crédito",
    "email": f"Pueden escribirme, mi correo es {LUCIA_EMAIL}",
    "caption": "Comprobante de Lucía del pago parcial",
    "other": "Les escribo desde mi otro número",
    "note": "Lucía Fernández pidió que la llamen al 55 8765 4321",
    "promise": "Lucía promete pagar el viernes",
    "reply": "Hola Lucía, su saldo pendiente es de 1.200.000",
}
MARTA_TEXT = "Buenos días, quiero mi estado de cuenta"
MARTA_MENTION = "Mi vecina les escribe desde {}"
NEEDLES = [
    "+5215512345678",
    "5215512345678",
    "+525512345678",
    "525512345678",
    "5512345678",
    "+5215587654321",
    "5215587654321",
    "525587654321",
    "5587654321",
    "55 8765 4321",
    LUCIA_EMAIL,
    LUCIA_NAME,
    "lucia fernandez",
    "Lucía",
    *TEXTS.values(),
]

CONV = ConversationRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
RAW = RawDeliveryRow.__table__  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ helpers


async def deliver(engine: Engine, body: bytes) -> int:
    """A signed WhatsApp webhook through the real ingress and pipeline: messages stored."""
    response = await engine.client.post("/webhooks/whatsapp", data=body, headers=signed(body, WA_SECRET))
    assert response.status == 200, await response.text()
    return (await engine.next_outcome()).stored_messages


def message_body(number: str, *items: tuple[str, str, str, str]) -> bytes:
    """``(wa_id, name, wamid, text)`` per message, in one webhook body."""
    return webhook_body(
        number,
        messages=[
            text_message(wa, wamid, text, timestamp=T0 + i) for i, (wa, _, wamid, text) in enumerate(items)
        ],
        contacts=[contact(wa, name) for wa, name, _, _ in items],
    )


def image_body(number: str) -> bytes:
    image = {
        "from": LUCIA,
        "id": "wamid.lucia.image",
        "timestamp": str(T0 + 30),
        "type": "image",
        "image": {
            "caption": TEXTS["caption"],
            "mime_type": "image/jpeg",
            "sha256": "6d3f0a8c1b5e2c9f4a7d8e1b3c5a7f9e0d2c4b6a8e0f1a3c5e7b9d1f3a5c7e9b",
            "id": "1479537139650973",
        },
    }
    return webhook_body(number, messages=[image], contacts=[contact(LUCIA, LUCIA_NAME)])


def status_body(number: str) -> bytes:
    status = {"id": "wamid.reply.lucia", "status": "read", "timestamp": str(T0 + 90), "recipient_id": LUCIA}
    return webhook_body(number, statuses=[status])


async def call(
    engine: Engine, ws: Workspace, who: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    response = await engine.client.request(method, path, json=body, headers=ws.auth(who))
    return response.status, await response.json()


async def ok(engine: Engine, ws: Workspace, who: str, method: str, path: str, body: Any = None) -> Any:
    status, answer = await call(engine, ws, who, method, path, body)
    assert status < 300, f"{method} {path}: {status} {answer}"
    return answer


async def customer_of(engine: Engine, ws: Workspace, phone: str) -> dict[str, Any] | None:
    found = await ok(engine, ws, "carla", "GET", f"/api/customers?identifier=%2B{phone}")
    return found["customers"][0] if found["customers"] else None


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value) + "\n" + json.dumps(value, ensure_ascii=False)
    return str(value)


def _holds_text(column_type: Any) -> bool:
    """Strings (SQLModel's ``AutoString`` too), JSON and bytes: whatever is not a number, a time,
    a flag or an id."""
    impl = getattr(column_type, "impl_instance", column_type)
    if isinstance(impl, sa.Uuid | sa.Integer | sa.Boolean | sa.DateTime | sa.Float | sa.Numeric):
        return False
    assert isinstance(impl, sa.String | sa.Text | sa.JSON | sa.LargeBinary), (
        f"a column type to decide: {impl!r}"
    )
    return True


async def personal_values_left(engine: Engine, skip_workspace: uuid.UUID) -> list[str]:
    return await values_in_database(engine.database, NEEDLES, skip_workspace)


async def values_in_database(
    database: Database, values: Sequence[str], skip_workspace: uuid.UUID | None = None
) -> list[str]:
    """Every text, JSON and binary column of every table (the rows of ``skip_workspace`` aside),
    read as text: ``table.column: value`` wherever one of ``values`` is found, in any case, as
    written or as JSON escapes it."""
    found: list[str] = []
    needles = [(n, n.casefold()) for n in values] + [(n, json.dumps(n)[1:-1].casefold()) for n in values]
    async with database.session() as session:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if _holds_text(c.type)]
            if not columns:
                continue
            query = sa.select(*columns)
            if "workspace_id" in table.c and skip_workspace is not None:
                query = query.where(
                    sa.or_(table.c.workspace_id.is_(None), table.c.workspace_id != skip_workspace)
                )
            for row in await session.execute(query):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = _as_text(value).casefold()
                    found += [f"{table.name}.{column.name}: {n!r}" for n, folded in needles if folded in text]
    return sorted(set(found))


async def report_counts(engine: Engine, ws: Workspace) -> dict[str, Any]:
    async with engine.database.session() as session:
        per_queue = Counter(
            str(q)
            for (q,) in await session.execute(sa.select(CONV.c.queue_id).where(CONV.c.workspace_id == ws.id))
        )
        per_conversation = Counter(
            str(c)
            for (c,) in await session.execute(
                sa.select(MSG.c.conversation_id).where(MSG.c.workspace_id == ws.id)
            )
        )
        codes = Counter(
            (d or {}).get("code")
            for (d,) in await session.execute(
                sa.select(CONV.c.disposition).where(CONV.c.workspace_id == ws.id)
            )
        )
        statuses = Counter(
            s for (s,) in await session.execute(sa.select(CONV.c.status).where(CONV.c.workspace_id == ws.id))
        )
    return {
        "per_queue": per_queue,
        "per_conversation": per_conversation,
        "codes": codes,
        "statuses": statuses,
    }


async def add_reply(engine: Engine, ws: Workspace, conversation_id: str) -> None:
    """A template reply as the outbound worker leaves it once sent (its parameters name her)."""
    async with engine.database.transaction() as session:
        conv = await session.get(ConversationRow, uuid.UUID(conversation_id))
        assert conv is not None
        session.add(
            MessageRow(
                id=new_id(),
                workspace_id=ws.id,
                conversation_id=conv.id,
                customer_id=conv.customer_id,
                identifier_id=conv.identifier_id,
                direction="out",
                kind="message",
                channel="whatsapp",
                external_id="wamid.reply.lucia",
                text=TEXTS["reply"],
                payload={
                    "template": {
                        "name": "recordatorio_promesa",
                        "language": "es_CO",
                        "parameters": [LUCIA_NAME],
                    }
                },
                agent_id=ws.agents["ana"],
                delivery_state="sent",
                created_at=NOW,
                stored_at=NOW,
            )
        )


async def lucias_story(engine: Engine, alfa: Workspace, beta: Workspace) -> dict[str, Any]:
    """Everything the workspace holds about Lucía, through the webhooks and the API."""
    shared = message_body(
        ALFA_NUMBER,
        (LUCIA, LUCIA_NAME, "wamid.lucia.1", TEXTS["first"]),
        (MARTA, "Marta Gómez", "wamid.marta.1", MARTA_TEXT),
    )
    assert await deliver(engine, shared) == 2
    assert (
        await deliver(engine, message_body(ALFA_NUMBER, (LUCIA, LUCIA_NAME, "wamid.lucia.2", TEXTS["email"])))
        == 1
    )
    assert await deliver(engine, image_body(ALFA_NUMBER)) == 1
    mention = MARTA_MENTION.format(LUCIA_EMAIL)
    assert (
        await deliver(engine, message_body(ALFA_NUMBER, (MARTA, "Marta Gómez", "wamid.marta.2", mention)))
        == 1
    )
    assert (
        await deliver(
            engine, message_body(ALFA_NUMBER, (LUCIA_OTHER, LUCIA_NAME, "wamid.lucia.3", TEXTS["other"]))
        )
        == 1
    )
    assert (
        await deliver(engine, message_body(BETA_NUMBER, (LUCIA, LUCIA_NAME, "wamid.beta.1", "Hola beta")))
        == 1
    )
    first = await customer_of(engine, alfa, LUCIA)
    second = await customer_of(engine, alfa, LUCIA_OTHER)
    assert first is not None and second is not None and first["id"] != second["id"]
    assert any(s["other"]["value"] == LUCIA_EMAIL for s in first["suggestions"])
    merged = await ok(
        engine, alfa, "carla", "POST", "/api/customers/merge", {"customer_ids": [first["id"], second["id"]]}
    )
    survivor = merged["customer_id"]
    lucia = await ok(engine, alfa, "carla", "GET", f"/api/customers/{survivor}")
    conversations = [c["id"] for c in lucia["conversations"]]
    open_ = [c["id"] for c in lucia["conversations"] if c["status"] != "closed"]
    assert len(conversations) == 2 and len(open_) == 1
    await ok(engine, alfa, "carla", "POST", f"/api/conversations/{open_[0]}/notes", {"text": TEXTS["note"]})
    await add_reply(engine, alfa, open_[0])
    assert await deliver(engine, status_body(ALFA_NUMBER)) == 0
    return {
        "survivor": survivor,
        "merged_away": [first["id"], second["id"]],
        "open": open_[0],
        "conversations": conversations,
    }


# ------------------------------------------------------------------------------------ the story


async def test_an_erased_person_leaves_no_value_behind_the_counts_stay_and_their_number_is_a_new_customer(
    start_workspaces: StartWorkspaces,
) -> None:
    engine, seeded = await start_workspaces(
        {"alfa": ALFA_NUMBER, "beta": BETA_NUMBER}, clock=ManualClock(NOW)
    )
    alfa, beta = seeded["alfa"], seeded["beta"]
    story = await lucias_story(engine, alfa, beta)
    survivor = story["survivor"]

    status, refused = await call(
        engine, alfa, "admin", "POST", f"/api/customers/{survivor}/erase", {"reason": "ARCO-1"}
    )
    assert status == 409 and refused["error"]["code"] == "conversation_open"
    assert refused["error"]["details"]["conversations"] == [{"id": story["open"], "status": "waiting"}]
    await ok(
        engine,
        alfa,
        "carla",
        "POST",
        f"/api/conversations/{story['open']}/close",
        {"disposition": {"code": "negociacion", "note": TEXTS["promise"]}},
    )
    before = await report_counts(engine, alfa)
    where = {hit.partition(":")[0] for hit in await personal_values_left(engine, skip_workspace=beta.id)}
    assert where >= {  # the scan sees her values where the story put them
        "raw_delivery.body",
        "customer.display_name",
        "identifier.key",
        "identifier.value",
        "identifier.display_names",
        "identifier_name.name",
        "suggestion.b_value",
        "message.text",
        "message.payload",
        "conversation.disposition",
        "audit_log.details",
    }, where
    assert before["codes"]["negociacion"] == 1

    erased = await ok(
        engine,
        alfa,
        "admin",
        "POST",
        f"/api/customers/{story['merged_away'][1]}/erase",
        {"reason": f"ARCO-2026-0142, solicitud de {LUCIA_NAME}"},
    )
    assert erased["customer_id"] == survivor
    assert sorted(erased["customers"]) == sorted(story["merged_away"])
    counts = erased["counts"]
    assert counts["customers"] == 2 and counts["identifiers"] == 2 and counts["stated_identifiers"] == 1
    # her 4 messages (the photo's caption is its text), the merge's system note, the note, the reply
    assert counts["messages"] == counts["texts"] == 7 and counts["attachments"] == 1
    # 3 of her own bodies and the status naming her number; Marta's batch with her, Marta's mention
    assert counts["raw_deliveries"] == 6 and counts["other_messages_unlinked"] == 2
    assert counts["other_messages_scrubbed"] == 1
    assert counts["follow_ups_cancelled"] == 1 and counts["conversations"] == 2

    assert await personal_values_left(engine, skip_workspace=beta.id) == []
    assert await report_counts(engine, alfa) == before
    async with engine.database.session() as session:
        marta = (await session.execute(sa.select(MSG).where(MSG.c.external_id == "wamid.marta.1"))).one()
        closed = (await session.execute(sa.select(CONV).where(CONV.c.id == uuid.UUID(story["open"])))).one()
        mention = (await session.execute(sa.select(MSG).where(MSG.c.external_id == "wamid.marta.2"))).one()
    assert marta.text == MARTA_TEXT and marta.raw_delivery_id is None
    assert mention.text == MARTA_MENTION.format("[erased]") and mention.customer_id == marta.customer_id
    assert closed.disposition["code"] == "negociacion" and "note" not in closed.disposition
    assert closed.follow_up_at is None and closed.status == "closed"
    beta_lucia = await ok(engine, beta, "carla", "GET", f"/api/customers?identifier=%2B{LUCIA}")
    assert len(beta_lucia["customers"]) == 1  # the other workspace's customer is untouched

    assert await customer_of(engine, alfa, LUCIA) is None
    assert (
        await deliver(
            engine, message_body(ALFA_NUMBER, (LUCIA, LUCIA_NAME, "wamid.lucia.4", "Hola de nuevo"))
        )
        == 1
    )
    again = await customer_of(engine, alfa, LUCIA)
    assert again is not None and again["id"] not in story["merged_away"]
    assert [i["value"] for i in again["identifiers"]] == [f"+{LUCIA}"]
    record = await ok(engine, alfa, "carla", "GET", f"/api/customers/{survivor}")
    assert all(i["value"].startswith("erased:") for i in record["identifiers"])
    assert [c["status"] for c in record["conversations"]] == ["closed", "closed"]


async def test_a_legal_hold_refuses_the_erasure_naming_it_until_it_is_cleared(
    start_workspaces: StartWorkspaces,
) -> None:
    engine, seeded = await start_workspaces(
        {"alfa": ALFA_NUMBER, "beta": BETA_NUMBER}, clock=ManualClock(NOW)
    )
    alfa, beta = seeded["alfa"], seeded["beta"]
    assert await deliver(engine, message_body(ALFA_NUMBER, (LUCIA, LUCIA_NAME, "wamid.hold.1", "Hola"))) == 1
    lucia = await customer_of(engine, alfa, LUCIA)
    assert lucia is not None
    conversation = lucia["conversations"][0]["id"]
    await ok(
        engine,
        alfa,
        "carla",
        "POST",
        f"/api/conversations/{conversation}/close",
        {"disposition": {"code": "pago_realizado", "amount": "100"}},
    )
    erase, hold = f"/api/customers/{lucia['id']}/erase", f"/api/customers/{lucia['id']}/legal-hold"

    for who in ("ana", "carla"):
        for method, path, body in (
            ("POST", erase, {"reason": "x"}),
            ("POST", hold, {"reason": "x"}),
            ("DELETE", hold, None),
        ):
            status, answer = await call(engine, alfa, who, method, path, body)
            assert status == 403 and answer["error"]["code"] == "forbidden", (who, method, path)
    for method, path, body in (
        ("POST", erase, {"reason": "x"}),
        ("POST", hold, {"reason": "x"}),
        ("DELETE", hold, None),
    ):
        status, answer = await call(engine, beta, "admin", method, path, body)
        assert status == 404 and answer["error"]["code"] == "not_found", (method, path)
    status, answer = await call(engine, alfa, "admin", "POST", erase, {"reason": "  "})
    assert status == 400 and answer["error"]["field"] == "reason"

    held = await ok(engine, alfa, "admin", "POST", hold, {"reason": "Litigio 2026-114"})
    assert held["legal_hold"] == "Litigio 2026-114"
    status, refused = await call(engine, alfa, "admin", "POST", erase, {"reason": "ARCO-7"})
    assert status == 409 and refused["error"]["code"] == "legal_hold"
    assert "Litigio 2026-114" in refused["error"]["message"]
    assert refused["error"]["details"]["legal_hold"] == "Litigio 2026-114"
    assert await customer_of(engine, alfa, LUCIA) is not None  # nothing was erased

    cleared = await ok(engine, alfa, "admin", "DELETE", hold)
    assert cleared["legal_hold"] is None
    status, _ = await call(engine, alfa, "admin", "DELETE", hold)
    assert status == 404
    first = await ok(engine, alfa, "admin", "POST", erase, {"reason": "ARCO-7"})
    assert await customer_of(engine, alfa, LUCIA) is None
    again = await ok(engine, alfa, "admin", "POST", erase, {"reason": "ARCO-7"})  # allowed, nothing left
    assert again["erased_at"] == first["erased_at"] and again["counts"]["raw_deliveries"] == 0
    status, answer = await call(engine, alfa, "admin", "POST", hold, {"reason": "tarde"})
    assert status == 409 and answer["error"]["code"] == "conflict"
