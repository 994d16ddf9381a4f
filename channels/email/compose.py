"""An ``OutboundMessage`` → the RFC 5322 reply we send.  Pure: the clock is an argument.

* ``From``: the mailbox (``account.address``) with ``account.settings["display_name"]``;
  ``To``: the customer's address.
* ``Subject``: ``message.subject`` (callers pass the thread's subject), else
  ``account.settings["default_subject"]``, else "Respuesta a su consulta"; a reply
  (``reply_to`` set) gets ``Re: `` unless it already carries a reply prefix.
* ``In-Reply-To: <reply_to>`` and ``References: <...> <reply_to>`` so the customer's client
  threads it (the chain is capped to its first and last 20 ids).
* ``Message-ID``: ``<message_id@mailbox-domain>`` — derived from our own message id, so a
  retried send keeps its id and replies to it find the conversation.
* Auto-replies (``message.auto_reply``) carry ``Auto-Submitted: auto-replied`` and
  ``X-Auto-Response-Suppress: All`` (RFC 3834; keeps out-of-office robots from answering).
* Body: plain text, UTF-8, quoted-printable.  An agent's files (``Attachment.content``) follow
  as MIME parts (``multipart/mixed``, base64, their type and file name); attachments that have a
  URL are listed as links; email has no templates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from core.errors import InvalidInput
from core.events import AddressKind, OutboundMessage

__all__ = ["ComposedMail", "compose_reply", "mailbox_domain"]

DEFAULT_SUBJECT = "Respuesta a su consulta"
_REPLY_PREFIX = re.compile(r"^\s*(re|rv|ref|aw|sv|antw|r)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_MAX_REFERENCES = 40


@dataclass(frozen=True, slots=True)
class ComposedMail:
    mail: EmailMessage
    message_id: str  # without angle brackets
    sender: str  # envelope MAIL FROM
    recipient: str  # envelope RCPT TO


def mailbox_domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip().lower()
    return domain or "localhost"


def _address(display_name: str | None, address: str, field: str) -> HeaderAddress:
    try:
        return HeaderAddress(display_name=display_name or "", addr_spec=address)
    except (ValueError, IndexError) as exc:
        raise InvalidInput(f"not a valid email address for {field}", field=field) from exc


def _subject(message: OutboundMessage, settings: Mapping[str, Any]) -> str:
    subject = (message.subject or "").strip() or str(settings.get("default_subject") or DEFAULT_SUBJECT)
    subject = " ".join(subject.split())
    if message.reply_to and not _REPLY_PREFIX.match(subject):
        subject = f"Re: {subject}"
    return subject


def _references(message: OutboundMessage) -> list[str]:
    chain = [ref.strip("<> ") for ref in message.references if ref.strip("<> ")]
    if message.reply_to and (not chain or chain[-1] != message.reply_to.strip("<> ")):
        chain.append(message.reply_to.strip("<> "))
    chain = list(dict.fromkeys(chain))
    if len(chain) > _MAX_REFERENCES:
        chain = chain[: _MAX_REFERENCES // 2] + chain[-_MAX_REFERENCES // 2 :]
    return chain


def _body(message: OutboundMessage) -> str:
    if message.template is not None:
        raise InvalidInput("email has no templates; send text", field="template")
    text = (message.text or "").replace("\r\n", "\n")
    links = []
    for attachment in message.attachments:
        if attachment.content is not None:
            continue  # a MIME part of its own (compose_reply)
        if not attachment.url:
            raise InvalidInput("email attachments need a URL to link to, or a file", field="attachments")
        links.append(f"- {attachment.filename or attachment.caption or 'archivo'}: {attachment.url}")
    if links:
        text = f"{text}\n\nAdjuntos:\n" + "\n".join(links) if text else "Adjuntos:\n" + "\n".join(links)
    if not text.strip() and any(a.content is not None for a in message.attachments):
        text = "Adjuntos:\n" + "\n".join(
            f"- {a.filename or a.caption or 'archivo'}" for a in message.attachments if a.content is not None
        )
    if not text.strip():
        raise InvalidInput("nothing to send: the message has no text", field="text")
    return text if text.endswith("\n") else text + "\n"


def compose_reply(
    message: OutboundMessage,
    *,
    mailbox: str,
    settings: Mapping[str, Any],
    now: datetime,
) -> ComposedMail:
    """Build the mail for ``message`` sent from ``mailbox`` (see the module docstring)."""
    if message.recipient.kind != AddressKind.EMAIL:
        raise InvalidInput("the recipient is not an email address", field="recipient")
    recipient = message.recipient.value.strip().lower()
    display_name = settings.get("display_name") or settings.get("from_name")
    mail = EmailMessage()
    mail["From"] = _address(str(display_name) if display_name else None, mailbox, "business_address")
    mail["To"] = _address(message.recipient.display_name, recipient, "recipient")
    mail["Subject"] = _subject(message, settings)
    mail["Date"] = format_datetime(now)
    message_id = f"{message.message_id}@{mailbox_domain(mailbox)}"
    mail["Message-ID"] = f"<{message_id}>"
    if message.reply_to:
        mail["In-Reply-To"] = f"<{message.reply_to.strip('<> ')}>"
    references = _references(message)
    if references:
        mail["References"] = " ".join(f"<{ref}>" for ref in references)
    if message.auto_reply:
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(_body(message), subtype="plain", charset="utf-8", cte="quoted-printable")
    for index, attachment in enumerate(message.attachments):
        if attachment.content is None:
            continue
        maintype, _, subtype = (attachment.mime_type or "application/octet-stream").partition("/")
        mail.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename or f"adjunto-{index + 1}",
        )
    return ComposedMail(
        mail=mail,
        message_id=message_id,
        sender=str(settings.get("envelope_from") or mailbox),
        recipient=recipient,
    )
