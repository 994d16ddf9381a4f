"""Every active queue of every workspace right now, in two cheap statements (``GET /metrics``).

The same figures as ``WorkStore.queue_live`` (``GET /api/queues/stats``), for all workspaces at
once: the conversations waiting and offered per queue and the oldest one's ``enqueued_at``.  The
aggregate reads only open conversations through the ``status`` index; a queue with none is
listed with zeros, so a dashboard sees 0 rather than no data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.states import ConversationStatus
from storage.tables import ConversationRow, QueueRow
from storage.types import as_utc

__all__ = ["QueueNow", "queues_now"]

CONV = ConversationRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class QueueNow:
    workspace_id: uuid.UUID
    queue: str  # the queue's configured name
    waiting: int = 0
    offered: int = 0
    oldest_enqueued_at: datetime | None = None


async def queues_now(session: AsyncSession) -> list[QueueNow]:
    queues = (
        await session.execute(
            sa.select(QUEUE.c.id, QUEUE.c.workspace_id, QUEUE.c.name).where(QUEUE.c.active.is_(True))
        )
    ).all()
    counts = (
        await session.execute(
            sa.select(
                CONV.c.queue_id,
                CONV.c.status,
                sa.func.count().label("n"),
                sa.func.min(CONV.c.enqueued_at).label("oldest"),
            )
            .where(
                CONV.c.status.in_((ConversationStatus.WAITING, ConversationStatus.OFFERED)),
                CONV.c.queue_id.is_not(None),
            )
            .group_by(CONV.c.queue_id, CONV.c.status)
        )
    ).all()
    waiting: dict[uuid.UUID, int] = {}
    offered: dict[uuid.UUID, int] = {}
    oldest: dict[uuid.UUID, datetime] = {}
    for row in counts:
        into = waiting if row.status == ConversationStatus.WAITING else offered
        into[row.queue_id] = int(row.n)
        at = as_utc(row.oldest)
        if at is not None and (row.queue_id not in oldest or at < oldest[row.queue_id]):
            oldest[row.queue_id] = at
    return [
        QueueNow(q.workspace_id, q.name, waiting.get(q.id, 0), offered.get(q.id, 0), oldest.get(q.id))
        for q in queues
    ]
