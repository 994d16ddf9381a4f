"""The export's reads on both databases: set-based, merge chains followed, shared raw bodies
withheld; each export recorded after its read."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.errors import NotFound
from core.ids import WorkspaceId, new_id
from storage.database import Database
from storage.export import EXPORT_ACTION, ExportStore, export_customer
from storage.tables import (
    AuditRow,
    ConversationRow,
    CustomerRow,
    IdentifierRow,
    MessageRow,
    RawDeliveryRow,
    WorkspaceRow,
)

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]


async def _workspace(db: Database) -> WorkspaceId:
    ws = WorkspaceId(new_id())
    async with db.transaction() as s:
        s.add(WorkspaceRow(id=ws, slug=f"ws-{ws.hex[-12:]}", name="export"))
    return ws


async def _customer(db: Database, ws: WorkspaceId, *, merged_into: uuid.UUID | None = None) -> uuid.UUID:
    customer_id = new_id()
    async with db.transaction() as s:
        s.add(
            CustomerRow(id=customer_id, workspace_id=ws, merged_into=merged_into, active=merged_into is None)
        )
    return customer_id


async def _raw(db: Database, ws: WorkspaceId, body: bytes) -> uuid.UUID:
    raw_id = new_id()
    async with db.transaction() as s:
        s.add(
            RawDeliveryRow(
                id=raw_id,
                workspace_id=ws,
                channel="whatsapp",
                received_at=T0,
                headers={"content-type": "application/json"},
                body=body,
                body_sha256=hashlib.sha256(body).hexdigest(),
                status="processed",
            )
        )
    return raw_id


async def _story(
    db: Database,
    ws: WorkspaceId,
    customer: uuid.UUID,
    *,
    conversations: int,
    messages: int,
    raw_delivery_id: uuid.UUID | None = None,
) -> None:
    """An identifier of ``customer`` and ``conversations`` conversations of ``messages`` each."""
    async with db.transaction() as s:
        key = f"phone:+52{new_id().int % 10**10:010d}"
        identifier_id = new_id()
        s.add(
            IdentifierRow(
                id=identifier_id,
                workspace_id=ws,
                kind="phone",
                key=key,
                value=key.removeprefix("phone:"),
                customer_id=customer,
                home_customer_id=customer,
            )
        )
        await s.flush()
        for c in range(conversations):
            conversation_id = new_id()
            s.add(
                ConversationRow(
                    id=conversation_id,
                    workspace_id=ws,
                    customer_id=customer,
                    channel="whatsapp",
                    opened_at=T0 + timedelta(minutes=c),
                )
            )
            await s.flush()
            s.add_all(
                MessageRow(
                    id=new_id(),
                    workspace_id=ws,
                    conversation_id=conversation_id,
                    customer_id=customer,
                    identifier_id=identifier_id,
                    direction="in",
                    kind="message",
                    channel="whatsapp",
                    external_id=f"wamid.{new_id().hex}",
                    text=f"mensaje {c}.{m}",
                    payload={},
                    created_at=T0 + timedelta(minutes=c, seconds=m),
                    stored_at=T0,
                    raw_delivery_id=raw_delivery_id,
                )
                for m in range(messages)
            )


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def _queries_for(db: Database, ws: WorkspaceId, customer: uuid.UUID) -> tuple[int, int]:
    with _statements(db) as seen:
        async with db.session() as s:
            data = await ExportStore(s).customer_data(ws, customer)
    return len(seen), len(data.messages)


async def test_the_number_of_queries_does_not_grow_with_conversations_or_messages(database: Database) -> None:
    ws = await _workspace(database)
    small, large = await _customer(database, ws), await _customer(database, ws)
    raw = await _raw(database, ws, b'{"entry": []}')
    await _story(database, ws, small, conversations=1, messages=1, raw_delivery_id=raw)
    await _story(
        database, ws, large, conversations=6, messages=25, raw_delivery_id=await _raw(database, ws, b"{}")
    )

    few, one_message = await _queries_for(database, ws, small)
    many, messages = await _queries_for(database, ws, large)
    assert (one_message, messages) == (1, 150)
    assert few == many <= 14, (few, many)


async def test_a_merge_chain_is_followed_to_the_survivor_and_back_to_every_merged_id(
    database: Database,
) -> None:
    ws = await _workspace(database)
    live = await _customer(database, ws)
    middle = await _customer(database, ws, merged_into=live)
    oldest = await _customer(database, ws, merged_into=middle)
    await _story(database, ws, oldest, conversations=1, messages=2)  # rows not re-pointed, still found
    async with database.session() as s:
        data = await ExportStore(s).customer_data(ws, oldest)
    assert data.customer.id == live and data.requested_id == oldest
    assert {c.id for c in data.merged_customers} == {middle, oldest}
    assert [m.text for m in data.messages] == ["mensaje 0.0", "mensaje 0.1"]
    assert len(data.conversations) == 1 and len(data.identifiers) == 1


async def test_a_raw_delivery_that_carried_another_customers_message_is_listed_without_its_body(
    database: Database,
) -> None:
    ws = await _workspace(database)
    lucia, other = await _customer(database, ws), await _customer(database, ws)
    shared = await _raw(database, ws, b'{"entry": ["lucia", "otra persona"]}')
    await _story(database, ws, lucia, conversations=1, messages=1, raw_delivery_id=shared)
    await _story(database, ws, other, conversations=1, messages=1, raw_delivery_id=shared)
    own = await _raw(database, ws, b'{"entry": ["lucia"]}')
    await _story(database, ws, lucia, conversations=1, messages=1, raw_delivery_id=own)
    elsewhere = await _workspace(database)  # one webhook may carry several business accounts
    across = await _raw(database, ws, b'{"entry": ["lucia", "otro negocio"]}')
    await _story(database, ws, lucia, conversations=1, messages=1, raw_delivery_id=across)
    await _story(
        database,
        elsewhere,
        await _customer(database, elsewhere),
        conversations=1,
        messages=1,
        raw_delivery_id=across,
    )
    async with database.session() as s:
        data = await ExportStore(s).customer_data(ws, lucia)
    by_id = {r.id: r for r in data.raw_deliveries}
    assert len(by_id) == 3
    assert by_id[shared].shared and by_id[shared].body is None
    assert by_id[across].shared and by_id[across].body is None
    assert not by_id[own].shared and by_id[own].body == b'{"entry": ["lucia"]}'


async def test_a_customer_of_another_workspace_is_not_found(database: Database) -> None:
    ws, other = await _workspace(database), await _workspace(database)
    theirs = await _customer(database, other)
    async with database.session() as s:
        with pytest.raises(NotFound):
            await ExportStore(s).customer_data(ws, theirs)


async def test_only_the_persons_messages_are_exported_even_from_their_own_conversations(
    database: Database,
) -> None:
    """After an unmerge the other identifier's messages stay in the conversation but are the other
    customer's: they are not exported; a message without a customer in the conversation is."""
    ws = await _workspace(database)
    lucia, other = await _customer(database, ws), await _customer(database, ws)
    await _story(database, ws, lucia, conversations=1, messages=1)
    async with database.session() as s:
        data = await ExportStore(s).customer_data(ws, lucia)
    conversation_id = data.conversations[0].id
    async with database.transaction() as s:
        for customer, text in ((other, "de otra persona"), (None, "aviso del sistema")):
            s.add(
                MessageRow(
                    id=new_id(),
                    workspace_id=ws,
                    conversation_id=conversation_id,
                    customer_id=customer,
                    direction="in" if customer else "note",
                    kind="message" if customer else "system",
                    channel="whatsapp",
                    text=text,
                    payload={},
                    created_at=T0 + timedelta(hours=1),
                    stored_at=T0,
                )
            )
    async with database.session() as s:
        data = await ExportStore(s).customer_data(ws, lucia)
    assert [m.text for m in data.messages] == ["mensaje 0.0", "aviso del sistema"]


