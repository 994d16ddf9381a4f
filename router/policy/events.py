"""What the router is told happened.  Its driver (the live router or the simulator) builds these.

Every event is idempotent where redelivery is possible: a conversation that already arrived, an
answer to an offer that is no longer live, a close of an unknown conversation change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.ids import AgentId, ConversationId, CustomerId, OfferId, QueueId, WorkspaceId
from core.states import Presence
from router.policy.config import AgentProfile, QueueConfig
from router.policy.frozen import quick_init

__all__ = [
    "AgentConnected",
    "AgentDisconnected",
    "AgentLeaseExpired",
    "AgentPresenceChanged",
    "AgentUpdated",
    "ConversationArrived",
    "ConversationClosed",
    "ForceAssign",
    "OfferAccepted",
    "OfferDeclined",
    "QueueUpdated",
    "ReplyWindowChanged",
    "Requeue",
    "RouterEvent",
    "Tick",
    "TransferRequested",
]


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationArrived:
    """A conversation needs an agent.

    ``enqueued_at`` is its original arrival (defaults to ``now``): pass it when replaying after a
    failover or re-entering a follow-up so it keeps its age.  ``preferred_agent_id`` is the agent who
    served this customer last (sticky), waited for up to ``sticky_wait_s`` (router default when
    ``None``).  ``assigned_agent_id`` restores an existing assignment on replay (no command is emitted).
    """

    conversation_id: ConversationId
    workspace_id: WorkspaceId
    queue_id: QueueId
    channel: str
    customer_id: CustomerId | None = None
    priority: int = 0
    enqueued_at: float | None = None
    preferred_agent_id: AgentId | None = None
    sticky_wait_s: float | None = None
    reply_window_closes_at: float | None = None
    assigned_agent_id: AgentId | None = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationClosed:
    """Closed by the agent (frees capacity, wrap-up) or abandoned while waiting or offered."""

    conversation_id: ConversationId


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyWindowChanged:
    """The customer wrote again: the channel's reply window now closes at ``closes_at``."""

    conversation_id: ConversationId
    closes_at: float | None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OfferAccepted:
    offer_id: OfferId


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OfferDeclined:
    offer_id: OfferId


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentUpdated:
    """Register an agent or change its skills/capacity.  A new agent starts ``offline``."""

    agent: AgentProfile


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentPresenceChanged:
    """The agent chose a presence.  ``wrap_up`` lasts ``until`` (default: now + the router's wrap_up_s;
    with wrap_up_s = 0 it lasts until the agent changes it)."""

    agent_id: AgentId
    presence: Presence
    until: float | None = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDisconnected:
    """The agent's connection dropped; beyond the grace period the agent is offline."""

    agent_id: AgentId


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLeaseExpired:
    """The gateway holding the agent's connection stopped renewing its presence lease (it died):
    the grace period already ran, so the agent is offline now.  Pending offers are withdrawn and
    their conversations wait again with their original age; assigned conversations stay assigned
    (the agent is likely working through another gateway, and two agents must never answer the
    same customer).  Ignored for an agent already disconnected (its grace timer is running)."""

    agent_id: AgentId


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConnected:
    """The agent's connection is back (within the grace period nothing was lost)."""

    agent_id: AgentId


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class QueueUpdated:
    """Register a queue or replace its configuration (live campaign apply).  Waiting conversations
    keep their place; offered and assigned ones keep their agent."""

    queue: QueueConfig


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRequested:
    """Move a conversation to another queue, or to a named agent (offered to them first, for up to
    the router's ``transfer_wait_s``, regardless of skills).  It keeps its original age."""

    conversation_id: ConversationId
    to_queue_id: QueueId | None = None
    to_agent_id: AgentId | None = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ForceAssign:
    """A supervisor assigns a conversation to an agent directly (capacity is still respected)."""

    conversation_id: ConversationId
    agent_id: AgentId


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Requeue:
    """A supervisor sends a conversation back to routing (optionally to another queue), skipping
    the agent who had it."""

    conversation_id: ConversationId
    queue_id: QueueId | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed; nothing else happened.  Send one at ``next_deadline()``."""


RouterEvent = (
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
