"""Storage for the supervisors' alerts (``alert`` rows): the router raises them in its round's
transaction (``storage.routing.RoutingWrites.alert``); the wall and ``GET /api/alerts`` read them.

``AlertStore`` works inside the caller's session.  Rows come back as ``AlertRecord``, newest
first, with the queue's name and SLA threshold as the queue is configured now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import AlertId, ConversationId, QueueId, WorkspaceId
from core.states import AlertKind
from storage.tables import AlertRow, QueueRow

__all__ = ["AlertDraft", "AlertRecord", "AlertStore"]

ALERT = AlertRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert to raise (the router's round writes it)."""

    kind: AlertKind
    raised_at: datetime
    queue_id: QueueId | None = None
    conversation_id: ConversationId | None = None
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: AlertId
    kind: AlertKind
    raised_at: datetime
    queue_id: QueueId | None
    queue_name: str | None
    queue_display_name: str | None
    conversation_id: ConversationId | None
    details: Mapping[str, Any]
    sla_threshold_s: float | None


def _threshold(config: Mapping[str, Any] | None) -> float | None:
    sla = (config or {}).get("sla")
    if isinstance(sla, Mapping) and sla.get("answer_within_s") is not None:
        return float(sla["answer_within_s"])
    return None


class AlertStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def recent(
        self, workspace_id: WorkspaceId, *, limit: int, after: datetime | None = None
    ) -> Sequence[AlertRecord]:
        """The workspace's latest alerts (newest first); with ``after``, only those raised since."""
        query = (
            sa.select(ALERT, QUEUE.c.name.label("queue_name"), QUEUE.c.config.label("queue_config"))
            .select_from(ALERT.outerjoin(QUEUE, QUEUE.c.id == ALERT.c.queue_id))
            .where(ALERT.c.workspace_id == workspace_id)
            .order_by(ALERT.c.raised_at.desc(), ALERT.c.id.desc())
            .limit(limit)
        )
        if after is not None:
            query = query.where(ALERT.c.raised_at > after)
        rows = (await self.session.execute(query)).all()
        return [
            AlertRecord(
                id=AlertId(r.id),
                kind=AlertKind(r.kind),
                raised_at=r.raised_at,
                queue_id=QueueId(r.queue_id) if r.queue_id is not None else None,
                queue_name=r.queue_name,
                queue_display_name=(r.queue_config or {}).get("display_name"),
                conversation_id=ConversationId(r.conversation_id) if r.conversation_id is not None else None,
                details=dict(r.details or {}),
                sla_threshold_s=_threshold(r.queue_config),
            )
            for r in rows
        ]
