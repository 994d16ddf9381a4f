"""Exceptions leave the logs redacted: a traceback keeps its types and frames, never a phone,
an email or a value a library quoted; stdlib records of libraries go through the same chain."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa

from core.logging import STDLIB_HANDLER_NAME, configure_logging, get_logger, redact_text
from tests.support.log_scan import CapturedLogs, product_logs

PHONE = "+5215512345678"
EMAIL = "maria.lopez@correo.example"
BODY = "tengo diabetes y debo tres meses"


@pytest.fixture
def out() -> Iterator[CapturedLogs]:
    """The product's chain (JSON, INFO) printing here; structlog and the root logger restored."""
    with product_logs() as captured:
        yield captured


def _lines(captured: CapturedLogs) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.lines]


def _assert_clean(text: str) -> None:
    assert PHONE not in text and PHONE[1:] not in text
    assert EMAIL not in text and EMAIL.lower() not in text


def _fail_with_contact_details() -> None:
    raise ValueError(f"customer {PHONE} wrote from {EMAIL}")


def test_a_logged_exception_holds_no_phone_or_email_but_keeps_its_type_and_frames(out: CapturedLogs) -> None:
    try:
        _fail_with_contact_details()
    except ValueError:
        get_logger("test").exception("unhandled_error", path="/api/x")
    raw = out.text
    _assert_clean(raw)
    (line,) = _lines(out)
    assert line["level"] == "error" and line["event"] == "unhandled_error"
    exception = line["exception"]
    assert exception.startswith("Traceback (most recent call last):")
    assert "in _fail_with_contact_details" in exception and "test_log_redaction.py" in exception
    assert "ValueError: customer +***78#" in exception and "wrote from m***@c***#" in exception


def test_every_message_of_a_chained_traceback_is_redacted(out: CapturedLogs) -> None:
    try:
        try:
            _fail_with_contact_details()
        except ValueError as exc:
            raise RuntimeError(f"could not save the note of {EMAIL}") from exc
    except RuntimeError:
        get_logger().exception("note_failed")
    _assert_clean(out.text)
    exception = _lines(out)[0]["exception"]
    assert "ValueError: customer +***78#" in exception and "RuntimeError: could not save" in exception


def test_sqlalchemy_parameter_dumps_are_cut_and_the_statement_kept(out: CapturedLogs) -> None:
    refused = sa.exc.IntegrityError(
        "INSERT INTO message (text, sender) VALUES (?, ?)", (BODY, EMAIL), Exception("NOT NULL")
    )
    assert "[parameters:" in str(refused)  # what an engine that does not hide them raises
    try:
        raise refused
    except sa.exc.IntegrityError:
        get_logger().exception("unhandled_error")
    raw = out.text
    _assert_clean(raw)
    assert BODY not in raw
    exception = _lines(out)[0]["exception"]
    assert "[SQL: INSERT INTO message (text, sender) VALUES (?, ?)]" in exception
    assert "[parameters: <redacted>]" in exception


def test_postgresql_details_lose_the_values_and_keep_the_columns() -> None:
    not_null = (
        'null value in column "workspace_id" of relation "agent" violates not-null constraint\n'
        f"DETAIL:  Failing row contains (0190a000-0000-7000-8000-000000000001, null, {EMAIL}, {BODY})."
    )
    unique = (
        f"DETAIL:  Key (workspace_id, email)=(0190a000-0000-7000-8000-000000000001, {EMAIL}) already exists."
    )
    assert redact_text(not_null).endswith("DETAIL:  Failing row contains <redacted>")
    assert redact_text(unique) == "DETAIL:  Key (workspace_id, email)=(<redacted>) already exists."


def test_asyncpg_and_pydantic_quoted_inputs_are_cut(out: CapturedLogs) -> None:
    asyncpg_text = f"invalid input for query argument $2: '{BODY}' (expected str, got int)"
    assert redact_text(asyncpg_text) == "invalid input for query argument $2: <redacted>"
    try:
        pydantic.TypeAdapter(int).validate_python(BODY)
    except pydantic.ValidationError:
        get_logger().exception("unhandled_error")
    raw = out.text
    assert BODY not in raw and "input_value=<redacted>, input_type=str" in raw


def test_an_exception_or_an_object_given_as_a_value_is_logged_as_its_redacted_text(out: CapturedLogs) -> None:
    class Contact:
        def __repr__(self) -> str:
            return f"Contact({EMAIL!r})"

        __str__ = __repr__

    get_logger().error("delivery_failed", error=ValueError(f"bounced {EMAIL}"), contact=Contact())
    _assert_clean(out.text)
    line = _lines(out)[0]
    assert line["error"].startswith("ValueError: bounced m***@c***#")
    assert line["contact"].startswith("Contact('m***@c***#")


def test_a_librarys_stdlib_error_goes_through_the_same_chain(out: CapturedLogs) -> None:
    try:
        _fail_with_contact_details()
    except ValueError as exc:
        logging.getLogger("aiohttp.server").error("Error handling request from %s", EMAIL, exc_info=exc)
    _assert_clean(out.text)
    (line,) = _lines(out)
    assert line["logger"] == "aiohttp.server" and line["level"] == "error"
    assert line["event"].startswith("Error handling request from m***@c***#")
    assert "ValueError: customer +***78#" in line["exception"] and "timestamp" in line


def test_library_records_below_warning_stay_out(out: CapturedLogs) -> None:
    logging.getLogger("aiohttp.access").info("GET /api/x?email=%s", EMAIL)
    logging.getLogger("sqlalchemy.engine").warning("pool %s", PHONE)
    (line,) = _lines(out)
    assert line["logger"] == "sqlalchemy.engine" and line["level"] == "warning"
    _assert_clean(out.text)


def test_configuring_again_replaces_the_root_handler(out: CapturedLogs) -> None:
    second = io.StringIO()
    configure_logging("WARNING", "json", stream=second)
    ours = [h for h in logging.getLogger().handlers if h.get_name() == STDLIB_HANDLER_NAME]
    assert len(ours) == 1
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    assert out.text == "" and "Task exception" in second.getvalue()


def test_logs_follow_stderr_when_a_harness_swaps_and_closes_it(
    out: CapturedLogs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI run under a test runner configures logging while ``sys.stderr`` is a stand-in the
    runner closes afterwards: later records go to whatever ``sys.stderr`` is then."""
    import sys

    stand_in = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stand_in)
    configure_logging("INFO", "json")
    stand_in.close()
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    get_logger("centralita").info("after_the_cli_run", conversation_id="c-1")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    events = [json.loads(line)["event"] for line in later.getvalue().splitlines()]
    assert events == ["after_the_cli_run", "Task exception was never retrieved"]
