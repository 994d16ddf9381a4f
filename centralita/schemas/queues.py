"""Each queue of the workspace right now, and its day so far (``GET /api/queues/stats``)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import Field

from centralita.schemas.common import IsoDateTime, ResponseBody
from router.policy import NotOffered, NotOfferedReason, from_epoch

__all__ = ["NotOfferedNow", "QueueAgents", "QueueStats", "QueueStatsList"]


class QueueAgents(ResponseBody):
    """Agents eligible for the queue, by presence as the live router stored it."""

    available: int = Field(description="Available with nothing in hand.")
    busy: int = Field(description="Available with work or a pending offer, or in wrap-up.")
    away: int
    offline: int


class NotOfferedNow(ResponseBody):
    """Why waiting conversations are not being offered right now."""

    reason: NotOfferedReason = Field(
        description="queue_closed (outside business hours), no_eligible_agent (nobody has the "
        "queue's skills and capacity on the channel), no_agent_signed_in (the eligible agents are "
        "all offline), no_agent_available (signed in, but away, in wrap-up or reconnecting), "
        "all_at_capacity (the available ones have no room left)."
    )
    next_opening_at: IsoDateTime | None = Field(
        description="With queue_closed: when the queue opens next (null: no opening scheduled)."
    )

    @classmethod
    def of(cls, found: NotOffered | None) -> NotOfferedNow | None:
        if found is None:
            return None
        opening = from_epoch(found.next_opening) if found.next_opening is not None else None
        return cls(reason=found.reason, next_opening_at=opening)


class QueueStats(ResponseBody):
    """One active queue: what waits now, who could take it, and its answers today."""

    queue_id: UUID
    name: str
    display_name: str | None
    campaign_id: UUID | None
    priority: int
    waiting: int
    offered: int
    longest_wait_s: float = Field(description="Since the oldest waiting or offered one entered the queue.")
    agents: QueueAgents
    day: date = Field(description="The queue's local day (business hours' time zone, else campaign's).")
    timezone: str
    answered_today: int = Field(description="First assigned since the start of the local day.")
    answered_within_sla_today: int | None = Field(description="Of those, within the SLA (null: no SLA).")
    sla_pct_today: float | None = Field(description="Their percentage (null before the first answer).")
    sla_target_pct: float | None
    sla_threshold_s: float | None
    not_offered: NotOfferedNow | None = Field(
        description="Why the queue's waiting conversations are not being offered (null: nothing "
        "waits, or the work is flowing)."
    )
    open: bool = Field(description="Open now by its business hours (true: it has none, around the clock).")
    next_change_at: IsoDateTime | None = Field(
        description="When it next closes (open) or opens (closed) by its business hours; null: never."
    )


class QueueStatsList(ResponseBody):
    workspace_id: UUID
    at: IsoDateTime
    queues: list[QueueStats]
