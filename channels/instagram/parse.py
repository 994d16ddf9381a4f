"""Instagram Messaging webhook bodies → normalized events.  Pure: bytes in, events out, no I/O.

A delivery is ``{"object": "instagram", "entry": [{"id": <IG account id>, "time": ms,
"messaging": [{"sender": {"id": IGSID}, "recipient": {"id": IG id}, "timestamp": ms, ...}]}]}``.
Some subscriptions (Instagram Login test deliveries, ``comments``, ``mentions``, ...) use the
``changes`` shape ``[{"field": ..., "value": {...}}]``; a messaging field there carries the same
item as ``messaging`` does, any other field becomes ``Ignored``.

Total for any JSON: only a body that is not readable JSON raises ``InvalidInput``.  A messaging
item the parser does not understand (a new event kind, a field of the wrong type) never takes its
neighbours down: with a sender it becomes ``Unsupported`` (the raw JSON kept, on the timeline),
without one ``Ignored`` with the reason, as does a body that is no Instagram delivery at all.

Events that Instagram gives no id of their own (reactions, reads, deletions, referrals) get a
derived ``external_id`` built from the ids they carry, so a redelivery yields the same id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from channels.meta.jsonbody import (
    as_object,
    fingerprint,
    opt_bool,
    opt_list,
    opt_object,
    opt_str,
    req_object,
    req_str,
    try_load,
    unix_time,
)
from core.errors import InvalidInput
from core.events import (
    Address,
    AddressKind,
    Attachment,
    AttachmentKind,
    Ignored,
    InboundEvent,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    OutboundEcho,
    Postback,
    Reaction,
    ReadReceipt,
    Referral,
    Unsupported,
)

__all__ = ["CHANNEL", "OBJECT", "parse_webhook"]

CHANNEL = "instagram"
OBJECT = "instagram"

_ATTACHMENT_KINDS: dict[str, AttachmentKind] = {
    "image": AttachmentKind.IMAGE,
    "video": AttachmentKind.VIDEO,
    "audio": AttachmentKind.AUDIO,
    "file": AttachmentKind.FILE,
    "share": AttachmentKind.SHARE,
    "story_mention": AttachmentKind.STORY_MENTION,
    "ig_reel": AttachmentKind.SHARE,
    "reel": AttachmentKind.SHARE,
    "ig_post": AttachmentKind.SHARE,
    "animated_image_share": AttachmentKind.IMAGE,
}
# Fields whose ``changes`` value is a messaging item (Instagram API with Instagram Login).
_MESSAGING_FIELDS = frozenset(
    {"messages", "messaging_postbacks", "message_reactions", "messaging_seen", "messaging_referral"}
)
_ITEM_KEYS = frozenset({"sender", "recipient", "timestamp"})
_TYPE_NAME_MAX = 60


def parse_webhook(body: bytes, *, received_at: datetime) -> list[InboundEvent]:
    """Every event in one webhook delivery, in payload order (``InvalidInput``: not readable JSON)."""
    root = try_load(body)
    if not isinstance(root, dict) or root.get("object") != OBJECT or not isinstance(root.get("entry"), list):
        return [_ignored("", "body", root, received_at, "the body is not an Instagram webhook delivery")]
    events: list[InboundEvent] = []
    for i, raw_entry in enumerate(root["entry"]):
        events.extend(_entry(raw_entry, received_at, f"entry[{i}]"))
    return events


def _unreadable(exc: InvalidInput | ValidationError, path: str) -> str:
    """Why a part could not be read: the JSON path, never the value."""
    if isinstance(exc, InvalidInput):
        return f"cannot read {exc.field or path}"
    return f"a value at {path} the event model refuses"


def _parts(holder: dict[str, Any], key: str) -> list[Any]:
    raw = holder.get(key)
    if raw is None:
        return []
    return raw if isinstance(raw, list) else [raw]  # a lone part is still read (and kept) as one


def _entry(raw: Any, received_at: datetime, path: str) -> list[InboundEvent]:
    entry = raw if isinstance(raw, dict) else {}
    try:
        account_id = _id(entry, "id", path)
    except InvalidInput:
        account_id = ""
    if not account_id or not ({"messaging", "changes", "standby"} & entry.keys()):
        return [_ignored(account_id, "entry", raw, received_at, f"{path} is not an Instagram entry")]
    events: list[InboundEvent] = []
    for k, item in enumerate(_parts(entry, "messaging")):
        events.append(_item(item, account_id, received_at, f"{path}.messaging[{k}]"))
    for item in _parts(entry, "standby"):
        events.append(_ignored(account_id, "standby", item, received_at, "another app controls this thread"))
    for k, raw_change in enumerate(_parts(entry, "changes")):
        cpath = f"{path}.changes[{k}]"
        try:
            change = as_object(raw_change, cpath)
            field = req_str(change, "field", cpath)
            value = req_object(change, "value", cpath)
        except InvalidInput as exc:
            events.append(_ignored(account_id, "changes", raw_change, received_at, _unreadable(exc, cpath)))
            continue
        if field in _MESSAGING_FIELDS and "sender" in value:
            events.append(_item(value, account_id, received_at, f"{cpath}.value"))
        else:
            reason = f"the {field!r} webhook field carries no direct-message traffic"
            events.append(_ignored(account_id, field, value, received_at, reason))
    return events


def _item(raw: Any, account_id: str, received_at: datetime, path: str) -> InboundEvent:
    """One messaging item: understood, or ``Unsupported`` (``Ignored`` with no sender to name)."""
    if not isinstance(raw, dict):
        return _ignored(account_id, "messaging", raw, received_at, f"{path} is not an object")
    try:
        return _messaging(raw, received_at, path)
    except (InvalidInput, ValidationError) as exc:
        reason = _unreadable(exc, path)
    try:
        sender_id = _id(req_object(raw, "sender", path), "id", f"{path}.sender")
    except InvalidInput:
        return _ignored(account_id, "messaging", raw, received_at, f"{reason}; no readable sender")
    return _unsupported(raw, sender_id, account_id, _item_kind(raw), reason, received_at)


def _item_kind(item: dict[str, Any]) -> str:
    """The provider's name for what a messaging item carries (``message``, ``message_edit``, ...)."""
    return next((key for key in item if key not in _ITEM_KEYS), "unknown")[:_TYPE_NAME_MAX]


