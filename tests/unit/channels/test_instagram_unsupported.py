"""What the Instagram parser does not understand never takes its neighbours down.

Each unknown messaging item sits in one entry between known ones: the known ones parse exactly
as they do alone, the customer's unknown item is ``Unsupported`` with its raw JSON, an item with
no sender ``Ignored``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from channels.instagram.parse import parse_webhook
from channels.instagram.testing import CUSTOMER, IG_ACCOUNT, unshaped_bodies, webhook_body
from core.events import (
    AddressKind,
    Ignored,
    InboundEvent,
    InboundMessage,
    Reaction,
    Unsupported,
)

RECEIVED_AT = datetime(2025, 2, 12, tzinfo=UTC)
AT_MS = 1739321024123
PEOPLE = {"sender": {"id": CUSTOMER}, "recipient": {"id": IG_ACCOUNT}, "timestamp": AT_MS}

KNOWN_TEXT = {**PEOPLE, "message": {"mid": "mid.text", "text": "Hola"}}
KNOWN_REACTION = {**PEOPLE, "reaction": {"mid": "mid.text", "action": "react", "emoji": "❤"}}

# name → (the item, the provider type its Unsupported names, the reason)
UNKNOWN_ITEMS: dict[str, tuple[dict[str, Any], str, str]] = {
    "pass_thread_control": (
        {**PEOPLE, "pass_thread_control": {"new_owner_app_id": "263902037430900", "metadata": "x"}},
        "pass_thread_control",
        "unknown messaging event 'pass_thread_control'",
    ),
    "optin": (
        {**PEOPLE, "optin": {"type": "notification_messages"}},
        "optin",
        "unknown messaging event 'optin'",
    ),
    "message_without_mid": (
        {**PEOPLE, "message": {"text": "sin id"}},
        "message",
        "cannot read entry[0].messaging[1].message.mid",
    ),
    "message_with_nothing_in_it": (
        {**PEOPLE, "message": {"mid": "mid.empty"}},
        "message",
        "cannot read entry[0].messaging[1].message.text",
    ),
    "reaction_with_an_unknown_action": (
        {**PEOPLE, "reaction": {"mid": "mid.text", "action": "love"}},
        "reaction",
        "cannot read entry[0].messaging[1].reaction.action",
    ),
    "timestamp_in_words": (
        {**PEOPLE, "timestamp": "ayer", "message": {"mid": "mid.ayer", "text": "?"}},
        "message",
        "cannot read entry[0].messaging[1].timestamp",
    ),
}


def _body(items: list[dict[str, Any]]) -> bytes:
    return webhook_body(IG_ACCOUNT, items, time_ms=AT_MS)


def _parse(body: bytes) -> list[InboundEvent]:
    return parse_webhook(body, received_at=RECEIVED_AT)


def _same(a: InboundEvent, b: InboundEvent) -> bool:
    """Equal but for the event id each parse draws anew."""
    return a.model_dump(exclude={"event_id"}) == b.model_dump(exclude={"event_id"})


@pytest.mark.parametrize("name", sorted(UNKNOWN_ITEMS))
def test_an_unknown_item_between_known_ones_is_unsupported_and_the_known_ones_parse_as_alone(
    name: str,
) -> None:
    unknown, provider_type, reason = UNKNOWN_ITEMS[name]
    text, unsupported, reaction = _parse(_body([KNOWN_TEXT, unknown, KNOWN_REACTION]))
    assert _same(text, _parse(_body([KNOWN_TEXT]))[0]) and isinstance(text, InboundMessage)
    assert _same(reaction, _parse(_body([KNOWN_REACTION]))[0]) and isinstance(reaction, Reaction)
    assert isinstance(unsupported, Unsupported)
    assert (unsupported.provider_type, unsupported.reason) == (provider_type, reason)
    assert unsupported.business_address == IG_ACCOUNT
    assert (unsupported.sender.kind, unsupported.sender.value) == (AddressKind.INSTAGRAM_ID, CUSTOMER)
    assert unsupported.sender.scope == IG_ACCOUNT
    assert unsupported.raw == unknown
    assert _parse(_body([unknown]))[0].external_id == unsupported.external_id  # a redelivery dedupes


def test_an_item_with_no_readable_sender_is_ignored_and_its_neighbours_kept() -> None:
    anonymous = {"recipient": {"id": IG_ACCOUNT}, "timestamp": AT_MS, "message": {"mid": "m", "text": "?"}}
    text, ignored = _parse(_body([KNOWN_TEXT, anonymous]))
    assert isinstance(text, InboundMessage)
    assert isinstance(ignored, Ignored) and "no readable sender" in ignored.reason


def test_unknown_fields_on_the_entry_and_the_item_change_nothing() -> None:
    extended = {**KNOWN_TEXT, "new_on_item": {"x": 1}, "message": {**KNOWN_TEXT["message"], "new": True}}
    body = json.dumps(
        {
            "object": "instagram",
            "new": 1,
            "entry": [{"id": IG_ACCOUNT, "time": AT_MS, "new": [], "messaging": [extended]}],
        }
    ).encode()
    (event,) = _parse(body)
    assert _same(event, _parse(_body([KNOWN_TEXT]))[0])


def test_an_entry_of_an_unknown_shape_is_ignored_and_the_next_entry_parsed() -> None:
    body = json.dumps(
        {
            "object": "instagram",
            "entry": [{"id": IG_ACCOUNT, "unknown_list": []}, {"id": IG_ACCOUNT, "messaging": [KNOWN_TEXT]}],
        }
    ).encode()
    ignored, text = _parse(body)
    assert isinstance(ignored, Ignored) and ignored.business_address == IG_ACCOUNT
    assert isinstance(text, InboundMessage) and text.text == "Hola"


@pytest.mark.parametrize("index", range(len(unshaped_bodies())))
def test_a_readable_body_of_an_unknown_shape_parses_without_an_error(index: int) -> None:
    for event in _parse(unshaped_bodies()[index]):
        event.model_dump_json()
