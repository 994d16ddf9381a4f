"""WhatsApp Cloud API webhook bodies → normalized events.  Pure: bytes in, events out, no I/O.

A delivery is ``{"object": "whatsapp_business_account", "entry": [{"id": <WABA id>, "changes":
[{"field": "messages", "value": {...}}]}]}``.  A ``messages`` value carries ``metadata`` (which
business number), ``contacts`` (profile names, ``wa_id`` and the business-scoped ``user_id``),
``messages`` (customer traffic), ``statuses`` (news about our outbound messages) and ``errors``.
Every other field (template status, account and quality updates, ...) becomes ``Ignored``.

Total for any JSON: only a body that is not readable JSON raises ``InvalidInput``.  A part the
parser does not understand (a new message or interactive type, a field of the wrong type) never
takes its neighbours down: a customer's part becomes ``Unsupported`` (the raw JSON kept, on the
timeline), a part with no sender to attribute it to (a status of a message sent to a group, a
change with no phone number, a body that is no WhatsApp delivery at all) becomes ``Ignored``
with the reason, its ``business_address`` the one it names or ``""``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from channels.meta.jsonbody import (
    as_list,
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
    DeliveryStatus,
    Ignored,
    InboundEvent,
    InboundMessage,
    Postback,
    ProviderError,
    Reaction,
    Referral,
    SystemNotice,
    Unsupported,
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
# WhatsApp's own names for a message it could not deliver to the API: a message with its errors.
_WHATSAPP_UNSUPPORTED = frozenset({"unsupported", "unknown"})
_TYPE_NAME_MAX = 60


def parse_webhook(body: bytes, *, received_at: datetime) -> list[InboundEvent]:
    """Every event in one webhook delivery, in payload order (``InvalidInput``: not readable JSON)."""
    root = try_load(body)
    if not isinstance(root, dict) or root.get("object") != OBJECT or not isinstance(root.get("entry"), list):
        return [_ignored("", "body", root, received_at, "the body is not a WhatsApp webhook delivery")]
    events: list[InboundEvent] = []
    for i, raw_entry in enumerate(root["entry"]):
        events.extend(_entry(raw_entry, received_at, f"entry[{i}]"))
    return events


def _ignored(business_address: str, field: str, value: Any, received_at: datetime, reason: str) -> Ignored:
    return Ignored(
        channel=CHANNEL,
        business_address=business_address,
        external_id=f"{field}:{business_address}:{fingerprint(value)}",
        timestamp=received_at,
        field=field,
        reason=reason,
    )


def _unreadable(exc: InvalidInput | ValidationError, path: str) -> str:
    """Why a part could not be read: the JSON path, never the value."""
    if isinstance(exc, InvalidInput):
        return f"cannot read {exc.field or path}"
    return f"a value at {path} the event model refuses"


def _entry(raw: Any, received_at: datetime, path: str) -> list[InboundEvent]:
    entry = raw if isinstance(raw, dict) else {}
    raw_id = entry.get("id")
    waba_id = raw_id if isinstance(raw_id, str) else ""
    if not waba_id or not isinstance(entry.get("changes"), list):
        return [_ignored(waba_id, "entry", raw, received_at, f"{path} is not a WhatsApp entry")]
    events: list[InboundEvent] = []
    for j, raw_change in enumerate(entry["changes"]):
        cpath = f"{path}.changes[{j}]"
        try:
            events.extend(_change(raw_change, waba_id, received_at, cpath))
        except (InvalidInput, ValidationError) as exc:
            events.append(_ignored(waba_id, "changes", raw_change, received_at, _unreadable(exc, cpath)))
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


def _contacts(value: dict[str, Any]) -> list[_Contact]:
    """The profiles that name senders; one that cannot be read names nobody."""
    raw = value.get("contacts")
    contacts = []
    for contact in raw if isinstance(raw, list) else []:
        if not isinstance(contact, dict):
            continue
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        wa_id, user_id = contact.get("wa_id"), contact.get("user_id")
        contacts.append(
            _Contact(
                name=name if isinstance(name, str) else None,
                wa_id=wa_id if isinstance(wa_id, str) else None,
                user_id=user_id if isinstance(user_id, str) else None,
            )
        )
    return contacts


def _parts(value: dict[str, Any], key: str) -> list[Any]:
    raw = value.get(key)
    if raw is None:
        return []
    return raw if isinstance(raw, list) else [raw]  # a lone part is still read (and kept) as one


def _messages_value(
    value: dict[str, Any], waba_id: str, received_at: datetime, path: str
) -> list[InboundEvent]:
    metadata = value.get("metadata")
    phone_number_id = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    if not isinstance(phone_number_id, str) or not phone_number_id:
        return [_ignored(waba_id, "messages", value, received_at, f"{path}.metadata names no phone number")]
    where = _Where(waba_id=waba_id, phone_number_id=phone_number_id, contacts=_contacts(value))
    events: list[InboundEvent] = []
    for k, raw in enumerate(_parts(value, "messages")):
        events.append(_message_part(raw, where, received_at, f"{path}.messages[{k}]"))
    for k, raw in enumerate(_parts(value, "statuses")):
        spath = f"{path}.statuses[{k}]"
        try:
            events.append(_status(as_object(raw, spath), where, received_at, spath))
        except (InvalidInput, ValidationError) as exc:
            events.append(_ignored(phone_number_id, "statuses", raw, received_at, _unreadable(exc, spath)))
    for k, raw in enumerate(_parts(value, "errors")):
        try:
            error = _provider_error(raw, f"{path}.errors[{k}]")
            reason = f"WhatsApp reported error {error.code}: {error.title or error.message or 'no title'}"
        except InvalidInput:
            reason = "WhatsApp reported an error this adapter cannot read"
        events.append(
            Ignored(
                channel=CHANNEL,
                business_address=phone_number_id,
                external_id=f"error:{phone_number_id}:{fingerprint(raw)}",
                timestamp=received_at,
                field="messages",
                reason=reason,
            )
        )
    return events


def _message_part(raw: Any, where: _Where, received_at: datetime, path: str) -> InboundEvent:
    """One message: understood, or ``Unsupported`` (or ``Ignored`` with no sender to name)."""
    if not isinstance(raw, dict):
        return _ignored(where.phone_number_id, "messages", raw, received_at, f"{path} is not an object")
    try:
        return _message(raw, where, received_at, path)
    except (InvalidInput, ValidationError) as exc:
        reason = _unreadable(exc, path)
    try:
        sender, _ = _sender(raw, where, path)
    except InvalidInput:
        return _ignored(where.phone_number_id, "messages", raw, received_at, f"{reason}; no readable sender")
    kind = raw.get("type")
    return _unsupported(
        raw, where, sender, kind if isinstance(kind, str) and kind else "unknown", reason, received_at
    )


def _unsupported(
    raw: dict[str, Any],
    where: _Where,
    sender: Address,
    provider_type: str,
    reason: str,
    received_at: datetime,
) -> Unsupported:
    wamid = raw.get("id")
    try:
        timestamp = unix_time(raw.get("timestamp"), "timestamp", millis=False)
    except InvalidInput:
        timestamp = received_at
    return Unsupported(
        channel=CHANNEL,
        business_address=where.phone_number_id,
        external_id=wamid if isinstance(wamid, str) and wamid else f"unsupported:{fingerprint(raw)}",
        timestamp=timestamp,
        sender=sender,
        provider_type=provider_type[:_TYPE_NAME_MAX],
        reason=reason,
        raw=raw,
    )


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


def _message(message: dict[str, Any], where: _Where, received_at: datetime, path: str) -> InboundEvent:
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
        return _interactive(message, where, common, reply_to, referral, received_at, path)
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
    if kind in _WHATSAPP_UNSUPPORTED:
        # WhatsApp could not pass the message on: a message with no text, carrying WhatsApp's
        # errors, so an agent sees that the customer wrote.
        return InboundMessage(**inbound)
    return _unsupported(
        message, where, sender, kind, f"unknown message type {kind[:_TYPE_NAME_MAX]!r}", received_at
    )


def _interactive(
    message: dict[str, Any],
    where: _Where,
    common: dict[str, Any],
    reply_to: str | None,
    referral: Referral | None,
    received_at: datetime,
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
        answer = reply.get("response_json")  # a JSON string; some senders give the object itself
        payload = json.dumps(answer) if isinstance(answer, dict) else opt_str(reply, "response_json", ipath)
        text = opt_str(reply, "body", f"{ipath}.{itype}")
    else:  # call_permission_reply, product replies, ... : kept, not read
        name = f"interactive.{itype[:_TYPE_NAME_MAX]}"
        return _unsupported(
            message,
            where,
            common["sender"],
            name,
            f"unknown interactive type {itype[:_TYPE_NAME_MAX]!r}",
            received_at,
        )
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
    recipient_type = opt_str(status, "recipient_type", path)
    if recipient_type not in (None, "individual"):  # "group": we never send to groups
        return Ignored(
            channel=CHANNEL,
            business_address=where.phone_number_id,
            external_id=f"status:{external_id}:{state}",
            timestamp=timestamp,
            field="statuses",
            reason=f"a status of a message sent to a {recipient_type[:_TYPE_NAME_MAX]!r} recipient",
        )
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
        client_reference=opt_str(status, "biz_opaque_callback_data", path) or None,
    )