def _unsupported(
    item: dict[str, Any],
    sender_id: str,
    account_id: str,
    provider_type: str,
    reason: str,
    received_at: datetime,
) -> Unsupported:
    recipient = item.get("recipient")
    recipient_id = recipient.get("id") if isinstance(recipient, dict) else None
    business = str(recipient_id) if isinstance(recipient_id, str | int) and recipient_id != "" else account_id
    try:
        timestamp = unix_time(item.get("timestamp"), "timestamp")
    except InvalidInput:
        timestamp = received_at
    return Unsupported(
        channel=CHANNEL,
        business_address=business,
        external_id=f"unsupported:{fingerprint(item)}",
        timestamp=timestamp,
        sender=Address(kind=AddressKind.INSTAGRAM_ID, value=sender_id, scope=business),
        provider_type=provider_type,
        reason=reason,
        raw=item,
    )


def _ignored(account_id: str, field: str, value: Any, received_at: datetime, reason: str) -> Ignored:
    return Ignored(
        channel=CHANNEL,
        business_address=account_id,
        external_id=f"{field}:{account_id}:{fingerprint(value)}",
        timestamp=received_at,
        field=field,
        reason=reason,
    )


def _id(holder: dict[str, Any], key: str, path: str) -> str:
    """Instagram ids are strings; tolerate a number (some test deliveries send one)."""
    value = holder.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return req_str(holder, key, path)


def _messaging(item: dict[str, Any], received_at: datetime, path: str) -> InboundEvent:
    sender_id = _id(req_object(item, "sender", path), "id", f"{path}.sender")
    recipient_id = _id(req_object(item, "recipient", path), "id", f"{path}.recipient")
    raw_time = item.get("timestamp")
    timestamp = unix_time(raw_time, f"{path}.timestamp")
    customer = Address(kind=AddressKind.INSTAGRAM_ID, value=sender_id, scope=recipient_id)
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "business_address": recipient_id,
        "timestamp": timestamp,
        "sender": customer,
    }
    if "message" in item:
        return _message(req_object(item, "message", path), common, sender_id, recipient_id, f"{path}.message")
    if "reaction" in item:
        reaction = req_object(item, "reaction", path)
        rpath = f"{path}.reaction"
        target = req_str(reaction, "mid", rpath)
        action = req_str(reaction, "action", rpath)
        if action not in ("react", "unreact"):
            raise InvalidInput(f"{rpath}.action must be 'react' or 'unreact'", field=f"{rpath}.action")
        emoji = (
            (opt_str(reaction, "emoji", rpath) or opt_str(reaction, "reaction", rpath))
            if action == "react"
            else None
        )
        return Reaction(
            **common,
            external_id=f"{target}#{action}:{sender_id}:{raw_time}",
            target_external_id=target,
            emoji=emoji or None,
        )
    if "postback" in item:
        postback = req_object(item, "postback", path)
        ppath = f"{path}.postback"
        mid = opt_str(postback, "mid", ppath)
        return Postback(
            **common,
            external_id=mid or f"postback:{sender_id}:{raw_time}",
            payload=opt_str(postback, "payload", ppath),
            text=opt_str(postback, "title", ppath),
            referral=_referral(postback, ppath),
            provider_type="postback",
        )
    if "read" in item:
        read = req_object(item, "read", path)
        mid = opt_str(read, "mid", f"{path}.read")
        raw_watermark = read.get("watermark")
        watermark = unix_time(raw_watermark, f"{path}.read.watermark") if raw_watermark is not None else None
        if mid is None and watermark is None:
            raise InvalidInput(f"{path}.read needs 'mid' or 'watermark'", field=f"{path}.read.mid")
        return ReadReceipt(
            **common,
            external_id=f"read:{sender_id}:{mid or raw_watermark}",
            target_external_id=mid,
            watermark=watermark,
        )
    if "referral" in item:
        referral = _referral(item, path)
        return Postback(
            **common,
            external_id=f"referral:{sender_id}:{raw_time}",
            payload=referral.ref if referral else None,
            referral=referral,
            provider_type="referral",
        )
    if "message_edit" in item:
        edited = req_object(item, "message_edit", path)
        epath = f"{path}.message_edit"
        mid = req_str(edited, "mid", epath)
        count = edited.get("num_edit")
        count = count if isinstance(count, int) and not isinstance(count, bool) else None
        return MessageEdited(
            **common,
            external_id=f"{mid}#edit:{count if count is not None else raw_time}",
            target_external_id=mid,
            text=opt_str(edited, "text", epath),
            edit_count=count,
        )
    # optin, handovers, ...: customer traffic this adapter does not read yet.
    kind = _item_kind(item)
    return _unsupported(item, sender_id, recipient_id, kind, f"unknown messaging event {kind!r}", received_at)


