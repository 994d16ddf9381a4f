"""Raw RFC 5322 bytes → one normalized ``InboundMessage``.  Pure: no I/O, the clock is an argument.

Rules (each has its own test in ``tests/unit/channels/test_email_parse.py``):

* **Sender**: the first ``From`` address (else ``Sender``, else ``Return-Path``), trimmed and
  lower-cased, with its decoded display name.  **Web-form relays**: when ``Reply-To`` differs
  from ``From`` and ``From`` looks like a relay (``automation.is_relay_sender``), the customer is
  the ``Reply-To`` address (and its display name, if any).
* **Mailbox** (``business_address``): the first ``Delivered-To``, else ``X-Original-To``, else
  ``Envelope-To``, else the first ``To`` address, lower-cased.
* **Threading**: ``external_id`` = ``Message-ID`` without angle brackets (missing: a stable id
  from a hash of From/To/Subject/Date and the body, so a redelivery gets the same id);
  ``reply_to`` = ``In-Reply-To``; ``references`` = ``References`` in order (or the
  ``In-Reply-To`` alone when there are none).
* **Time**: the ``Date`` header; malformed or missing → the newest parseable ``Received:``
  date (after its last ``;``) → ``received_at``.  Zone-less dates are UTC.
* **Body**: ``multipart/alternative`` prefers ``text/plain`` (unless blank), else HTML converted
  by ``html2text``; ``format=flowed`` is unwrapped; the text is split into new text, quoted
  history and signature (``quotes.split_reply``; for HTML first by markup, ``html_text``).
* **Attachments**: every non-body leaf (``multipart/mixed`` files, ``multipart/related`` inline
  images with their ``Content-ID``, forwarded ``message/rfc822``): kind by MIME type (by file
  name when the type is ``application/octet-stream``), decoded filename, size and sha256 of the
  decoded bytes — never the bytes themselves.
* **Automated mail**: ``automation.classify`` → ``automated`` = ``"bounce"`` / ``"auto_reply"``;
  a bounce's delivery-status fields become ``errors`` and the bounced message's id its
  ``reply_to`` when the bounce has no ``In-Reply-To``.
* **Charsets**: ``charsets.decode_bytes`` (declared, then UTF-8, windows-1252, latin-1).
* **Bad input** (empty, no header fields, binary garbage, header lines over 16 KiB, a header
  section over 256 KiB, no sender, no mailbox) → ``InvalidInput`` with ``field``; nothing else.
"""

from __future__ import annotations

import binascii
import hashlib
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.errors import MessageError
from email.header import decode_header
from email.headerregistry import BaseHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from channels.email.automation import classify, is_relay_sender
from channels.email.charsets import clean_text, decode_bytes
from channels.email.html_text import html_to_text, split_html
from channels.email.quotes import split_reply
from core.errors import InvalidInput, PayloadTooLarge
from core.events import (
    Address,
    AddressKind,
    Attachment,
    AttachmentKind,
    InboundEvent,
    InboundMessage,
    ProviderError,
)

__all__ = ["MAX_HEADER_BYTES", "MAX_HEADER_LINE_BYTES", "parse_email"]

CHANNEL = "email"
MAX_HEADER_BYTES = 256 * 1024
MAX_HEADER_LINE_BYTES = 16 * 1024
_MAX_DEPTH = 24
_MAX_REFERENCES = 100
_MAX_ID_LENGTH = 998
_FIELD_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_SURROGATE = re.compile("[\udc80-\udcff]")

# What the stdlib email package may raise on hostile input; translated to InvalidInput at the edge.
_EMAIL_FAILURES: tuple[type[BaseException], ...] = (
    MessageError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
    OverflowError,
    binascii.Error,
)
_SIGNATURE_TYPES = {
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
}
_DOCUMENT_TYPES = {
    "application/pdf",
    "application/msword",
    "application/rtf",
    "text/rtf",
    "text/plain",
    "text/csv",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
}
_DOCUMENT_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")
_GENERIC_TYPES = {"application/octet-stream", "application/binary", "application/x-download"}


def parse_email(body: bytes, *, received_at: datetime) -> list[InboundEvent]:
    """Parse one raw mail (see the module docstring); raises only ``InvalidInput``."""
    content = _check_shape(body)
    try:
        message = BytesParser(policy=policy.default).parsebytes(content)
        return [_build(message, content, received_at)]
    except InvalidInput:
        raise
    except _EMAIL_FAILURES as exc:
        raise InvalidInput(f"unreadable mail ({type(exc).__name__})", field="body") from exc


# ---------------------------------------------------------------- shape


