"""Reading the audit trail, and recording an access action in the caller's transaction.

``AuditStore(session)`` reads ``audit_log`` within one workspace:

- ``page`` — entries matching an ``AuditQuery``, newest first (or oldest first), keyset-paged on
  (``at``, ``id``): the cursor is the last entry's (time, id), so a page never repeats or skips
  an entry however many are appended meanwhile.
- ``batches`` — every matching entry, oldest first, a batch at a time (the exports).
- ``conversation`` — every entry of one conversation in order (its history).

The customer filter matches an entry whose ``customer_id`` is the customer, whose subject is
the customer (exports, erasures, legal holds), or which the identity audit index
(``identity_audit_customer``) links to it (merges, unmerges, links, blocks).  The agent filter
matches an entry about the agent (``agent_id``) or done by the agent (``actor`` ``agent:<id>``).

``record`` appends one access action (``core.audit.AccessAction``) through
``storage.facts.FactLog``, the audit trail's one writer, in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import AuditEntry, AuditQuery
from core.facts import Fact
from core.ids import WorkspaceId
from storage.database import Database
from storage.facts import FactLog
from storage.tables import AgentRow, AuditRow, IdentityAuditCustomerRow
from storage.types import as_utc

__all__ = ["AuditStore", "Cursor", "batches", "record"]

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
AUDCUST = IdentityAuditCustomerRow.__table__  # type: ignore[attr-defined]
AGENT = AgentRow.__table__  # type: ignore[attr-defined]

Cursor = tuple[datetime, uuid.UUID]


async def record(
    session: AsyncSession,
    action: str,
    *,
    workspace_id: uuid.UUID | None,
    at: datetime,
    actor: str,
    subject_type: str,
    subject_id: str,
    agent_id: uuid.UUID | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one audited action that is not a step of a conversation (``workspace_id`` None: an
    action no workspace could be told, such as a refused sign-in of an unknown email)."""
    fact = Fact(
        action=str(action),
        at=at,
        actor=actor[:200],
        workspace_id=workspace_id,  # type: ignore[arg-type]  # audit_log.workspace_id is nullable
        agent_id=agent_id,
        details=dict(details or {}),
        subject_type=subject_type,
        subject_id=subject_id[:100],
    )
    await FactLog(session).append([fact])


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _entry(r: Any) -> AuditEntry:
    return AuditEntry(
        id=r.id,
        at=as_utc(r.at),
        actor=r.actor,
        action=r.action,
        subject_type=r.subject_type,
        subject_id=r.subject_id,
        details=dict(r.details or {}),
        conversation_id=r.conversation_id,
        customer_id=r.customer_id,
        agent_id=r.agent_id,
        campaign_id=r.campaign_id,
        queue_id=r.queue_id,
    )


class AuditStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _where(self, ws: WorkspaceId | None, q: AuditQuery) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = [] if ws is None else [AUDIT.c.workspace_id == ws]
        if q.conversation_id is not None:
            where.append(AUDIT.c.conversation_id == q.conversation_id)
        if q.customer_id is not None:
            indexed = sa.select(AUDCUST.c.audit_id).where(AUDCUST.c.customer_id == q.customer_id)
            if ws is not None:
                indexed = indexed.where(AUDCUST.c.workspace_id == ws)
            where.append(
                sa.or_(
                    AUDIT.c.customer_id == q.customer_id,
                    sa.and_(AUDIT.c.subject_type == "customer", AUDIT.c.subject_id == str(q.customer_id)),
                    AUDIT.c.id.in_(indexed),
                )
            )
        if q.agent_id is not None:
            where.append(sa.or_(AUDIT.c.agent_id == q.agent_id, AUDIT.c.actor == f"agent:{q.agent_id}"))
        if q.actions or q.prefixes:
            names: list[sa.ColumnElement[bool]] = []
            if q.actions:
                names.append(AUDIT.c.action.in_(q.actions))
            names += [AUDIT.c.action.like(f"{_escape_like(p)}%", escape="\\") for p in q.prefixes]
            where.append(sa.or_(*names))
        if q.since is not None:
            where.append(AUDIT.c.at >= q.since)
        if q.until is not None:
            where.append(AUDIT.c.at < q.until)
        return where

    async def page(
        self,
        ws: WorkspaceId | None,
        q: AuditQuery,
        *,
        limit: int,
        cursor: Cursor | None = None,
        newest_first: bool = True,
    ) -> tuple[list[AuditEntry], Cursor | None]:
        """Up to ``limit`` entries beyond ``cursor`` (strictly), and the next page's cursor (None
        on the last page).  ``ws`` None: every workspace's, and those of none (the CLI only)."""
        at, ident = AUDIT.c.at, AUDIT.c.id
        query = sa.select(AUDIT).where(*self._where(ws, q))
        if newest_first:
            if cursor is not None:
                query = query.where(sa.or_(at < cursor[0], sa.and_(at == cursor[0], ident < cursor[1])))
            query = query.order_by(at.desc(), ident.desc())
        else:
            if cursor is not None:
                query = query.where(sa.or_(at > cursor[0], sa.and_(at == cursor[0], ident > cursor[1])))
            query = query.order_by(at, ident)
        rows = (await self.session.execute(query.limit(limit + 1))).all()
        page = [_entry(r) for r in rows[:limit]]
        following = (page[-1].at, page[-1].id) if len(rows) > limit and page else None
        return page, following

    async def conversation(self, ws: WorkspaceId, conversation_id: uuid.UUID) -> list[AuditEntry]:
        """Every entry of one conversation, oldest first."""
        rows = await self.session.execute(
            sa.select(AUDIT)
            .where(AUDIT.c.workspace_id == ws, AUDIT.c.conversation_id == conversation_id)
            .order_by(AUDIT.c.at, AUDIT.c.id)
        )
        return [_entry(r) for r in rows]

    async def agent_names(self, ws: WorkspaceId, agent_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The names of these agents of the workspace (an id of no agent of it is left out)."""
        wanted = sorted(set(agent_ids))
        if not wanted:
            return {}
        rows = await self.session.execute(
            sa.select(AGENT.c.id, AGENT.c.name).where(AGENT.c.workspace_id == ws, AGENT.c.id.in_(wanted))
        )
        return {r.id: r.name for r in rows}


async def batches(
    database: Database, ws: WorkspaceId | None, q: AuditQuery, *, size: int = 500
) -> AsyncIterator[list[AuditEntry]]:
    """Every entry matching ``q``, oldest first, ``size`` at a time — each batch read in its own
    short session, so a long export holds no transaction open while the client reads."""
    cursor: Cursor | None = None
    while True:
        async with database.session() as session:
            page, cursor = await AuditStore(session).page(
                ws, q, limit=size, cursor=cursor, newest_first=False
            )
        if page:
            yield page
        if cursor is None:
            return
