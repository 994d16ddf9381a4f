"""The normalized event model.

Every channel adapter turns what its provider delivers into these types, and everything behind
the adapters (pipeline, identity, router, timeline) speaks only these.  They are frozen, typed
and travel over the broker as JSON (``encode_event`` / ``decode_event``).

Inbound kinds: ``message``, ``status``, ``reaction``, ``deleted``, ``edited``, ``postback``, ``read``,
``system``, ``echo``, ``ignored``, ``unsupported``.  Outbound: ``OutboundMessage`` and ``DeliveryReceipt``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from core.delivery import DeliveryState
from core.ids import ConversationId, EventId, MessageId, RawDeliveryId, WorkspaceId, new_id

__all__ = [
    "Address",
    "AddressKind",
    "Attachment",
    "AttachmentKind",
    "DeliveryReceipt",
    "DeliveryState",
    "DeliveryStatus",
    "Event",
    "Ignored",
    "InboundEvent",
    "InboundMessage",
    "Interactive",
    "InteractiveOption",
    "MessageDeleted",
    "MessageEdited",
    "OutboundEcho",
    "OutboundMessage",
    "Postback",
    "ProviderError",
    "Reaction",
    "ReadReceipt",
    "Referral",
    "SenderEvent",
    "SystemNotice",
    "Template",
    "Unsupported",
    "decode_event",
    "encode_event",
    "new_event_id",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AddressKind(StrEnum):
    """What an address is.  Channel-scoped ids are only meaningful with their ``scope``."""

    PHONE = "phone"  # E.164, e.g. +5215512345678 as WhatsApp sent it
    EMAIL = "email"  # trimmed, lower-cased
    INSTAGRAM_ID = "instagram_id"  # Instagram-scoped id (IGSID), scoped to the IG account
    WHATSAPP_BSUID = "whatsapp_bsuid"  # business-scoped user id, scoped to the business account
    EXTERNAL = "external"  # any other channel's own id (web chat session, SMS short code, ...)


class Address(_Frozen):
    """Who sent or receives a message, as the channel names them."""

    kind: AddressKind
    value: str
    scope: str | None = None  # business account the id is scoped to (IGSID, BSUID)
    display_name: str | None = None


class AttachmentKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VOICE = "voice"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    FILE = "file"
    LOCATION = "location"
    CONTACTS = "contacts"
    SHARE = "share"
    STORY_MENTION = "story_mention"
    STORY_REPLY = "story_reply"
    OTHER = "other"


class Attachment(_Frozen):
    kind: AttachmentKind
    mime_type: str | None = None
    filename: str | None = None
    media_id: str | None = None  # provider's media id (WhatsApp) — fetched on demand
    url: str | None = None  # provider CDN url (Instagram), or a stored copy
    size: int | None = None  # bytes, when the content came inline (email)
    sha256: str | None = None
    caption: str | None = None
    content_id: str | None = None  # email inline image Content-ID
    data: dict[str, Any] | None = None  # structured payloads: location, shared contacts
    # An agent's upload (POST /api/conversations/{id}/attachments): its media row's id.  The
    # outbound worker reads the bytes from the media store into ``content`` just before the
    # adapter's ``send`` (which uploads them to the provider or puts them in the mail); the
    # bytes are never serialized (not on the broker, not in the outbox row, not in a repr).
    upload_id: str | None = None
    content: bytes | None = Field(default=None, exclude=True, repr=False)


class Referral(_Frozen):
    """Where the conversation came from: a click-to-WhatsApp ad, an ig.me link, a post."""

    source: str | None = None  # "ad", "post", "ig.me", "SHORTLINK", ...
    source_id: str | None = None
    source_url: str | None = None
    ref: str | None = None
    headline: str | None = None
    body: str | None = None
    ad_id: str | None = None
    click_id: str | None = None  # ctwa_clid


class ProviderError(_Frozen):
    code: str
    title: str | None = None
    message: str | None = None
    details: str | None = None


class _InboundBase(_Frozen):
    event_id: EventId = Field(default_factory=lambda: EventId(new_id()))
    channel: str
    business_address: str  # phone_number_id, Instagram account id, mailbox address
    external_id: str  # provider's id for this event (wamid, mid, Message-ID, ...)
    timestamp: AwareDatetime
    raw_delivery_id: RawDeliveryId | None = None


class InboundMessage(_InboundBase):
    kind: Literal["message"] = "message"
    sender: Address
    text: str | None = None  # the visible new text (email: without quoted history/signature)
    attachments: tuple[Attachment, ...] = ()
    reply_to: str | None = None  # external id of the quoted message / In-Reply-To
    references: tuple[str, ...] = ()  # email thread references, oldest first
    referral: Referral | None = None
    subject: str | None = None
    quoted_text: str | None = None  # email: quoted history, kept apart
    signature: str | None = None  # email: signature block, kept apart (identity evidence)
    automated: Literal["auto_reply", "bounce"] | None = None  # never opens a conversation
    sender_identities: tuple[Address, ...] = ()  # channel-verified pairs (WA phone + BSUID)
    errors: tuple[ProviderError, ...] = ()  # WhatsApp "unsupported"/"unknown" messages
    provider_type: str | None = None  # the provider's own type name (text, image, interactive, ...)


class DeliveryStatus(_InboundBase):
    """A provider's news about one of our outbound messages (``external_id`` is that message's)."""

    kind: Literal["status"] = "status"
    status: Literal["sent", "delivered", "read", "failed", "deleted", "played"]
    recipient: Address | None = None
    errors: tuple[ProviderError, ...] = ()
    # Our own reference of the message, echoed back by the provider (WhatsApp's
    # ``biz_opaque_callback_data``: the outbound row's id): reconciles a row whose provider id
    # was never recorded.
    client_reference: str | None = None


class Reaction(_InboundBase):
    kind: Literal["reaction"] = "reaction"
    sender: Address
    target_external_id: str
    emoji: str | None = None  # None: the reaction was removed


class MessageDeleted(_InboundBase):
    kind: Literal["deleted"] = "deleted"
    sender: Address
    target_external_id: str


class MessageEdited(_InboundBase):
    """The customer edited a message they sent: ``text`` is its new text."""

    kind: Literal["edited"] = "edited"
    sender: Address
    target_external_id: str
    text: str | None = None
    edit_count: int | None = None  # the provider's count of edits so far, when it gives one


class Postback(_InboundBase):
    """A button, list row or quick reply the customer tapped."""

    kind: Literal["postback"] = "postback"
    sender: Address
    payload: str | None = None
    text: str | None = None  # the title the customer saw
    reply_to: str | None = None
    referral: Referral | None = None
    provider_type: str | None = None


class ReadReceipt(_InboundBase):
    """The customer read our messages up to ``watermark`` or the message ``target_external_id``."""

    kind: Literal["read"] = "read"
    sender: Address
    target_external_id: str | None = None
    watermark: AwareDatetime | None = None


class SystemNotice(_InboundBase):
    """A channel's own notice about the customer, e.g. WhatsApp 'customer changed number'."""

    kind: Literal["system"] = "system"
    sender: Address
    notice: str  # "customer_changed_number", "customer_identity_changed", ...
    text: str | None = None
    new_address: Address | None = None


