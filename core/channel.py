"""The channel seam.

A channel adapter turns one provider's deliveries into normalized events and sends replies
back out.  Adapters are found through the ``centralita.channels`` entry-point group (see
``core.registry``); nothing in ``core/``, ``identity/`` or ``router/`` names a channel.
What a channel can do is declared as data in ``Capabilities``; how its accounts are written in a
campaign manifest (``channels.<name>: [...]``) as data in ``ManifestSection``, so a channel
installed from outside the tree is declared in a manifest like the built-in ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from core.events import AddressKind, AttachmentKind, DeliveryReceipt, InboundEvent, OutboundMessage
from core.ids import CampaignId, ChannelAccountId, WorkspaceId

__all__ = [
    "AccountDirectory",
    "AccountEntry",
    "AdapterContext",
    "Capabilities",
    "ChannelAccount",
    "ChannelAdapter",
    "HubLinkTarget",
    "IngressSink",
    "ListeningAdapter",
    "ManifestAccount",
    "ManifestSection",
    "OutboundMedia",
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
class OutboundMedia:
    """Files an agent may upload and send on a channel: these types, as this attachment kind,
    up to ``max_bytes`` each (the provider's own limit; the engine's setting may be lower)."""

    kind: AttachmentKind
    mime_types: frozenset[str]
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    address_kind: AddressKind  # what a customer's address on this channel is
    reply_window: ReplyWindow | None = None  # None: replies are always allowed (email)
    templates: bool = False  # approved templates can open a closed window
    max_text_length: int = 4096
    attachments: frozenset[AttachmentKind] = frozenset()
    # The files an agent may upload and send (the adapter's ``send`` takes their bytes in
    # ``Attachment.content``); empty: the channel sends no uploaded files, and
    # ``outbound_media_refusal`` says why.
    outbound_media: tuple[OutboundMedia, ...] = ()
    outbound_media_refusal: str = ""
    threading: bool = False  # subject + References threading (email)
    webhook_handshake: bool = False  # GET hub.challenge handshake (Meta)
    display_name: str = ""
    # What a campaign may ask of the channel:
    triage_menu: bool = False  # a campaign's numbered triage menu is asked and answered here
    hub_link_target: bool = False  # other channels' hub auto-replies invite the customer here
    # Interactive messages the channel sends (``OutboundMessage.interactive``): at most this many
    # reply buttons, and list options (0: none); their titles at most so many characters.
    interactive_buttons: int = 0
    interactive_button_title: int = 0
    interactive_list_rows: int = 0
    interactive_row_title: int = 0
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


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """What the running configuration stores for one manifest account (a ``channel_account`` row).

    ``*_env`` hold environment-variable *names*; ``settings`` the channel's other values.
    """

    address: str
    app_id: str | None = None
    app_secret_env: str | None = None
    access_token_env: str | None = None
    verify_token_env: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


class ManifestAccount(Protocol):
    """One account of a channel's manifest section (a frozen pydantic model, unknown keys refused)."""

    @property
    def name(self) -> str: ...

    @property
    def default_queue(self) -> str | None: ...

    @property
    def welcome_reply(self) -> str | None: ...

    def entry(self) -> AccountEntry:
        """The row the running configuration keeps for this account."""
        ...


class HubLinkTarget(Protocol):
    """An account of a ``hub_link_target`` channel: hub auto-replies link to it."""

    def hub_link(self, prefill: str | None) -> str: ...


@dataclass(frozen=True, slots=True)
class ManifestSection:
    """How a channel's accounts are declared in a campaign manifest, under ``channels.<name>``.

    ``account_model`` is the pydantic model of one account (it implements ``ManifestAccount``);
    ``address_field`` names the field inbound traffic finds the account by (unique per channel);
    ``secret_fields`` the ``*_env`` fields that name environment variables.  The labels say the
    address in messages (``duplicate phone_number_id …``, ``WhatsApp phone_number_id … already
    belongs to another workspace``) and the account in a plan (``+ whatsapp principal``);
    ``order`` places the section among the others (in plans, exports and the JSON Schema).
    """

    account_model: type[BaseModel]
    address_field: str
    secret_fields: tuple[str, ...] = ()
    address_label: str = ""
    owner_label: str = ""
    plan_kind: str = ""
    plan_label: str = ""
    order: int = 100


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
    manifest: ClassVar[ManifestSection | None]  # None: the channel has no manifest accounts

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
