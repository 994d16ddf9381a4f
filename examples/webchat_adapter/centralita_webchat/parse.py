"""Bytes → normalized events.  Pure: no I/O; raises only ``InvalidInput`` (naming the field)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidInput
from core.events import Address, AddressKind, InboundEvent, InboundMessage

__all__ = ["CHANNEL", "MAX_TEXT", "parse_delivery"]

CHANNEL = "webchat"
MAX_TEXT = 4000
_REQUIRED = ("site_id", "session_id", "message_id", "sent_at")


def _string(data: dict[str, Any], name: str, *, limit: int = 200) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string", field=name)
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters", field=name)
    return value.strip()


def _when(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            "sent_at must be an ISO-8601 time such as 2026-03-03T16:15:28Z", field="sent_at"
        ) from None
    if value.tzinfo is None:
        raise InvalidInput("sent_at needs a time zone (Z or ±hh:mm)", field="sent_at")
    return value.astimezone(UTC)


def parse_delivery(body: bytes, *, received_at: datetime) -> Sequence[InboundEvent]:
    """One widget message → one ``InboundMessage`` (the visitor's session is the sender)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise InvalidInput("the body nests too deeply to be read", field="body") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    site, session, message_id = (_string(data, n) for n in _REQUIRED[:3])
    sent_at = _when(_string(data, "sent_at", limit=64))
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text must be a non-empty string", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text is longer than {MAX_TEXT} characters", field="text")
    name = data.get("visitor_name")
    if name is not None and not isinstance(name, str):
        raise InvalidInput("visitor_name must be a string", field="visitor_name")
    return [
        InboundMessage(
            channel=CHANNEL,
            business_address=site,
            external_id=message_id,
            timestamp=sent_at,
            sender=Address(kind=AddressKind.EXTERNAL, value=session, scope=site, display_name=name or None),
            text=text,
            provider_type="text",
        )
    ]
