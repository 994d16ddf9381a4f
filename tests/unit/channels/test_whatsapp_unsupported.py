"""What the WhatsApp parser does not understand never takes its neighbours down.

Each unknown part (shapes from Meta's webhook reference and other projects' public fixtures)
sits in one batch between known events: the known ones parse exactly as they do alone, the
customer's unknown part is ``Unsupported`` with its raw JSON, a part with no sender ``Ignored``.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from channels.whatsapp.parse import parse_webhook
from channels.whatsapp.testing import (
    PHONE_NUMBER_ID,
    WABA_ID,
    contact,
    fixture,
    unshaped_bodies,
    webhook_body,
)
from core.events import (
    AddressKind,
    DeliveryStatus,
    Ignored,
    InboundEvent,
    InboundMessage,
    Postback,
    Reaction,
    Unsupported,
)

RECEIVED_AT = datetime(2025, 2, 12, tzinfo=UTC)
PHONE = "5215512345678"


def _message(wamid: str, kind: str | None, **content: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"from": PHONE, "id": wamid, "timestamp": "1739321024", **content}
    if kind is not None:
        message["type"] = kind
    return message


KNOWN_TEXT = _message("wamid.text", "text", text={"body": "Hola"})
KNOWN_REACTION = _message("wamid.reaction", "reaction", reaction={"message_id": "wamid.ours", "emoji": "👍"})
KNOWN_STATUS = {"id": "wamid.sent", "status": "delivered", "timestamp": "1739321030", "recipient_id": PHONE}

# name → (the message, the provider type its Unsupported names, the reason)
UNKNOWN_MESSAGES: dict[str, tuple[dict[str, Any], str, str]] = {
    "call_permission_reply": (
        _message(
            "wamid.call",
            "interactive",
            interactive={
                "type": "call_permission_reply",
                "call_permission_reply": {
                    "response": "accept",
                    "is_permanent": False,
                    "expiration_timestamp": 1739925824,
                    "response_source": "user_action",
                },
            },
        ),
        "interactive.call_permission_reply",
        "unknown interactive type 'call_permission_reply'",
    ),
    "payment_interactive": (
        _message(
            "wamid.pay", "interactive", interactive={"type": "payment_method", "payment_method": {"id": "x"}}
        ),
        "interactive.payment_method",
        "unknown interactive type 'payment_method'",
    ),
    "interactive_without_its_body": (
        _message("wamid.nobody", "interactive"),
        "interactive",
        "cannot read entry[0].changes[0].value.messages[1].interactive",
    ),
    "button_reply_without_the_reply": (
        _message("wamid.noreply", "interactive", interactive={"type": "button_reply"}),
        "interactive",
        "cannot read entry[0].changes[0].value.messages[1].interactive.button_reply",
    ),
    "unknown_message_type": (
        _message("wamid.poll", "poll", poll={"name": "¿Turno?", "options": ["mañana", "tarde"]}),
        "poll",
        "unknown message type 'poll'",
    ),
    "ephemeral": (_message("wamid.eph", "ephemeral"), "ephemeral", "unknown message type 'ephemeral'"),
    "no_type_at_all": (
        _message("wamid.notype", None, text={"body": "?"}),
        "unknown",
        "cannot read entry[0].changes[0].value.messages[1].type",
    ),
    "text_body_not_a_string": (
        _message("wamid.num", "text", text={"body": 12}),
        "text",
        "cannot read entry[0].changes[0].value.messages[1].text.body",
    ),
    "image_without_its_media_id": (
        _message("wamid.img", "image", image={"mime_type": "image/jpeg"}),
        "image",
        "cannot read entry[0].changes[0].value.messages[1].image.id",
    ),
}


def _body(messages: list[dict[str, Any]], statuses: list[dict[str, Any]] | None = None) -> bytes:
    return webhook_body(
        PHONE_NUMBER_ID,
        messages=messages,
        statuses=statuses,
        contacts=[contact(PHONE, "María López")],
        waba_id=WABA_ID,
    )


def _parse(body: bytes) -> list[InboundEvent]:
    return parse_webhook(body, received_at=RECEIVED_AT)


def _same(a: InboundEvent, b: InboundEvent) -> bool:
    """Equal but for the event id each parse draws anew."""
    return a.model_dump(exclude={"event_id"}) == b.model_dump(exclude={"event_id"})


@pytest.mark.parametrize("name", sorted(UNKNOWN_MESSAGES))
def test_an_unknown_message_between_known_ones_is_unsupported_and_the_known_ones_parse_as_alone(
    name: str,
) -> None:
    unknown, provider_type, reason = UNKNOWN_MESSAGES[name]
    text, unsupported, reaction = _parse(_body([KNOWN_TEXT, unknown, KNOWN_REACTION]))
    assert _same(text, _parse(_body([KNOWN_TEXT]))[0]) and isinstance(text, InboundMessage)
    assert _same(reaction, _parse(_body([KNOWN_REACTION]))[0]) and isinstance(reaction, Reaction)
    assert isinstance(unsupported, Unsupported)
    assert (unsupported.provider_type, unsupported.reason) == (provider_type, reason)
    assert unsupported.external_id == unknown["id"]
    assert unsupported.business_address == PHONE_NUMBER_ID
    assert (unsupported.sender.kind, unsupported.sender.value) == (AddressKind.PHONE, f"+{PHONE}")
    assert unsupported.sender.display_name == "María López"
    assert unsupported.timestamp == datetime(2025, 2, 12, 0, 43, 44, tzinfo=UTC)
    assert unsupported.raw == unknown


def test_a_status_sent_to_a_group_is_ignored_and_the_statuses_beside_it_are_kept() -> None:
    group = {
        "id": "wamid.group",
        "status": "read",
        "timestamp": "1739321031",
        "recipient_id": "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjMwNDc5MDk2NjU1MzMZD",
        "recipient_type": "group",
        "recipient_participant_id": PHONE,
    }
    before, ignored, after = _parse(_body([], [KNOWN_STATUS, group, KNOWN_STATUS | {"id": "wamid.other"}]))
    assert isinstance(before, DeliveryStatus) and isinstance(after, DeliveryStatus)
    assert _same(before, _parse(_body([], [KNOWN_STATUS]))[0])
    assert isinstance(ignored, Ignored) and ignored.field == "statuses" and "'group'" in ignored.reason


def test_a_status_to_an_individual_recipient_is_a_delivery_status_as_before() -> None:
    (status,) = _parse(_body([], [KNOWN_STATUS | {"recipient_type": "individual"}]))
    assert _same(status, _parse(_body([], [KNOWN_STATUS]))[0])


def test_unknown_fields_at_every_level_change_nothing() -> None:
    plain = _parse(fixture("batch"))
    payload = json.loads(fixture("batch"))
    extended = copy.deepcopy(payload)
    extended["new_top_level"] = 1
    for entry in extended["entry"]:
        entry["time"] = 1739321024
        for change in entry["changes"]:
            change["new_on_change"] = {"x": 1}
            value = change["value"]
            value["new_on_value"] = [1, 2]
            for part in value.get("messages", []) + value.get("statuses", []):
                part["identity_key_hash"] = "DF2lS5v2W6x="
                part["biz_opaque_callback_data"] = part.get("biz_opaque_callback_data", "ours")
    events = _parse(json.dumps(extended).encode())
    assert len(events) == len(plain)
    for got, want in zip(events, plain, strict=True):
        assert type(got) is type(want)
        assert got.external_id == want.external_id


def test_a_message_with_no_readable_sender_is_ignored_and_its_neighbours_kept() -> None:
    anonymous = {"id": "wamid.anon", "timestamp": "1739321024", "type": "poll"}
    text, ignored = _parse(_body([KNOWN_TEXT, anonymous]))
    assert isinstance(text, InboundMessage)
    assert isinstance(ignored, Ignored) and ignored.field == "messages"
    assert "no readable sender" in ignored.reason


def test_a_change_without_a_phone_number_is_ignored_and_the_next_change_parsed() -> None:
    payload = json.loads(fixture("text"))
    broken = copy.deepcopy(payload["entry"][0]["changes"][0])
    del broken["value"]["metadata"]
    payload["entry"][0]["changes"].insert(0, broken)
    ignored, text = _parse(json.dumps(payload).encode())
    assert isinstance(ignored, Ignored) and ignored.business_address == WABA_ID
    assert isinstance(text, InboundMessage) and text.text == "Hola, quiero información del posgrado"


def test_a_flow_answer_without_its_body_and_with_an_object_for_json_is_a_postback() -> None:
    flow = _message(
        "wamid.flow",
        "interactive",
        interactive={
            "type": "nfm_reply",
            "nfm_reply": {"name": "flow", "response_json": {"flow_token": "t", "cita": "2025-02-20"}},
        },
    )
    (event,) = _parse(_body([flow]))
    assert isinstance(event, Postback) and event.text is None
    assert json.loads(event.payload or "") == {"flow_token": "t", "cita": "2025-02-20"}


def test_whatsapps_own_unsupported_type_stays_a_message_that_opens_a_conversation() -> None:
    (event,) = _parse(fixture("unsupported"))
    assert isinstance(event, InboundMessage) and event.errors[0].code == "131051"


@pytest.mark.parametrize("index", range(len(unshaped_bodies())))
def test_a_readable_body_of_an_unknown_shape_parses_without_an_error(index: int) -> None:
    events = _parse(unshaped_bodies()[index])
    assert all(isinstance(e, Ignored | Unsupported | InboundMessage | DeliveryStatus) for e in events)
    for event in events:
        event.model_dump_json()
