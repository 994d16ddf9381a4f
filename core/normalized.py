"""The flat JSON view of an event that ``centralita normalize`` prints, one object per event."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from core.events import (
    DeliveryStatus,
    Ignored,
    InboundEvent,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    OutboundEcho,
    Postback,
    Reaction,
    ReadReceipt,
    SystemNotice,
)

__all__ = ["to_normalized"]


def to_normalized(event: InboundEvent) -> dict[str, Any]:
    """``channel, kind, external_id, sender, business_address, text, attachments, reply_to,
    status, timestamp`` (ISO-8601 UTC), plus a few kind-specific keys."""
    out: dict[str, Any] = {
        "channel": event.channel,
        "kind": event.kind,
        "external_id": event.external_id,
        "sender": None,
        "business_address": event.business_address,
        "text": None,
        "attachments": [],
        "reply_to": None,
        "status": None,
        "timestamp": event.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if isinstance(event, InboundMessage):
        out.update(
            sender=event.sender.value,
            text=event.text,
            reply_to=event.reply_to,
            attachments=[
                {
                    k: v
                    for k, v in {
                        "kind": a.kind.value,
                        "mime_type": a.mime_type,
                        "filename": a.filename,
                        "media_id": a.media_id,
                        "url": a.url,
                        "size": a.size,
                    }.items()
                    if v is not None
                }
                for a in event.attachments
            ],
        )
        if event.subject is not None:
            out["subject"] = event.subject
        if event.automated is not None:
            out["automated"] = event.automated
        if event.referral is not None:
            out["referral"] = event.referral.model_dump(exclude_none=True)
        if event.errors:
            out["errors"] = [e.model_dump(exclude_none=True) for e in event.errors]
        if event.sender.display_name:
            out["sender_name"] = event.sender.display_name
    elif isinstance(event, DeliveryStatus):
        out.update(
            sender=event.recipient.value if event.recipient else None,
            status=event.status,
        )
        if event.errors:
            out["errors"] = [e.model_dump(exclude_none=True) for e in event.errors]
    elif isinstance(event, Reaction):
        out.update(sender=event.sender.value, text=event.emoji, reply_to=event.target_external_id)
        out["emoji"] = event.emoji
    elif isinstance(event, MessageDeleted):
        out.update(sender=event.sender.value, reply_to=event.target_external_id)
    elif isinstance(event, MessageEdited):
        out.update(sender=event.sender.value, text=event.text, reply_to=event.target_external_id)
        if event.edit_count is not None:
            out["edit_count"] = event.edit_count
    elif isinstance(event, Postback):
        out.update(sender=event.sender.value, text=event.text, reply_to=event.reply_to)
        out["payload"] = event.payload
    elif isinstance(event, ReadReceipt):
        out.update(sender=event.sender.value, reply_to=event.target_external_id)
        if event.watermark is not None:
            out["watermark"] = event.watermark.astimezone(UTC).isoformat().replace("+00:00", "Z")
    elif isinstance(event, SystemNotice):
        out.update(sender=event.sender.value, text=event.text)
        out["notice"] = event.notice
        if event.new_address is not None:
            out["new_address"] = event.new_address.value
    elif isinstance(event, OutboundEcho):
        out.update(sender=event.recipient.value, text=event.text)
    elif isinstance(event, Ignored):
        out["field"] = event.field
        out["reason"] = event.reason
    return out