class OutboundEcho(_InboundBase):
    """The provider echoing a message our business account sent (Instagram ``is_echo``)."""

    kind: Literal["echo"] = "echo"
    recipient: Address
    text: str | None = None


class Ignored(_InboundBase):
    """A delivery that is valid but is not customer traffic (template status updates, ...)."""

    kind: Literal["ignored"] = "ignored"
    field: str
    reason: str


class Unsupported(_InboundBase):
    """Something a customer sent that the adapter does not understand (a new message or
    interactive type, a field it cannot read), kept as the provider sent it.

    It joins the sender's timeline and never opens a conversation.  ``external_id`` is the
    provider's id when the part had one, else a hash of ``raw``.  Parts without a sender to
    attribute them to are ``Ignored`` instead (the raw delivery keeps them).
    """

    kind: Literal["unsupported"] = "unsupported"
    sender: Address
    provider_type: str  # the provider's own type name, e.g. "interactive.call_permission_reply"
    reason: str  # what the adapter could not read: a type name or a JSON path, never content
    raw: dict[str, Any]  # the JSON object this part came from


SenderEvent: TypeAlias = (
    InboundMessage
    | Postback
    | Reaction
    | ReadReceipt
    | MessageDeleted
    | MessageEdited
    | SystemNotice
    | Unsupported
)
"""The inbound events a customer sends: each names its sender (identity resolves them)."""

