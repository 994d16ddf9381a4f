"""The audit trail is append-only in the database itself: a DELETE of an entry, an UPDATE of who,
when or what it was (and a TRUNCATE on PostgreSQL) is refused by a trigger, on both backends —
only an erasure's redaction of ``details`` and ``subject_id`` passes.  And no product code
issues a DELETE or an UPDATE on ``audit_log`` besides that redaction."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from core.facts import Fact, WorkAction
from core.ids import new_id
from storage.database import Database
from storage.facts import AUDIT, FactLog
from storage.tables import WorkspaceRow

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
# The one writer that may change an audit row: an erasure redacting the person's values.
REDACTS = {"storage/erasure.py", "storage/retention.py"}  # they redact details, never delete


async def _an_entry(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    ws, conv = new_id(), new_id()
    async with db.transaction() as session:
        await session.execute(
            sa.insert(WorkspaceRow.__table__).values(id=ws, slug=f"w{ws.hex[:8]}", name="W", created_at=T0)  # type: ignore[attr-defined]
        )
        await FactLog(session).append(
            [Fact(WorkAction.NOTE, T0, "agent:x", ws, conversation_id=conv, details={"message_id": "m1"})]
        )
    return ws, conv


async def _rows(db: Database) -> list[tuple[str, str, dict[str, object]]]:
    async with db.session() as session:
        return [
            (r.actor, r.action, r.details)
            for r in await session.execute(sa.select(AUDIT.c.actor, AUDIT.c.action, AUDIT.c.details))
        ]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: sa.delete(AUDIT), id="delete"),
        pytest.param(lambda: sa.update(AUDIT).values(action="conversation.closed"), id="update-action"),
        pytest.param(lambda: sa.update(AUDIT).values(actor="agent:someone-else"), id="update-actor"),
        pytest.param(lambda: sa.update(AUDIT).values(at=datetime(2020, 1, 1, tzinfo=UTC)), id="update-at"),
        pytest.param(lambda: sa.update(AUDIT).values(conversation_id=new_id()), id="update-conversation"),
    ],
)
async def test_the_database_refuses_to_delete_an_entry_or_change_who_when_or_what(
    database: Database, change: object
) -> None:
    await _an_entry(database)
    before = await _rows(database)
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.engine.begin() as conn:
            await conn.execute(change())  # type: ignore[operator]
    assert await _rows(database) == before


async def test_an_erasure_may_still_redact_the_details_and_the_subject(database: Database) -> None:
    await _an_entry(database)
    async with database.engine.begin() as conn:
        await conn.execute(sa.update(AUDIT).values(details={"message_id": "[erased]"}, subject_id="erased:1"))
    assert await _rows(database) == [("agent:x", "note.added", {"message_id": "[erased]"})]


@pytest.mark.postgres
async def test_postgres_refuses_to_truncate_the_trail(postgres_url: str) -> None:
    from tests.support.schema import migrated

    await migrated(postgres_url)
    db = Database(postgres_url)
    try:
        await _an_entry(db)
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(sa.text("TRUNCATE audit_log CASCADE"))
        assert len(await _rows(db)) == 1
    finally:
        await db.dispose()


def test_no_product_code_deletes_or_updates_an_audit_row_but_erasure_and_retention() -> None:
    writes = re.compile(r"sa\.(delete|update)\(\s*AUDIT\b|(DELETE\s+FROM|UPDATE)\s+audit_log", re.IGNORECASE)
    found = sorted(
        str(path.relative_to(ROOT))
        for folder in ("centralita", "storage", "core", "router", "identity", "channels", "broker")
        for path in (ROOT / folder).rglob("*.py")
        if writes.search(path.read_text(encoding="utf-8"))
    )
    assert set(found) <= REDACTS, found
    assert "sa.update(AUDIT)" in (ROOT / "storage/erasure.py").read_text(
        encoding="utf-8"
    )  # the test can fail
