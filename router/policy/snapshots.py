"""Read-only views of the router's state: the supervisor's live queue statistics, an agent's and a
conversation's routing status.  Built on demand; cheap enough to poll every second."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from core.ids import AgentId, ConversationId, OfferId, QueueId, WorkspaceId
from core.states import ConversationStatus, Presence

__all__ = ["AgentSnapshot", "ConversationSnapshot", "ConversationStatus", "QueueStats"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """One queue right now, and its counters for the current local day (the queue's time zone, UTC
    without business hours).  Agents are those eligible for the queue (loosest bullseye step):
    ``available`` = available with nothing in hand, ``busy`` = available with work or in wrap-up."""

    queue_id: QueueId
    workspace_id: WorkspaceId
    name: str
    open: bool
    waiting: int
    offered: int
    longest_wait_s: float
    agents_available: int
    agents_busy: int
    agents_away: int
    agents_offline: int
    day: date
    answered: int
    answered_within_sla: int
    abandoned: int
    escalated: int
    sla_target: float | None
    sla_threshold_s: float | None

    @property
    def sla_fraction(self) -> float | None:
        """Answered within the threshold over answered today (None before the first answer)."""
        return self.answered_within_sla / self.answered if self.answered else None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSnapshot:
    agent_id: AgentId
    workspace_id: WorkspaceId
    presence: Presence
    connected: bool
    load: Mapping[str, int]  # units per channel, pending offers included
    pending_offers: tuple[OfferId, ...]
    conversations: tuple[ConversationId, ...]
    wrap_up_until: float | None
    idle_since: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationSnapshot:
    conversation_id: ConversationId
    workspace_id: WorkspaceId
    queue_id: QueueId
    channel: str
    status: ConversationStatus  # waiting, offered or assigned: the router holds no other
    agent_id: AgentId | None
    offer_id: OfferId | None
    enqueued_at: float
    step: int
    skipped: Mapping[AgentId, str]
