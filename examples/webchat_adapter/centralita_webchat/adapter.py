"""``WebChatAdapter``: the ``core.channel.ChannelAdapter`` Protocol for a web-chat widget."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from centralita_webchat.client import WebChatClient
from centralita_webchat.manifest import MANIFEST
from centralita_webchat.parse import CHANNEL, MAX_TEXT, parse_delivery
from centralita_webchat.signature import verify_request
from core.channel import (
    AccountDirectory,
    AdapterContext,
    Capabilities,
    ChannelAccount,
    ManifestSection,
    WebhookRequest,
)
from core.errors import NotFound
from core.events import AddressKind, DeliveryReceipt, InboundEvent, OutboundMessage

__all__ = ["CAPABILITIES", "CHANNEL", "WebChatAdapter"]

# What the channel can do, as data: the engine reads this, it never asks "is this web chat?".
CAPABILITIES = Capabilities(
    address_kind=AddressKind.EXTERNAL,  # the visitor's session id, scoped to the site
    reply_window=None,  # the widget takes replies whenever the session lives
    templates=False,
    max_text_length=MAX_TEXT,
    attachments=frozenset(),
    display_name="Web chat",
    extra={"signature_header": "X-Webchat-Signature"},
)


class WebChatAdapter:
    name: str = CHANNEL
    capabilities: Capabilities = CAPABILITIES
    manifest: ClassVar[ManifestSection | None] = MANIFEST  # its sites under ``channels.webchat``

    def __init__(self, context: AdapterContext):
        self._client = WebChatClient(context)

    def handshake(self, request: WebhookRequest, directory: AccountDirectory) -> str:
        raise NotFound("web-chat webhooks have no GET handshake", field="method")

    def verify(self, request: WebhookRequest, directory: AccountDirectory) -> None:
        verify_request(request, directory.accounts(self.name))

    def parse(self, body: bytes, *, received_at: datetime) -> Sequence[InboundEvent]:
        return parse_delivery(body, received_at=received_at)

    async def send(self, message: OutboundMessage, account: ChannelAccount) -> DeliveryReceipt:
        return await self._client.send(message, account)

    async def aclose(self) -> None:
        await self._client.aclose()
