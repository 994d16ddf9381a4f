"""Times in the database: what goes in as an instant comes back as the same instant, aware UTC,
on SQLite (which has no time zones) and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa

from storage.database import Database
from storage.tables import WorkspaceRow
from storage.types import as_utc

MADRID_WINTER = timezone(timedelta(hours=1))
WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]


async def _stored_created_at(db: Database, created_at: datetime) -> datetime:
    row = WorkspaceRow(slug=f"ws-{uuid.uuid4().hex[:8]}", name="x", created_at=created_at)
    async with db.transaction() as session:
        session.add(row)
    async with db.session() as session:
        stored = (
            await session.execute(sa.select(WORKSPACE.c.created_at).where(WORKSPACE.c.id == row.id))
        ).scalar_one()
    assert isinstance(stored, datetime)
    return stored


async def test_a_time_comes_back_aware_in_utc(database: Database) -> None:
    stored = await _stored_created_at(database, datetime(2026, 11, 23, 16, 0, 0, 123456, tzinfo=UTC))
    assert stored.tzinfo is UTC
    assert stored == datetime(2026, 11, 23, 16, 0, 0, 123456, tzinfo=UTC)


async def test_a_time_in_another_zone_is_stored_as_the_same_instant(database: Database) -> None:
    stored = await _stored_created_at(database, datetime(2026, 11, 23, 17, 0, tzinfo=MADRID_WINTER))
    assert stored.tzinfo is UTC
    assert stored == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


async def test_a_naive_time_is_taken_to_be_utc(database: Database) -> None:
    stored = await _stored_created_at(database, datetime(2026, 11, 23, 16, 0))
    assert stored == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


async def test_comparisons_in_queries_use_the_same_instant(database: Database) -> None:
    row = WorkspaceRow(
        slug=f"ws-{uuid.uuid4().hex[:8]}", name="x", created_at=datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    )
    async with database.transaction() as session:
        session.add(row)
    just_after_in_madrid = datetime(2026, 11, 23, 17, 0, 1, tzinfo=MADRID_WINTER)
    async with database.session() as session:
        found = (
            await session.execute(
                sa.select(WORKSPACE.c.id).where(
                    WORKSPACE.c.id == row.id, WORKSPACE.c.created_at < just_after_in_madrid
                )
            )
        ).scalar_one_or_none()
    assert found == row.id


def test_as_utc_gives_the_same_instant_in_utc_and_leaves_none_alone() -> None:
    assert as_utc(None) is None
    assert as_utc(datetime(2026, 1, 1, 12, 0)) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    moved = as_utc(datetime(2026, 1, 1, 13, 0, tzinfo=MADRID_WINTER))
    assert moved.tzinfo is UTC and moved == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
