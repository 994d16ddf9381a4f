"""Each queue of the workspace right now, and its day so far (``GET /api/queues/stats``)."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import Field

from centralita.schemas.common import IsoDateTime, ResponseBody

__all__ = ["QueueAgents", "QueueStats", "QueueStatsList"]


class QueueAgents(ResponseBody):
    """Agents eligible for the queue, by presence as the live router stored it."""

    available: int = Field(description="Available with nothing in hand.")
    busy: int = Field(description="Available with work or a pending offer, or in wrap-up.")
    away: int
    offline: int


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


class QueueStatsList(ResponseBody):
    workspace_id: UUID
    at: IsoDateTime
    queues: list[QueueStats]
