"""WhatsApp Cloud API webhooks become normalized events: one behaviour per test."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from channels.whatsapp.parse import parse_webhook
from channels.whatsapp.testing import fixture
from core.errors import InvalidInput
from core.events import (
    AddressKind,
    AttachmentKind,
    DeliveryStatus,
    Ignored,
    InboundMessage,
    Postback,
    Reaction,
    SystemNotice,
    Unsupported,
)

RECEIVED_AT = datetime(2025, 2, 12, tzinfo=UTC)


def parse(name: str) -> list[Any]:
    return list(parse_webhook(fixture(name), received_at=RECEIVED_AT))


def only(name: str) -> Any:
    events = parse(name)
    assert len(events) == 1
    return events[0]


def test_a_text_message_carries_its_body_sender_phone_and_profile_name() -> None:
    event = only("text")
    assert isinstance(event, InboundMessage)
    assert event.text == "Hola, quiero información del posgrado"
    assert event.sender.kind is AddressKind.PHONE
    assert event.sender.value == "+5215512345678"
    assert event.sender.display_name == "María López"
    assert event.business_address == "106540352242922"
    assert event.external_id.startswith("wamid.")


def test_the_unix_seconds_timestamp_becomes_an_aware_utc_datetime() -> None:
    assert only("text").timestamp == datetime(2025, 2, 12, 0, 43, 44, tzinfo=UTC)


def test_an_image_keeps_its_media_id_mime_type_and_caption() -> None:
    event = only("image")
    (attachment,) = event.attachments
    assert attachment.kind is AttachmentKind.IMAGE
    assert attachment.media_id == "1479537139650973"
    assert attachment.mime_type == "image/jpeg"
    assert attachment.caption == event.text == "Mi comprobante"


def test_a_voice_note_becomes_a_voice_attachment() -> None:
    assert only("voice").attachments[0].kind is AttachmentKind.VOICE


def test_an_audio_file_that_is_not_a_voice_note_stays_audio() -> None:
    assert only("audio").attachments[0].kind is AttachmentKind.AUDIO


def test_a_video_becomes_a_video_attachment() -> None:
    assert only("video").attachments[0].kind is AttachmentKind.VIDEO


def test_a_document_keeps_its_filename() -> None:
    attachment = only("document").attachments[0]
    assert attachment.kind is AttachmentKind.DOCUMENT
    assert attachment.filename == "acta.pdf"


def test_a_sticker_becomes_a_sticker_attachment() -> None:
    assert only("sticker").attachments[0].kind is AttachmentKind.STICKER


def test_a_location_becomes_a_location_attachment_with_coordinates_name_and_address() -> None:
    attachment = only("location").attachments[0]
    assert attachment.kind is AttachmentKind.LOCATION
    assert attachment.data is not None
    assert attachment.data["latitude"] == pytest.approx(19.4326077)
    assert attachment.data["longitude"] == pytest.approx(-99.133208)
    assert attachment.data["name"] == "Campus Reforma"
    assert attachment.data["address"].startswith("Av. Paseo de la Reforma")


def test_shared_contacts_become_a_contacts_attachment_with_the_cards() -> None:
    attachment = only("contacts").attachments[0]
    assert attachment.kind is AttachmentKind.CONTACTS
    assert attachment.data is not None
    assert attachment.data["contacts"][0]["name"]["formatted_name"] == "Ana Ruiz"


def test_a_reply_button_tap_becomes_a_postback_with_its_id_and_title() -> None:
    event = only("interactive_button_reply")
    assert isinstance(event, Postback)
    assert (event.payload, event.text) == ("inscripcion_si", "Sí, inscribirme")
    assert event.reply_to == "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjlBQkMwMDAwMDAwMDAwMDAwMQA="


def test_a_list_row_choice_becomes_a_postback() -> None:
    event = only("interactive_list_reply")
    assert isinstance(event, Postback)
    assert (event.payload, event.text) == ("programa_mba", "MBA ejecutivo")


def test_a_template_quick_reply_button_becomes_a_postback_with_payload_and_text() -> None:
    event = only("template_button")
    assert isinstance(event, Postback)
    assert (event.payload, event.text) == ("RECORDATORIO_CONFIRMAR", "Confirmar cita")
    assert event.provider_type == "button"


def test_a_reaction_names_the_message_and_the_emoji() -> None:
    event = only("reaction")
    assert isinstance(event, Reaction)
    assert event.emoji == "👍"
    assert event.target_external_id == "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjlBQkMwMDAwMDAwMDAwMDAwNAA="


def test_an_empty_reaction_emoji_means_the_reaction_was_removed() -> None:
    event = only("reaction_removed")
    assert isinstance(event, Reaction)
    assert event.emoji is None


def test_a_reply_points_at_the_quoted_message() -> None:
    assert only("reply").reply_to == "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjlBQkMwMDAwMDAwMDAwMDAwNQA="


def test_a_forwarded_message_is_a_plain_message_that_quotes_nothing() -> None:
    event = only("forwarded")
    assert event.text == "Mira esta promoción"
    assert event.reply_to is None


def test_a_click_to_whatsapp_ad_keeps_the_referral_and_its_click_id() -> None:
    referral = only("referral").referral
    assert referral is not None
    assert referral.source == "ad"
    assert referral.ad_id == "120226305854810726"
    assert referral.headline == "Posgrados 2027"
    assert referral.click_id is not None and referral.click_id.startswith("ARAkLkA8")


def test_an_unsupported_message_arrives_with_no_text_and_whatsapps_errors() -> None:
    event = only("unsupported")
    assert isinstance(event, InboundMessage)
    assert event.text is None
    assert event.errors[0].code == "131051"
    assert event.errors[0].details == "Message type is currently not supported."


def test_a_customer_changing_number_becomes_a_system_notice_with_the_new_phone() -> None:
    event = only("system_changed_number")
    assert isinstance(event, SystemNotice)
    assert event.notice == "customer_changed_number"
    assert event.new_address is not None
    assert event.new_address.value == "+5215599998888"
    assert event.sender.value == "+5215512345678"


def test_the_older_system_shape_with_new_wa_id_is_understood_too() -> None:
    payload = json.loads(fixture("system_changed_number"))
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message["system"] = {"body": "changed", "new_wa_id": "5215577776666", "type": "customer_changed_number"}
    (event,) = parse_webhook(json.dumps(payload).encode(), received_at=RECEIVED_AT)
    assert isinstance(event, SystemNotice)
    assert event.new_address is not None and event.new_address.value == "+5215577776666"


def test_a_user_known_only_by_bsuid_is_addressed_by_it_scoped_to_the_business_account() -> None:
    event = only("bsuid_only")
    assert event.sender.kind is AddressKind.WHATSAPP_BSUID
    assert event.sender.value == "MX.1410018717833190"
    assert event.sender.scope == "102290129340398"
    assert event.sender.display_name == "María López"
    assert event.sender_identities == ()


def test_phone_and_bsuid_together_make_the_phone_the_sender_and_both_verified_identities() -> None:
    event = only("bsuid_and_phone")
    assert event.sender.kind is AddressKind.PHONE
    assert [(a.kind, a.value) for a in event.sender_identities] == [
        (AddressKind.PHONE, "+5215512345678"),
        (AddressKind.WHATSAPP_BSUID, "MX.1410018717833190"),
    ]


def test_a_contact_bsuid_is_used_when_the_message_names_only_the_phone() -> None:
    payload = json.loads(fixture("bsuid_and_phone"))
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["from_user_id"]
    (event,) = parse_webhook(json.dumps(payload).encode(), received_at=RECEIVED_AT)
    assert {a.kind for a in event.sender_identities} == {AddressKind.PHONE, AddressKind.WHATSAPP_BSUID}


def test_statuses_become_delivery_statuses_named_by_our_outbound_wamid() -> None:
    events = parse("statuses")
    assert [e.status for e in events] == ["sent", "delivered", "read"]
    assert all(isinstance(e, DeliveryStatus) for e in events)
    assert {e.external_id for e in events} == {
        "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjAxMjM0NTY3ODlBQkNERUYwMQA="
    }
    assert events[0].recipient is not None and events[0].recipient.value == "+5215512345678"


def test_a_failed_status_carries_the_error_that_made_it_fail() -> None:
    event = only("status_failed")
    assert event.status == "failed"
    assert event.errors[0].code == "131047"


def test_a_batch_yields_every_message_and_status_of_every_entry_and_number_in_order() -> None:
    events = parse("batch")
    assert [type(e).__name__ for e in events] == [
        "InboundMessage",
        "InboundMessage",
        "DeliveryStatus",
        "InboundMessage",
    ]
    assert [e.business_address for e in events] == ["106540352242922"] * 3 + ["106540352242955"]
    assert events[3].sender.value == "+5491122334455"


@pytest.mark.parametrize("name", ["template_status_update", "account_update"])
def test_other_webhook_fields_are_ignored_never_messages(name: str) -> None:
    event = only(name)
    assert isinstance(event, Ignored)
    assert event.field == json.loads(fixture(name))["entry"][0]["changes"][0]["field"]


def test_errors_reported_in_the_webhook_value_are_ignored_with_their_code() -> None:
    event = only("value_errors")
    assert isinstance(event, Ignored)
    assert "131000" in event.reason


def test_an_unknown_status_value_is_ignored_rather_than_rejected() -> None:
    payload = json.loads(fixture("statuses"))
    payload["entry"][0]["changes"][0]["value"]["statuses"] = [
        {"id": "wamid.X", "status": "warning", "timestamp": "1739321030", "recipient_id": "5215512345678"}
    ]
    (event,) = parse_webhook(json.dumps(payload).encode(), received_at=RECEIVED_AT)
    assert isinstance(event, Ignored)


def test_a_message_without_its_id_is_unsupported_under_a_derived_id() -> None:
    payload = json.loads(fixture("text"))
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    body = json.dumps(payload).encode()
    (event,) = parse_webhook(body, received_at=RECEIVED_AT)
    assert isinstance(event, Unsupported)
    assert event.reason == "cannot read entry[0].changes[0].value.messages[0].id"
    assert event.external_id.startswith("unsupported:")
    assert parse_webhook(body, received_at=RECEIVED_AT)[0].external_id == event.external_id


def test_a_text_body_of_the_wrong_type_is_unsupported_naming_its_json_path() -> None:
    payload = json.loads(fixture("text"))
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = 12
    (event,) = parse_webhook(json.dumps(payload).encode(), received_at=RECEIVED_AT)
    assert isinstance(event, Unsupported)
    assert event.reason == "cannot read entry[0].changes[0].value.messages[0].text.body"
    assert event.provider_type == "text"


def test_a_body_nested_ten_thousand_levels_deep_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        parse_webhook(b"[" * 10_000 + b"]" * 10_000, received_at=RECEIVED_AT)


def test_a_truncated_body_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_webhook(fixture("text")[:100], received_at=RECEIVED_AT)
    assert caught.value.field == "body"


def test_an_instagram_delivery_is_not_a_whatsapp_one_and_is_ignored_naming_no_account() -> None:
    (event,) = parse_webhook(b'{"object": "instagram", "entry": []}', received_at=RECEIVED_AT)
    assert isinstance(event, Ignored)
    assert event.business_address == "" and event.field == "body"
