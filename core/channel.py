"""The channel seam.

A channel adapter turns one provider's deliveries into normalized events and sends replies
back out.  Adapters are found through the ``centralita.channels`` entry-point group (see
``core.registry``); nothing in ``core/``, ``identity/`` or ``router/`` names a channel.
What a channel can do is declared as data in ``Capabilities``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from core.events import AddressKind, AttachmentKind, DeliveryReceipt, InboundEvent, OutboundMessage
from core.ids import CampaignId, ChannelAccountId, WorkspaceId

__all__ = [
    "AccountDirectory",
    "AdapterContext",
    "Capabilities",
    "ChannelAccount",
    "ChannelAdapter",
    "IngressSink",
    "ListeningAdapter",
    "ReplyWindow",
    "WebhookRequest",
]


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    """When free-form replies are allowed after the customer's last message.

    ``free_form_hours``: the customer-service window (24 h on WhatsApp and Instagram).
    ``extended_hours`` / ``extended_tag``: a longer window for human agents that needs a tag
    (Instagram's 7 days with ``HUMAN_AGENT``).  Outside every window only templates may go out
    (if ``templates`` is true in the capabilities), otherwise nothing.
    """

    free_form_hours: float
    extended_hours: float | None = None
    extended_tag: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    address_kind: AddressKind  # what a customer's address on this channel is
    reply_window: ReplyWindow | None = None  # None: replies are always allowed (email)
    templates: bool = False  # approved templates can open a closed window
    max_text_length: int = 4096
    attachments: frozenset[AttachmentKind] = frozenset()
    threading: bool = False  # subject + References threading (email)
    webhook_handshake: bool = False  # GET hub.challenge handshake (Meta)
    display_name: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelAccount:
    """One business address on a channel, as the running configuration knows it.

    Secrets are resolved from the environment variables the campaign manifest names; they are
    never stored in the database.
    """

    id: ChannelAccountId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    channel: str
    address: str  # phone_number_id, Instagram account id, mailbox address
    app_id: str | None = None
    app_secret: str | None = None
    access_token: str | None = None
    verify_token: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None  # the manifest's name for it ("principal")


class AccountDirectory(Protocol):
    """The running configuration's channel accounts (an in-memory snapshot, refreshed on apply)."""

    def accounts(self, channel: str) -> Sequence[ChannelAccount]: ...

    def find(self, channel: str, address: str) -> ChannelAccount | None: ...


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP delivery as the ingress saw it, framework-free."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]
    body: bytes
    remote: str | None = None


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What the composition root hands an adapter when it builds it."""

    graph_base_url: str = "https://graph.facebook.com"
    graph_version: str = "v21.0"
    http_timeout_s: float = 10.0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    send_retries: int = 4
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ChannelAdapter(Protocol):
    """What every channel implements.  Construct with ``Adapter(context: AdapterContext)``."""

    name: str
    capabilities: Capabilities

    def handshake(self, request: WebhookRequest, directory: AccountDirectory) -> str:
        """Answer a provider's endpoint verification (GET); raise ``Forbidden`` on a bad token."""
        ...

    def verify(self, request: WebhookRequest, directory: AccountDirectory) -> None:
        """Raise ``InvalidSignature`` unless the delivery is authentic (constant-time compare)."""
        ...

    def parse(self, body: bytes, *, received_at: datetime) -> Sequence[InboundEvent]:
        """Bytes → normalized events.  Pure; raises only ``InvalidInput`` on a bad body."""
        ...

    async def send(self, message: OutboundMessage, account: ChannelAccount) -> DeliveryReceipt:
        """Deliver a reply; raise ``TransientChannelError`` / ``PermanentChannelError``."""
        ...

    async def aclose(self) -> None: ...


class IngressSink(Protocol):
    """Where a listening adapter hands raw deliveries: returns once they are durable."""

    async def accept(self, channel: str, body: bytes, *, headers: Mapping[str, str]) -> None: ...


@runtime_checkable
class ListeningAdapter(Protocol):
    """An adapter that also listens on its own protocol (SMTP for email)."""

    async def start_listener(self, sink: IngressSink, directory: AccountDirectory) -> None: ...

    async def stop_listener(self) -> None: ...
