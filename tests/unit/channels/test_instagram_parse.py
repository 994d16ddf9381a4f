"""Instagram Messaging webhooks become normalized events: one behaviour per test."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from channels.instagram.parse import parse_webhook
from channels.instagram.testing import CUSTOMER, IG_ACCOUNT, SECOND_IG_ACCOUNT, fixture
from core.events import (
    AddressKind,
    AttachmentKind,
    Ignored,
    InboundMessage,
    MessageDeleted,
    OutboundEcho,
    Postback,
    Reaction,
    ReadReceipt,
    Unsupported,
)

RECEIVED_AT = datetime(2025, 2, 12, tzinfo=UTC)


def only(name: str) -> Any:
    events = parse_webhook(fixture(name), received_at=RECEIVED_AT)
    assert len(events) == 1
    return events[0]


def test_a_text_message_comes_from_the_igsid_scoped_to_the_instagram_account() -> None:
    event = only("text")
    assert isinstance(event, InboundMessage)
    assert event.text == "Hola, ¿tienen becas para la maestría?"
    assert event.sender.kind is AddressKind.INSTAGRAM_ID
    assert (event.sender.value, event.sender.scope) == (CUSTOMER, IG_ACCOUNT)
    assert event.business_address == IG_ACCOUNT


def test_the_millisecond_timestamp_becomes_an_aware_utc_datetime() -> None:
    assert only("text").timestamp == datetime(2025, 2, 12, 0, 43, 44, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("image", AttachmentKind.IMAGE),
        ("video", AttachmentKind.VIDEO),
        ("audio", AttachmentKind.AUDIO),
        ("file", AttachmentKind.FILE),
        ("share", AttachmentKind.SHARE),
        ("story_mention", AttachmentKind.STORY_MENTION),
    ],
)
def test_an_attachment_keeps_its_kind_and_cdn_url(name: str, kind: AttachmentKind) -> None:
    (attachment,) = only(name).attachments
    assert attachment.kind is kind
    assert attachment.url is not None and attachment.url.startswith("https://")


def test_a_story_reply_carries_the_story_as_a_story_reply_attachment_with_its_id() -> None:
    event = only("story_reply")
    (story,) = event.attachments
    assert story.kind is AttachmentKind.STORY_REPLY
    assert story.data == {"story_id": "3287362939473429012"}
    assert event.text == "¡Me encanta! ¿Cuándo empieza?"


def test_a_reaction_names_the_message_and_its_emoji() -> None:
    event = only("reaction")
    assert isinstance(event, Reaction)
    assert event.emoji == "❤️"
    assert event.target_external_id.endswith("01")


def test_an_unreaction_is_a_reaction_with_no_emoji() -> None:
    event = only("unreaction")
    assert isinstance(event, Reaction)
    assert event.emoji is None


def test_a_reaction_and_its_removal_have_different_external_ids() -> None:
    assert only("reaction").external_id != only("unreaction").external_id


def test_an_unsent_message_becomes_a_deletion_of_that_message() -> None:
    event = only("unsend")
    assert isinstance(event, MessageDeleted)
    assert event.target_external_id.endswith("01")
    assert event.external_id != event.target_external_id


def test_an_echo_of_our_own_message_is_an_outbound_echo_never_an_inbound_message() -> None:
    event = only("echo")
    assert isinstance(event, OutboundEcho)
    assert event.business_address == IG_ACCOUNT
    assert event.recipient.value == CUSTOMER


def test_a_postback_keeps_its_payload_and_title() -> None:
    event = only("postback")
    assert isinstance(event, Postback)
    assert (event.payload, event.text) == ("VER_PROGRAMAS", "Ver programas")


def test_a_quick_reply_becomes_a_postback_with_its_payload_and_text() -> None:
    event = only("quick_reply")
    assert isinstance(event, Postback)
    assert (event.payload, event.text) == ("MODALIDAD_PRESENCIAL", "Presencial")
    assert event.provider_type == "quick_reply"


def test_a_read_receipt_names_the_message_read() -> None:
    event = only("read")
    assert isinstance(event, ReadReceipt)
    assert event.target_external_id is not None and event.target_external_id.endswith("09")


def test_a_read_receipt_with_a_watermark_keeps_it_as_a_datetime() -> None:
    payload = json.loads(fixture("read"))
    payload["entry"][0]["messaging"][0]["read"] = {"watermark": 1739321050000}
    (event,) = parse_webhook(json.dumps(payload).encode(), received_at=RECEIVED_AT)
    assert event.watermark == datetime(2025, 2, 12, 0, 44, 10, tzinfo=UTC)


def test_an_ig_me_link_referral_becomes_a_postback_with_its_ref() -> None:
    event = only("referral_igme")
    assert isinstance(event, Postback)
    assert event.payload == "posgrados2027"
    assert event.referral is not None and event.referral.source == "SHORTLINK"


def test_a_message_from_an_ad_keeps_the_ad_referral() -> None:
    referral = only("ad_referral").referral
    assert referral is not None
    assert (referral.ad_id, referral.ref, referral.headline) == (
        "120210000000000001",
        "campania_mba",
        "MBA ejecutivo 2027",
    )


def test_a_reply_to_a_message_points_at_it() -> None:
    assert only("reply").reply_to is not None


def test_a_batch_yields_every_item_of_every_entry_in_order() -> None:
    events = parse_webhook(fixture("batch"), received_at=RECEIVED_AT)
    assert [e.text for e in events] == ["Primer mensaje", "Segundo mensaje", "Hola desde otra cuenta"]
    assert events[2].business_address == SECOND_IG_ACCOUNT


def test_the_changes_shape_with_a_seconds_timestamp_is_understood() -> None:
    event = only("changes_shape")
    assert isinstance(event, InboundMessage)
    assert event.timestamp == datetime(2025, 2, 12, 0, 43, 44, tzinfo=UTC)


def test_comment_notifications_are_ignored() -> None:
    event = only("comments_change")
    assert isinstance(event, Ignored)
    assert event.field == "comments"


def test_a_message_without_mid_is_unsupported_naming_its_json_path() -> None:
    payload = json.loads(fixture("text"))
    del payload["entry"][0]["messaging"][0]["message"]["mid"]
    (event,) = parse_webhook(json.dumps(payload).encode(), received_at=RECEIVED_AT)
    assert isinstance(event, Unsupported)
    assert event.reason == "cannot read entry[0].messaging[0].message.mid"
    assert event.provider_type == "message"


def test_a_whatsapp_delivery_is_not_an_instagram_one_and_is_ignored_naming_no_account() -> None:
    (event,) = parse_webhook(
        fixture("text").replace(b'"instagram"', b'"whatsapp_business_account"'), received_at=RECEIVED_AT
    )
    assert isinstance(event, Ignored)
    assert event.business_address == "" and event.field == "body"
