"""The WhatsApp Cloud API channel adapter (found through the ``centralita.channels`` entry point)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from channels.meta.handshake import answer_handshake
from channels.meta.retry import send_with_retries
from channels.whatsapp.client import WhatsAppClient
from channels.whatsapp.manifest import MANIFEST
from channels.whatsapp.parse import CHANNEL, parse_webhook
from channels.whatsapp.signature import verify_request
from core.channel import (
    AccountDirectory,
    AdapterContext,
    Capabilities,
    ChannelAccount,
    ManifestSection,
    OutboundMedia,
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

__all__ = ["CAPABILITIES", "WhatsAppAdapter"]

_MB = 1024 * 1024
# What the Cloud API takes as uploaded media ("Supported media types"): an agent's file is
# uploaded to POST /{phone-number-id}/media and sent by the id Meta answers.
OUTBOUND_MEDIA = (
    OutboundMedia(AttachmentKind.IMAGE, frozenset({"image/jpeg", "image/png"}), 5 * _MB),
    OutboundMedia(AttachmentKind.VIDEO, frozenset({"video/mp4", "video/3gpp"}), 16 * _MB),
    OutboundMedia(
        AttachmentKind.AUDIO,
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
        16 * _MB,
    ),
    OutboundMedia(
        AttachmentKind.DOCUMENT,
        frozenset(
            {
                "application/pdf",
                "text/plain",
                "application/msword",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.ms-excel",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * _MB,
    ),
)

CAPABILITIES = Capabilities(
    address_kind=AddressKind.PHONE,
    reply_window=ReplyWindow(free_form_hours=24),
    templates=True,
    max_text_length=4096,
    attachments=frozenset(
        {
            AttachmentKind.IMAGE,
            AttachmentKind.AUDIO,
            AttachmentKind.VOICE,
            AttachmentKind.VIDEO,
            AttachmentKind.DOCUMENT,
            AttachmentKind.STICKER,
            AttachmentKind.LOCATION,
        }
    ),
    outbound_media=OUTBOUND_MEDIA,
    webhook_handshake=True,
    display_name="WhatsApp",
    triage_menu=True,
    hub_link_target=True,
    # Reply buttons: 3, titles of 20 characters; lists: 10 rows over all sections, titles of 24.
    interactive_buttons=3,
    interactive_button_title=20,
    interactive_list_rows=10,
    interactive_row_title=24,
    extra={"max_caption_length": 1024, "attachments_per_message": 1, "business_scoped_ids": True},
)


class WhatsAppAdapter:
    name: str = CHANNEL
    capabilities: Capabilities = CAPABILITIES
    manifest: ClassVar[ManifestSection | None] = MANIFEST

    def __init__(self, context: AdapterContext):
        self._context = context
        self._client = WhatsAppClient(context)

    def handshake(self, request: WebhookRequest, directory: AccountDirectory) -> str:
        return answer_handshake(request.query, directory.accounts(self.name), channel=self.name)

    def verify(self, request: WebhookRequest, directory: AccountDirectory) -> None:
        verify_request(request, directory.accounts(self.name), channel=self.name)

    def parse(self, body: bytes, *, received_at: datetime) -> Sequence[InboundEvent]:
        return parse_webhook(body, received_at=received_at)

    async def send(self, message: OutboundMessage, account: ChannelAccount) -> DeliveryReceipt:
        """Upload an agent's file first (retried on its own, so a retried message post does not
        upload it again), then send the message naming the media id Meta answered."""
        attachments = []
        for attachment in message.attachments:
            if attachment.content is not None:
                media_id = await send_with_retries(
                    self._context,
                    lambda a=attachment: self._client.upload_media(a, account),  # type: ignore[misc]
                    channel=self.name,
                )
                attachment = attachment.model_copy(update={"media_id": media_id, "content": None})
            attachments.append(attachment)
        ready = message.model_copy(update={"attachments": tuple(attachments)})
        return await send_with_retries(
            self._context, lambda: self._client.send_once(ready, account), channel=self.name
        )

    async def fetch_media(self, attachment: Attachment, account: ChannelAccount) -> FetchedMedia:
        return await self._client.fetch_media(attachment, account)

    async def aclose(self) -> None:
        await self._client.aclose()
