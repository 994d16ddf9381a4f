"""The email channel: raw-MIME webhook and SMTP listener in, SMTP out.

``AdapterContext.extra`` keys it reads: ``webhook_token`` (shared webhook token),
``smtp_listen_host`` (default 127.0.0.1), ``smtp_listen_port`` (0: a free port),
``smtp_hostname`` (the name the listener greets with), ``smtp_max_bytes`` (listener size
limit, default 25 MiB), ``smtp_retry_backoff_s`` / ``smtp_retry_backoff_max_s`` and
``smtp_timeout_s`` (outbound, see ``client``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar

from channels.email.client import SmtpClient, SmtpSettings
from channels.email.compose import compose_reply
from channels.email.listener import DEFAULT_DATA_SIZE_LIMIT, SmtpListener
from channels.email.manifest import MANIFEST
from channels.email.parse import parse_email
from channels.email.signature import verify_token
from core.channel import (
    AccountDirectory,
    AdapterContext,
    Capabilities,
    ChannelAccount,
    IngressSink,
    ManifestSection,
    OutboundMedia,
    WebhookRequest,
)
from core.errors import NotFound
from core.events import (
    AddressKind,
    AttachmentKind,
    DeliveryReceipt,
    DeliveryState,
    InboundEvent,
    OutboundMessage,
)
from core.logging import get_logger
from core.media import ALLOWED_TYPES

__all__ = ["EMAIL_CAPABILITIES", "EmailAdapter"]

log = get_logger(__name__)

_MB = 1024 * 1024


def _kind_of(mime_type: str) -> AttachmentKind:
    for prefix, kind in (("image/", AttachmentKind.IMAGE), ("audio/", AttachmentKind.AUDIO)):
        if mime_type.startswith(prefix):
            return kind
    return AttachmentKind.VIDEO if mime_type.startswith("video/") else AttachmentKind.DOCUMENT


# An agent's file goes as a MIME part of the reply; 10 MB each keeps the mail (base64: a third
# more) under the size most relays accept.
OUTBOUND_MEDIA = tuple(
    OutboundMedia(kind, frozenset(t for t in sorted(ALLOWED_TYPES) if _kind_of(t) is kind), 10 * _MB)
    for kind in (AttachmentKind.IMAGE, AttachmentKind.AUDIO, AttachmentKind.VIDEO, AttachmentKind.DOCUMENT)
)

EMAIL_CAPABILITIES = Capabilities(
    address_kind=AddressKind.EMAIL,
    reply_window=None,
    templates=False,
    max_text_length=100_000,
    attachments=frozenset(
        {
            AttachmentKind.IMAGE,
            AttachmentKind.DOCUMENT,
            AttachmentKind.FILE,
            AttachmentKind.AUDIO,
            AttachmentKind.VIDEO,
        }
    ),
    outbound_media=OUTBOUND_MEDIA,
    threading=True,
    webhook_handshake=False,
    display_name="Email",
    extra={"inbound": ("webhook", "smtp"), "outbound": "smtp", "webhook_path": "/webhooks/email"},
)


class EmailAdapter:
    """``ChannelAdapter`` and ``ListeningAdapter`` for email."""

    name = "email"
    capabilities = EMAIL_CAPABILITIES
    manifest: ClassVar[ManifestSection | None] = MANIFEST

    def __init__(self, context: AdapterContext):
        self.context = context
        self._client = SmtpClient.from_context(context)
        self._listener: SmtpListener | None = None

    # -------------------------------------------------------------- inbound

    def handshake(self, request: WebhookRequest, directory: AccountDirectory) -> str:
        raise NotFound("email webhooks have no GET handshake", field="method")

    def verify(self, request: WebhookRequest, directory: AccountDirectory) -> None:
        tokens = [self.context.extra.get("webhook_token")]
        tokens += [account.verify_token for account in directory.accounts(self.name)]
        verify_token(request.headers, [str(t) for t in tokens if t])

    def parse(self, body: bytes, *, received_at: datetime) -> Sequence[InboundEvent]:
        return parse_email(body, received_at=received_at)

    @property
    def listener_port(self) -> int | None:
        """The SMTP listener's bound port while it runs."""
        return self._listener.port if self._listener is not None else None

    async def start_listener(self, sink: IngressSink, directory: AccountDirectory) -> None:
        if self._listener is not None:
            return
        extra = self.context.extra
        listener = SmtpListener(
            sink,
            directory,
            host=str(extra.get("smtp_listen_host", "127.0.0.1")),
            port=int(extra.get("smtp_listen_port", 0)),
            hostname=str(extra.get("smtp_hostname", "centralita.localhost")),
            data_size_limit=int(extra.get("smtp_max_bytes", DEFAULT_DATA_SIZE_LIMIT)),
        )
        await listener.start()
        self._listener = listener

    async def stop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.stop()

    # -------------------------------------------------------------- outbound

    async def send(self, message: OutboundMessage, account: ChannelAccount) -> DeliveryReceipt:
        composed = compose_reply(
            message, mailbox=account.address, settings=account.settings, now=datetime.now(UTC)
        )
        await self._client.send(composed, SmtpSettings.for_account(account, self.context))
        log.info("email.send.accepted", message_id=str(message.message_id))
        return DeliveryReceipt(
            message_id=message.message_id,
            external_id=composed.message_id,
            channel=self.name,
            accepted_at=datetime.now(UTC),
            state=DeliveryState.SENT,
        )

    async def aclose(self) -> None:
        await self.stop_listener()
