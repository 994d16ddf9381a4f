"""Surveys in the database: when one is due, and where a customer's surveys stand.

An agent's close sets ``conversation.survey_due_at`` (indexed) when the campaign's survey is
due on its channel; a sender claims it by clearing the column (a conditional update: two
servers never send one twice).  Whether a survey went out, was answered and commented is read
from the conversation's report row (``conversation_report.survey_*``), which the facts
``survey.sent``, ``survey.answered`` and ``survey.commented`` fold into.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import AgentId, CampaignId, ChannelAccountId, ConversationId, CustomerId, QueueId, WorkspaceId
from storage.tables import ConversationReportRow, ConversationRow
from storage.types import as_utc

__all__ = ["DueSurvey", "SurveyState", "SurveyStore"]

CONV = ConversationRow.__table__  # type: ignore[attr-defined]
REPORT = ConversationReportRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class DueSurvey:
    workspace_id: WorkspaceId
    conversation_id: ConversationId
    due_at: datetime


@dataclass(frozen=True, slots=True)
class SurveyState:
    """A survey that went out about one (closed) conversation."""

    conversation_id: ConversationId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    customer_id: CustomerId
    kind: str  # csat | nps
    sent_at: datetime
    answered_at: datetime | None
    commented: bool
    channel: str  # the conversation's channel, which the survey went out on
    channel_account_id: ChannelAccountId | None
    agent_id: AgentId | None
    queue_id: QueueId | None


def _state(row: sa.Row[tuple[object, ...]]) -> SurveyState:
    m = row._mapping
    return SurveyState(
        conversation_id=ConversationId(m["conversation_id"]),
        workspace_id=WorkspaceId(m["workspace_id"]),
        campaign_id=CampaignId(m["campaign_id"]) if m["campaign_id"] else None,
        customer_id=CustomerId(m["customer_id"]),
        kind=str(m["survey_kind"]),
        sent_at=as_utc(m["survey_sent_at"]),
        answered_at=as_utc(m["survey_answered_at"]) if m["survey_answered_at"] else None,
        commented=m["survey_comment"] is not None,
        channel=str(m["channel"]),
        channel_account_id=ChannelAccountId(m["channel_account_id"]) if m["channel_account_id"] else None,
        agent_id=AgentId(m["agent_id"]) if m["agent_id"] else None,
        queue_id=QueueId(m["queue_id"]) if m["queue_id"] else None,
    )


def _states() -> sa.Select[tuple[object, ...]]:
    return (
        sa.select(
            REPORT.c.conversation_id,
            REPORT.c.workspace_id,
            REPORT.c.campaign_id,
            REPORT.c.customer_id,
            REPORT.c.survey_kind,
            REPORT.c.survey_sent_at,
            REPORT.c.survey_answered_at,
            REPORT.c.survey_comment,
            CONV.c.channel,
            CONV.c.channel_account_id,
            CONV.c.agent_id,
            CONV.c.queue_id,
        )
        .join(CONV, CONV.c.id == REPORT.c.conversation_id)
        .where(REPORT.c.survey_sent_at.is_not(None), REPORT.c.survey_kind.is_not(None))
    )


class SurveyStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def schedule(self, conversation_id: ConversationId, due_at: datetime) -> None:
        """The closed conversation's survey is due at ``due_at``."""
        await self.session.execute(
            sa.update(CONV).where(CONV.c.id == conversation_id).values(survey_due_at=due_at)
        )

    async def due(self, now: datetime, *, limit: int = 100) -> list[DueSurvey]:
        rows = await self.session.execute(
            sa.select(CONV.c.workspace_id, CONV.c.id, CONV.c.survey_due_at)
            .where(CONV.c.survey_due_at.is_not(None), CONV.c.survey_due_at <= now)
            .order_by(CONV.c.survey_due_at, CONV.c.id)
            .limit(limit)
        )
        return [
            DueSurvey(WorkspaceId(r.workspace_id), ConversationId(r.id), as_utc(r.survey_due_at))
            for r in rows
        ]

    async def claim(self, conversation_id: ConversationId) -> bool:
        """Take a due survey (False: another sender took it)."""
        result = await self.session.execute(
            sa.update(CONV)
            .where(CONV.c.id == conversation_id, CONV.c.survey_due_at.is_not(None))
            .values(survey_due_at=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def of_conversation(
        self, workspace_id: WorkspaceId, conversation_id: uuid.UUID
    ) -> SurveyState | None:
        """The survey sent about ``conversation_id`` (None: none went out)."""
        row = (
            await self.session.execute(
                _states().where(
                    REPORT.c.conversation_id == conversation_id, REPORT.c.workspace_id == workspace_id
                )
            )
        ).first()
        return _state(row) if row is not None else None

    async def open_for(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId | None,
        customer_id: CustomerId,
        *,
        sent_since: datetime,
        answered_since: datetime,
    ) -> Sequence[SurveyState]:
        """The customer's surveys in the campaign still taking a message, latest sent first:
        unanswered ones sent since ``sent_since``, and answered ones without a comment,
        answered since ``answered_since``."""
        campaign = (
            REPORT.c.campaign_id.is_(None) if campaign_id is None else REPORT.c.campaign_id == campaign_id
        )
        rows = await self.session.execute(
            _states()
            .where(
                REPORT.c.customer_id == customer_id,
                REPORT.c.workspace_id == workspace_id,
                campaign,
                REPORT.c.survey_sent_at >= sent_since,
                sa.or_(
                    REPORT.c.survey_answered_at.is_(None),
                    sa.and_(
                        REPORT.c.survey_answered_at >= answered_since,
                        REPORT.c.survey_comment.is_(None),
                    ),
                ),
            )
            .order_by(REPORT.c.survey_sent_at.desc(), REPORT.c.conversation_id)
            .limit(5)
        )
        return [_state(r) for r in rows]
