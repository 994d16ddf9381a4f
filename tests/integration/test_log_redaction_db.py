"""A failing insert logged with its traceback leaves no phone or email in the log, on SQLite and
PostgreSQL: the engine hides its bound parameters, and the log chain cuts what the database
itself quotes (PostgreSQL's ``DETAIL: Failing row contains (…)`` and ``Key (…)=(…)``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core.logging import get_logger
from storage.database import Database
from tests.support.log_scan import CapturedLogs, product_logs

PHONE = "+5215512345678"
EMAIL = "maria.lopez@correo.example"
NOTE = "paciente con diabetes, debe tres meses"
PROBE = sa.text(
    "CREATE TABLE log_probe"
    " (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, phone TEXT, note TEXT NOT NULL)"
)
INSERT = sa.text("INSERT INTO log_probe (id, email, phone, note) VALUES (:id, :email, :phone, :note)")
ROWS: dict[str, list[dict[str, Any]]] = {
    "unique": [
        {"id": 1, "email": EMAIL, "phone": PHONE, "note": NOTE},
        {"id": 2, "email": EMAIL, "phone": PHONE, "note": NOTE},
    ],
    "not null": [{"id": 3, "email": EMAIL, "phone": PHONE, "note": None}],
}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.transaction() as session:
        await session.execute(PROBE)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.parametrize("violation", sorted(ROWS))
async def test_a_failing_insert_logged_with_its_traceback_holds_no_phone_or_email(
    db: Database, violation: str
) -> None:
    with product_logs() as logs:
        try:
            async with db.transaction() as session:
                for row in ROWS[violation]:
                    await session.execute(INSERT, row)
        except IntegrityError as exc:
            refused = exc
            get_logger("storage").exception("insert_refused", violation=violation)
        else:
            pytest.fail("the insert was accepted")
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(refused)
    _assert_clean(logs)
    (line,) = logs.lines
    assert "IntegrityError" in line and "INSERT INTO log_probe" in line and '"level": "error"' in line


async def test_a_failing_insert_logged_through_stdlib_logging_holds_no_phone_or_email(db: Database) -> None:
    """A library's own logger (here the stdlib one SQLAlchemy uses) meets the same redaction."""
    with product_logs() as logs:
        try:
            async with db.transaction() as session:
                for row in ROWS["unique"]:
                    await session.execute(INSERT, row)
        except IntegrityError:
            logging.getLogger("sqlalchemy.pool").exception("connection returned after an error")
    _assert_clean(logs)
    assert "IntegrityError" in logs.text


def _assert_clean(logs: CapturedLogs) -> None:
    text = logs.text
    assert text, "nothing was logged"
    for value in (PHONE, PHONE[1:], EMAIL, NOTE):
        assert value not in text, f"{value!r} in the log:\n{text}"
