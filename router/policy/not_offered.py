"""Why a queue's waiting work is not being offered: a pure reading of the facts a supervisor sees.

The router offers a waiting conversation as soon as its queue is open and an eligible agent can
take it.  When that cannot happen, ``why_not_offered`` names the first thing in the way, in the
order a supervisor would fix it:

1. ``queue_closed`` — outside the queue's business hours (with the next opening);
2. ``no_eligible_agent`` — no active agent has the queue's skills (at its loosest expansion
   step) and capacity on the waiting conversations' channels;
3. ``no_agent_signed_in`` — eligible agents exist, all of them offline;
4. ``no_agent_available`` — some are signed in, but away, in wrap-up or reconnecting;
5. ``all_at_capacity`` — the available ones have no room left on those channels.

``None``: nothing waits, or an available agent has room — the work is flowing (an offer is out,
a returning agent is ramping up, a returning customer waits a few seconds for their previous
agent).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from core.states import Presence

__all__ = ["AgentFacts", "NotOffered", "NotOfferedReason", "why_not_offered"]


class NotOfferedReason(StrEnum):
    QUEUE_CLOSED = "queue_closed"
    NO_ELIGIBLE_AGENT = "no_eligible_agent"
    NO_AGENT_SIGNED_IN = "no_agent_signed_in"
    NO_AGENT_AVAILABLE = "no_agent_available"
    ALL_AT_CAPACITY = "all_at_capacity"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentFacts:
    """An agent with the queue's skills, as the router last stored them."""

    presence: Presence
    connected: bool
    capacity: Mapping[str, int] = field(default_factory=dict)  # per channel
    load: Mapping[str, int] = field(default_factory=dict)  # open conversations per channel
    pending_offers: int = 0

    def serves(self, channel: str) -> bool:
        return self.capacity.get(channel, 0) > 0

    def room(self, channel: str) -> int:
        """Conversations of ``channel`` they could still take (an offer out holds a place)."""
        return self.capacity.get(channel, 0) - self.load.get(channel, 0) - self.pending_offers


@dataclass(frozen=True, slots=True)
class NotOffered:
    reason: NotOfferedReason
    next_opening: float | None = None  # epoch seconds; with ``queue_closed`` only


def why_not_offered(
    *,
    waiting_channels: Collection[str],
    open: bool,
    next_opening: float | None,
    agents: Sequence[AgentFacts],
) -> NotOffered | None:
    """The reason the conversations waiting on ``waiting_channels`` are not offered, or ``None``.

    ``agents``: the active agents with the queue's skills; ``open`` / ``next_opening``: the
    queue's business hours now.
    """
    if not waiting_channels:
        return None
    if not open:
        return NotOffered(NotOfferedReason.QUEUE_CLOSED, next_opening)
    serving = [a for a in agents if any(a.serves(ch) for ch in waiting_channels)]
    if not serving:
        return NotOffered(NotOfferedReason.NO_ELIGIBLE_AGENT)
    signed_in = [a for a in serving if a.presence is not Presence.OFFLINE]
    if not signed_in:
        return NotOffered(NotOfferedReason.NO_AGENT_SIGNED_IN)
    available = [a for a in signed_in if a.presence is Presence.AVAILABLE and a.connected]
    if not available:
        return NotOffered(NotOfferedReason.NO_AGENT_AVAILABLE)
    if not any(a.room(ch) > 0 for a in available for ch in waiting_channels):
        return NotOffered(NotOfferedReason.ALL_AT_CAPACITY)
    return None
