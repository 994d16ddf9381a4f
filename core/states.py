"""The states things are in: conversations, offers, agents, timeline entries, raw deliveries.

Each is a ``StrEnum``, so a member *is* its string: what the database stores and what the API
and the WebSocket frames carry are the same values as before (``"waiting"``, ``"wrap_up"`` …),
and a row's plain string compares equal to the member.  Sets of states that mean something to
more than one module are named here, once.

A conversation: ``triage`` (the campaign's menu asks which queue; no agent is offered it) →
``waiting`` (in a queue) → ``offered`` (an agent has a live offer) → ``assigned`` (an agent has
it) → ``closed``.  An offer that ends, or an agent who leaves, puts it back to ``waiting``; a
customer who writes again reopens a closed one as ``waiting``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from core.delivery import DeliveryState

__all__ = [
    "CUSTOMER_KINDS",
    "OPEN_CONVERSATION_STATUSES",
    "ROUTABLE_CONVERSATION_STATUSES",
    "AlertKind",
    "ConversationStatus",
    "DeliveryState",
    "MessageDirection",
    "MessageKind",
    "OfferStatus",
    "Presence",
    "RawDeliveryStatus",
]


class ConversationStatus(StrEnum):
    TRIAGE = "triage"  # waiting for the answer to the campaign's menu; not in any queue yet
    WAITING = "waiting"  # in a queue, for an agent
    OFFERED = "offered"  # an agent has a live offer for it (``conversation.offer_id``)
    ASSIGNED = "assigned"  # an agent has it
    CLOSED = "closed"


# Not closed: a customer's message continues it, the console lists it as open.
OPEN_CONVERSATION_STATUSES: Final = (
    ConversationStatus.TRIAGE,
    ConversationStatus.WAITING,
    ConversationStatus.OFFERED,
    ConversationStatus.ASSIGNED,
)

# The router's: open and in a queue.  A ``triage`` conversation belongs to the pipeline until
# the customer's answer picks its queue (``leave_triage`` makes it ``waiting``), so the router
# neither loads it nor moves, assigns or closes it as one of its own.
ROUTABLE_CONVERSATION_STATUSES: Final = (
    ConversationStatus.WAITING,
    ConversationStatus.OFFERED,
    ConversationStatus.ASSIGNED,
)


class OfferStatus(StrEnum):
    OFFERED = "offered"  # live: the agent may still answer
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the router took it back (``offer.reason`` says why)


class Presence(StrEnum):
    """What an agent chose (or the router set): only ``available`` agents are offered work."""

    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"
    WRAP_UP = "wrap_up"  # after closing a conversation, until ``presence_until``


class MessageDirection(StrEnum):
    """A timeline entry's direction: from the customer, to the customer, or an internal note."""

    IN = "in"
    OUT = "out"
    NOTE = "note"


class MessageKind(StrEnum):
    MESSAGE = "message"
    REACTION = "reaction"
    DELETED = "deleted"
    EDITED = "edited"  # the customer edited a message they sent (its new text)
    POSTBACK = "postback"  # a button or menu answer
    READ = "read"
    SYSTEM = "system"
    NOTE = "note"


# Inbound kinds the customer wrote: they open the reply window; reactions, reads and system
# notices do not.
CUSTOMER_KINDS: Final = (MessageKind.MESSAGE, MessageKind.POSTBACK)


class MediaStatus(StrEnum):
    """A customer's attachment, fetched from the provider into the media store (or not)."""

    PENDING = "pending"  # to fetch while the provider's link is valid
    STORED = "stored"  # in the media store: served by GET /api/media/{id}
    FAILED = "failed"  # given up (too big, a refused type, the link expired, …): ``error`` says why
    ERASED = "erased"  # its bytes were deleted (erasure, retention)


class AlertKind(StrEnum):
    """What an alert on the supervisors' wall reports."""

    SLA_BREACH = "sla_breach"  # a conversation waited past its queue's answer_within_s unanswered
    WEBHOOK_PAUSED = "webhook_paused"  # a webhook endpoint failed for hours: its deliveries paused


class RawDeliveryStatus(StrEnum):
    """What became of a provider's delivery (``raw_delivery.status``)."""

    ACCEPTED = "accepted"  # kept, not processed yet
    PROCESSED = "processed"
    UNROUTABLE = "unroutable"  # kept, but no channel account of ours was addressed
    FAILED = "failed"
