"""Sending through the WhatsApp Cloud API: ``POST {base}/{version}/{phone_number_id}/messages``,
and an agent's file first through ``POST …/{phone_number_id}/media`` (multipart: ``file``,
``type``, ``messaging_product=whatsapp``), which answers the media id the message names.

``message_body`` and ``messages_url`` are pure (what goes on the wire); ``WhatsAppClient`` does
one attempt over aiohttp (retries are the adapter's, see ``channels.meta.retry``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from channels.meta.transport import GraphTransport
from channels.whatsapp.errors import classify_whatsapp_error
from core.channel import AdapterContext, ChannelAccount
from core.errors import ChannelError, PermanentChannelError
from core.events import (
    AddressKind,
    Attachment,
    AttachmentKind,
    DeliveryReceipt,
    Interactive,
    OutboundMessage,
    Template,
)
from core.media import FetchedMedia

__all__ = [
    "WhatsAppClient",
    "interactive_object",
    "media_url",
    "message_body",
    "messages_url",
    "template_object",
]

_MEDIA_TYPES: dict[AttachmentKind, str] = {
    AttachmentKind.IMAGE: "image",
    AttachmentKind.AUDIO: "audio",
    AttachmentKind.VOICE: "audio",
    AttachmentKind.VIDEO: "video",
    AttachmentKind.DOCUMENT: "document",
    AttachmentKind.FILE: "document",
    AttachmentKind.STICKER: "sticker",
}
_CAPTIONED = frozenset({"image", "video", "document"})


def messages_url(context: AdapterContext, account: ChannelAccount) -> str:
    return f"{context.graph_base_url.rstrip('/')}/{context.graph_version}/{account.address}/messages"


def media_url(context: AdapterContext, account: ChannelAccount) -> str:
    return f"{context.graph_base_url.rstrip('/')}/{context.graph_version}/{account.address}/media"


def _refuse(message: str, field: str) -> PermanentChannelError:
    return PermanentChannelError(message, field=field)


def template_object(template: Template) -> dict[str, Any]:
    """``{"name", "language": {"code"}, "components": [...]}`` with text parameters in order.

    Button parameters are quick-reply payloads; one written ``url:<suffix>`` fills a dynamic URL
    button instead.  Each button parameter goes to the button with its index.
    """
    components: list[dict[str, Any]] = []
    if template.header_parameters:
        components.append(
            {
                "type": "header",
                "parameters": [{"type": "text", "text": p} for p in template.header_parameters],
            }
        )
    if template.body_parameters:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in template.body_parameters]}
        )
    for index, parameter in enumerate(template.button_parameters):
        if parameter.startswith("url:"):
            button = {"sub_type": "url", "parameters": [{"type": "text", "text": parameter[4:]}]}
        else:
            button = {"sub_type": "quick_reply", "parameters": [{"type": "payload", "payload": parameter}]}
        components.append({"type": "button", "index": str(index), **button})
    body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        body["components"] = components
    return body


def _attachment_object(attachment: Attachment, caption: str | None) -> tuple[str, dict[str, Any]]:
    if attachment.kind is AttachmentKind.LOCATION:
        data = attachment.data or {}
        if "latitude" not in data or "longitude" not in data:
            raise _refuse("a location needs latitude and longitude", "attachments")
        return "location", {k: data[k] for k in ("latitude", "longitude", "name", "address") if k in data}
    kind = _MEDIA_TYPES.get(attachment.kind)
    if kind is None:
        raise _refuse(f"WhatsApp cannot send a {attachment.kind.value} attachment", "attachments")
    media: dict[str, Any]
    if attachment.media_id:
        media = {"id": attachment.media_id}
    elif attachment.url:
        media = {"link": attachment.url}
    else:
        raise _refuse("an attachment needs a WhatsApp media id or a link", "attachments")
    text = attachment.caption or caption
    if text and kind in _CAPTIONED:
        media["caption"] = text
    if kind == "document" and attachment.filename:
        media["filename"] = attachment.filename
    return kind, media


def interactive_object(interactive: Interactive) -> dict[str, Any]:
    """An ``interactive`` object: reply buttons, or a list of one section."""
    if interactive.style == "buttons":
        buttons = [{"type": "reply", "reply": {"id": o.id, "title": o.title}} for o in interactive.options]
        return {"type": "button", "body": {"text": interactive.body}, "action": {"buttons": buttons}}
    rows = [
        {"id": o.id, "title": o.title, **({"description": o.description} if o.description else {})}
        for o in interactive.options
    ]
    if not interactive.button:
        raise _refuse("a WhatsApp list needs the text of its button", "interactive.button")
    return {
        "type": "list",
        "body": {"text": interactive.body},
        "action": {"button": interactive.button, "sections": [{"rows": rows}]},
    }


def message_body(message: OutboundMessage) -> dict[str, Any]:
    """The JSON body of one Cloud API send."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    recipient = message.recipient
    if recipient.kind is AddressKind.PHONE:
        body["to"] = recipient.value.lstrip("+")
    elif recipient.kind is AddressKind.WHATSAPP_BSUID:
        body["recipient"] = recipient.value
    else:
        raise _refuse(f"WhatsApp cannot send to a {recipient.kind.value} address", "recipient")
    if message.template is not None:
        body["type"] = "template"
        body["template"] = template_object(message.template)
    elif message.attachments:
        if len(message.attachments) > 1:
            raise _refuse("WhatsApp sends one attachment per message; send them one by one", "attachments")
        kind, content = _attachment_object(message.attachments[0], message.text)
        if message.text and kind not in _CAPTIONED:
            raise _refuse(f"a WhatsApp {kind} message cannot carry text; send the text apart", "text")
        body["type"] = kind
        body[kind] = content
    elif message.interactive is not None:
        body["type"] = "interactive"
        body["interactive"] = interactive_object(message.interactive)
    elif message.text:
        body["type"] = "text"
        body["text"] = {"body": message.text, "preview_url": False}
    else:
        raise _refuse("the message has no text, attachment or template", "text")
    if message.reply_to:
        body["context"] = {"message_id": message.reply_to}
    # Echoed back in every status of this message: a status reconciles our row even when the
    # wamid of the send's answer was never recorded (a worker gone between send and record).
    body["biz_opaque_callback_data"] = str(message.message_id)
    return body


