"""``storage.erasure`` against SQLite and PostgreSQL: the refusals leave everything as it was, a
queued reply is cancelled, and the raw bodies searched are the workspace's, in any case."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from core.facts import Fact, WorkAction
from core.ids import WorkspaceId, new_id
from storage.database import Database
from storage.erasure import ConversationOpen, ReplyInFlight, erase_customer
from storage.facts import AUDIT, REPORT, FactLog
from storage.tables import (
    ConversationRow,
    CustomerRow,
    IdentifierRow,
    MessageRow,
    RawDeliveryRow,
    WorkspaceRow,
)

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
EMAIL = "ana.perez@gmail.com"
MSG = MessageRow.__table__  # type: ignore[attr-defined]
RAW = RawDeliveryRow.__table__  # type: ignore[attr-defined]


async def _workspace(db: Database, slug: str) -> WorkspaceId:
    ws = WorkspaceRow(id=new_id(), slug=slug, name=slug)
    async with db.transaction() as session:
        session.add(ws)
    return WorkspaceId(ws.id)


async def _customer(db: Database, ws: uuid.UUID, *, status: str = "closed") -> tuple[uuid.UUID, uuid.UUID]:
    """A customer writing from ``EMAIL`` with one conversation in ``status``."""
    customer, identifier, conversation = new_id(), new_id(), new_id()
    async with db.transaction() as session:
        session.add(CustomerRow(id=customer, workspace_id=ws, display_name="Ana Pérez"))
        await session.flush()
        session.add(
            IdentifierRow(
                id=identifier,
                workspace_id=ws,
                kind="email",
                key=f"email:{EMAIL}",
                value=EMAIL,
                customer_id=customer,
                home_customer_id=customer,
            )
        )
        await session.flush()
        session.add(
            ConversationRow(
                id=conversation,
                workspace_id=ws,
                customer_id=customer,
                identifier_id=identifier,
                status=status,
                channel="email",
                opened_at=NOW - timedelta(hours=1),
            )
        )
    return customer, conversation


async def _reply(
    db: Database, ws: uuid.UUID, customer: uuid.UUID, conversation: uuid.UUID, state: str
) -> uuid.UUID:
    message_id = new_id()
    async with db.transaction() as session:
        session.add(
            MessageRow(
                id=message_id,
                workspace_id=ws,
                conversation_id=conversation,
                customer_id=customer,
                direction="out",
                kind="message",
                channel="email",
                text="Hola Ana",
                payload={"subject": "Su cita"},
                delivery_state=state,
                due_at=NOW,
                created_at=NOW,
                stored_at=NOW,
            )
        )
    return message_id


async def _raw(db: Database, ws: uuid.UUID | None, body: bytes) -> uuid.UUID:
    raw_id = new_id()
    async with db.transaction() as session:
        session.add(
            RawDeliveryRow(
                id=raw_id,
                workspace_id=ws,
                channel="email",
                received_at=NOW,
                headers={},
                body=body,
                body_sha256=uuid.uuid4().hex,
            )
        )
    return raw_id


async def _erase(db: Database, ws: WorkspaceId, customer: uuid.UUID) -> dict[str, int]:
    result = await erase_customer(db, ws, customer, "ARCO-1", actor="test", now=NOW)
    return result.counts.as_dict()


@pytest.mark.parametrize("status", ["offered", "assigned", "waiting", "triage"])
async def test_an_open_conversation_refuses_the_erasure_naming_it(database: Database, status: str) -> None:
    ws = await _workspace(database, "alfa")
    customer, conversation = await _customer(database, ws, status=status)
    with pytest.raises(ConversationOpen) as refused:
        await _erase(database, ws, customer)
    assert refused.value.details == {"conversations": [{"id": str(conversation), "status": status}]}
    assert refused.value.http_status == 409


async def test_a_queued_reply_is_cancelled_and_one_being_sent_refuses_with_nothing_written(
    database: Database,
) -> None:
    ws = await _workspace(database, "alfa")
    customer, conversation = await _customer(database, ws)
    queued = await _reply(database, ws, customer, conversation, "queued")
    sending = await _reply(database, ws, customer, conversation, "sending")
    with pytest.raises(ReplyInFlight):
        await _erase(database, ws, customer)
    async with database.session() as session:
        states = dict((await session.execute(sa.select(MSG.c.id, MSG.c.delivery_state))).all())
    assert states == {queued: "queued", sending: "sending"}  # rolled back

    async with database.transaction() as session:
        await session.execute(sa.update(MSG).where(MSG.c.id == sending).values(delivery_state="sent"))
    counts = await _erase(database, ws, customer)
    assert counts["replies_cancelled"] == 1 and counts["messages"] == 2
    async with database.session() as session:
        row = (await session.execute(sa.select(MSG).where(MSG.c.id == queued))).one()
    assert row.delivery_state == "failed" and row.error["code"] == "customer_erased"
    assert row.due_at is None and row.text is None and row.payload == {"erased": True}


async def test_raw_bodies_of_the_workspace_holding_the_address_in_any_case_go_and_no_others(
    database: Database,
) -> None:
    ws = await _workspace(database, "alfa")
    other = await _workspace(database, "beta")
    customer, _ = await _customer(database, ws)
    mine = await _raw(database, ws, b"From: Ana <ANA.Perez@Gmail.COM>\r\n\r\nhola")
    unrelated = await _raw(database, ws, b"From: otra@example.com\r\n\r\nhola")
    elsewhere = await _raw(database, other, f"From: {EMAIL}\r\n\r\nhola".encode())
    unclaimed = await _raw(database, None, f"From: {EMAIL}\r\n\r\nhola".encode())
    counts = await _erase(database, ws, customer)
    assert counts["raw_deliveries"] == 1
    async with database.session() as session:
        left = {r for (r,) in await session.execute(sa.select(RAW.c.id))}
    assert left == {unrelated, elsewhere, unclaimed} and mine not in left


async def test_the_report_keeps_the_figures_and_the_trail_the_steps_but_not_the_customers_words(
    database: Database,
) -> None:
    ws = await _workspace(database, "reporte")
    customer, conversation = await _customer(database, ws)
    opened = NOW - timedelta(hours=1)
    common = {"workspace_id": ws, "conversation_id": conversation, "customer_id": customer}
    disposition = {
        "code": "promesa",
        "label": "Promesa",
        "amount": "150000",
        "date": "2026-03-20",
        "note": "paga el 20",
    }
    async with database.transaction() as session:
        await FactLog(session).append(
            [
                Fact(WorkAction.OPENED, opened, "customer", details={"channel": "email"}, **common),
                Fact(
                    WorkAction.CLOSED,
                    opened + timedelta(minutes=20),
                    "agent:x",
                    details={"reason": "agent", "disposition": disposition},
                    **common,
                ),
                Fact(
                    WorkAction.SURVEY_ANSWERED,
                    opened + timedelta(minutes=30),
                    "customer",
                    details={"kind": "csat", "score": 2, "comment": "me atendió fatal Ana"},
                    **common,
                ),
            ],
            first_texts={conversation: "Hola, soy Ana Pérez y debo 150000"},
        )
    await _erase(database, ws, customer)
    async with database.session() as session:
        report = (
            (await session.execute(sa.select(REPORT).where(REPORT.c.conversation_id == conversation)))
            .mappings()
            .one()
        )
        trail = {
            r.action: r.details
            for r in (
                await session.execute(sa.select(AUDIT).where(AUDIT.c.conversation_id == conversation))
            ).all()
        }
    assert (report["survey_score"], report["disposition_code"], report["close_reason"]) == (
        2,
        "promesa",
        "agent",
    )
    assert (report["first_text"], report["survey_comment"]) == (None, None)
    assert (report["disposition_amount"], report["disposition_date"]) == (None, None)
    assert trail[WorkAction.SURVEY_ANSWERED] == {"kind": "csat", "score": 2, "comment": None}
    assert trail[WorkAction.CLOSED]["disposition"] == {"code": "promesa", "label": "Promesa"}
