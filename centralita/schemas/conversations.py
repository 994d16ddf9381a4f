"""Conversations as agents and supervisors work them: the list, one with its timeline, notes, closing.

``TimelineEntry`` is the one timeline entry of the API: the conversation's timeline and its notes
(``TimelineEntry.of``: with ``delivery_error``) and the customer's timeline
(``TimelineEntry.in_customer_timeline``: with ``external_id``).  A field only one of them shows is
absent from the other's entries (``MISSING``), never ``null``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Self
from uuid import UUID

from pydantic import MISSING, AwareDatetime, Field, field_validator

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from core.records import MediaRef
from core.records import TimelineEntry as TimelineRecord
from core.reply_window import WindowState
from core.states import ConversationStatus, MediaStatus, MessageDirection, MessageKind, Presence
from storage.tokens import Principal
from storage.work import PendingOffer, WorkConversation

__all__ = [
    "MAX_NOTE",
    "CloseRequest",
    "Conversation",
    "ConversationDetail",
    "ConversationOptions",
    "ConversationPage",
    "CustomerRef",
    "Disposition",
    "DispositionOption",
    "NoteRequest",
    "Offer",
    "QueueRef",
    "ReplyWindow",
    "TemplateOption",
    "TimelineEntry",
    "TransferAgent",
    "Window",
]

MAX_NOTE = 10_000
"""The longest note, and the longest note of a disposition (characters)."""

# ------------------------------------------------------------------------------------ responses


class ReplyWindow(ResponseBody):
    """The channel's customer-service reply window at the time of the request."""

    open: bool = Field(description="A free-form reply needs nothing special.")
    closes_at: IsoDateTime | None = Field(
        description="When the free-form window ends (null: never, or never opened)."
    )
    extended_until: IsoDateTime | None = Field(description="The end of the tagged extension.")
    requires_tag: str | None = Field(
        description="The tag a human reply needs right now (inside the extension)."
    )
    templates_allowed: bool = Field(description="The channel can send approved templates.")

    @classmethod
    def of(cls, state: WindowState) -> Self:
        return cls(
            open=state.open,
            closes_at=state.closes_at,
            extended_until=state.extended_until,
            requires_tag=state.requires_tag,
            templates_allowed=state.templates_allowed,
        )


class Window(ReplyWindow):
    """The reply window as a conversation shows it: also whether the channel has none at all."""

    always_open: bool = Field(description="The channel has no reply window (email).")

    @classmethod
    def of(cls, state: WindowState) -> Self:
        return cls(**dict(ReplyWindow.of(state)), always_open=state.always_open)


class CustomerRef(ResponseBody):
    id: UUID
    name: str | None


class QueueRef(ResponseBody):
    id: UUID
    name: str | None


class Offer(ResponseBody):
    """A live offer of the conversation to an agent."""

    offer_id: UUID
    agent_id: UUID
    expires_at: IsoDateTime

    @classmethod
    def of(cls, offer: PendingOffer) -> Offer:
        return cls(offer_id=offer.offer_id, agent_id=offer.agent_id, expires_at=offer.expires_at)


class Conversation(ResponseBody):
    """A conversation with its reply window and its live offers (an agent sees only their own)."""

    id: UUID
    status: ConversationStatus
    channel: str
    channel_account_id: UUID | None
    customer: CustomerRef
    queue: QueueRef | None
    agent_id: UUID | None
    campaign_id: UUID | None
    priority: int
    opened_at: IsoDateTime
    enqueued_at: IsoDateTime | None
    assigned_at: IsoDateTime | None
    first_response_at: IsoDateTime | None
    closed_at: IsoDateTime | None
    last_customer_message_at: IsoDateTime | None
    window_closes_at: IsoDateTime | None
    window: Window | None = Field(description="null: a channel this process does not run.")
    offers: list[Offer]
    disposition: dict[str, Any] | None = Field(
        description="As closed: code, label, date, amount, note, closed_by and the follow-up scheduled."
    )
    follow_up_at: IsoDateTime | None

    @classmethod
    def of(cls, conv: WorkConversation, window: WindowState | None, viewer: Principal) -> Conversation:
        offers = conv.offers
        if viewer.role == "agent":
            offers = tuple(o for o in offers if o.agent_id == viewer.agent_id)
        return cls(
            id=conv.id,
            status=ConversationStatus(conv.status),
            channel=conv.channel,
            channel_account_id=conv.channel_account_id,
            customer=CustomerRef(id=conv.customer_id, name=conv.customer_name),
            queue=QueueRef(id=conv.queue_id, name=conv.queue_name) if conv.queue_id else None,
            agent_id=conv.agent_id,
            campaign_id=conv.campaign_id,
            priority=conv.priority,
            opened_at=conv.opened_at,
            enqueued_at=conv.enqueued_at,
            assigned_at=conv.assigned_at,
            first_response_at=conv.first_response_at,
            closed_at=conv.closed_at,
            last_customer_message_at=conv.last_customer_message_at,
            window_closes_at=window.closes_at if window is not None else None,
            window=Window.of(window) if window is not None else None,
            offers=[Offer.of(o) for o in offers],
            disposition=conv.disposition,
            follow_up_at=conv.follow_up_at,
        )


