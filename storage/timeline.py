"""A customer's timeline: every entry across channels and conversations, in (time, id) order.

One query pages it either way (``Towards``); a page is always oldest first, and its cursor is
the (time, id) of the entry the next page continues from, ``None`` on the last page:

- ``Towards.OLDER`` — the most recent entries first, the cursor reaches further back (the
  conversation view: ``WorkStore.timeline``).
- ``Towards.NEWER`` — from the first entry on, the cursor reaches further forward (the
  customer's record: ``IdentityStore.timeline``).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import AgentId, ConversationId, CustomerId, MessageId, WorkspaceId
from core.records import MediaRef, TimelineEntry
from core.states import MessageDirection
from storage.media import MediaRecord, MediaRows
from storage.outbound import shown_error
from storage.tables import MessageRow
from storage.types import as_utc

__all__ = ["Cursor", "Towards", "timeline_page"]

MSG = MessageRow.__table__  # type: ignore[attr-defined]

Cursor = tuple[datetime, uuid.UUID]


class Towards(StrEnum):
    OLDER = "older"  # newest page first; the cursor reaches further back
    NEWER = "newer"  # oldest page first; the cursor reaches further forward


def _entry(r: Any) -> TimelineEntry:
    return TimelineEntry(
        id=MessageId(r.id),
        conversation_id=ConversationId(r.conversation_id) if r.conversation_id else None,
        customer_id=CustomerId(r.customer_id) if r.customer_id else None,
        direction=r.direction,
        kind=r.kind,
        channel=r.channel,
        external_id=r.external_id,
        text=r.text,
        agent_id=AgentId(r.agent_id) if r.agent_id else None,
        delivery_state=r.delivery_state,
        created_at=as_utc(r.created_at),
        payload=dict(r.payload or {}),
        delivery_error=shown_error(r.error) if r.direction == MessageDirection.OUT else None,
    )


def _ref(m: MediaRecord) -> MediaRef:
    return MediaRef(m.id, m.position, m.status, m.mime_type, m.size, m.sha256, m.error)


async def timeline_page(
    session: AsyncSession,
    ws: WorkspaceId,
    customer_id: CustomerId,
    *,
    limit: int,
    cursor: Cursor | None,
    towards: Towards,
) -> tuple[list[TimelineEntry], Cursor | None]:
    """Up to ``limit`` entries of the customer beyond ``cursor`` (strictly), oldest first, and the
    cursor of the next page when there is one."""
    at, ident = MSG.c.created_at, MSG.c.id
    query = sa.select(MSG).where(MSG.c.workspace_id == ws, MSG.c.customer_id == customer_id)
    if towards is Towards.OLDER:
        if cursor is not None:
            query = query.where(sa.or_(at < cursor[0], sa.and_(at == cursor[0], ident < cursor[1])))
        query = query.order_by(at.desc(), ident.desc())
    else:
        if cursor is not None:
            query = query.where(sa.or_(at > cursor[0], sa.and_(at == cursor[0], ident > cursor[1])))
        query = query.order_by(at, ident)
    rows = (await session.execute(query.limit(limit + 1))).all()
    page = [_entry(r) for r in rows[:limit]]
    media = await MediaRows(session).of_messages(e.id for e in page)
    page = [replace(e, media=tuple(_ref(m) for m in media[e.id])) if e.id in media else e for e in page]
    following = (page[-1].created_at, page[-1].id) if len(rows) > limit and page else None
    if towards is Towards.OLDER:
        page.reverse()
    return page, following