class WhatsAppClient:
    """One Cloud API send per call; the aiohttp session is opened lazily and closed by ``aclose``."""

    def __init__(self, context: AdapterContext, *, clock: Callable[[], datetime] | None = None):
        self._context = context
        self._clock = clock or (lambda: datetime.now(UTC))
        self._transport = GraphTransport(context, provider="WhatsApp", classify=classify_whatsapp_error)

    async def send_once(self, message: OutboundMessage, account: ChannelAccount) -> DeliveryReceipt:
        if not account.access_token:
            raise _refuse(
                f"WhatsApp account {account.address} has no access token configured", "access_token"
            )
        payload = message_body(message)
        answer = await self._transport.post_json(
            messages_url(self._context, account), token=account.access_token, payload=payload
        )
        messages = answer.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        external_id = first.get("id") if isinstance(first, dict) else None
        if not isinstance(external_id, str) or not external_id:
            raise PermanentChannelError("WhatsApp accepted the send but returned no message id")
        return DeliveryReceipt(
            message_id=message.message_id,
            external_id=external_id,
            channel="whatsapp",
            accepted_at=self._clock(),
        )

    async def upload_media(self, attachment: Attachment, account: ChannelAccount) -> str:
        """An agent's file (``attachment.content``) uploaded to the Cloud API: its media id."""
        if attachment.content is None or not attachment.mime_type:
            raise _refuse("the attachment carries no file to upload", "attachments")
        if not account.access_token:
            raise _refuse(
                f"WhatsApp account {account.address} has no access token configured", "access_token"
            )
        try:
            answer = await self._transport.post_file(
                media_url(self._context, account),
                token=account.access_token,
                fields={"messaging_product": "whatsapp", "type": attachment.mime_type},
                data=attachment.content,
                filename=attachment.filename or "archivo",
                mime_type=attachment.mime_type,
            )
        except ChannelError as exc:
            said = exc.details.get("message") or exc.message
            raise type(exc)(
                f"WhatsApp did not take the file: {said}",
                provider_code=exc.provider_code,
                details=exc.details,
                field="attachments",
            ) from exc
        media_id = answer.get("id")
        if not isinstance(media_id, str) or not media_id:
            raise PermanentChannelError("WhatsApp took the file but returned no media id")
        return media_id

    async def fetch_media(self, attachment: Attachment, account: ChannelAccount) -> FetchedMedia:
        """A customer's media: its id → a short-lived URL (``GET /{media-id}``) → the bytes, both
        with the account's token (Cloud API "Retrieve media URL" and "Download media")."""
        if not attachment.media_id:
            raise PermanentChannelError("the attachment names no WhatsApp media id")
        if not account.access_token:
            raise PermanentChannelError(f"WhatsApp account {account.address} has no access token configured")
        base = f"{self._context.graph_base_url.rstrip('/')}/{self._context.graph_version}"
        try:
            described = await self._transport.get_json(
                f"{base}/{attachment.media_id}", token=account.access_token
            )
            url = described.get("url")
            if not isinstance(url, str) or not url:
                raise PermanentChannelError("WhatsApp described the media without a URL")
            data, kind = await self._transport.get_bytes(url, token=account.access_token)
        except ChannelError as exc:
            said = exc.details.get("message") or exc.message
            raise type(exc)(
                f"WhatsApp could not give the media: {said}",
                provider_code=exc.provider_code,
                details=exc.details,
            ) from exc
        declared = described.get("mime_type")
        return FetchedMedia(
            data, declared if isinstance(declared, str) else kind or attachment.mime_type, attachment.filename
        )

    async def aclose(self) -> None:
        await self._transport.aclose()