class StoredMedia(ResponseBody):
    """An attachment's bytes as the media store holds them."""

    id: UUID
    status: MediaStatus = Field(description="pending: being fetched; stored: GET url; failed: see error.")
    url: str | None = Field(description="GET it (same authorization as the timeline) while stored.")
    mime_type: str | None
    size: int | None
    sha256: str | None
    error: str | None = Field(description="Why it could not be kept (too big, a refused type, gone, …).")

    @classmethod
    def of(cls, ref: MediaRef) -> StoredMedia:
        stored = ref.status == MediaStatus.STORED
        return cls(
            id=ref.id,
            status=MediaStatus(ref.status),
            url=f"/api/media/{ref.id}" if stored else None,
            mime_type=ref.mime_type,
            size=ref.size,
            sha256=ref.sha256,
            error=ref.error,
        )


class TimelineAttachment(ResponseBody):
    """An attachment of a timeline entry: what the provider said of it, and its stored bytes."""

    kind: str = Field(
        examples=["image", "audio", "voice", "video", "document", "sticker", "location", "contacts"]
    )
    mime_type: str | None
    filename: str | None
    caption: str | None
    data: dict[str, Any] | None = Field(description="A location's coordinates, shared contacts, …")
    media: StoredMedia | None = Field(description="null: nothing to fetch (a location, our own link).")


def _attachments(entry: TimelineRecord) -> list[TimelineAttachment]:
    raw = entry.payload.get("attachments") if isinstance(entry.payload, dict) else None
    if not isinstance(raw, list):
        return []
    by_position = {ref.position: ref for ref in entry.media}
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        ref = by_position.get(i)
        out.append(
            TimelineAttachment(
                kind=str(item.get("kind") or "file"),
                mime_type=(ref.mime_type if ref and ref.mime_type else None) or item.get("mime_type"),
                filename=item.get("filename"),
                caption=item.get("caption"),
                data=item.get("data") if isinstance(item.get("data"), dict) else None,
                media=StoredMedia.of(ref) if ref is not None else None,
            )
        )
    return out


class TimelineEntry(ResponseBody):
    """A message, reply or note in the customer's timeline, across channels and conversations."""

    id: UUID
    at: IsoDateTime
    conversation_id: UUID | None
    channel: str
    direction: MessageDirection
    kind: str = Field(examples=["message", "reaction", "postback", "system", "note"])
    text: str | None
    agent_id: UUID | None
    delivery_state: str | None = Field(
        description="A reply's: queued, sending, sent, delivered, read, failed, unknown."
    )
    delivery_error: dict[str, Any] | MISSING | None = Field(
        default=MISSING,
        description="Why a reply failed or is unknown ({code, message, …}); a conversation's timeline only.",
    )
    external_id: str | MISSING | None = Field(
        default=MISSING, description="The provider's message id; the customer's timeline only."
    )
    attachments: list[TimelineAttachment] = Field(description="In the order the message carries them.")
    about_id: UUID | None = Field(
        default=None,
        description="A reaction's or a deletion's message, when that message is on the same page.",
    )
    deleted: bool = Field(
        default=False, description="The customer deleted this message (a deletion on the same page says so)."
    )
    edited: bool = Field(
        default=False,
        description="The customer edited this message (an entry of kind edited has the new text).",
    )

    @classmethod
    def of(cls, entry: TimelineRecord) -> TimelineEntry:
        """As a conversation's timeline and its notes show it (with ``delivery_error``)."""
        return cls(**_common(entry), delivery_error=entry.delivery_error)

    @classmethod
    def in_customer_timeline(cls, entry: TimelineRecord) -> TimelineEntry:
        """As the customer's timeline shows it (with ``external_id``)."""
        return cls(**_common(entry), external_id=entry.external_id)

    @classmethod
    def page(cls, entries: Sequence[TimelineRecord], *, customer: bool = False) -> list[TimelineEntry]:
        """A page of entries, each reaction, deletion and edit tied to its message when that is on
        the page (``about_id``), and the messages the customer deleted or edited marked so."""
        make = cls.in_customer_timeline if customer else cls.of
        by_external = {(e.channel, e.external_id): e.id for e in entries if e.external_id}
        about: dict[UUID, UUID] = {}
        deleted: set[UUID] = set()
        edited: set[UUID] = set()
        for e in entries:
            target = e.payload.get("target_external_id") if isinstance(e.payload, dict) else None
            found = by_external.get((e.channel, target)) if isinstance(target, str) else None
            if found is None or found == e.id:
                continue
            about[e.id] = found
            if e.kind == MessageKind.DELETED:
                deleted.add(found)
            elif e.kind == MessageKind.EDITED:
                edited.add(found)
        out = []
        for e in entries:
            shown = make(e)
            if e.id in about or e.id in deleted or e.id in edited:
                marks = {"about_id": about.get(e.id), "deleted": e.id in deleted, "edited": e.id in edited}
                shown = shown.model_copy(update=marks)
            out.append(shown)
        return out


