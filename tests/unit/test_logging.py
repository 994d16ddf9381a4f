"""Logs never carry phone numbers, email addresses or message bodies in clear at INFO and above."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from core.logging import redact_personal_data


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Another test may have configured a level filter; these tests start from the defaults."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _log(level: str, **kw: object) -> dict[str, object]:
    with capture_logs(processors=[structlog.processors.add_log_level, redact_personal_data]) as logs:
        getattr(structlog.get_logger(), level)("something_happened", **kw)
    return logs[0]


def test_an_email_address_is_masked_at_info() -> None:
    entry = _log("info", sender="Maria.Lopez@Example.com")
    assert "Maria.Lopez@Example.com" not in str(entry)
    assert str(entry["sender"]).startswith("M***@E***#")


def test_a_phone_number_is_masked_at_info_in_any_format() -> None:
    for phone in ("+5215512345678", "+54 9 11 2345-6789", "5511987654321"):
        entry = _log("info", detail=f"from {phone} today")
        assert phone not in str(entry)
        assert "+***" in str(entry["detail"])


def test_message_bodies_are_dropped_at_info() -> None:
    entry = _log("info", text="mi correo es ana@x.com", subject="Reclamo", body="hola")
    assert entry["text"] == "<redacted 22 chars>"
    assert entry["subject"] == "<redacted 7 chars>"
    assert entry["body"] == "<redacted 4 chars>"


def test_nested_values_are_redacted_too() -> None:
    entry = _log("warning", sender={"address": "+5215512345678", "emails": ["a@b.co"]})
    assert "+5215512345678" not in str(entry) and "a@b.co" not in str(entry)


def test_ids_survive_redaction() -> None:
    conversation = "01a1fca9-5a62-7fba-87e6-b96da4a176ef"
    entry = _log("info", conversation_id=conversation, customer_id=conversation)
    assert entry["conversation_id"] == conversation


def test_debug_keeps_everything_for_local_troubleshooting() -> None:
    entry = _log("debug", text="hola", sender="+5215512345678")
    assert entry["text"] == "hola" and entry["sender"] == "+5215512345678"


def test_the_same_address_masks_to_the_same_tag_so_logs_can_be_correlated() -> None:
    first = _log("info", sender="ana@example.com")["sender"]
    second = _log("info", sender="ana@example.com")["sender"]
    assert first == second
