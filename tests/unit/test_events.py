"""The normalized event model: frozen, typed, and unchanged by a trip through JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from core.events import (
    Address,
    AddressKind,
    Attachment,
    AttachmentKind,
    DeliveryReceipt,
    DeliveryStatus,
    Ignored,
    InboundMessage,
    MessageDeleted,
    OutboundEcho,
    OutboundMessage,
    Postback,
    ProviderError,
    Reaction,
    ReadReceipt,
    Referral,
    SystemNotice,
    Template,
    decode_event,
    encode_event,
)
from core.ids import MessageId, RawDeliveryId, WorkspaceId, new_id

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CUSTOMER = Address(kind=AddressKind.PHONE, value="+5215512345678", display_name="Ana")
BASE = {"channel": "whatsapp", "business_address": "1234567890", "timestamp": NOW}

SAMPLES = [
    InboundMessage(
        **BASE,
        external_id="wamid.1",
        sender=CUSTOMER,
        text="Hola",
        attachments=(Attachment(kind=AttachmentKind.IMAGE, mime_type="image/jpeg", media_id="m1"),),
        reply_to="wamid.0",
        referral=Referral(source="ad", source_id="ad-1", click_id="c1"),
        raw_delivery_id=RawDeliveryId(new_id()),
    ),
    DeliveryStatus(**BASE, external_id="wamid.out", status="failed", errors=(ProviderError(code="131047"),)),
    Reaction(**BASE, external_id="wamid.2", sender=CUSTOMER, target_external_id="wamid.1", emoji=None),
    MessageDeleted(**BASE, external_id="mid.3", sender=CUSTOMER, target_external_id="mid.2"),
    Postback(**BASE, external_id="wamid.4", sender=CUSTOMER, payload="PAGOS", text="Pagos"),
    ReadReceipt(**BASE, external_id="read.5", sender=CUSTOMER, watermark=NOW),
    SystemNotice(**BASE, external_id="wamid.6", sender=CUSTOMER, notice="customer_changed_number"),
    OutboundEcho(**BASE, external_id="mid.7", recipient=CUSTOMER, text="eco"),
    Ignored(**BASE, external_id="x", field="message_template_status_update", reason="not customer traffic"),
    OutboundMessage(
        message_id=MessageId(new_id()),
        workspace_id=WorkspaceId(new_id()),
        channel="whatsapp",
        business_address="1234567890",
        recipient=CUSTOMER,
        template=Template(name="recordatorio_pago", body_parameters=("Ana", "15/12")),
    ),
    DeliveryReceipt(
        message_id=MessageId(new_id()), external_id="wamid.9", channel="whatsapp", accepted_at=NOW
    ),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.kind)
def test_every_event_survives_a_trip_through_json(event: object) -> None:
    assert decode_event(encode_event(event)) == event  # type: ignore[arg-type]


def test_events_are_frozen() -> None:
    with pytest.raises(ValidationError):
        SAMPLES[0].text = "changed"  # type: ignore[misc]


def test_timestamps_must_carry_a_time_zone() -> None:
    with pytest.raises(ValidationError):
        InboundMessage(**{**BASE, "timestamp": datetime(2026, 1, 1)}, external_id="x", sender=CUSTOMER)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError):
        decode_event(b'{"kind": "telepathy"}')