def _common(entry: TimelineRecord) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.created_at,
        "conversation_id": entry.conversation_id,
        "channel": entry.channel,
        "direction": MessageDirection(entry.direction),
        "kind": entry.kind,
        "text": entry.text,
        "agent_id": entry.agent_id,
        "delivery_state": entry.delivery_state,
        "attachments": _attachments(entry),
    }


class ConversationPage(ResponseBody):
    """Newest first."""

    items: list[Conversation]
    next_cursor: str | None = Field(description="The next page's cursor (null: this is the last).")


class ConversationDetail(Conversation):
    """A conversation and the customer's most recent timeline entries, oldest first."""

    timeline: list[TimelineEntry]
    next_cursor: str | None = Field(description="Older timeline entries (null: there are none).")

    @classmethod
    def with_timeline(
        cls, conversation: Conversation, entries: list[TimelineRecord], next_cursor: str | None
    ) -> ConversationDetail:
        return cls(**dict(conversation), timeline=TimelineEntry.page(entries), next_cursor=next_cursor)


# ------------------------------------------------------------------------------------ requests


class NoteRequest(RequestBody):
    """An internal note: never sent to the customer."""

    text: str = Field(min_length=1, max_length=MAX_NOTE)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a non-empty string")
        return value


class Disposition(RequestBody):
    """A wrap-up code of the campaign's ``dispositions`` and the fields it requires."""

    code: str = Field(examples=["promesa_de_pago"])
    date: dt.date | None = Field(default=None, description="YYYY-MM-DD (e.g. the promised day).")
    amount: Decimal | None = Field(default=None, description="A positive number, or a string of one.")
    note: str | None = Field(default=None, min_length=1, max_length=MAX_NOTE)

    @field_validator("date", mode="before")
    @classmethod
    def _a_date(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            if not isinstance(value, str):
                raise TypeError
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValueError("must be a date (YYYY-MM-DD)") from None

    @field_validator("amount", mode="before")
    @classmethod
    def _a_positive_number(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise TypeError
            amount = Decimal(str(value).strip())
        except (TypeError, InvalidOperation):
            raise ValueError("must be a positive number") from None
        if not amount.is_finite() or amount <= 0:
            raise ValueError("must be a positive number")
        return amount

    @field_validator("note")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a non-empty string")
        return value


class CloseRequest(RequestBody):
    """Close with a disposition (required when the campaign has dispositions)."""

    disposition: Disposition | None = None
    follow_up_at: AwareDatetime | None = Field(
        default=None, description="In the future; overrides the follow-up the disposition schedules."
    )

    @field_validator("follow_up_at", mode="before")
    @classmethod
    def _an_aware_time(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            if not isinstance(value, str):
                raise TypeError
            when = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValueError("must be an ISO 8601 date-time") from None
        if when.tzinfo is None:
            raise ValueError("needs a time zone offset (e.g. Z or -05:00)")
        return when


class DispositionOption(ResponseBody):
    """A wrap-up code of the conversation's campaign, and the fields closing with it needs."""

    code: str
    label: str
    requires: list[str] = Field(
        description="Fields of the disposition that must be given: date, amount, note."
    )
    schedules_follow_up: bool = Field(description="Closing with it schedules a follow-up.")


class TemplateOption(ResponseBody):
    """An approved template the conversation's channel account may send (outside the window)."""

    name: str
    language: str
    parameters: list[str] = Field(description="The names of {{1}}, {{2}}, … in order.")
    category: str | None
    body: str | None = Field(description="The template's text with its {{n}} placeholders, if declared.")


class ConversationOptions(ResponseBody):
    """What the desk offers for one conversation: how to close it and what to send outside the
    reply window."""

    dispositions: list[DispositionOption]
    templates: list[TemplateOption]
    queues: list[QueueRef] = Field(description="The campaign's queues (to transfer to).")
    agents: list[TransferAgent] = Field(
        description="The workspace's other agents who take this channel (to transfer to)."
    )


class TransferAgent(ResponseBody):
    """An agent a conversation may be transferred to: the router offers it to them when they are
    available and have room (it waits for them a while, then the queue takes it)."""

    id: UUID
    name: str
    presence: Presence = Field(description="As the live router last stored it.")
    free: int = Field(description="Conversations of this channel they can still take now (capacity - load).")
