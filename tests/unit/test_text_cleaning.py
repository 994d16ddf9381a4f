"""What the database cannot store is cleaned before storage: NUL removed, lone surrogates → U+FFFD;
and database errors are classified once: unavailable, conflict (retry) or refused (park)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from core.events import Address, AddressKind, InboundMessage
from core.text import storable, storable_text
from storage.database import Failure, classify_failure


def test_a_nul_is_removed_from_a_text() -> None:
    assert storable_text("hola\u0000mundo\u0000") == "holamundo"


def test_a_lone_surrogate_becomes_the_replacement_character_and_the_text_encodes_as_utf8() -> None:
    cleaned = storable_text("a\ud83d b \ude00")
    assert cleaned == "a\ufffd b \ufffd"
    cleaned.encode("utf-8")


def test_a_split_surrogate_pair_is_joined_into_its_character() -> None:
    assert storable_text("\ud83d\ude00") == "\U0001f600"


def test_a_clean_value_is_returned_as_the_very_same_object() -> None:
    value = {"text": "hola ñandú 😀", "list": ["a", 1, None]}
    assert storable(value) is value


def test_every_string_of_a_normalized_event_is_cleaned() -> None:
    event = InboundMessage(
        channel="whatsapp",
        external_id="wamid.1",
        business_address="1065",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        sender=Address(kind=AddressKind.PHONE, value="+5215512340101", display_name="Ana\u0000"),
        text="hola\u0000mundo \ud83d",
    )
    cleaned = storable(event)
    assert cleaned.text == "holamundo \ufffd"
    assert cleaned.sender.display_name == "Ana"
    assert cleaned.sender.kind is AddressKind.PHONE
    assert "\\u0000" not in cleaned.model_dump_json()


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "failure"),
    [
        ("40P01", Failure.CONFLICT),  # deadlock_detected
        ("40001", Failure.CONFLICT),  # serialization_failure
        ("55P03", Failure.CONFLICT),  # lock_not_available
        ("22001", Failure.REFUSED),  # string_data_right_truncation
        ("22P05", Failure.REFUSED),  # untranslatable_character (\u0000 in jsonb)
        ("23503", Failure.REFUSED),  # foreign_key_violation
        ("08006", Failure.UNAVAILABLE),  # connection_failure
        ("57P01", Failure.UNAVAILABLE),  # admin_shutdown
        ("53300", Failure.UNAVAILABLE),  # too_many_connections
    ],
)
def test_a_postgresql_error_is_classified_by_its_sqlstate(sqlstate: str, failure: Failure) -> None:
    assert classify_failure(DBAPIError("INSERT …", None, _PgError(sqlstate))) is failure


def test_sqlite_database_is_locked_is_a_conflict_and_a_constraint_is_refused() -> None:
    locked = OperationalError("INSERT …", None, sqlite3.OperationalError("database is locked"))
    unique = IntegrityError("INSERT …", None, sqlite3.IntegrityError("UNIQUE constraint failed: x.y"))
    assert classify_failure(locked) is Failure.CONFLICT
    assert classify_failure(unique) is Failure.REFUSED


def test_a_lost_connection_is_unavailable() -> None:
    assert classify_failure(ConnectionRefusedError(111, "refused")) is Failure.UNAVAILABLE
    lost = DBAPIError("SELECT 1", None, _PgError("22001"), connection_invalidated=True)
    assert classify_failure(lost) is Failure.UNAVAILABLE