def _referral(holder: dict[str, Any], path: str) -> Referral | None:
    raw = opt_object(holder, "referral", path)
    if raw is None:
        return None
    rpath = f"{path}.referral"
    context = opt_object(raw, "ads_context_data", rpath)
    cpath = f"{rpath}.ads_context_data"
    ad_id = opt_str(raw, "ad_id", rpath)
    return Referral(
        source=opt_str(raw, "source", rpath),
        source_id=ad_id or (opt_str(context, "post_id", cpath) if context else None),
        source_url=(opt_str(context, "photo_url", cpath) or opt_str(context, "video_url", cpath))
        if context
        else None,
        ref=opt_str(raw, "ref", rpath),
        headline=opt_str(context, "ad_title", cpath) if context else None,
        ad_id=ad_id,
    )


def _attachments(message: dict[str, Any], path: str) -> list[Attachment]:
    attachments: list[Attachment] = []
    for k, raw in enumerate(opt_list(message, "attachments", path)):
        apath = f"{path}.attachments[{k}]"
        attachment = as_object(raw, apath)
        kind = req_str(attachment, "type", apath)
        payload = opt_object(attachment, "payload", apath) or {}
        ppath = f"{apath}.payload"
        data: dict[str, Any] = {"type": kind}
        for key in ("title", "reel_video_id", "id"):
            text = (
                opt_str(payload, key, ppath)
                if key != "id"
                else (str(payload["id"]) if "id" in payload else None)
            )
            if text is not None:
                data[key] = text
        attachments.append(
            Attachment(
                kind=_ATTACHMENT_KINDS.get(kind, AttachmentKind.OTHER),
                url=opt_str(payload, "url", ppath),
                data=data,
            )
        )
    return attachments


def _message(
    message: dict[str, Any], common: dict[str, Any], sender_id: str, recipient_id: str, path: str
) -> InboundEvent:
    mid = req_str(message, "mid", path)
    text = opt_str(message, "text", path)
    if opt_bool(message, "is_echo", path):
        return OutboundEcho(
            channel=CHANNEL,
            business_address=sender_id,
            external_id=mid,
            timestamp=common["timestamp"],
            recipient=Address(kind=AddressKind.INSTAGRAM_ID, value=recipient_id, scope=sender_id),
            text=text,
        )
    if opt_bool(message, "is_deleted", path):
        return MessageDeleted(**common, external_id=f"{mid}#deleted", target_external_id=mid)
    reply = opt_object(message, "reply_to", path)
    reply_to = None
    attachments = _attachments(message, path)
    if reply is not None:
        rpath = f"{path}.reply_to"
        reply_to = opt_str(reply, "mid", rpath)
        story = opt_object(reply, "story", rpath)
        if story is not None:
            story_id = story.get("id")
            attachments.insert(
                0,
                Attachment(
                    kind=AttachmentKind.STORY_REPLY,
                    url=opt_str(story, "url", f"{rpath}.story"),
                    data={"story_id": str(story_id)} if isinstance(story_id, str | int) else None,
                ),
            )
    referral = _referral(message, path)
    quick_reply = opt_object(message, "quick_reply", path)
    if quick_reply is not None:
        return Postback(
            **common,
            external_id=mid,
            payload=req_str(quick_reply, "payload", f"{path}.quick_reply"),
            text=text,
            reply_to=reply_to,
            referral=referral,
            provider_type="quick_reply",
        )
    if (
        text is None
        and not attachments
        and referral is None
        and not opt_bool(message, "is_unsupported", path)
    ):
        raise InvalidInput(f"{path} has no text, attachments or reply", field=f"{path}.text")
    return InboundMessage(
        **common,
        external_id=mid,
        text=text,
        attachments=tuple(attachments),
        reply_to=reply_to,
        referral=referral,
        provider_type="message",
    )
