"""The Instagram Messaging channel adapter (found through the ``centralita.channels`` entry point)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import ClassVar

from channels.instagram.client import InstagramClient, message_bodies
from channels.instagram.manifest import MANIFEST
from channels.instagram.parse import CHANNEL, parse_webhook
from channels.instagram.signature import verify_request
from channels.meta.handshake import answer_handshake
from channels.meta.retry import send_with_retries
from core.channel import (
    AccountDirectory,
    AdapterContext,
    Capabilities,
    ChannelAccount,
    ManifestSection,
    ReplyWindow,
    WebhookRequest,
)
from core.events import (
    AddressKind,
    Attachment,
    AttachmentKind,
    DeliveryReceipt,
    InboundEvent,
    OutboundMessage,
)
from core.media import FetchedMedia

__all__ = ["CAPABILITIES", "InstagramAdapter"]

CAPABILITIES = Capabilities(
    address_kind=AddressKind.INSTAGRAM_ID,
    reply_window=ReplyWindow(free_form_hours=24, extended_hours=24 * 7, extended_tag="HUMAN_AGENT"),
    templates=False,
    max_text_length=1000,
    attachments=frozenset(
        {AttachmentKind.IMAGE, AttachmentKind.VIDEO, AttachmentKind.AUDIO, AttachmentKind.FILE}
    ),
    # Meta's Attachment Upload API takes images only from a public URL, never from a server:
    # an agent's upload (kept behind the engine's authenticated media API) cannot be sent.
    outbound_media=(),
    outbound_media_refusal=(
        "Instagram no recibe archivos subidos: Meta toma las imágenes solo de una URL pública / "
        "Instagram does not take uploaded files: Meta takes images only from a public URL"
    ),
    webhook_handshake=True,
    display_name="Instagram",
    extra={"attachments_per_message": 1},
)


class InstagramAdapter:
    name: str = CHANNEL
    capabilities: Capabilities = CAPABILITIES
    manifest: ClassVar[ManifestSection | None] = MANIFEST

    def __init__(self, context: AdapterContext):
        self._context = context
        self._client = InstagramClient(context)

    def handshake(self, request: WebhookRequest, directory: AccountDirectory) -> str:
        return answer_handshake(request.query, directory.accounts(self.name), channel=self.name)

    def verify(self, request: WebhookRequest, directory: AccountDirectory) -> None:
        verify_request(request, directory.accounts(self.name), channel=self.name)

    def parse(self, body: bytes, *, received_at: datetime) -> Sequence[InboundEvent]:
        return parse_webhook(body, received_at=received_at)

    async def send(self, message: OutboundMessage, account: ChannelAccount) -> DeliveryReceipt:
        external_id = ""
        for body in message_bodies(message):  # each call retried on its own: no duplicate attachments
            external_id = await send_with_retries(
                self._context, partial(self._client.send_one, body, account), channel=self.name
            )
        return self._client.receipt(message, external_id)

    async def fetch_media(self, attachment: Attachment, account: ChannelAccount) -> FetchedMedia:
        return await self._client.fetch_media(attachment, account)

    async def aclose(self) -> None:
        await self._client.aclose()
