"""Storage for the agents' and supervisors' work: conversations as they see them, the customer's
timeline, notes, closing with a disposition, scheduled follow-ups, agents with their load,
queue counters and the router's stored decisions.

``WorkStore`` works inside the caller's session/transaction and answers with the frozen records
below, never with ORM rows.  Every read is scoped to a workspace: an id of another workspace
is not found, exactly like an id that does not exist.  Times come back aware UTC
(``storage.types``).

Follow-ups live on the closed conversation: ``follow_up_at`` is the due time (indexed) and
``disposition["follow_up"]`` the rest (queue, template, and once done ``done_at`` and the
conversation that took it).  A scheduler claims a due follow-up by clearing ``follow_up_at``
with a conditional update, so two servers never open it twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.facts import Fact, WorkAction
from core.ids import (
    AgentId,
    CampaignId,
    ChannelAccountId,
    ConversationId,
    CustomerId,
    IdentityId,
    MessageId,
    OfferId,
    QueueId,
    WorkspaceId,
    new_id,
)
from core.records import TimelineEntry
from core.states import ConversationStatus, MessageDirection, MessageKind, OfferStatus, Presence
from core.webhooks import followup_due
from storage.facts import FactLog
from storage.tables import (
    AgentRow,
    CampaignRow,
    ConversationRow,
    CustomerRow,
    MessageRow,
    OfferRow,
    QueueRow,
    RoutingDecisionRow,
    WorkspaceRow,
)
from storage.timeline import Towards, timeline_page
from storage.types import as_utc

__all__ = [
    "AgentRecord",
    "AnsweredConversation",
    "DueFollowUp",
    "FollowUpOpened",
    "PendingOffer",
    "QueueLive",
    "QueueRecord",
    "RoutingDecisionRecord",
    "WorkConversation",
    "WorkStore",
]

CONV = ConversationRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
OFFER = OfferRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]
AGENT = AgentRow.__table__  # type: ignore[attr-defined]
CUSTOMER = CustomerRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
DECISION = RoutingDecisionRow.__table__  # type: ignore[attr-defined]
WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]

Cursor = tuple[datetime, uuid.UUID]


# ------------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class PendingOffer:
    offer_id: OfferId
    agent_id: AgentId
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WorkConversation:
    """A conversation as the work API shows it."""

    id: ConversationId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    customer_id: CustomerId
    customer_name: str | None
    queue_id: QueueId | None
    queue_name: str | None
    agent_id: AgentId | None
    status: str
    channel: str
    channel_account_id: ChannelAccountId | None
    identifier_id: IdentityId | None
    priority: int
    opened_at: datetime
    enqueued_at: datetime | None
    assigned_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    last_customer_message_at: datetime | None
    follow_up_at: datetime | None
    disposition: dict[str, Any] | None
    offers: tuple[PendingOffer, ...] = ()

    def offered_to(self, agent_id: AgentId) -> PendingOffer | None:
        return next((o for o in self.offers if o.agent_id == agent_id), None)

    def visible_to(self, agent_id: AgentId) -> bool:
        """An agent sees the conversations assigned to them and those offered to them."""
        return self.agent_id == agent_id or self.offered_to(agent_id) is not None


@dataclass(frozen=True, slots=True)
class QueueRecord:
    id: QueueId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    name: str
    priority: int
    config: Mapping[str, Any]
    active: bool
    campaign_timezone: str | None = None


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent with their live load: open conversations per channel and pending offers."""

    id: AgentId
    workspace_id: WorkspaceId
    email: str
    name: str
    role: str
    skills: Mapping[str, int]
    capacity: Mapping[str, int]
    active: bool
    presence: Presence  # as the live router keeps it
    presence_until: datetime | None = None  # end of a wrap-up
    connected: bool = False  # a gateway holds the agent's socket
    load: Mapping[str, int] = field(default_factory=dict)
    pending_offers: int = 0

    @property
    def open_conversations(self) -> int:
        return sum(self.load.values())