InboundEvent: TypeAlias = Annotated[
    InboundMessage
    | DeliveryStatus
    | Reaction
    | MessageDeleted
    | MessageEdited
    | Postback
    | ReadReceipt
    | SystemNotice
    | OutboundEcho
    | Ignored
    | Unsupported,
    Field(discriminator="kind"),
]


class Template(_Frozen):
    """An approved template message (WhatsApp) with its ordered parameters."""

    name: str
    language: str = "es"
    body_parameters: tuple[str, ...] = ()
    header_parameters: tuple[str, ...] = ()
    button_parameters: tuple[str, ...] = ()


class InteractiveOption(_Frozen):
    """One choice of an interactive message: the id the customer's tap answers, the title shown."""

    id: str
    title: str
    description: str | None = None


class Interactive(_Frozen):
    """Choices the customer taps (WhatsApp reply buttons or a list) instead of typing."""

    style: Literal["buttons", "list"]
    body: str
    options: tuple[InteractiveOption, ...]
    button: str | None = None  # a list's button, which opens its options


class OutboundMessage(_Frozen):
    """What an agent (or an auto-reply) sends to a customer."""

    kind: Literal["outbound"] = "outbound"
    message_id: MessageId
    workspace_id: WorkspaceId
    conversation_id: ConversationId | None = None
    channel: str
    business_address: str
    recipient: Address
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    template: Template | None = None
    reply_to: str | None = None  # external id of the customer message being answered
    references: tuple[str, ...] = ()  # email: References chain
    subject: str | None = None
    tag: str | None = None  # Instagram message tag, e.g. HUMAN_AGENT
    created_at: datetime | None = None
    auto_reply: bool = False  # sent by an auto-reply rule, not a person (email: Auto-Submitted)
    # Choices to tap, on a channel whose capabilities say so; ``text`` is what the timeline shows.
    interactive: Interactive | None = None


class DeliveryReceipt(_Frozen):
    """The provider accepted an outbound message and gave it ``external_id``."""

    kind: Literal["receipt"] = "receipt"
    message_id: MessageId
    external_id: str
    channel: str
    accepted_at: AwareDatetime
    state: DeliveryState = DeliveryState.SENT


Event: TypeAlias = Annotated[
    InboundMessage
    | DeliveryStatus
    | Reaction
    | MessageDeleted
    | MessageEdited
    | Postback
    | ReadReceipt
    | SystemNotice
    | OutboundEcho
    | Ignored
    | Unsupported
    | OutboundMessage
    | DeliveryReceipt,
    Field(discriminator="kind"),
]

_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


def new_event_id() -> EventId:
    return EventId(new_id())


def encode_event(event: BaseModel) -> bytes:
    """JSON bytes for the broker."""
    return event.model_dump_json(exclude_none=True).encode()


def decode_event(data: bytes | str) -> Any:
    """Back from JSON to the right event type (chosen by ``kind``)."""
    return _EVENT_ADAPTER.validate_json(data)
