"""The live queue statistics as published on ``events`` (``ws.<workspace_id>.queue.stats``)."""

from __future__ import annotations

from typing import Any

from router.policy import QueueStats
from router.wire import QueueStatsItem

__all__ = ["stats_item", "stats_to_dict"]


def stats_item(stats: QueueStats) -> QueueStatsItem:
    """The queue's figures as the ``queue.stats`` event carries them."""
    return QueueStatsItem.model_validate(stats_to_dict(stats))


def stats_to_dict(stats: QueueStats) -> dict[str, Any]:
    return {
        "queue_id": str(stats.queue_id),
        "name": stats.name,
        "open": stats.open,
        "waiting": stats.waiting,
        "offered": stats.offered,
        "longest_wait_s": round(stats.longest_wait_s, 3),
        "agents_available": stats.agents_available,
        "agents_busy": stats.agents_busy,
        "agents_away": stats.agents_away,
        "agents_offline": stats.agents_offline,
        "day": stats.day.isoformat(),
        "answered": stats.answered,
        "answered_within_sla": stats.answered_within_sla,
        "abandoned": stats.abandoned,
        "escalated": stats.escalated,
        "sla_target": stats.sla_target,
        "sla_threshold_s": stats.sla_threshold_s,
        "sla_fraction": stats.sla_fraction,
    }
