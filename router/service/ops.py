"""Writes the router service derives from its inputs (not from the policy's commands): they keep
their place among the commands of a round, so the database sees them in order."""

from __future__ import annotations

from dataclasses import dataclass

from core.ids import AgentId, ConversationId, OfferId, QueueId
from router.policy import (
    AgentConnected,
    AgentDisconnected,
    AgentLeaseExpired,
    AgentPresenceChanged,
    AgentUpdated,
    ConversationArrived,
    ConversationClosed,
    ForceAssign,
    OfferAccepted,
    OfferDeclined,
    QueueUpdated,
    ReplyWindowChanged,
    Requeue,
    Tick,
    TransferRequested,
)

__all__ = [
    "OP_TYPES",
    "Closed",
    "Connection",
    "Declined",
    "Event",
    "Item",
    "Op",
    "PresenceChosen",
    "QueueChosen",
    "StaleOffer",
    "Unassign",
]


@dataclass(frozen=True, slots=True)
class Declined:
    offer_id: OfferId
    conversation_id: ConversationId
    agent_id: AgentId | None = None


@dataclass(frozen=True, slots=True)
class Closed:
    conversation_id: ConversationId


@dataclass(frozen=True, slots=True)
class PresenceChosen:
    agent_id: AgentId
    presence: str
    until: float | None


@dataclass(frozen=True, slots=True)
class Connection:
    agent_id: AgentId
    connected: bool


@dataclass(frozen=True, slots=True)
class QueueChosen:
    conversation_id: ConversationId
    queue_id: QueueId


@dataclass(frozen=True, slots=True)
class StaleOffer:
    """An offer left in flight by a previous router (or epoch): withdrawn, the agent told."""

    offer_id: OfferId
    conversation_id: ConversationId
    agent_id: AgentId | None


@dataclass(frozen=True, slots=True)
class Unassign:
    """Assigned to an agent the router no longer knows: back to waiting."""

    conversation_id: ConversationId
    agent_id: AgentId
    queue_id: QueueId


Op = Declined | Closed | PresenceChosen | Connection | QueueChosen | StaleOffer | Unassign
OP_TYPES = (Declined, Closed, PresenceChosen, Connection, QueueChosen, StaleOffer, Unassign)
Event = (
    ConversationArrived
    | ConversationClosed
    | ReplyWindowChanged
    | OfferAccepted
    | OfferDeclined
    | AgentUpdated
    | AgentPresenceChanged
    | AgentDisconnected
    | AgentLeaseExpired
    | AgentConnected
    | QueueUpdated
    | TransferRequested
    | ForceAssign
    | Requeue
    | Tick
)
Item = Event | Op