async def test_an_export_is_recorded_after_its_read_and_the_next_export_lists_it(database: Database) -> None:
    ws = await _workspace(database)
    live = await _customer(database, ws)
    away = await _customer(database, ws, merged_into=live)
    await _story(database, ws, live, conversations=2, messages=3)
    times = iter([T0 + timedelta(hours=1), T0 + timedelta(hours=2)])

    first = await export_customer(database, ws, away, actor="token:t-1", clock=lambda: next(times))
    assert first.exported_at == T0 + timedelta(hours=1)
    assert [a.action for a in first.data.audit] == []  # its own entry is not in what it read
    second = await export_customer(database, ws, live, actor="cli", clock=lambda: next(times))

    (earlier,) = second.data.audit
    assert (earlier.id, earlier.action, earlier.actor) == (first.audit_id, EXPORT_ACTION, "token:t-1")
    assert earlier.at == first.exported_at
    assert (earlier.subject_type, earlier.subject_id) == ("customer", str(live))
    assert earlier.details == {
        "requested_id": str(away),
        "customers": [str(live), str(away)],
        "counts": {
            "identifiers": 1,
            "evidence": 0,
            "suggestions": 0,
            "conversations": 2,
            "messages": 6,
            "raw_deliveries": 0,
            "audit_entries": 0,
        },
    }
    async with database.session() as s:
        rows = (
            await s.execute(
                sa.select(AUDIT.c.id, AUDIT.c.actor, AUDIT.c.details)
                .where(AUDIT.c.workspace_id == ws)
                .order_by(AUDIT.c.at)
            )
        ).all()
    assert [(r.id, r.actor) for r in rows] == [(first.audit_id, "token:t-1"), (second.audit_id, "cli")]
    assert rows[1].details["counts"]["audit_entries"] == 1
    stored = str([r.details for r in rows])
    assert "mensaje" not in stored and "phone:" not in stored and "+52" not in stored


async def test_an_export_of_an_unknown_customer_records_nothing(database: Database) -> None:
    ws = await _workspace(database)
    with pytest.raises(NotFound):
        await export_customer(database, ws, new_id(), actor="cli", clock=lambda: T0)
    async with database.session() as s:
        found = (await s.execute(sa.select(sa.func.count()).where(AUDIT.c.workspace_id == ws))).scalar()
    assert found == 0
