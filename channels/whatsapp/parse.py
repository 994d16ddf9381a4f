"""WhatsApp Cloud API webhook bodies → normalized events.  Pure: bytes in, events out, no I/O.

A delivery is ``{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "changes":
[{"field": "messages", "value": {...}}]}]}``.  A ``messages`` value carries ``metadata`` (which
business number), ``contacts`` (profile names, ``wa_id`` and the business-scoped ``user_id``),
``messages`` (customer traffic), ``statuses`` (news about our outbound messages) and ``errors``.
Every other field (template status, account and quality updates, ...) becomes ``Ignored``.
Anything malformed raises ``InvalidInput`` naming the JSON path; nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from channels.meta.jsonbody import (
    as_list,
    as_object,
    fingerprint,
    load_object,
    opt_bool,
    opt_list,
    opt_object,
    opt_str,
    req_list,
    req_object,
    req_str,
    unix_time,
)
from core.errors import InvalidInput
from core.events import (
    Address,
    AddressKind,
    Attachment,
    AttachmentKind,
    DeliveryStatus,
    Ignored,
    InboundEvent,
    InboundMessage,
    Postback,
    ProviderError,
    Reaction,
    Referral,
    SystemNotice,
)

__all__ = ["CHANNEL", "OBJECT", "parse_webhook"]

CHANNEL = "whatsapp"
OBJECT = "whatsapp_business_account"

_MEDIA_KINDS: dict[str, AttachmentKind] = {
    "image": AttachmentKind.IMAGE,
    "audio": AttachmentKind.AUDIO,
    "video": AttachmentKind.VIDEO,
    "document": AttachmentKind.DOCUMENT,
    "sticker": AttachmentKind.STICKER,
}
_STATUSES = frozenset({"sent", "delivered", "read", "failed", "deleted", "played"})
_CHANGED_NUMBER = frozenset({"user_changed_number", "customer_changed_number"})
_CHANGED_IDENTITY = frozenset({"user_identity_changed", "customer_identity_changed"})


def parse_webhook(body: bytes, *, received_at: datetime) -> list[InboundEvent]:
    """Every event in one webhook delivery, in payload order."""
    root = load_object(body)
    kind = req_str(root, "object", "")
    if kind != OBJECT:
        raise InvalidInput(f"object must be {OBJECT!r} for WhatsApp, not {kind!r}", field="object")
    events: list[InboundEvent] = []
    try:
        for i, raw_entry in enumerate(req_list(root, "entry", "")):
            path = f"entry[{i}]"
            entry = as_object(raw_entry, path)
            waba_id = req_str(entry, "id", path)
            for j, raw_change in enumerate(req_list(entry, "changes", path)):
                events.extend(_change(raw_change, waba_id, received_at, f"{path}.changes[{j}]"))
    except ValidationError as exc:  # a value the event model refuses: still the payload's fault
        raise InvalidInput(
            f"the payload holds a value the event model refuses: {exc.errors()[0]['msg']}"
        ) from exc
    return events


# -- changes -------------------------------------------------------------------------------------


def _change(raw: Any, waba_id: str, received_at: datetime, path: str) -> list[InboundEvent]:
    change = as_object(raw, path)
    field = req_str(change, "field", path)
    value = req_object(change, "value", path)
    if field != "messages":
        return [
            Ignored(
                channel=CHANNEL,
                business_address=waba_id,
                external_id=f"{field}:{waba_id}:{fingerprint(value)}",
                timestamp=received_at,
                field=field,
                reason=f"the {field!r} webhook field carries no customer traffic",
            )
        ]
    return _messages_value(value, waba_id, received_at, f"{path}.value")


@dataclass(frozen=True, slots=True)
class _Contact:
    name: str | None
    wa_id: str | None
    user_id: str | None


@dataclass(frozen=True, slots=True)
class _Where:
    waba_id: str
    phone_number_id: str
    contacts: Sequence[_Contact]


def _messages_value(
    value: dict[str, Any], waba_id: str, received_at: datetime, path: str
) -> list[InboundEvent]:
    metadata = req_object(value, "metadata", path)
    phone_number_id = req_str(metadata, "phone_number_id", f"{path}.metadata")
    contacts = []
    for k, raw in enumerate(opt_list(value, "contacts", path)):
        cpath = f"{path}.contacts[{k}]"
        contact = as_object(raw, cpath)
        profile = opt_object(contact, "profile", cpath)
        contacts.append(
            _Contact(
                name=opt_str(profile, "name", f"{cpath}.profile") if profile else None,
                wa_id=opt_str(contact, "wa_id", cpath),
                user_id=opt_str(contact, "user_id", cpath),
            )
        )
    where = _Where(waba_id=waba_id, phone_number_id=phone_number_id, contacts=contacts)
    events: list[InboundEvent] = []
    for k, raw in enumerate(opt_list(value, "messages", path)):
        events.append(_message(as_object(raw, f"{path}.messages[{k}]"), where, f"{path}.messages[{k}]"))
    for k, raw in enumerate(opt_list(value, "statuses", path)):
        events.append(
            _status(as_object(raw, f"{path}.statuses[{k}]"), where, received_at, f"{path}.statuses[{k}]")
        )
    for k, raw in enumerate(opt_list(value, "errors", path)):
        error = _provider_error(raw, f"{path}.errors[{k}]")
        events.append(
            Ignored(
                channel=CHANNEL,
                business_address=phone_number_id,
                external_id=f"error:{phone_number_id}:{fingerprint(raw)}",
                timestamp=received_at,
                field="messages",
                reason=f"WhatsApp reported error {error.code}: {error.title or error.message or 'no title'}",
            )
        )
    return events


# -- addresses -----------------------------------------------------------------------------------


def _phone(digits: str, path: str, name: str | None = None) -> Address:
    bare = digits[1:] if digits.startswith("+") else digits
    if not bare.isascii() or not bare.isdigit() or len(bare) > 20:
        raise InvalidInput(f"{path} must be a phone number in digits", field=path)
    return Address(kind=AddressKind.PHONE, value=f"+{bare}", display_name=name)


def _bsuid(user_id: str, waba_id: str, name: str | None = None) -> Address:
    return Address(kind=AddressKind.WHATSAPP_BSUID, value=user_id, scope=waba_id, display_name=name)


def _sender(message: dict[str, Any], where: _Where, path: str) -> tuple[Address, tuple[Address, ...]]:
    phone = opt_str(message, "from", path) or None
    user_id = opt_str(message, "from_user_id", path) or None
    contact = next(
        (
            c
            for c in where.contacts
            if (phone is not None and c.wa_id == phone) or (user_id is not None and c.user_id == user_id)
        ),
        None,
    )
    name = contact.name if contact else None
    if contact is not None:
        phone = phone or contact.wa_id or None
        user_id = user_id or contact.user_id or None
    if phone is None and user_id is None:
        raise InvalidInput(f"{path} has neither 'from' nor 'from_user_id'", field=f"{path}.from")
    phone_address = _phone(phone, f"{path}.from", name) if phone else None
    bsuid_address = _bsuid(user_id, where.waba_id, name) if user_id else None
    if phone_address is not None and bsuid_address is not None:
        return phone_address, (phone_address, bsuid_address)
    sender = phone_address or bsuid_address
    assert sender is not None  # one of them is set, checked above
    return sender, ()


# -- messages ------------------------------------------------------------------------------------


def _provider_error(raw: Any, path: str) -> ProviderError:
    error = as_object(raw, path)
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, int | str):
        raise InvalidInput(f"{path}.code must be a number", field=f"{path}.code")
    data = opt_object(error, "error_data", path)
    return ProviderError(
        code=str(code),
        title=opt_str(error, "title", path),
        message=opt_str(error, "message", path),
        details=opt_str(data, "details", f"{path}.error_data") if data else None,
    )


def _errors(holder: dict[str, Any], path: str) -> tuple[ProviderError, ...]:
    return tuple(
        _provider_error(raw, f"{path}.errors[{k}]") for k, raw in enumerate(opt_list(holder, "errors", path))
    )


def _referral(message: dict[str, Any], path: str) -> Referral | None:
    raw = opt_object(message, "referral", path)
    if raw is None:
        return None
    rpath = f"{path}.referral"
    source_type = opt_str(raw, "source_type", rpath)
    source_id = opt_str(raw, "source_id", rpath)
    return Referral(
        source=source_type,
        source_id=source_id,
        source_url=opt_str(raw, "source_url", rpath),
        headline=opt_str(raw, "headline", rpath),
        body=opt_str(raw, "body", rpath),
        ad_id=source_id if source_type == "ad" else None,
        click_id=opt_str(raw, "ctwa_clid", rpath),
    )


def _media(message: dict[str, Any], kind: str, path: str) -> Attachment:
    media = req_object(message, kind, path)
    mpath = f"{path}.{kind}"
    attachment_kind = _MEDIA_KINDS[kind]
    if kind == "audio" and opt_bool(media, "voice", mpath):
        attachment_kind = AttachmentKind.VOICE
    return Attachment(
        kind=attachment_kind,
        mime_type=opt_str(media, "mime_type", mpath),
        filename=opt_str(media, "filename", mpath) if kind == "document" else None,
        media_id=req_str(media, "id", mpath),
        url=opt_str(media, "url", mpath),
        sha256=opt_str(media, "sha256", mpath),
        caption=opt_str(media, "caption", mpath),
    )


def _number(holder: dict[str, Any], key: str, path: str) -> float:
    value = holder.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{path}.{key} must be a number", field=f"{path}.{key}")
    return float(value)


def _location(message: dict[str, Any], path: str) -> Attachment:
    location = req_object(message, "location", path)
    lpath = f"{path}.location"
    data: dict[str, Any] = {
        "latitude": _number(location, "latitude", lpath),
        "longitude": _number(location, "longitude", lpath),
    }
    for key in ("name", "address", "url"):
        text = opt_str(location, key, lpath)
        if text is not None:
            data[key] = text
    return Attachment(kind=AttachmentKind.LOCATION, data=data)


def _message(message: dict[str, Any], where: _Where, path: str) -> InboundEvent:
    external_id = req_str(message, "id", path)
    timestamp = unix_time(message.get("timestamp"), f"{path}.timestamp", millis=False)
    kind = req_str(message, "type", path)
    sender, identities = _sender(message, where, path)
    context = opt_object(message, "context", path)
    reply_to = opt_str(context, "id", f"{path}.context") if context else None
    if context is not None:
        opt_bool(context, "forwarded", f"{path}.context")
        opt_bool(context, "frequently_forwarded", f"{path}.context")
    referral = _referral(message, path)
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "business_address": where.phone_number_id,
        "external_id": external_id,
        "timestamp": timestamp,
        "sender": sender,
    }
    inbound: dict[str, Any] = {
        **common,
        "reply_to": reply_to,
        "referral": referral,
        "sender_identities": identities,
        "provider_type": kind,
        "errors": _errors(message, path),
    }
    if kind == "text":
        text = req_object(message, "text", path)
        return InboundMessage(**inbound, text=req_str(text, "body", f"{path}.text"))
    if kind in _MEDIA_KINDS:
        attachment = _media(message, kind, path)
        return InboundMessage(**inbound, text=attachment.caption or None, attachments=(attachment,))
    if kind == "location":
        return InboundMessage(**inbound, attachments=(_location(message, path),))
    if kind == "contacts":
        shared = as_list(message.get("contacts"), f"{path}.contacts")
        for k, card in enumerate(shared):
            as_object(card, f"{path}.contacts[{k}]")
        attachment = Attachment(kind=AttachmentKind.CONTACTS, data={"contacts": shared})
        return InboundMessage(**inbound, attachments=(attachment,))
    if kind == "interactive":
        return _interactive(message, common, reply_to, referral, path)
    if kind == "button":
        button = req_object(message, "button", path)
        return Postback(
            **common,
            payload=opt_str(button, "payload", f"{path}.button"),
            text=opt_str(button, "text", f"{path}.button"),
            reply_to=reply_to,
            referral=referral,
            provider_type="button",
        )
    if kind == "reaction":
        reaction = req_object(message, "reaction", path)
        return Reaction(
            **common,
            target_external_id=req_str(reaction, "message_id", f"{path}.reaction"),
            emoji=opt_str(reaction, "emoji", f"{path}.reaction") or None,
        )
    if kind == "system":
        return _system(message, common, where, path)
    if kind == "order":
        order = req_object(message, "order", path)
        return InboundMessage(
            **inbound, attachments=(Attachment(kind=AttachmentKind.OTHER, data={"order": order}),)
        )
    if kind == "request_welcome":
        return Ignored(
            **{k: v for k, v in common.items() if k != "sender"},
            field="messages",
            reason="request_welcome: the customer opened the chat for the first time",
        )
    # "unsupported", "unknown" and any type this adapter does not know yet: a message with no text,
    # carrying WhatsApp's errors, so an agent sees that something arrived.
    return InboundMessage(**inbound)


def _interactive(
    message: dict[str, Any],
    common: dict[str, Any],
    reply_to: str | None,
    referral: Referral | None,
    path: str,
) -> InboundEvent:
    interactive = req_object(message, "interactive", path)
    ipath = f"{path}.interactive"
    itype = req_str(interactive, "type", ipath)
    payload: str | None
    if itype in ("button_reply", "list_reply"):
        reply = req_object(interactive, itype, ipath)
        payload = req_str(reply, "id", f"{ipath}.{itype}")
        text = opt_str(reply, "title", f"{ipath}.{itype}")
    elif itype == "nfm_reply":  # a WhatsApp Flow's answer
        reply = req_object(interactive, itype, ipath)
        payload = opt_str(reply, "response_json", f"{ipath}.{itype}")
        text = opt_str(reply, "body", f"{ipath}.{itype}")
    else:
        raise InvalidInput(f"{ipath}.type {itype!r} is not a known interactive reply", field=f"{ipath}.type")
    return Postback(
        **common,
        payload=payload,
        text=text,
        reply_to=reply_to,
        referral=referral,
        provider_type=f"interactive.{itype}",
    )


def _system(message: dict[str, Any], common: dict[str, Any], where: _Where, path: str) -> SystemNotice:
    system = req_object(message, "system", path)
    spath = f"{path}.system"
    stype = opt_str(system, "type", spath) or "system"
    new_phone = opt_str(system, "wa_id", spath) or opt_str(system, "new_wa_id", spath)
    new_user_id = opt_str(system, "user_id", spath) or opt_str(system, "new_user_id", spath)
    if new_phone:
        new_address: Address | None = _phone(new_phone, f"{spath}.wa_id")
    elif new_user_id:
        new_address = _bsuid(new_user_id, where.waba_id)
    else:
        new_address = None
    if stype in _CHANGED_NUMBER:
        notice = "customer_changed_number"
    elif stype in _CHANGED_IDENTITY:
        notice = "customer_identity_changed"
    else:
        notice = stype
    return SystemNotice(**common, notice=notice, text=opt_str(system, "body", spath), new_address=new_address)


def _status(status: dict[str, Any], where: _Where, received_at: datetime, path: str) -> InboundEvent:
    external_id = req_str(status, "id", path)
    state = req_str(status, "status", path)
    timestamp = unix_time(status.get("timestamp"), f"{path}.timestamp", millis=False)
    if state not in _STATUSES:
        return Ignored(
            channel=CHANNEL,
            business_address=where.phone_number_id,
            external_id=f"status:{external_id}:{state}",
            timestamp=timestamp,
            field="statuses",
            reason=f"status {state!r} is not a delivery state",
        )
    phone = opt_str(status, "recipient_id", path) or None
    user_id = opt_str(status, "recipient_user_id", path) or None
    if phone:
        recipient: Address | None = _phone(phone, f"{path}.recipient_id")
    elif user_id:
        recipient = _bsuid(user_id, where.waba_id)
    else:
        recipient = None
    return DeliveryStatus(
        channel=CHANNEL,
        business_address=where.phone_number_id,
        external_id=external_id,
        timestamp=timestamp,
        status=state,  # type: ignore[arg-type]  # checked against _STATUSES above
        recipient=recipient,
        errors=_errors(status, path),
    )
