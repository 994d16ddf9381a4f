"""What the reports read: report rows, traffic counters, queues' SLAs and campaigns' zones.

Lean reads for ranges of a month and more: only the columns a report needs, plain tuples (no ORM
objects), times as epoch seconds (PostgreSQL converts them: ``date_part('epoch', …)`` is a
double).  Conversations are selected by ``(workspace_id, campaign_id, opened_at)`` — the index
``ix_conversation_report_campaign_opened`` — and the earlier conversations of their customers
(repeat contacts) by ``(customer_id, opened_at)``, ``ix_conversation_report_customer_opened``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidInput, NotFound
from core.reports import QueueSla, ReportConversation, ReportRange, TrafficCount
from storage.tables import (
    AgentRow,
    CampaignRow,
    ConversationReportRow,
    QueueRow,
    TrafficHourRow,
    WorkspaceRow,
)

__all__ = [
    "COLUMNS",
    "TIME_COLUMNS",
    "CampaignInfo",
    "ReportContext",
    "ReportStore",
    "sla_of",
    "workspace_of",
]

REPORT = ConversationReportRow.__table__  # type: ignore[attr-defined]
TRAFFIC = TrafficHourRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]
AGENT = AgentRow.__table__  # type: ignore[attr-defined]

TIME_COLUMNS: Final = frozenset(
    {
        "opened_at",
        "enqueued_at",
        "assigned_at",
        "first_response_at",
        "closed_at",
        "reopened_at",
        "survey_sent_at",
    }
)

_BASE = ("opened_at", "campaign_id", "channel", "queue_id", "answered_queue_id", "agent_id")
COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "measures": (
        *_BASE,
        "customer_id",
        "enqueued_at",
        "assigned_at",
        "waited_s",
        "first_response_at",
        "closed_at",
        "reopened_at",
        "transfers",
        "requeues",
        "active_s",
    ),
    "dispositions": (
        *_BASE,
        "disposition_code",
        "disposition_amount",
        "disposition_date",
        "promise_outcome",
        "paid_amount",
    ),
    "surveys": (*_BASE, "survey_kind", "survey_sent_at", "survey_score"),
    "topics": (*_BASE, "triage_option", "disposition_code", "first_text"),
}


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    id: uuid.UUID
    name: str
    timezone: str
    dispositions: Mapping[str, str] = field(default_factory=dict)  # code → label, as applied


def _disposition_labels(manifest: Any) -> dict[str, str]:
    raw = manifest.get("dispositions") if isinstance(manifest, Mapping) else None
    if not isinstance(raw, list):
        return {}
    return {
        str(d["code"]): str(d.get("label") or d["code"])
        for d in raw
        if isinstance(d, Mapping) and d.get("code")
    }


@dataclass(frozen=True, slots=True)
class ReportContext:
    """The workspace's campaigns, its queues' SLAs and the names of campaigns, queues, agents."""

    campaigns: Sequence[CampaignInfo]
    slas: Mapping[uuid.UUID, QueueSla]
    names: Mapping[uuid.UUID, str]


def sla_of(config: Mapping[str, Any]) -> QueueSla | None:
    """A queue's SLA from its ``config`` (``sla.answer_within_s``, ``sla.target_pct``)."""
    sla = config.get("sla")
    if not isinstance(sla, Mapping) or sla.get("answer_within_s") is None:
        return None
    target = sla.get("target_pct")
    return QueueSla(float(sla["answer_within_s"]), float(target) if target is not None else None)


def _epoch(value: datetime | None) -> float | None:
    return value.replace(tzinfo=value.tzinfo or UTC).timestamp() if value is not None else None


class ReportStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        bind = session.bind
        self.postgres = bind is not None and bind.dialect.name == "postgresql"

    def _time(self, column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[Any]:
        if self.postgres:
            return sa.func.date_part("epoch", column).label(name)
        return column.label(name)

    def _columns(self, names: Sequence[str]) -> list[sa.ColumnElement[Any]]:
        return [self._time(REPORT.c[n], n) if n in TIME_COLUMNS else REPORT.c[n] for n in names]

    async def context(self, workspace_id: uuid.UUID) -> ReportContext:
        campaigns = (
            await self.session.execute(
                sa.select(CAMPAIGN.c.id, CAMPAIGN.c.name, CAMPAIGN.c.timezone, CAMPAIGN.c.manifest)
                .where(CAMPAIGN.c.workspace_id == workspace_id)
                .order_by(CAMPAIGN.c.name)
            )
        ).all()
        queues = (
            await self.session.execute(
                sa.select(QUEUE.c.id, QUEUE.c.name, QUEUE.c.config).where(
                    QUEUE.c.workspace_id == workspace_id
                )
            )
        ).all()
        agents = (
            await self.session.execute(
                sa.select(AGENT.c.id, AGENT.c.name).where(AGENT.c.workspace_id == workspace_id)
            )
        ).all()
        slas = {}
        for q in queues:
            sla = sla_of(q.config or {})
            if sla is not None:
                slas[q.id] = sla
        names: dict[uuid.UUID, str] = {c.id: c.name for c in campaigns}
        names.update({q.id: q.name for q in queues})
        names.update({a.id: a.name for a in agents})
        return ReportContext(
            campaigns=[
                CampaignInfo(c.id, c.name, c.timezone or "UTC", _disposition_labels(c.manifest))
                for c in campaigns
            ],
            slas=slas,
            names=names,
        )

    def _where(
        self, workspace_id: uuid.UUID, campaign_ids: Sequence[uuid.UUID] | None, window: ReportRange
    ) -> list[sa.ColumnElement[bool]]:
        start, end = datetime.fromtimestamp(window.start, UTC), datetime.fromtimestamp(window.end, UTC)
        where = [REPORT.c.workspace_id == workspace_id, REPORT.c.opened_at >= start, REPORT.c.opened_at < end]
        if campaign_ids is not None:
            where.append(REPORT.c.campaign_id.in_(list(campaign_ids)))
        return where

    async def conversations(
        self,
        workspace_id: uuid.UUID,
        campaign_ids: Sequence[uuid.UUID] | None,
        window: ReportRange,
        columns: Sequence[str],
    ) -> list[ReportConversation]:
        """The report rows opened in ``window`` (of these campaigns; ``None``: all), with
        ``columns`` read and the rest left at their defaults."""
        names = tuple(columns)
        result = await self.session.execute(
            sa.select(*self._columns(names)).where(*self._where(workspace_id, campaign_ids, window))
        )
        times = [i for i, n in enumerate(names) if n in TIME_COLUMNS]
        out = []
        make = ReportConversation
        for row in result:
            values = list(row)
            if not self.postgres:
                for i in times:
                    values[i] = _epoch(values[i])
            out.append(make(**dict(zip(names, values, strict=True))))
        return out

    async def history(
        self,
        workspace_id: uuid.UUID,
        campaign_ids: Sequence[uuid.UUID] | None,
        window: ReportRange,
        before_s: float,
    ) -> list[tuple[Any, float]]:
        """(customer, opened_at) of every conversation of the workspace, on any campaign, opened
        from ``before_s`` before the range to its end by a customer with one in the range."""
        earlier = ReportRange(window.start - before_s, window.end)
        customers = sa.select(REPORT.c.customer_id).where(*self._where(workspace_id, campaign_ids, window))
        start = datetime.fromtimestamp(earlier.start, UTC)
        end = datetime.fromtimestamp(earlier.end, UTC)
        result = await self.session.execute(
            sa.select(REPORT.c.customer_id, self._time(REPORT.c.opened_at, "opened_at")).where(
                REPORT.c.workspace_id == workspace_id,
                REPORT.c.customer_id.in_(customers),
                REPORT.c.opened_at >= start,
                REPORT.c.opened_at < end,
            )
        )
        if self.postgres:
            return [(c, float(t)) for c, t in result]
        return [(c, _epoch(t) or 0.0) for c, t in result]

    async def traffic(
        self, workspace_id: uuid.UUID, campaign_ids: Sequence[uuid.UUID] | None, window: ReportRange
    ) -> list[TrafficCount]:
        """The hourly counters whose hour starts in ``window``."""
        start, end = datetime.fromtimestamp(window.start, UTC), datetime.fromtimestamp(window.end, UTC)
        where = [TRAFFIC.c.workspace_id == workspace_id, TRAFFIC.c.hour >= start, TRAFFIC.c.hour < end]
        if campaign_ids is not None:
            where.append(TRAFFIC.c.campaign_id.in_(list(campaign_ids)))
        hour = sa.func.date_part("epoch", TRAFFIC.c.hour) if self.postgres else TRAFFIC.c.hour
        result = await self.session.execute(
            sa.select(
                TRAFFIC.c.campaign_id, TRAFFIC.c.channel, TRAFFIC.c.direction, hour, TRAFFIC.c.messages
            ).where(*where)
        )
        return [
            TrafficCount(c, ch, d, float(h) if self.postgres else (_epoch(h) or 0.0), int(m))
            for c, ch, d, h, m in result
        ]


async def workspace_of(session: AsyncSession, campaign: str, workspace: str | None = None) -> uuid.UUID:
    """The workspace of the campaign named ``campaign`` (``workspace``: its slug, needed when
    several workspaces have a campaign of that name)."""
    ws = WorkspaceRow.__table__  # type: ignore[attr-defined]
    stmt = sa.select(ws.c.id, ws.c.slug).join(CAMPAIGN, CAMPAIGN.c.workspace_id == ws.c.id)
    stmt = stmt.where(CAMPAIGN.c.name == campaign)
    if workspace is not None:
        stmt = stmt.where(ws.c.slug == workspace)
    found = (await session.execute(stmt.order_by(ws.c.slug))).all()
    if not found:
        raise NotFound(f"no campaign named {campaign!r}", field="campaign")
    if len(found) > 1:
        slugs = ", ".join(r.slug for r in found)
        raise InvalidInput(
            f"campaign {campaign!r} exists in several workspaces ({slugs}): pass --workspace",
            field="workspace",
        )
    return uuid.UUID(str(found[0].id))
