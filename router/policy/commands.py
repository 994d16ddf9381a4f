"""What the router asks its driver to do, and the explanation of each decision.

The live router carries these out (publish offers to ``agent.<id>``, persist assignments and
explanations, send auto-replies, push presence); the simulator interprets them.  The set:

- ``Offer`` — propose a conversation to an agent; capacity is reserved until answered or withdrawn.
- ``WithdrawOffer`` — an offer is no longer valid (timeout, agent away/offline, conversation closed,
  transferred, requeued, force-assigned elsewhere).  Never emitted for an offer the agent declined.
- ``Assigned`` — a conversation now belongs to an agent (offer accepted, or forced by a supervisor).
- ``Requeued`` — a conversation left its agent and is routed again, with its original age.
- ``Overflowed`` — a waiting conversation moved to the overflow queue.
- ``SendAutoReply`` — send the campaign's auto-reply of ``kind`` (``outside_hours``), once per conversation.
- ``Escalated`` — a conversation breached its queue's SLA threshold unanswered.
- ``PresenceSet`` — the router changed an agent's presence (wrap-up start/end, lost connection).
- ``WindowClosing`` — tell the agent holding a conversation that its reply window closes soon
  (once per window and agent); ``WindowClosed`` — that it has closed (templates only from now).
- ``Explained`` — a routing decision that found no agent (the ones that did ride on ``Offer``).
- ``Refused`` — an event could not be carried out (unknown conversation, agent at capacity, …).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.ids import AgentId, ConversationId, OfferId, QueueId, WorkspaceId
from core.states import Presence
from router.policy.frozen import quick_init

__all__ = [
    "Assigned",
    "Candidate",
    "Command",
    "Decision",
    "Escalated",
    "Explained",
    "FilteredAgent",
    "Offer",
    "Overflowed",
    "PresenceSet",
    "Refused",
    "Requeued",
    "SendAutoReply",
    "WindowClosed",
    "WindowClosing",
    "WithdrawOffer",
]


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """An eligible agent with its skill score and the tie-breaking figures, best first."""

    agent_id: AgentId
    score: int
    load: float  # share of capacity in use, pending offers included
    idle_since: float


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class FilteredAgent:
    """An agent left out, and why: ``offline``, ``away``, ``wrap_up``, ``disconnected``,
    ``missing_skill:ventas<7``, ``at_capacity:<channel>``, ``pending_offer``, ``ramping``,
    ``skipped_declined``, ``skipped_timeout``, ``skipped_transferred``, ``other_workspace``."""

    agent_id: AgentId
    reason: str


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Why a conversation went to an agent, or to nobody yet.

    ``detail`` says how complete it is.  ``full``: every agent of the workspace appears, either in
    ``candidates`` (scored, best first) or in ``filtered`` with its reason; ``filtered_counts``
    counts them by reason class (the part before ``:``).  ``summary`` (large workspaces): the best
    ``explain_top_k`` candidates, the skipped agents met on the way, and ``filtered_counts`` from
    live counters — ``missing_skill``, ``offline``, ``away``, ``wrap_up``, and ``not_routable`` (at
    capacity, pending offer, ramping or disconnected, not told apart) — so recording it costs
    O(k log n), not O(agents).  ``minimal``: the winner only.  ``considered`` is the number of agents
    of the workspace the decision was taken over.
    """

    conversation_id: ConversationId
    queue_id: QueueId
    workspace_id: WorkspaceId
    at: float
    trigger: str  # arrival, agent_available, step, reroute, queue_open, sticky, transfer, requeue, overflow
    step: int
    min_proficiency: int | None
    detail: str
    considered: int
    candidates: tuple[Candidate, ...]
    filtered: tuple[FilteredAgent, ...]
    filtered_counts: tuple[tuple[str, int], ...]
    winner: AgentId | None

    def counts(self) -> Mapping[str, int]:
        return dict(self.filtered_counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored and shown by ``GET /api/conversations/{id}/routing``."""
        return {
            "conversation_id": str(self.conversation_id),
            "queue_id": str(self.queue_id),
            "workspace_id": str(self.workspace_id),
            "at": self.at,
            "trigger": self.trigger,
            "step": self.step,
            "min_proficiency": self.min_proficiency,
            "detail": self.detail,
            "considered": self.considered,
            "candidates": [
                {"agent_id": str(c.agent_id), "score": c.score, "load": c.load, "idle_since": c.idle_since}
                for c in self.candidates
            ],
            "filtered": [{"agent_id": str(f.agent_id), "reason": f.reason} for f in self.filtered],
            "filtered_counts": dict(self.filtered_counts),
            "winner": None if self.winner is None else str(self.winner),
        }


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    offer_id: OfferId
    conversation_id: ConversationId
    agent_id: AgentId
    queue_id: QueueId
    channel: str
    expires_at: float
    decision: Decision


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawOffer:
    offer_id: OfferId
    conversation_id: ConversationId
    agent_id: AgentId
    reason: str  # timeout, agent_away, agent_offline, conversation_closed, transferred, requeued, forced


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Assigned:
    conversation_id: ConversationId
    agent_id: AgentId
    queue_id: QueueId
    channel: str
    offer_id: OfferId | None  # None when forced
    waited_s: float  # since the original enqueued_at
    forced: bool = False
    transferred: bool = False  # the first assignment after a transfer
    # The conversation's first answer: its wait as the queue's SLA counts it (only while the
    # queue is open, since it entered routing) — the live SLA figure's own number; None after.
    answer_waited_s: float | None = None


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Requeued:
    conversation_id: ConversationId
    queue_id: QueueId
    from_agent_id: AgentId | None
    reason: str  # agent_offline, transfer, supervisor
    enqueued_at: float  # unchanged: the conversation keeps its age


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Overflowed:
    conversation_id: ConversationId
    from_queue_id: QueueId
    to_queue_id: QueueId
    reason: str  # timeout, no_eligible_agents


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class SendAutoReply:
    conversation_id: ConversationId
    queue_id: QueueId
    kind: str  # outside_hours
    opens_at: float | None  # when the queue opens next (None: no opening scheduled)


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Escalated:
    conversation_id: ConversationId
    queue_id: QueueId
    kind: str  # sla_breach
    waited_s: float


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceSet:
    agent_id: AgentId
    presence: Presence
    reason: str  # wrap_up, wrap_up_ended, connection_lost
    until: float | None = None
    conversation_id: ConversationId | None = None  # wrap_up: the conversation just closed


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class WindowClosing:
    conversation_id: ConversationId
    agent_id: AgentId
    closes_at: float


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class WindowClosed:
    conversation_id: ConversationId
    agent_id: AgentId
    closed_at: float


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Explained:
    decision: Decision


@quick_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    event: str  # the event's class name
    reason: (
        str  # unknown_conversation, unknown_agent, unknown_queue, other_workspace, at_capacity:<ch>, offline
    )
    conversation_id: ConversationId | None = None
    agent_id: AgentId | None = None


Command = (
    Offer
    | WithdrawOffer
    | Assigned
    | Requeued
    | Overflowed
    | SendAutoReply
    | Escalated
    | PresenceSet
    | WindowClosing
    | WindowClosed
    | Explained
    | Refused
)