def _check_shape(body: bytes) -> bytes:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise InvalidInput("the mail must be bytes", field="body")
    content = bytes(body)
    if content.startswith(b"From "):  # mbox "From_" line
        content = content.split(b"\n", 1)[1] if b"\n" in content else b""
    content = content.lstrip(b"\r\n")
    if not content.strip():
        raise InvalidInput("empty mail", field="body")
    header_end = _header_end(content)
    if header_end > MAX_HEADER_BYTES:
        raise PayloadTooLarge(f"header section over {MAX_HEADER_BYTES} bytes", field="headers")
    header = content[:header_end]
    if any(len(line) > MAX_HEADER_LINE_BYTES for line in header.split(b"\n")):
        raise PayloadTooLarge(f"a header line is over {MAX_HEADER_LINE_BYTES} bytes", field="headers")
    if not _FIELD_LINE.match(content):
        raise InvalidInput("not a mail: it does not start with a header field", field="headers")
    return content


def _header_end(content: bytes) -> int:
    ends = [i for i in (content.find(b"\r\n\r\n"), content.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(content)


# ---------------------------------------------------------------- headers


def _raw(message: Message, name: str) -> str | None:
    lowered = name.lower()
    for key, value in message.raw_items():
        if key.lower() == lowered:
            return str(value)
    return None


def _raw_all(message: Message, name: str) -> list[str]:
    lowered = name.lower()
    return [str(value) for key, value in message.raw_items() if key.lower() == lowered]


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", value)


def _decode_words(value: str) -> str:
    try:
        parts = decode_header(value)
    except _EMAIL_FAILURES:
        return value
    out: list[str] = []
    for chunk, charset in parts:
        out.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return "".join(out)


def _header(message: Message, name: str) -> BaseHeader | None:
    """The parsed header; 8-bit raw values are decoded by our charset rule first."""
    raw = _raw(message, name)
    if raw is None:
        return None
    try:
        if _SURROGATE.search(raw):
            text = decode_bytes(raw.encode("ascii", "surrogateescape"))
            header: Any = policy.default.header_factory(name, _unfold(text))
        else:
            header = message[name]
        str(header)  # forces the lazy parse, so failures surface here
        return header if isinstance(header, BaseHeader) else None
    except _EMAIL_FAILURES:
        return None


def _text(message: Message, name: str) -> str | None:
    """A header's decoded text (RFC 2047 words, raw 8-bit bytes), unfolded and cleaned."""
    raw = _raw(message, name)
    if raw is None:
        return None
    header = _header(message, name)
    if header is not None:
        text = str(header)
    elif _SURROGATE.search(raw):
        text = _decode_words(decode_bytes(raw.encode("ascii", "surrogateescape")))
    else:
        text = _decode_words(raw)
    return clean_text(_unfold(text)).strip()


@dataclass(frozen=True, slots=True)
class _Mailbox:
    name: str | None
    address: str


def _addresses(message: Message, name: str) -> list[_Mailbox]:
    header = _header(message, name)
    found: list[tuple[str, str]] = []
    addresses = getattr(header, "addresses", None) if header is not None else None
    if addresses:
        found = [(str(a.display_name or ""), str(a.addr_spec or "")) for a in addresses]
    else:
        text = _text(message, name)
        if text:
            found = getaddresses([text])
    out: list[_Mailbox] = []
    for display, address in found:
        value = clean_text(address).strip().strip("<>").strip().lower()
        if value and " " not in value:
            out.append(_Mailbox(name=clean_text(display).strip() or None, address=value))
    return out


def _first_address(message: Message, *names: str) -> str | None:
    for name in names:
        for raw in _raw_all(message, name):
            for _, address in getaddresses([_unfold(clean_text(raw))]):
                value = address.strip().strip("<>").lower()
                if value and "@" in value and " " not in value:
                    return value
    return None


def _msg_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = _MSG_ID.findall(value)
    if not ids:
        ids = [token for token in value.split() if "@" in token]
    return [clean_text(i)[:_MAX_ID_LENGTH] for i in ids if i]


# ---------------------------------------------------------------- time


def _as_utc_aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _parse_date(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
        parsed = _as_utc_aware(parsed)
        parsed.astimezone(UTC)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if not 1971 <= parsed.year <= 9998:
        return None
    return parsed


def _timestamp(message: Message, received_at: datetime) -> datetime:
    date = _parse_date(_raw(message, "Date"))
    if date is not None:
        return date
    for received in _raw_all(message, "Received"):
        if ";" in received:
            date = _parse_date(_unfold(received).rsplit(";", 1)[1])
            if date is not None:
                return date
    return _as_utc_aware(received_at)


# ---------------------------------------------------------------- body


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    errors: list[ProviderError] = field(default_factory=list)
    bounced_id: str | None = None


def _payload_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return disposition == "attachment" or _filename(part) is not None


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except _EMAIL_FAILURES:
        return None
    if not name:
        return None
    name = str(name)
    if _SURROGATE.search(name):
        name = decode_bytes(name.encode("utf-8", "surrogateescape"))
    if "=?" in name:
        name = _decode_words(name)
    name = clean_text(_unfold(name)).strip().replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] or None


def _attachment_kind(mime: str) -> AttachmentKind:
    if mime.startswith("image/"):
        return AttachmentKind.IMAGE
    if mime.startswith("audio/"):
        return AttachmentKind.AUDIO
    if mime.startswith("video/"):
        return AttachmentKind.VIDEO
    if mime in _DOCUMENT_TYPES or mime.startswith(_DOCUMENT_PREFIXES):
        return AttachmentKind.DOCUMENT
    return AttachmentKind.FILE


def _attachment(part: Message, data: bytes | None = None, filename: str | None = None) -> Attachment:
    mime = part.get_content_type()
    name = filename or _filename(part)
    if mime in _GENERIC_TYPES and name:
        guessed, _ = mimetypes.guess_type(name, strict=False)
        mime = guessed or mime
    content = _payload_bytes(part) if data is None else data
    content_id = _text(part, "Content-ID")
    return Attachment(
        kind=_attachment_kind(mime),
        mime_type=mime,
        filename=name,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content_id=(content_id.strip("<> \t") or None) if content_id else None,
    )


def _leaf_text(part: Message) -> str:
    text = decode_bytes(_payload_bytes(part), part.get_content_charset())
    if part.get_content_type() == "text/plain" and str(part.get_param("format") or "").lower() == "flowed":
        text = _unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return text


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676: join soft-broken lines (ending in a space) of the same quote depth."""
    out: list[str] = []
    pending: str | None = None
    pending_depth = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if depth and content.startswith(" "):
            content = content[1:]
        if pending is not None and depth == pending_depth:
            content = pending + content
        elif pending is not None:
            out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
        pending = None
        if content.endswith(" ") and content != "-- ":
            pending, pending_depth = (content[:-1] if delsp else content), depth
            continue
        out.append(">" * depth + (" " if depth else "") + content)
    if pending is not None:
        out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
    return "\n".join(out)


def _delivery_status(part: Message, body: _Body) -> None:
    payload = part.get_payload()
    blocks = payload[1:] if isinstance(payload, list) else []
    for block in blocks:
        if not isinstance(block, Message):
            continue
        status = _text(block, "Status")
        action = _text(block, "Action")
        diagnostic = _text(block, "Diagnostic-Code")
        recipient = _text(block, "Final-Recipient") or _text(block, "Original-Recipient")
        if status or action or diagnostic:
            body.errors.append(
                ProviderError(
                    code=(status or "5.0.0")[:32],
                    title=action[:64] if action else None,
                    message=" ".join(diagnostic.split())[:1000] if diagnostic else None,
                    details=recipient.split(";", 1)[-1].strip()[:320] if recipient else None,
                )
            )


def _walk(part: Message, body: _Body, *, take_text: bool, depth: int, in_report: bool) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidInput("MIME structure nested too deeply", field="body")
    ctype = part.get_content_type()
    maintype = part.get_content_maintype()
    if ctype == "message/delivery-status":
        _delivery_status(part, body)
        return
    if ctype == "text/rfc822-headers" and in_report:
        headers = HeaderParser(policy=policy.default).parsestr(_leaf_text(part))
        body.bounced_id = next(iter(_msg_ids(_raw(headers, "Message-ID"))), None)
        return
    if maintype == "message":
        inner = part.get_payload()
        inner_msg = inner[0] if isinstance(inner, list) and inner and isinstance(inner[0], Message) else None
        if inner_msg is not None and in_report:
            body.bounced_id = next(iter(_msg_ids(_raw(inner_msg, "Message-ID"))), None)
            return
        data = _message_bytes(inner_msg) if inner_msg is not None else _payload_bytes(part)
        subject = _text(inner_msg, "Subject") if inner_msg is not None else None
        fallback = f"{subject or 'mensaje'}.eml"
        body.attachments.append(_attachment(part, data=data, filename=_filename(part) or fallback))
        return
    if part.is_multipart():
        payload = part.get_payload()
        children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        if ctype == "multipart/alternative":
            chosen = _choose_alternative(children)
            for child in children:
                take = take_text and child is chosen
                _walk(child, body, take_text=take, depth=depth + 1, in_report=in_report)
            return
        if ctype == "multipart/signed":
            children = [c for c in children if c.get_content_type() not in _SIGNATURE_TYPES]
        report = in_report or ctype == "multipart/report"
        for child in children:
            _walk(child, body, take_text=take_text, depth=depth + 1, in_report=report)
        return
    if ctype in ("text/plain", "text/html") and not _is_attachment(part):
        if take_text:
            (body.plain if ctype == "text/plain" else body.html).append(_leaf_text(part))
        return
    if ctype in _SIGNATURE_TYPES:
        return
    body.attachments.append(_attachment(part))


def _message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes(policy=policy.default)
    except _EMAIL_FAILURES:
        return b""


def _choose_alternative(children: Sequence[Message]) -> Message | None:
    def inline(child: Message, ctype: str) -> bool:
        return child.get_content_type() == ctype and not _is_attachment(child)

    for child in children:
        if inline(child, "text/plain") and _leaf_text(child).strip():
            return child
    for child in children:
        if inline(child, "text/html"):
            return child
    for child in children:
        if child.is_multipart():
            return child
    return children[0] if children else None


@dataclass(frozen=True, slots=True)
class _Text:
    text: str | None
    quoted: str | None
    signature: str | None


def _visible_text(body: _Body) -> _Text:
    if body.plain:
        split = split_reply("\n\n".join(body.plain))
        return _Text(split.text or None, split.quoted or None, split.signature or None)
    if body.html:
        parts = split_html("\n".join(body.html))
        split = split_reply(html_to_text(parts.new))
        quoted = "\n\n".join(q for q in (split.quoted, html_to_text(parts.quoted)) if q)
        signature = html_to_text(parts.signature) or split.signature
        return _Text(split.text or None, quoted or None, signature or None)
    return _Text(None, None, None)


# ---------------------------------------------------------------- event


def _generated_id(message: Message, content: bytes) -> str:
    digest = hashlib.sha256()
    for name in ("From", "To", "Subject", "Date"):
        digest.update((_raw(message, name) or "").encode("utf-8", "surrogateescape"))
        digest.update(b"\x00")
    digest.update(content[_header_end(content) :])
    return f"{digest.hexdigest()[:40]}@generated.centralita.invalid"


def _sender(message: Message) -> _Mailbox | None:
    for name in ("From", "Sender"):
        for mailbox in _addresses(message, name):
            return mailbox
    address = _first_address(message, "Return-Path")
    return _Mailbox(name=None, address=address) if address else None


def _build(message: EmailMessage | Message, content: bytes, received_at: datetime) -> InboundMessage:
    if not list(message.keys()):
        raise InvalidInput("not a mail: no header fields", field="headers")
    sender = _sender(message)
    if sender is None:
        raise InvalidInput("the mail has no sender address", field="from")
    mailbox = _first_address(message, "Delivered-To", "X-Original-To", "Envelope-To")
    if mailbox is None:
        to = _addresses(message, "To")
        mailbox = to[0].address if to else None
    if mailbox is None:
        raise InvalidInput("the mail names no recipient mailbox", field="to")

    subject = _text(message, "Subject")
    headers = {
        name: value
        for name in ("auto-submitted", "x-autoreply", "x-autorespond", "x-autogenerated", "precedence")
        if (value := _text(message, name)) is not None
    }
    return_path = _raw(message, "Return-Path")
    if return_path is not None:
        headers["return-path"] = _unfold(return_path).strip()
    automated = classify(
        headers=headers,
        content_type=message.get_content_type(),
        report_type=str(message.get_param("report-type") or "") or None,
        sender=sender.address,
        subject=subject,
    )
    if automated is None:
        reply_to = _addresses(message, "Reply-To")
        if reply_to and reply_to[0].address != sender.address and is_relay_sender(sender.address):
            sender = reply_to[0]
    if "@" not in sender.address and automated is None:
        raise InvalidInput("the sender is not an email address", field="from")

    body = _Body()
    _walk(message, body, take_text=True, depth=0, in_report=False)
    visible = _visible_text(body)

    message_ids = _msg_ids(_raw(message, "Message-ID"))
    external_id = message_ids[0] if message_ids else _generated_id(message, content)
    in_reply_to = next(iter(_msg_ids(_raw(message, "In-Reply-To"))), None)
    references = list(dict.fromkeys(_msg_ids(_raw(message, "References"))))
    if not references and in_reply_to:
        references = [in_reply_to]
    references = references[-_MAX_REFERENCES:]
    if in_reply_to is None and automated == "bounce":
        in_reply_to = body.bounced_id

    return InboundMessage(
        channel=CHANNEL,
        business_address=mailbox,
        external_id=external_id,
        timestamp=_timestamp(message, received_at),
        sender=Address(kind=AddressKind.EMAIL, value=sender.address, display_name=sender.name),
        text=visible.text,
        quoted_text=visible.quoted,
        signature=visible.signature,
        attachments=tuple(body.attachments),
        reply_to=in_reply_to,
        references=tuple(references),
        subject=subject or None,
        automated=automated,
        errors=tuple(body.errors),
        provider_type=message.get_content_type(),
    )
