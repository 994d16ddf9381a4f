"""Retention in the database: find what a campaign's retention makes due, purge it in batches.

What is purged and what is kept is decided in ``core.campaign.retention``.  Every method here
works in the caller's transaction and touches at most ``limit`` rows, so the retention job
(``centralita.retention``) runs one short transaction per batch and never holds a long lock.

Lock order (``docs/architecture.md``): a batch locks one kind of row, in id order — conversations
(the disposition note), or messages (their content), or messages and then the raw deliveries
they point at.  It never locks a workspace's router epoch, an offer, an assignment or an agent.
On PostgreSQL the rows are picked with ``FOR UPDATE SKIP LOCKED``: a row another transaction
holds (a late delivery status, a follow-up being opened) is left for the next batch instead of
waited for.

A raw delivery belongs to the campaign of the conversations its messages joined.  One no message
points at (a delivery status, a body that could not be parsed) is judged by its workspace: the
shortest ``raw_deliveries_days`` among the workspace's campaigns (``orphan_raw``).  A delivery
addressed to none of our channel accounts has no workspace, belongs to no campaign and is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.campaign.retention import Retention, retention_of
from core.facts import WorkAction
from core.ids import CampaignId, WorkspaceId
from core.states import ConversationStatus, DeliveryState
from storage.media import MediaRows
from storage.tables import (
    AuditRow,
    CampaignRow,
    ConversationReportRow,
    ConversationRow,
    MessageRow,
    RawDeliveryRow,
    WorkspaceRow,
)

__all__ = ["CampaignRetention", "RetentionStore"]

RAW = RawDeliveryRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
REPORT = ConversationReportRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]

# An outbound reply still in the outbox keeps its text until it is sent or given up.
_IN_OUTBOX = (DeliveryState.QUEUED.value, DeliveryState.SENDING.value)


@dataclass(frozen=True)
class CampaignRetention:
    """A campaign's retention as last applied."""

    workspace_id: WorkspaceId
    workspace: str
    campaign_id: CampaignId
    campaign: str
    retention: Retention


def _closed_before(cutoff: datetime) -> Any:
    return sa.and_(
        CONV.c.status == ConversationStatus.CLOSED.value,
        CONV.c.closed_at.is_not(None),
        CONV.c.closed_at < cutoff,
    )


def _has_content() -> Any:
    return sa.or_(MSG.c.text.is_not(None), sa.cast(MSG.c.payload, sa.String) != "{}")


def _not_in_outbox() -> Any:
    return sa.or_(MSG.c.delivery_state.is_(None), MSG.c.delivery_state.not_in(_IN_OUTBOX))


def _unreferenced() -> Any:
    return ~sa.exists().where(MSG.c.raw_delivery_id == RAW.c.id)


class RetentionStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def _locking(self, query: Any, of: Any) -> Any:
        return query.with_for_update(skip_locked=True, of=of) if self._postgres else query

    async def campaigns(self, workspace: str | None = None) -> list[CampaignRetention]:
        """Every campaign (of the workspace with slug ``workspace``), with its retention."""
        query = (
            sa.select(
                CAMPAIGN.c.id, CAMPAIGN.c.workspace_id, CAMPAIGN.c.name, CAMPAIGN.c.manifest, WORKSPACE.c.slug
            )
            .join(WORKSPACE, WORKSPACE.c.id == CAMPAIGN.c.workspace_id)
            .order_by(WORKSPACE.c.slug, CAMPAIGN.c.name)
        )
        if workspace is not None:
            query = query.where(WORKSPACE.c.slug == workspace)
        rows = (await self.session.execute(query)).all()
        return [
            CampaignRetention(
                WorkspaceId(row.workspace_id),
                row.slug,
                CampaignId(row.id),
                row.name,
                retention_of(row.manifest),
            )
            for row in rows
        ]

    # -- raw deliveries of a campaign's conversations ------------------------------------------

    def _raw_links(
        self, campaign_id: CampaignId, received_before: datetime | None, closed_before: datetime | None
    ) -> Any:
        """(message id, raw delivery id) of the campaign's messages whose raw body is due: of a
        closed conversation, and received before ``received_before`` or closed before
        ``closed_before``.  An open conversation keeps its raw bodies while it is worked on."""
        due = []
        if received_before is not None:
            due.append(RAW.c.received_at < received_before)
        if closed_before is not None:
            due.append(_closed_before(closed_before))
        return (
            sa.select(MSG.c.id, MSG.c.raw_delivery_id)
            .join(CONV, CONV.c.id == MSG.c.conversation_id)
            .join(RAW, RAW.c.id == MSG.c.raw_delivery_id)
            .where(
                CONV.c.campaign_id == campaign_id,
                CONV.c.status == ConversationStatus.CLOSED.value,  # an open one is never touched
                MSG.c.raw_delivery_id.is_not(None),
                sa.or_(*due),
            )
        )

    async def count_raw(
        self, campaign_id: CampaignId, received_before: datetime | None, closed_before: datetime | None
    ) -> int:
        """How many raw deliveries ``purge_raw`` would delete (dry run)."""
        if received_before is None and closed_before is None:
            return 0
        links = self._raw_links(campaign_id, received_before, closed_before).subquery()
        query = sa.select(sa.func.count(sa.distinct(links.c.raw_delivery_id)))
        return int((await self.session.execute(query)).scalar_one())

    async def purge_raw(
        self,
        campaign_id: CampaignId,
        received_before: datetime | None,
        closed_before: datetime | None,
        *,
        limit: int,
    ) -> tuple[int, int]:
        """Delete the raw bodies of up to ``limit`` of the campaign's due messages: clear the
        messages' pointers (locked by id), then delete the raw deliveries no message points at
        any more.  Returns (messages looked at, raw deliveries deleted); 0 messages: none due."""
        if received_before is None and closed_before is None:
            return 0, 0
        query = self._raw_links(campaign_id, received_before, closed_before).order_by(MSG.c.id).limit(limit)
        links = (await self.session.execute(self._locking(query, MSG))).all()
        if not links:
            return 0, 0
        message_ids = [row.id for row in links]
        raw_ids = sorted({row.raw_delivery_id for row in links})
        await self.session.execute(
            sa.update(MSG).where(MSG.c.id.in_(message_ids)).values(raw_delivery_id=None)
        )
        return len(links), await self._delete_raw(raw_ids)

    async def _delete_raw(self, raw_ids: Sequence[uuid.UUID]) -> int:
        # A body another campaign's message still points at (one webhook for two accounts) stays
        # until that campaign's retention lets it go.
        result = await self.session.execute(sa.delete(RAW).where(RAW.c.id.in_(raw_ids), _unreferenced()))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- raw deliveries no message points at -----------------------------------------------

    def _orphans(self, workspace_id: WorkspaceId, received_before: datetime) -> Any:
        return sa.select(RAW.c.id).where(
            RAW.c.workspace_id == workspace_id, RAW.c.received_at < received_before, _unreferenced()
        )

    async def count_orphan_raw(self, workspace_id: WorkspaceId, received_before: datetime) -> int:
        subquery = self._orphans(workspace_id, received_before).subquery()
        return int(
            (await self.session.execute(sa.select(sa.func.count()).select_from(subquery))).scalar_one()
        )

    async def purge_orphan_raw(
        self, workspace_id: WorkspaceId, received_before: datetime, *, limit: int
    ) -> int:
        """Delete up to ``limit`` of the workspace's raw deliveries that no message points at,
        received before ``received_before``."""
        query = self._orphans(workspace_id, received_before).order_by(RAW.c.id).limit(limit)
        ids = list((await self.session.execute(self._locking(query, RAW))).scalars())
        return await self._delete_raw(ids) if ids else 0

    # -- content of closed conversations ---------------------------------------------------

    def _contents(self, campaign_id: CampaignId, closed_before: datetime) -> Any:
        return (
            sa.select(MSG.c.id)
            .join(CONV, CONV.c.id == MSG.c.conversation_id)
            .where(
                CONV.c.campaign_id == campaign_id,
                _closed_before(closed_before),
                _has_content(),
                _not_in_outbox(),
            )
        )

    async def count_contents(self, campaign_id: CampaignId, closed_before: datetime) -> int:
        subquery = self._contents(campaign_id, closed_before).subquery()
        return int(
            (await self.session.execute(sa.select(sa.func.count()).select_from(subquery))).scalar_one()
        )

    async def purge_contents(self, campaign_id: CampaignId, closed_before: datetime, *, limit: int) -> int:
        """Clear text and payload of up to ``limit`` messages of the campaign's conversations
        closed before ``closed_before`` (rows, kinds, directions and times stay)."""
        query = self._contents(campaign_id, closed_before).order_by(MSG.c.id).limit(limit)
        ids = list((await self.session.execute(self._locking(query, MSG))).scalars())
        if not ids:
            return 0
        await self.session.execute(sa.update(MSG).where(MSG.c.id.in_(ids)).values(text=None, payload={}))
        await MediaRows(self.session).erase_of_messages(ids)  # the media worker deletes the files
        return len(ids)

    # -- the customer's words in the reports and the trail ------------------------------------

    def _report_texts(self, campaign_id: CampaignId, closed_before: datetime) -> Any:
        return (
            sa.select(REPORT.c.conversation_id)
            .join(CONV, CONV.c.id == REPORT.c.conversation_id)
            .where(
                CONV.c.campaign_id == campaign_id,
                _closed_before(closed_before),
                sa.or_(REPORT.c.first_text.is_not(None), REPORT.c.survey_comment.is_not(None)),
            )
        )

    async def count_report_texts(self, campaign_id: CampaignId, closed_before: datetime) -> int:
        subquery = self._report_texts(campaign_id, closed_before).subquery()
        return int(
            (await self.session.execute(sa.select(sa.func.count()).select_from(subquery))).scalar_one()
        )

    async def purge_report_texts(
        self, campaign_id: CampaignId, closed_before: datetime, *, limit: int
    ) -> int:
        """Clear what customers wrote from the report rows of up to ``limit`` conversations
        closed before ``closed_before`` (the first message's words, the survey's comment; the
        figures stay), and the same words and the disposition's note from their audit entries
        (the entries stay: only ``details`` may be redacted)."""
        query = self._report_texts(campaign_id, closed_before).order_by(REPORT.c.conversation_id).limit(limit)
        ids = list((await self.session.execute(self._locking(query, REPORT))).scalars())
        if not ids:
            return 0
        await self.session.execute(
            sa.update(REPORT)
            .where(REPORT.c.conversation_id.in_(ids))
            .values(first_text=None, survey_comment=None)
        )
        rows = (
            await self.session.execute(
                sa.select(AUDIT.c.id, AUDIT.c.action, AUDIT.c.details).where(
                    AUDIT.c.conversation_id.in_(ids),
                    AUDIT.c.action.in_(
                        [WorkAction.SURVEY_ANSWERED, WorkAction.SURVEY_COMMENTED, WorkAction.CLOSED]
                    ),
                )
            )
        ).all()
        redacted = []
        for row in rows:
            details = dict(row.details or {})
            if details.get("comment") is not None:
                details["comment"] = None
            disposition = details.get("disposition")
            if isinstance(disposition, dict) and "note" in disposition:
                details["disposition"] = {k: v for k, v in disposition.items() if k != "note"}
            if details != (row.details or {}):
                redacted.append({"aid": row.id, "det": details})
        if redacted:
            await self.session.execute(
                sa.update(AUDIT)
                .where(AUDIT.c.id == sa.bindparam("aid"))
                .values(details=sa.bindparam("det", type_=AUDIT.c.details.type)),
                redacted,
            )
        return len(ids)

    def _notes(self, campaign_id: CampaignId, closed_before: datetime) -> Any:
        return sa.select(CONV.c.id).where(
            CONV.c.campaign_id == campaign_id,
            _closed_before(closed_before),
            CONV.c.disposition["note"].as_string().is_not(None),
        )

    async def count_notes(self, campaign_id: CampaignId, closed_before: datetime) -> int:
        subquery = self._notes(campaign_id, closed_before).subquery()
        return int(
            (await self.session.execute(sa.select(sa.func.count()).select_from(subquery))).scalar_one()
        )

    async def purge_notes(self, campaign_id: CampaignId, closed_before: datetime, *, limit: int) -> int:
        """Drop the free-text note from the disposition of up to ``limit`` conversations closed
        before ``closed_before``; the code, date and amount stay for reports."""
        query = self._notes(campaign_id, closed_before).order_by(CONV.c.id).limit(limit)  # lock order
        ids = list((await self.session.execute(self._locking(query, CONV))).scalars())
        if not ids:
            return 0
        if self._postgres:  # jsonb - 'note'
            without = CONV.c.disposition.op("-", return_type=CONV.c.disposition.type)(
                sa.cast(sa.literal("note"), sa.Text)
            )
        else:
            without = sa.func.json_remove(CONV.c.disposition, "$.note")
        await self.session.execute(sa.update(CONV).where(CONV.c.id.in_(ids)).values(disposition=without))
        return len(ids)
