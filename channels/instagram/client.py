"""Sending through the Instagram Send API.

Instagram API with Instagram Login: ``POST https://graph.instagram.com/{version}/{IG id}/messages``
with the Instagram user access token.  Instagram API with Facebook Login (Messenger API support
for Instagram): ``POST https://graph.facebook.com/{version}/{Page id or "me"}/messages`` with the
Page token.  An account chooses with ``settings["login"]`` (``"instagram"``, the default, or
``"facebook"``) and, for Facebook Login, ``settings["page_id"]``.

Instagram carries text or one attachment per message; a reply with both goes out as two sends,
the attachment first, and the receipt names the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from channels.instagram.errors import classify_instagram_error
from channels.meta.transport import GraphTransport
from core.channel import AdapterContext, ChannelAccount
from core.errors import PermanentChannelError
from core.events import AddressKind, Attachment, AttachmentKind, DeliveryReceipt, OutboundMessage
from core.media import FetchedMedia

__all__ = [
    "FACEBOOK_GRAPH_URL",
    "INSTAGRAM_GRAPH_URL",
    "InstagramClient",
    "message_bodies",
    "messages_path",
    "messages_url",
]

FACEBOOK_GRAPH_URL = "https://graph.facebook.com"
INSTAGRAM_GRAPH_URL = "https://graph.instagram.com"
_ATTACHMENT_TYPES: dict[AttachmentKind, str] = {
    AttachmentKind.IMAGE: "image",
    AttachmentKind.VIDEO: "video",
    AttachmentKind.AUDIO: "audio",
    AttachmentKind.VOICE: "audio",
    AttachmentKind.FILE: "file",
    AttachmentKind.DOCUMENT: "file",
}


def _login(account: ChannelAccount) -> str:
    return "facebook" if account.settings.get("login") == "facebook" else "instagram"


def messages_path(account: ChannelAccount, version: str) -> str:
    """``/{version}/{IG id}/messages`` (Instagram Login) or ``/{version}/{Page id|me}/messages``."""
    if _login(account) == "facebook":
        node = str(account.settings.get("page_id") or "me")
    else:
        node = account.address
    return f"/{version}/{node}/messages"


def messages_url(context: AdapterContext, account: ChannelAccount) -> str:
    base = context.extra.get("instagram_graph_base_url")
    if not base:
        is_default = context.graph_base_url.rstrip("/") == FACEBOOK_GRAPH_URL
        base = (
            INSTAGRAM_GRAPH_URL if _login(account) == "instagram" and is_default else context.graph_base_url
        )
    return str(base).rstrip("/") + messages_path(account, context.graph_version)


def _refuse(message: str, field: str) -> PermanentChannelError:
    return PermanentChannelError(message, field=field)


def message_bodies(message: OutboundMessage) -> list[dict[str, Any]]:
    """The JSON bodies of the Send API calls for one outbound message, in order."""
    if message.recipient.kind is not AddressKind.INSTAGRAM_ID:
        raise _refuse(f"Instagram cannot send to a {message.recipient.kind.value} address", "recipient")
    if message.template is not None:
        raise _refuse("Instagram has no message templates", "template")
    if len(message.attachments) > 1:
        raise _refuse("Instagram sends one attachment per message; send them one by one", "attachments")
    envelope: dict[str, Any] = {"recipient": {"id": message.recipient.value}}
    if message.tag:
        envelope["messaging_type"] = "MESSAGE_TAG"
        envelope["tag"] = message.tag
    else:
        envelope["messaging_type"] = "RESPONSE"
    contents: list[dict[str, Any]] = []
    for attachment in message.attachments:
        kind = _ATTACHMENT_TYPES.get(attachment.kind)
        if kind is None:
            raise _refuse(f"Instagram cannot send a {attachment.kind.value} attachment", "attachments")
        if attachment.url:
            payload: dict[str, Any] = {"url": attachment.url}
        elif attachment.media_id:
            payload = {"attachment_id": attachment.media_id}
        else:
            raise _refuse("an Instagram attachment needs a url or an attachment id", "attachments")
        contents.append({"attachment": {"type": kind, "payload": payload}})
    if message.text:
        contents.append({"text": message.text})
    if not contents:
        raise _refuse("the message has no text or attachment", "text")
    return [{**envelope, "message": content} for content in contents]


class InstagramClient:
    """Send API calls over aiohttp; the session is opened lazily and closed by ``aclose``."""

    def __init__(self, context: AdapterContext, *, clock: Callable[[], datetime] | None = None):
        self._context = context
        self._clock = clock or (lambda: datetime.now(UTC))
        self._transport = GraphTransport(context, provider="Instagram", classify=classify_instagram_error)

    async def fetch_media(self, attachment: Attachment, account: ChannelAccount) -> FetchedMedia:
        """A customer's attachment from Instagram's CDN URL (no token: the URL is signed and
        expires within days)."""
        if not attachment.url:
            raise PermanentChannelError("the attachment has no URL")
        data, kind = await self._transport.get_bytes(attachment.url, token=None)
        return FetchedMedia(data, kind or attachment.mime_type, attachment.filename)

    async def send_one(self, body: dict[str, Any], account: ChannelAccount) -> str:
        """One Send API call; the message id Instagram gave it."""
        if not account.access_token:
            raise _refuse(
                f"Instagram account {account.address} has no access token configured", "access_token"
            )
        answer = await self._transport.post_json(
            messages_url(self._context, account), token=account.access_token, payload=body
        )
        external_id = answer.get("message_id")
        if not isinstance(external_id, str) or not external_id:
            raise PermanentChannelError("Instagram accepted the send but returned no message id")
        return external_id

    def receipt(self, message: OutboundMessage, external_id: str) -> DeliveryReceipt:
        return DeliveryReceipt(
            message_id=message.message_id,
            external_id=external_id,
            channel="instagram",
            accepted_at=self._clock(),
        )

    async def aclose(self) -> None:
        await self._transport.aclose()
