"""Database errors are translated once, at the storage edge.

A failure met inside ``Database.session()`` or ``Database.transaction()``, or on its commit,
leaves as the error tree's: ``DatabaseUnavailable`` when the database cannot be reached or
cannot work now, ``DatabaseConflict`` for a lock timeout or "database is locked" (run the
transaction again), the driver's error kept as the cause.  Content the database refuses (a
unique violation) stays the driver's ``IntegrityError``, which callers catch on purpose.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.errors import DatabaseConflict, DatabaseUnavailable
from storage.database import Database
from tests.support.tcpproxy import TcpProxy

PROBE = sa.text("CREATE TABLE edge_probe (id INTEGER PRIMARY KEY, note TEXT)")
INSERT = sa.text("INSERT INTO edge_probe (id, note) VALUES (:id, 'x')")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A database on each backend with one table of its own."""
    database = Database(database_url)
    async with database.transaction() as session:
        await session.execute(PROBE)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def proxied(postgres_url: str) -> AsyncIterator[tuple[Database, TcpProxy]]:
    """A PostgreSQL database reached through a proxy the test can cut (the server stays up)."""
    url = sa.engine.make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    database = Database(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    async with database.transaction() as session:
        await session.execute(PROBE)
    try:
        yield database, proxy
    finally:
        await proxy.cut()
        await database.dispose()


def _cause_is_foreign(exc: BaseException) -> bool:
    return isinstance(exc.__cause__, OSError | DBAPIError)


@pytest.mark.postgres
async def test_a_statement_against_a_vanished_postgresql_server_raises_database_unavailable(
    proxied: tuple[Database, TcpProxy],
) -> None:
    database, proxy = proxied
    await proxy.cut()
    with pytest.raises(DatabaseUnavailable) as read:
        async with database.session() as session:
            await session.execute(sa.text("SELECT 1"))
    with pytest.raises(DatabaseUnavailable) as write:
        async with database.transaction() as session:
            await session.execute(INSERT, {"id": 1})
    assert _cause_is_foreign(read.value) and _cause_is_foreign(write.value)
    assert read.value.code == "database_unavailable"


@pytest.mark.postgres
async def test_a_commit_that_meets_a_vanished_postgresql_server_raises_database_unavailable(
    proxied: tuple[Database, TcpProxy],
) -> None:
    database, proxy = proxied
    with pytest.raises(DatabaseUnavailable) as lost:
        async with database.transaction() as session:
            await session.execute(INSERT, {"id": 1})
            await proxy.cut()  # the insert is in; the commit finds nobody
    assert _cause_is_foreign(lost.value)
    await proxy.restore()
    async with database.session() as session:  # the pool starts again with a fresh connection
        assert (await session.execute(sa.text("SELECT count(*) FROM edge_probe"))).scalar_one() == 0


async def test_a_sqlite_database_that_cannot_be_opened_raises_database_unavailable(tmp_path: Path) -> None:
    (tmp_path / "not-a-file.db").mkdir()
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/not-a-file.db")
    before = set(threading.enumerate())
    try:
        with pytest.raises(DatabaseUnavailable) as failed:
            async with database.session() as session:
                await session.execute(sa.text("SELECT 1"))
        assert _cause_is_foreign(failed.value)
    finally:
        await database.dispose()
        # aiosqlite stops the thread of a connection that failed to open without waiting for
        # it; the thread reports back to this loop, so the loop waits until it has ended.
        started = [t for t in threading.enumerate() if t not in before and "_connection_worker" in t.name]
        await asyncio.to_thread(lambda: [t.join(10) for t in started])


async def test_a_database_without_its_schema_says_to_run_db_upgrade(database_url: str) -> None:
    database = Database(database_url)
    try:
        with pytest.raises(DatabaseUnavailable, match="run `centralita db upgrade`"):
            async with database.session() as session:
                await session.execute(sa.text("SELECT id FROM campaign"))
    finally:
        await database.dispose()


async def test_a_unique_violation_leaves_the_transaction_as_the_drivers_integrity_error(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(INSERT, {"id": 1})
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(INSERT, {"id": 1})


async def test_a_unique_violation_caught_inside_the_transaction_lets_it_commit(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(INSERT, {"id": 1})
        try:
            async with session.begin_nested():
                await session.execute(INSERT, {"id": 1})
        except IntegrityError:
            pass  # the duplicate is dropped, as the pipeline's dedupe does
        await session.execute(INSERT, {"id": 2})
    async with db.session() as session:
        assert (await session.execute(sa.text("SELECT count(*) FROM edge_probe"))).scalar_one() == 2


async def test_a_sqlite_database_locked_by_another_process_raises_database_conflict(sqlite_url: str) -> None:
    setup = Database(sqlite_url)
    async with setup.transaction() as session:
        await session.execute(PROBE)
    await setup.dispose()
    database = Database(sqlite_url, lock_timeout_s=0.05)
    other = sqlite3.connect(sa.engine.make_url(sqlite_url).database or "", isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another process holds the only write lock
        with pytest.raises(DatabaseConflict) as locked:
            async with database.transaction() as session:
                await session.execute(INSERT, {"id": 1})
        assert _cause_is_foreign(locked.value) and locked.value.code == "database_conflict"
        other.execute("COMMIT")
        async with database.transaction() as session:  # the same transaction, again, succeeds
            await session.execute(INSERT, {"id": 1})
    finally:
        other.close()
        await database.dispose()


@pytest.mark.postgres
async def test_a_postgresql_lock_timeout_raises_database_conflict_with_its_sqlstate(
    postgres_url: str,
) -> None:
    database = Database(postgres_url)
    try:
        async with database.transaction() as session:
            await session.execute(PROBE)
            await session.execute(INSERT, {"id": 1})
        async with database.transaction() as holder:
            await holder.execute(sa.text("SELECT id FROM edge_probe WHERE id = 1 FOR UPDATE"))
            with pytest.raises(DatabaseConflict) as waited:
                async with database.transaction() as session:
                    await session.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
                    await session.execute(sa.text("UPDATE edge_probe SET note = 'y' WHERE id = 1"))
        assert waited.value.details == {"sqlstate": "55P03"}  # lock_not_available
        assert _cause_is_foreign(waited.value)
    finally:
        await database.dispose()