@dataclass(frozen=True, slots=True)
class RoutingDecisionRecord:
    id: uuid.UUID
    conversation_id: ConversationId
    decided_at: datetime
    outcome: str
    explanation: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class QueueLive:
    """What is in a queue right now."""

    waiting: int = 0
    offered: int = 0
    oldest_enqueued_at: datetime | None = None
    waiting_channels: frozenset[str] = frozenset()  # the channels of the waiting (not offered) ones


@dataclass(frozen=True, slots=True)
class AnsweredConversation:
    queue_id: QueueId
    enqueued_at: datetime
    assigned_at: datetime


@dataclass(frozen=True, slots=True)
class DueFollowUp:
    """A closed conversation whose scheduled follow-up is due."""

    conversation_id: ConversationId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    customer_id: CustomerId
    channel: str
    channel_account_id: ChannelAccountId | None
    identifier_id: IdentityId | None
    last_customer_message_at: datetime | None
    due_at: datetime
    disposition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FollowUpOpened:
    """A follow-up re-entered routing: in a new conversation, or in the customer's open one."""

    workspace_id: WorkspaceId
    follow_up_of: ConversationId
    conversation_id: ConversationId
    queue_id: QueueId | None
    reopened: bool  # False: a new conversation; True: the customer already had an open one


# ------------------------------------------------------------------------------------ the store


def _conversation_columns() -> list[Any]:
    return [
        CONV,
        CUSTOMER.c.display_name.label("customer_name"),
        QUEUE.c.name.label("queue_name"),
    ]


def _conversation_from(select: Any) -> Any:
    return select.select_from(
        CONV.outerjoin(CUSTOMER, CUSTOMER.c.id == CONV.c.customer_id).outerjoin(
            QUEUE, QUEUE.c.id == CONV.c.queue_id
        )
    )


def _conversation(row: Any, offers: Sequence[PendingOffer]) -> WorkConversation:
    return WorkConversation(
        id=ConversationId(row.id),
        workspace_id=WorkspaceId(row.workspace_id),
        campaign_id=CampaignId(row.campaign_id) if row.campaign_id else None,
        customer_id=CustomerId(row.customer_id),
        customer_name=row.customer_name,
        queue_id=QueueId(row.queue_id) if row.queue_id else None,
        queue_name=row.queue_name,
        agent_id=AgentId(row.agent_id) if row.agent_id else None,
        status=row.status,
        channel=row.channel,
        channel_account_id=ChannelAccountId(row.channel_account_id) if row.channel_account_id else None,
        identifier_id=IdentityId(row.identifier_id) if row.identifier_id else None,
        priority=int(row.priority),
        opened_at=as_utc(row.opened_at),
        enqueued_at=as_utc(row.enqueued_at),
        assigned_at=as_utc(row.assigned_at),
        first_response_at=as_utc(row.first_response_at),
        closed_at=as_utc(row.closed_at),
        last_customer_message_at=as_utc(row.last_customer_message_at),
        follow_up_at=as_utc(row.follow_up_at),
        disposition=dict(row.disposition) if row.disposition is not None else None,
        offers=tuple(offers),
    )


def _queue(row: Any) -> QueueRecord:
    return QueueRecord(
        id=QueueId(row.id),
        workspace_id=WorkspaceId(row.workspace_id),
        campaign_id=CampaignId(row.campaign_id) if row.campaign_id else None,
        name=row.name,
        priority=int(row.priority),
        config=dict(row.config or {}),
        active=bool(row.active),
        campaign_timezone=getattr(row, "campaign_timezone", None),
    )


def _before(created: Any, ident: Any, cursor: Cursor | None) -> Any:
    """Rows strictly older than ``cursor`` in (time, id) order, descending pages."""
    if cursor is None:
        return sa.true()
    at, last_id = cursor
    return sa.or_(created < at, sa.and_(created == at, ident < last_id))


class WorkStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    # ------------------------------------------------------------------ conversations
    async def _pending_offers(
        self, conversation_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[PendingOffer]]:
        ids = list(conversation_ids)
        if not ids:
            return {}
        rows = (
            await self.session.execute(
                sa.select(
                    OFFER.c.id,
                    OFFER.c.conversation_id,
                    OFFER.c.agent_id,
                    OFFER.c.created_at,
                    OFFER.c.expires_at,
                )
                .where(OFFER.c.conversation_id.in_(ids), OFFER.c.status == OfferStatus.OFFERED)
                .order_by(OFFER.c.created_at)
            )
        ).all()
        out: dict[uuid.UUID, list[PendingOffer]] = {}
        for r in rows:
            out.setdefault(r.conversation_id, []).append(
                PendingOffer(
                    OfferId(r.id),
                    AgentId(r.agent_id),
                    as_utc(r.created_at),
                    as_utc(r.expires_at),
                )
            )
        return out

    async def conversation(self, ws: WorkspaceId, conversation_id: uuid.UUID) -> WorkConversation | None:
        row = (
            await self.session.execute(
                _conversation_from(sa.select(*_conversation_columns())).where(
                    CONV.c.workspace_id == ws, CONV.c.id == conversation_id
                )
            )
        ).first()
        if row is None:
            return None
        offers = await self._pending_offers([row.id])
        return _conversation(row, offers.get(row.id, []))

    async def conversations(
        self,
        ws: WorkspaceId,
        *,
        visible_to: AgentId | None = None,
        status: str | None = None,
        queue_id: uuid.UUID | None = None,
        agent_id: uuid.UUID | None = None,
        channel: str | None = None,
        entered_before: datetime | None = None,
        limit: int = 50,
        before: Cursor | None = None,
    ) -> tuple[list[WorkConversation], Cursor | None]:
        """Newest first by ``opened_at``.  ``visible_to``: only what that agent may see.
        ``entered_before``: only those that entered their queue before it (waiting longer)."""
        query = _conversation_from(sa.select(*_conversation_columns())).where(CONV.c.workspace_id == ws)
        if visible_to is not None:
            offered = sa.select(OFFER.c.conversation_id).where(
                OFFER.c.workspace_id == ws,
                OFFER.c.agent_id == visible_to,
                OFFER.c.status == OfferStatus.OFFERED,
            )
            query = query.where(sa.or_(CONV.c.agent_id == visible_to, CONV.c.id.in_(offered)))
        if status is not None:
            query = query.where(CONV.c.status == status)
        if queue_id is not None:
            query = query.where(CONV.c.queue_id == queue_id)
        if agent_id is not None:
            query = query.where(CONV.c.agent_id == agent_id)
        if channel is not None:
            query = query.where(CONV.c.channel == channel)
        if entered_before is not None:
            query = query.where(CONV.c.enqueued_at < entered_before)
        query = query.where(_before(CONV.c.opened_at, CONV.c.id, before))
        rows = (
            await self.session.execute(
                query.order_by(CONV.c.opened_at.desc(), CONV.c.id.desc()).limit(limit + 1)
            )
        ).all()
        page = rows[:limit]
        offers = await self._pending_offers(r.id for r in page)
        items = [_conversation(r, offers.get(r.id, [])) for r in page]
        cursor = (items[-1].opened_at, items[-1].id) if len(rows) > limit and items else None
        return items, cursor

    async def timeline(
        self, ws: WorkspaceId, customer_id: CustomerId, *, limit: int, before: Cursor | None = None
    ) -> tuple[list[TimelineEntry], Cursor | None]:
        """The customer's most recent ``limit`` timeline entries across every channel and
        conversation (older than ``before``), oldest first; the cursor reaches further back."""
        return await timeline_page(
            self.session, ws, customer_id, limit=limit, cursor=before, towards=Towards.OLDER
        )

    async def add_note(
        self,
        conversation: WorkConversation,
        agent_id: AgentId | None,
        text: str,
        at: datetime,
        *,
        actor: str | None = None,
    ) -> TimelineEntry:
        """An internal note in the conversation's timeline: never sent to the customer.  Its
        ``note.added`` fact (details ``message_id``, never the text) goes in with it, by
        ``actor`` (default ``agent:<agent_id>``)."""
        message_id = MessageId(new_id())
        values: dict[str, Any] = {
            "id": message_id,
            "workspace_id": conversation.workspace_id,
            "conversation_id": conversation.id,
            "customer_id": conversation.customer_id,
            "identifier_id": None,
            "direction": MessageDirection.NOTE,
            "kind": MessageKind.NOTE,
            "channel": conversation.channel,
            "channel_account_id": None,
            "external_id": None,
            "text": text,
            "payload": {},
            "agent_id": agent_id,
            "delivery_state": None,
            "error": None,
            "created_at": at,
            "stored_at": at,
        }
        await self.session.execute(sa.insert(MSG).values(**values))
        await FactLog(self.session).append(
            [
                Fact(
                    WorkAction.NOTE,
                    at,
                    actor or (f"agent:{agent_id}" if agent_id else "system"),
                    conversation.workspace_id,
                    conversation_id=conversation.id,
                    customer_id=conversation.customer_id,
                    agent_id=agent_id,
                    campaign_id=conversation.campaign_id,
                    queue_id=conversation.queue_id,
                    details={"message_id": str(message_id)},
                    dedupe=f"{message_id}:note",
                )
            ]
        )
        return TimelineEntry(
            id=message_id,
            conversation_id=conversation.id,
            customer_id=conversation.customer_id,
            direction=MessageDirection.NOTE,
            kind=MessageKind.NOTE,
            channel=conversation.channel,
            external_id=None,
            text=text,
            agent_id=agent_id,
            delivery_state=None,
            created_at=at,
            payload={},
        )

    async def close(
        self,
        ws: WorkspaceId,
        conversation_id: ConversationId,
        *,
        disposition: Mapping[str, Any],
        closed_at: datetime,
        follow_up_at: datetime | None,
        fact: Fact | None = None,
    ) -> bool:
        """Close an open conversation with its disposition; False when it was already closed.
        ``fact``: its ``conversation.closed``, appended when this call closed it."""
        result = await self.session.execute(
            sa.update(CONV)
            .where(
                CONV.c.workspace_id == ws,
                CONV.c.id == conversation_id,
                CONV.c.status != ConversationStatus.CLOSED,
            )
            .values(
                status=ConversationStatus.CLOSED,
                closed_at=closed_at,
                disposition=dict(disposition),
                follow_up_at=follow_up_at,
            )
        )
        closed = bool(result.rowcount)  # type: ignore[attr-defined]
        if closed and fact is not None:
            await FactLog(self.session).append([fact])
        return closed

    # ------------------------------------------------------------------ configuration
    async def workspace_slug(self, ws: WorkspaceId) -> str | None:
        row = (await self.session.execute(sa.select(WORKSPACE.c.slug).where(WORKSPACE.c.id == ws))).first()
        return str(row.slug) if row is not None else None

    async def campaign(self, campaign_id: CampaignId | None) -> tuple[dict[str, Any], str]:
        """The applied manifest (canonical form) and the time zone of a campaign."""
        if campaign_id is None:
            return {}, "UTC"
        row = (
            await self.session.execute(
                sa.select(CAMPAIGN.c.manifest, CAMPAIGN.c.timezone).where(CAMPAIGN.c.id == campaign_id)
            )
        ).first()
        if row is None:
            return {}, "UTC"
        return dict(row.manifest or {}), str(row.timezone or "UTC")

    def _queues_query(self) -> Any:
        return sa.select(QUEUE, CAMPAIGN.c.timezone.label("campaign_timezone")).select_from(
            QUEUE.outerjoin(CAMPAIGN, CAMPAIGN.c.id == QUEUE.c.campaign_id)
        )

    async def queue(self, ws: WorkspaceId, queue_id: uuid.UUID) -> QueueRecord | None:
        row = (
            await self.session.execute(
                self._queues_query().where(QUEUE.c.workspace_id == ws, QUEUE.c.id == queue_id)
            )
        ).first()
        return _queue(row) if row is not None else None

    async def queue_named(self, ws: WorkspaceId, name: str) -> QueueRecord | None:
        row = (
            await self.session.execute(
                self._queues_query().where(QUEUE.c.workspace_id == ws, QUEUE.c.name == name)
            )
        ).first()
        return _queue(row) if row is not None else None

    async def queues(self, ws: WorkspaceId, *, active_only: bool = True) -> list[QueueRecord]:
        query = self._queues_query().where(QUEUE.c.workspace_id == ws)
        if active_only:
            query = query.where(QUEUE.c.active.is_(True))
        rows = (await self.session.execute(query.order_by(QUEUE.c.name))).all()
        return [_queue(r) for r in rows]

    # ------------------------------------------------------------------ agents
    async def agents(self, ws: WorkspaceId, *, agent_id: uuid.UUID | None = None) -> list[AgentRecord]:
        """The workspace's agents (or one) with their open conversations per channel and pending offers."""
        query = sa.select(AGENT).where(AGENT.c.workspace_id == ws)
        if agent_id is not None:
            query = query.where(AGENT.c.id == agent_id)
        rows = (await self.session.execute(query.order_by(AGENT.c.name, AGENT.c.id))).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        load_rows = (
            await self.session.execute(
                sa.select(CONV.c.agent_id, CONV.c.channel, sa.func.count().label("n"))
                .where(
                    CONV.c.workspace_id == ws,
                    CONV.c.agent_id.in_(ids),
                    CONV.c.status == ConversationStatus.ASSIGNED,
                )
                .group_by(CONV.c.agent_id, CONV.c.channel)
            )
        ).all()
        loads: dict[uuid.UUID, dict[str, int]] = {}
        for r in load_rows:
            loads.setdefault(r.agent_id, {})[r.channel] = int(r.n)
        offer_rows = (
            await self.session.execute(
                sa.select(OFFER.c.agent_id, sa.func.count().label("n"))
                .where(
                    OFFER.c.workspace_id == ws,
                    OFFER.c.agent_id.in_(ids),
                    OFFER.c.status == OfferStatus.OFFERED,
                )
                .group_by(OFFER.c.agent_id)
            )
        ).all()
        offers = {r.agent_id: int(r.n) for r in offer_rows}
        return [
            AgentRecord(
                id=AgentId(r.id),
                workspace_id=WorkspaceId(r.workspace_id),
                email=r.email,
                name=r.name,
                role=r.role,
                skills={str(k): int(v) for k, v in dict(r.skills or {}).items()},
                capacity={str(k): int(v) for k, v in dict(r.capacity or {}).items()},
                active=bool(r.active),
                presence=Presence(r.presence or Presence.OFFLINE),
                presence_until=as_utc(r.presence_until),
                connected=bool(r.connected),
                load=loads.get(r.id, {}),
                pending_offers=offers.get(r.id, 0),
            )
            for r in rows
        ]

    async def agent(self, ws: WorkspaceId, agent_id: uuid.UUID) -> AgentRecord | None:
        found = await self.agents(ws, agent_id=agent_id)
        return found[0] if found else None

    # ------------------------------------------------------------------ queue counters
    async def queue_live(self, ws: WorkspaceId) -> dict[QueueId, QueueLive]:
        rows = (
            await self.session.execute(
                sa.select(
                    CONV.c.queue_id,
                    CONV.c.status,
                    CONV.c.channel,
                    sa.func.count().label("n"),
                    sa.func.min(CONV.c.enqueued_at).label("oldest"),
                )
                .where(
                    CONV.c.workspace_id == ws,
                    CONV.c.queue_id.is_not(None),
                    CONV.c.status.in_((ConversationStatus.WAITING, ConversationStatus.OFFERED)),
                )
                .group_by(CONV.c.queue_id, CONV.c.status, CONV.c.channel)
            )
        ).all()
        out: dict[QueueId, QueueLive] = {}
        for r in rows:
            queue_id = QueueId(r.queue_id)
            live = out.get(queue_id, QueueLive())
            oldest = as_utc(r.oldest)
            if live.oldest_enqueued_at is not None and (oldest is None or live.oldest_enqueued_at < oldest):
                oldest = live.oldest_enqueued_at
            waiting = r.status == ConversationStatus.WAITING
            out[queue_id] = QueueLive(
                waiting=live.waiting + (int(r.n) if waiting else 0),
                offered=live.offered + (int(r.n) if not waiting else 0),
                oldest_enqueued_at=oldest,
                waiting_channels=live.waiting_channels | {r.channel} if waiting else live.waiting_channels,
            )
        return out

    async def answered_since(self, ws: WorkspaceId, since: datetime) -> list[AnsweredConversation]:
        """Conversations of the workspace's queues first assigned at or after ``since``."""
        rows = (
            await self.session.execute(
                sa.select(CONV.c.queue_id, CONV.c.enqueued_at, CONV.c.assigned_at).where(
                    CONV.c.workspace_id == ws,
                    CONV.c.queue_id.is_not(None),
                    CONV.c.assigned_at.is_not(None),
                    CONV.c.enqueued_at.is_not(None),
                    CONV.c.assigned_at >= since,
                )
            )
        ).all()
        return [
            AnsweredConversation(QueueId(r.queue_id), as_utc(r.enqueued_at), as_utc(r.assigned_at))
            for r in rows
        ]

    # ------------------------------------------------------------------ routing decisions
    async def routing_decisions(
        self, ws: WorkspaceId, conversation_id: uuid.UUID
    ) -> list[RoutingDecisionRecord]:
        rows = (
            await self.session.execute(
                sa.select(DECISION)
                .where(DECISION.c.workspace_id == ws, DECISION.c.conversation_id == conversation_id)
                .order_by(DECISION.c.decided_at, DECISION.c.id)
            )
        ).all()
        return [
            RoutingDecisionRecord(
                id=r.id,
                conversation_id=ConversationId(r.conversation_id),
                decided_at=as_utc(r.decided_at),
                outcome=r.outcome,
                explanation=dict(r.explanation or {}),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ follow-ups
    async def due_follow_ups(self, now: datetime, *, limit: int = 100) -> list[DueFollowUp]:
        """Closed conversations whose follow-up is due at ``now`` (every workspace), oldest first."""
        rows = (
            await self.session.execute(
                sa.select(CONV)
                .where(
                    CONV.c.follow_up_at.is_not(None),
                    CONV.c.follow_up_at <= now,
                    CONV.c.status == ConversationStatus.CLOSED,
                )
                .order_by(CONV.c.follow_up_at, CONV.c.id)
                .limit(limit)
            )
        ).all()
        return [
            DueFollowUp(
                conversation_id=ConversationId(r.id),
                workspace_id=WorkspaceId(r.workspace_id),
                campaign_id=CampaignId(r.campaign_id) if r.campaign_id else None,
                customer_id=CustomerId(r.customer_id),
                channel=r.channel,
                channel_account_id=ChannelAccountId(r.channel_account_id) if r.channel_account_id else None,
                identifier_id=IdentityId(r.identifier_id) if r.identifier_id else None,
                last_customer_message_at=as_utc(r.last_customer_message_at),
                due_at=as_utc(r.follow_up_at),
                disposition=dict(r.disposition or {}),
            )
            for r in rows
        ]

    async def open_follow_up(self, due: DueFollowUp, now: datetime) -> FollowUpOpened | None:
        """Claim one due follow-up and put it back in routing; None when another server took it.

        The customer's open conversation with the campaign takes it if there is one (it is
        already being routed); otherwise a new ``waiting`` conversation opens in the follow-up's
        queue, with a system note saying why, and its ``conversation.opened`` fact (actor
        ``system``, details ``follow_up_of``).  The closed conversation records that it is done.
        """
        claimed = await self.session.execute(
            sa.update(CONV)
            .where(CONV.c.id == due.conversation_id, CONV.c.follow_up_at.is_not(None))
            .values(follow_up_at=None)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None
        plan = dict(due.disposition.get("follow_up") or {})
        queue_id: QueueId | None = None
        priority = 5
        raw_queue = plan.get("queue_id")
        if raw_queue:
            queue = await self.queue(due.workspace_id, uuid.UUID(str(raw_queue)))
            if queue is not None and queue.active:
                queue_id, priority = queue.id, queue.priority
        campaign_match = (
            CONV.c.campaign_id == due.campaign_id if due.campaign_id else CONV.c.campaign_id.is_(None)
        )
        existing = (
            await self.session.execute(
                sa.select(CONV.c.id)
                .where(
                    CONV.c.workspace_id == due.workspace_id,
                    CONV.c.customer_id == due.customer_id,
                    campaign_match,
                    CONV.c.status != ConversationStatus.CLOSED,
                )
                .order_by(CONV.c.opened_at.desc())
                .limit(1)
            )
        ).first()
        reopened = existing is not None
        opened: Fact | None = None
        if existing is not None:
            conversation_id = ConversationId(existing.id)
        else:
            conversation_id = ConversationId(new_id())
            opened = Fact(
                WorkAction.OPENED,
                now,
                "system",
                due.workspace_id,
                conversation_id=conversation_id,
                customer_id=due.customer_id,
                campaign_id=due.campaign_id,
                queue_id=queue_id,
                details={
                    "channel": due.channel,
                    "channel_account_id": str(due.channel_account_id) if due.channel_account_id else None,
                    "triage": False,
                    "queue_id": str(queue_id) if queue_id else None,
                    "follow_up_of": str(due.conversation_id),
                },
                dedupe=f"{conversation_id}:opened",
            )
            await self.session.execute(
                sa.insert(CONV).values(
                    id=conversation_id,
                    workspace_id=due.workspace_id,
                    campaign_id=due.campaign_id,
                    customer_id=due.customer_id,
                    queue_id=queue_id,
                    status=ConversationStatus.WAITING,
                    channel=due.channel,
                    channel_account_id=due.channel_account_id,
                    identifier_id=due.identifier_id,
                    origin_identifier_id=due.identifier_id,
                    priority=priority,
                    opened_at=now,
                    enqueued_at=now,
                    last_customer_message_at=due.last_customer_message_at,
                )
            )
        label = str(due.disposition.get("label") or due.disposition.get("code") or "")
        await self.session.execute(
            sa.insert(MSG).values(
                id=new_id(),
                workspace_id=due.workspace_id,
                conversation_id=conversation_id,
                customer_id=due.customer_id,
                direction=MessageDirection.NOTE,
                kind=MessageKind.SYSTEM,
                channel=due.channel,
                text=f"Seguimiento programado: {label}" if label else "Seguimiento programado",
                payload={
                    "follow_up_of": str(due.conversation_id),
                    "disposition": due.disposition.get("code"),
                    "template": plan.get("template"),
                    "due_at": due.due_at.isoformat(),
                },
                created_at=now,
                stored_at=now,
            )
        )
        plan.update(done_at=now.isoformat(), conversation_id=str(conversation_id))
        await self.session.execute(
            sa.update(CONV)
            .where(CONV.c.id == due.conversation_id)
            .values(disposition={**due.disposition, "follow_up": plan})
        )
        due_event = followup_due(
            due.workspace_id,
            now,
            follow_up_of=due.conversation_id,
            due_at=due.due_at,
            conversation_id=conversation_id,
            customer_id=due.customer_id,
            campaign_id=due.campaign_id,
            queue_id=queue_id,
            disposition=None if due.disposition.get("code") is None else str(due.disposition["code"]),
            reopened=reopened,
        )
        # Last: the report rows come after every other row (storage.facts).
        await FactLog(self.session).append([opened] if opened is not None else [], events=[due_event])
        return FollowUpOpened(due.workspace_id, due.conversation_id, conversation_id, queue_id, reopened)
