"""Storage for the live router: what it loads, and the writes that carry out its decisions.

``RoutingStore`` works inside the caller's session/transaction (the router service writes one
batch of decisions per transaction).  Rows come back as the small frozen records below, never
as ORM rows; times come back aware UTC (``storage.types.UtcDateTime``).

Every write that moves a conversation is a compare-and-set on its current ``status`` (and
``offer_id`` / ``agent_id``): it returns False when the row was not where the router thought
(closed meanwhile by the API, or moved by another router), and the router reconciles.  On top
of that, ``check_epoch`` fences a router that lost its place (see ``RouterEpochRow``).

LOCK ORDER.  Every transaction that locks several rows of these tables locks them in one global
order, so no two of them can wait on each other in a cycle (no deadlocks by construction): the
workspace's epoch row, then conversations by id, then offers and assignments by id, then agents
by id, and last the report rows and traffic counters (``storage.facts``: the facts of the
round, appended at the end of ``RoutingWrites.flush``).  The router locks its round's
conversations up front (``begin_writes``); the pipeline writes a batch's conversation updates
last, by id (``InboundStore.flush``), then its facts; a gateway renews its agents' presence
leases by id (``renew_leases``).  Row locks are ``FOR NO KEY UPDATE`` (no key
ever changes), which the key-share locks of foreign keys (a message or an offer inserted for a
conversation) do not wait for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.facts import CloseReason, Fact, WorkAction
from core.ids import (
    AgentId,
    CampaignId,
    ChannelAccountId,
    ConversationId,
    CustomerId,
    OfferId,
    QueueId,
    WorkspaceId,
    new_id,
)
from core.states import (
    ROUTABLE_CONVERSATION_STATUSES,
    ConversationStatus,
    MessageDirection,
    OfferStatus,
    Presence,
)
from core.webhooks import EventDraft, alert_raised
from storage.alerts import AlertDraft
from storage.facts import FactLog
from storage.tables import (
    AgentRow,
    AlertRow,
    AssignmentRow,
    CampaignRow,
    ChannelAccountRow,
    ConversationRow,
    CustomerRow,
    MessageRow,
    OfferRow,
    QueueRow,
    RouterEpochRow,
    RoutingDecisionRow,
)
from storage.upsert import insert_ignore

__all__ = [
    "AgentRecord",
    "ConversationRecord",
    "DecisionRecord",
    "OfferPreviewRecord",
    "OfferRecord",
    "QueueRecord",
    "RoutingStore",
    "RoutingWrites",
]

CONV = ConversationRow.__table__  # type: ignore[attr-defined]
AGENT = AgentRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
ACCOUNT = ChannelAccountRow.__table__  # type: ignore[attr-defined]
OFFER = OfferRow.__table__  # type: ignore[attr-defined]
ASSIGNMENT = AssignmentRow.__table__  # type: ignore[attr-defined]
DECISION = RoutingDecisionRow.__table__  # type: ignore[attr-defined]
ALERT = AlertRow.__table__  # type: ignore[attr-defined]
EPOCH = RouterEpochRow.__table__  # type: ignore[attr-defined]
CUSTOMER = CustomerRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]

# The fact of each way an offer ends.
_OFFER_ENDED: dict[str, WorkAction] = {
    OfferStatus.ACCEPTED: WorkAction.OFFER_ACCEPTED,
    OfferStatus.DECLINED: WorkAction.OFFER_DECLINED,
    OfferStatus.EXPIRED: WorkAction.OFFER_EXPIRED,
    OfferStatus.WITHDRAWN: WorkAction.OFFER_WITHDRAWN,
}
_ANSWERED_BY_AGENT = (OfferStatus.ACCEPTED, OfferStatus.DECLINED)

PREVIEW_CHARS = 140  # the first words of the customer's last message an offer shows


@dataclass(frozen=True, slots=True)
class QueueRecord:
    id: QueueId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    name: str
    config: Mapping[str, Any]  # the campaign manifest's canonical queue
    timezone: str  # the campaign's (business hours default to it)
    active: bool


@dataclass(frozen=True, slots=True)
class AgentRecord:
    id: AgentId
    workspace_id: WorkspaceId
    skills: Mapping[str, Any]
    capacity: Mapping[str, Any]
    presence: Presence
    presence_until: datetime | None
    connected: bool
    active: bool


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: ConversationId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    customer_id: CustomerId
    queue_id: QueueId | None
    agent_id: AgentId | None
    status: ConversationStatus
    channel: str
    channel_account_id: ChannelAccountId | None
    priority: int
    enqueued_at: datetime
    last_customer_message_at: datetime | None
    offer_id: OfferId | None
    auto_replied_at: datetime | None


@dataclass(frozen=True, slots=True)
class OfferRecord:
    id: OfferId
    conversation_id: ConversationId
    agent_id: AgentId


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    conversation_id: ConversationId
    at: datetime
    outcome: str  # offered, no_agent
    explanation: Mapping[str, Any]


def _conversation(row: Any) -> ConversationRecord:
    enqueued: datetime = row.enqueued_at or row.opened_at  # opened_at is NOT NULL
    return ConversationRecord(
        id=ConversationId(row.id),
        workspace_id=WorkspaceId(row.workspace_id),
        campaign_id=CampaignId(row.campaign_id) if row.campaign_id else None,
        customer_id=CustomerId(row.customer_id),
        queue_id=QueueId(row.queue_id) if row.queue_id else None,
        agent_id=AgentId(row.agent_id) if row.agent_id else None,
        status=ConversationStatus(row.status),
        channel=row.channel,
        channel_account_id=ChannelAccountId(row.channel_account_id) if row.channel_account_id else None,
        priority=int(row.priority),
        enqueued_at=enqueued,
        last_customer_message_at=row.last_customer_message_at,
        offer_id=OfferId(row.offer_id) if row.offer_id else None,
        auto_replied_at=row.auto_replied_at,
    )


_CONV_COLUMNS = (
    CONV.c.id,
    CONV.c.workspace_id,
    CONV.c.campaign_id,
    CONV.c.customer_id,
    CONV.c.queue_id,
    CONV.c.agent_id,
    CONV.c.status,
    CONV.c.channel,
    CONV.c.channel_account_id,
    CONV.c.priority,
    CONV.c.opened_at,
    CONV.c.enqueued_at,
    CONV.c.last_customer_message_at,
    CONV.c.offer_id,
    CONV.c.auto_replied_at,
)


@dataclass(frozen=True, slots=True)
class OfferPreviewRecord:
    """What an offer shows the agent before they accept: who, and their last message's start."""

    customer_name: str | None
    text: str | None  # the first PREVIEW_CHARS characters (None: no text, e.g. an image)
    kind: str | None  # the last customer message's kind (None: nothing written yet)
    attachments: tuple[str, ...] = ()  # the kinds of its attachments


class RoutingStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def offer_previews(
        self, conversation_ids: Iterable[ConversationId]
    ) -> dict[ConversationId, OfferPreviewRecord]:
        """The customer's name and last message of each conversation: one query for a round."""
        ids = sorted(set(conversation_ids))
        if not ids:
            return {}
        latest = (
            sa.select(MSG.c.id)
            .where(MSG.c.conversation_id == CONV.c.id, MSG.c.direction == MessageDirection.IN.value)
            .order_by(MSG.c.created_at.desc(), MSG.c.id.desc())
            .limit(1)
            .correlate(CONV)
            .scalar_subquery()
        )
        rows = (
            await self.session.execute(
                sa.select(CONV.c.id, CUSTOMER.c.display_name, MSG.c.text, MSG.c.kind, MSG.c.payload)
                .select_from(CONV)
                .join(CUSTOMER, CUSTOMER.c.id == CONV.c.customer_id)
                .outerjoin(MSG, MSG.c.id == latest)
                .where(CONV.c.id.in_(ids))
            )
        ).all()
        return {
            ConversationId(row.id): OfferPreviewRecord(
                row.display_name,
                _first_words(row.text),
                row.kind,
                _attachment_kinds(row.payload),
            )
            for row in rows
        }

    # ------------------------------------------------------------------ fencing

    async def take_epoch(self, workspace_id: WorkspaceId, holder: str, now: datetime) -> int:
        """Become the workspace's router: bump and return its epoch."""
        await insert_ignore(
            self.session,
            EPOCH,
            [{"workspace_id": workspace_id, "epoch": 0, "holder": "", "taken_at": now}],
            conflict=("workspace_id",),
        )
        current = (
            await self.session.execute(
                sa.select(EPOCH.c.epoch).where(EPOCH.c.workspace_id == workspace_id).with_for_update()
            )
        ).scalar_one()
        epoch = int(current) + 1
        await self.session.execute(
            sa.update(EPOCH)
            .where(EPOCH.c.workspace_id == workspace_id)
            .values(epoch=epoch, holder=holder[:200], taken_at=now)
        )
        return epoch

    async def check_epoch(self, workspace_id: WorkspaceId, epoch: int) -> bool:
        """Whether ``epoch`` is still the workspace's; locks the row until the transaction ends,
        so a successor's ``take_epoch`` waits for this writer and every later write sees it."""
        current = (
            await self.session.execute(
                sa.select(EPOCH.c.epoch).where(EPOCH.c.workspace_id == workspace_id).with_for_update()
            )
        ).scalar()
        return current is not None and int(current) == epoch

    # ------------------------------------------------------------------ loading

    async def active_workspaces(self) -> list[WorkspaceId]:
        """Workspaces with at least one active queue: each gets a router."""
        rows = await self.session.execute(
            sa.select(QUEUE.c.workspace_id).where(QUEUE.c.active.is_(True)).distinct()
        )
        return sorted((WorkspaceId(r[0]) for r in rows), key=str)

    async def queues(self, workspace_id: WorkspaceId) -> list[QueueRecord]:
        rows = await self.session.execute(
            sa.select(
                QUEUE.c.id,
                QUEUE.c.workspace_id,
                QUEUE.c.campaign_id,
                QUEUE.c.name,
                QUEUE.c.config,
                QUEUE.c.active,
                CAMPAIGN.c.timezone,
            )
            .select_from(QUEUE.outerjoin(CAMPAIGN, CAMPAIGN.c.id == QUEUE.c.campaign_id))
            .where(QUEUE.c.workspace_id == workspace_id)
            .order_by(QUEUE.c.name)
        )
        return [
            QueueRecord(
                id=QueueId(r.id),
                workspace_id=WorkspaceId(r.workspace_id),
                campaign_id=CampaignId(r.campaign_id) if r.campaign_id else None,
                name=r.name,
                config=dict(r.config or {}),
                timezone=r.timezone or "UTC",
                active=bool(r.active),
            )
            for r in rows
        ]

    async def agents(self, workspace_id: WorkspaceId) -> list[AgentRecord]:
        rows = await self.session.execute(
            sa.select(
                AGENT.c.id,
                AGENT.c.workspace_id,
                AGENT.c.skills,
                AGENT.c.capacity,
                AGENT.c.presence,
                AGENT.c.presence_until,
                AGENT.c.connected,
                AGENT.c.active,
            )
            .where(AGENT.c.workspace_id == workspace_id)
            .order_by(AGENT.c.id)
        )
        return [
            AgentRecord(
                id=AgentId(r.id),
                workspace_id=WorkspaceId(r.workspace_id),
                skills=dict(r.skills or {}),
                capacity=dict(r.capacity or {}),
                presence=Presence(r.presence),
                presence_until=r.presence_until,
                connected=bool(r.connected),
                active=bool(r.active),
            )
            for r in rows
        ]

    async def open_conversations(self, workspace_id: WorkspaceId) -> list[ConversationRecord]:
        """Waiting, offered and assigned conversations (not ``triage``), oldest first."""
        rows = await self.session.execute(
            sa.select(*_CONV_COLUMNS)
            .where(CONV.c.workspace_id == workspace_id, CONV.c.status.in_(ROUTABLE_CONVERSATION_STATUSES))
            .order_by(CONV.c.enqueued_at, CONV.c.id)
        )
        return [_conversation(r) for r in rows]

    async def conversations(
        self, workspace_id: WorkspaceId, ids: Iterable[ConversationId]
    ) -> dict[ConversationId, ConversationRecord]:
        wanted = list(dict.fromkeys(ids))
        out: dict[ConversationId, ConversationRecord] = {}
        for start in range(0, len(wanted), 500):
            rows = await self.session.execute(
                sa.select(*_CONV_COLUMNS).where(
                    CONV.c.workspace_id == workspace_id, CONV.c.id.in_(wanted[start : start + 500])
                )
            )
            for r in rows:
                record = _conversation(r)
                out[record.id] = record
        return out

    async def last_agents(
        self, workspace_id: WorkspaceId, customers: Iterable[tuple[CustomerId, CampaignId | None]]
    ) -> dict[tuple[CustomerId, CampaignId | None], AgentId]:
        """The agent of each customer's most recent closed conversation with that campaign (sticky)."""
        pairs = set(customers)
        ids = list({customer for customer, _ in pairs})
        out: dict[tuple[CustomerId, CampaignId | None], AgentId] = {}
        for start in range(0, len(ids), 500):
            rows = await self.session.execute(
                sa.select(CONV.c.customer_id, CONV.c.campaign_id, CONV.c.agent_id)
                .where(
                    CONV.c.workspace_id == workspace_id,
                    CONV.c.customer_id.in_(ids[start : start + 500]),
                    CONV.c.status == ConversationStatus.CLOSED,
                    CONV.c.agent_id.is_not(None),
                )
                .order_by(CONV.c.closed_at.desc().nulls_last(), CONV.c.id.desc())
            )
            for r in rows:
                key = (
                    CustomerId(r.customer_id),
                    CampaignId(r.campaign_id) if r.campaign_id else None,
                )
                if key in pairs and key not in out:
                    out[key] = AgentId(r.agent_id)
        return out

    async def account_settings(
        self, account_ids: Iterable[ChannelAccountId]
    ) -> dict[ChannelAccountId, Mapping[str, Any]]:
        ids = list(set(account_ids))
        if not ids:
            return {}
        rows = await self.session.execute(
            sa.select(ACCOUNT.c.id, ACCOUNT.c.settings).where(ACCOUNT.c.id.in_(ids))
        )
        return {ChannelAccountId(r.id): dict(r.settings or {}) for r in rows}

    async def campaign_manifest(self, campaign_id: CampaignId | None) -> Mapping[str, Any]:
        if campaign_id is None:
            return {}
        manifest = (
            await self.session.execute(sa.select(CAMPAIGN.c.manifest).where(CAMPAIGN.c.id == campaign_id))
        ).scalar()
        return dict(manifest or {})

    async def live_offers(self, workspace_id: WorkspaceId) -> list[OfferRecord]:
        rows = await self.session.execute(
            sa.select(OFFER.c.id, OFFER.c.conversation_id, OFFER.c.agent_id).where(
                OFFER.c.workspace_id == workspace_id, OFFER.c.status == OfferStatus.OFFERED
            )
        )
        return [
            OfferRecord(OfferId(r.id), ConversationId(r.conversation_id), AgentId(r.agent_id)) for r in rows
        ]

    # ------------------------------------------------------------------ presence leases

    async def renew_leases(self, agent_ids: Iterable[AgentId], until: datetime) -> None:
        """The gateway holding these agents' sockets is alive: their presence holds until ``until``
        (rows locked by id, the global lock order)."""
        params = [{"b_id": agent_id, "b_until": until} for agent_id in sorted(set(agent_ids))]
        if params:
            await self.session.execute(
                sa.update(AGENT)
                .where(AGENT.c.id == sa.bindparam("b_id"))
                .values(presence_lease_until=sa.bindparam("b_until")),
                params,
            )

    async def leases(self, workspace_id: WorkspaceId) -> dict[AgentId, datetime | None]:
        """Each agent's presence lease (None: never renewed)."""
        rows = await self.session.execute(
            sa.select(AGENT.c.id, AGENT.c.presence_lease_until).where(AGENT.c.workspace_id == workspace_id)
        )
        return {AgentId(r.id): r.presence_lease_until for r in rows}

    # ------------------------------------------------------------------ writes

    async def begin_writes(
        self, workspace_id: WorkspaceId, conversation_ids: Iterable[ConversationId]
    ) -> RoutingWrites:
        """Lock the conversations a round of the router touches (and read their open assignments);
        the returned unit of work checks each write against them and ``flush``es in bulk.

        Locks follow the one global order (see ``LOCK ORDER`` in the module's docstring): by id,
        ``FOR NO KEY UPDATE`` — the router never changes a key, and that lock does not conflict
        with the key-share locks the pipeline's message inserts take on the same rows."""
        wanted = sorted(set(conversation_ids))
        rows: dict[ConversationId, _ConvRow] = {}
        open_assignments: dict[ConversationId, list[_Assignment]] = {}
        offer_agent = sa.select(OFFER.c.agent_id).where(OFFER.c.id == CONV.c.offer_id).scalar_subquery()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            result = await self.session.execute(
                sa.select(
                    CONV.c.id,
                    CONV.c.status,
                    CONV.c.offer_id,
                    CONV.c.agent_id,
                    CONV.c.queue_id,
                    CONV.c.auto_replied_at,
                    CONV.c.customer_id,
                    CONV.c.campaign_id,
                    offer_agent.label("offer_agent_id"),
                )
                .where(CONV.c.workspace_id == workspace_id, CONV.c.id.in_(chunk))
                .order_by(CONV.c.id)
                .with_for_update(key_share=True)
            )
            for r in result:
                rows[ConversationId(r.id)] = _ConvRow(
                    ConversationStatus(r.status),
                    r.offer_id,
                    r.agent_id,
                    r.queue_id,
                    r.auto_replied_at is not None,
                    customer_id=r.customer_id,
                    campaign_id=r.campaign_id,
                    offer_agent_id=r.offer_agent_id,
                )
            assignments = await self.session.execute(
                sa.select(
                    ASSIGNMENT.c.id,
                    ASSIGNMENT.c.conversation_id,
                    ASSIGNMENT.c.agent_id,
                    ASSIGNMENT.c.assigned_at,
                ).where(ASSIGNMENT.c.conversation_id.in_(chunk), ASSIGNMENT.c.ended_at.is_(None))
            )
            for a in assignments:
                open_assignments.setdefault(ConversationId(a.conversation_id), []).append(
                    _Assignment(a.id, AgentId(a.agent_id), a.assigned_at)
                )
        return RoutingWrites(self.session, workspace_id, rows, open_assignments)


@dataclass(frozen=True, slots=True)
class _Assignment:
    """An open assignment: its agent and since when."""

    id: uuid.UUID
    agent_id: AgentId
    assigned_at: datetime


@dataclass(slots=True)
class _ConvRow:
    """A locked conversation as this round leaves it (``dirty``: to be written)."""

    status: ConversationStatus
    offer_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    queue_id: uuid.UUID | None
    auto_replied: bool
    assigned_at: datetime | None = None
    closed_at: datetime | None = None
    auto_replied_at: datetime | None = None
    dirty: bool = False
    customer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    offer_agent_id: uuid.UUID | None = None  # the agent of ``offer_id``


class RoutingWrites:
    """The writes of one router round.

    Each conversation move is a compare-and-set against the row as locked at the start and as
    earlier writes of the same round left it (returns False when the row is not where the router
    thought); ``flush`` then writes everything in a handful of bulk statements, whatever the size
    of the round.

    Each move that happens also holds its fact (``core.facts``), appended last in ``flush`` with
    one ``FactLog.append``: an offer made (``offer.made``, details ``offer_id``) and how it ended
    (``offer.accepted`` / ``declined`` / ``timed_out`` / ``withdrawn``, details ``offer_id``,
    ``reason``; once per offer), an assignment (``conversation.assigned``, details ``how``,
    ``offer_id``, ``waited_s``) and its end (``assignment.ended``, details ``assignment_id``,
    ``reason``, ``active_s``), a requeue or transfer (details ``reason``, ``from_agent_id``,
    ``from_queue_id``, ``to_queue_id``, ``to_agent_id``), a close the router makes itself
    (``conversation.closed``, reason ``abandoned``: it was never the API's) and a wrap-up
    (``agent.wrap_up``, details ``until``).
    """

    def __init__(
        self,
        session: AsyncSession,
        workspace_id: WorkspaceId,
        rows: dict[ConversationId, _ConvRow],
        open_assignments: dict[ConversationId, list[_Assignment]],
    ) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self._rows = rows
        self._open = open_assignments
        self._new_offers: dict[OfferId, dict[str, Any]] = {}
        self._offer_updates: dict[OfferId, dict[str, Any]] = {}
        self._new_assignments: dict[uuid.UUID, dict[str, Any]] = {}
        self._ended_assignments: dict[uuid.UUID, dict[str, Any]] = {}
        self._closed: list[ConversationId] = []
        self._agents: dict[AgentId, dict[str, Any]] = {}
        self._decisions: list[DecisionRecord] = []
        self._alerts: list[AlertDraft] = []
        self._facts: list[Fact] = []

    def _fact(
        self,
        action: WorkAction,
        conversation_id: ConversationId,
        at: datetime,
        *,
        actor: str = "router",
        agent_id: uuid.UUID | None = None,
        queue_id: uuid.UUID | None = None,
        details: Mapping[str, Any] | None = None,
        dedupe: str | None = None,
    ) -> None:
        row = self._rows.get(conversation_id)
        self._facts.append(
            Fact(
                action,
                at,
                actor,
                self.workspace_id,
                conversation_id=conversation_id,
                customer_id=row.customer_id if row is not None else None,
                agent_id=agent_id,
                campaign_id=row.campaign_id if row is not None else None,
                queue_id=queue_id if queue_id is not None else (row.queue_id if row is not None else None),
                details=dict(details or {}),
                dedupe=dedupe,
            )
        )

    def status(self, conversation_id: ConversationId) -> ConversationStatus | None:
        row = self._rows.get(conversation_id)
        return row.status if row is not None else None

    # -- offers and assignments --------------------------------------------------------------

    def offer(
        self,
        offer_id: OfferId,
        conversation_id: ConversationId,
        agent_id: AgentId,
        queue_id: QueueId,
        at: datetime,
        expires_at: datetime,
    ) -> bool:
        """A waiting conversation is offered; False (offer stored as withdrawn) if it was not waiting."""
        row = self._rows.get(conversation_id)
        ok = row is not None and row.status == ConversationStatus.WAITING
        if row is not None and ok:
            row.status, row.offer_id, row.queue_id, row.agent_id = (
                ConversationStatus.OFFERED,
                offer_id,
                queue_id,
                None,
            )
            row.offer_agent_id, row.dirty = agent_id, True
            self._fact(
                WorkAction.OFFERED,
                conversation_id,
                at,
                agent_id=agent_id,
                queue_id=queue_id,
                details={"offer_id": str(offer_id)},
                dedupe=f"{offer_id}:offered",
            )
        self._new_offers[offer_id] = {
            "id": offer_id,
            "workspace_id": self.workspace_id,
            "conversation_id": conversation_id,
            "agent_id": agent_id,
            "queue_id": queue_id,
            "status": OfferStatus.OFFERED if ok else OfferStatus.WITHDRAWN,
            "reason": None if ok else "stale",
            "created_at": at,
            "expires_at": expires_at,
            "answered_at": None if ok else at,
        }
        return ok

    def end_offer(
        self,
        offer_id: OfferId,
        conversation_id: ConversationId,
        status: str,
        reason: str | None,
        at: datetime,
        *,
        agent_id: uuid.UUID | None = None,
        actor: str | None = None,
    ) -> None:
        """An offer ended (declined, expired, withdrawn, accepted); the conversation waits again if
        that offer still held it (not when ``accepted``)."""
        fresh = self._new_offers.get(offer_id)
        row = self._rows.get(conversation_id)
        ended = False
        if fresh is not None:
            if fresh["status"] == OfferStatus.OFFERED:
                fresh.update(status=status, reason=reason, answered_at=at)
                ended = True
            agent: uuid.UUID | None = fresh["agent_id"]
        else:
            if offer_id not in self._offer_updates:
                self._offer_updates[offer_id] = {
                    "b_id": offer_id,
                    "status": status,
                    "reason": reason,
                    "answered_at": at,
                }
                ended = True  # if it was live: the fact's dedupe key keeps the first ending only
            agent = agent_id
            if agent is None and row is not None and row.offer_id == offer_id:
                agent = row.offer_agent_id
        if ended:
            if actor is None:  # the agent answered; the router ended the rest
                actor = f"agent:{agent}" if status in _ANSWERED_BY_AGENT and agent is not None else "router"
            self._fact(
                _OFFER_ENDED[status],
                conversation_id,
                at,
                actor=actor,
                agent_id=agent,
                details={"offer_id": str(offer_id), "reason": reason},
                dedupe=f"{offer_id}:ended",
            )
        if (
            status != OfferStatus.ACCEPTED
            and row is not None
            and row.status == ConversationStatus.OFFERED
            and row.offer_id == offer_id
        ):
            row.status, row.offer_id, row.dirty = ConversationStatus.WAITING, None, True

    def assign(
        self,
        conversation_id: ConversationId,
        agent_id: AgentId,
        queue_id: QueueId,
        offer_id: OfferId | None,
        at: datetime,
        *,
        how: str | None = None,
        waited_s: float | None = None,
        actor: str = "router",
    ) -> bool:
        """An accepted offer (or a forced assignment, ``offer_id`` None) becomes the conversation's
        assignment; False when the conversation was not where the router thought.  ``how``:
        offer, forced or transfer (default: offer, or forced without one); ``waited_s``: the
        wait to this first answer as the queue's SLA counts it (None: not its first answer)."""
        row = self._rows.get(conversation_id)
        if offer_id is not None:
            ok = row is not None and row.status == ConversationStatus.OFFERED and row.offer_id == offer_id
        else:
            ok = row is not None and row.status in ROUTABLE_CONVERSATION_STATUSES
        if row is None or not ok:
            if offer_id is not None:
                self.end_offer(offer_id, conversation_id, OfferStatus.WITHDRAWN, "stale", at)
            return False
        if offer_id is not None:
            self.end_offer(offer_id, conversation_id, OfferStatus.ACCEPTED, None, at, agent_id=agent_id)
        elif row.offer_id is not None:
            self.end_offer(OfferId(row.offer_id), conversation_id, OfferStatus.WITHDRAWN, "forced", at)
        self._end_assignments(conversation_id, at, "reassigned")
        row.status, row.agent_id, row.queue_id, row.offer_id = (
            ConversationStatus.ASSIGNED,
            agent_id,
            queue_id,
            None,
        )
        row.assigned_at, row.dirty = at, True
        assignment_id = new_id()
        self._new_assignments[assignment_id] = {
            "id": assignment_id,
            "workspace_id": self.workspace_id,
            "conversation_id": conversation_id,
            "agent_id": agent_id,
            "assigned_at": at,
            "ended_at": None,
            "reason": "offer" if offer_id is not None else "forced",
        }
        self._open.setdefault(conversation_id, []).append(_Assignment(assignment_id, agent_id, at))
        self._fact(
            WorkAction.ASSIGNED,
            conversation_id,
            at,
            actor=actor,
            agent_id=agent_id,
            queue_id=queue_id,
            details={
                "how": how or ("offer" if offer_id is not None else "forced"),
                "offer_id": str(offer_id) if offer_id is not None else None,
                "assignment_id": str(assignment_id),
                "waited_s": round(waited_s, 3) if waited_s is not None else None,
            },
            dedupe=f"{assignment_id}:assigned",
        )
        return True

    def unassign(
        self,
        conversation_id: ConversationId,
        from_agent_id: AgentId | None,
        queue_id: QueueId,
        at: datetime,
        reason: str,
        *,
        actor: str = "router",
        to_agent_id: uuid.UUID | None = None,
    ) -> None:
        """The conversation left its agent (requeued, transferred, the agent went offline): it waits
        again in ``queue_id``, keeping its ``enqueued_at``.  Its fact: ``conversation.transferred``
        for ``reason`` transfer, ``conversation.requeued`` otherwise, by ``actor``."""
        row = self._rows.get(conversation_id)
        if row is not None and (
            row.status == ConversationStatus.WAITING
            or (
                row.status == ConversationStatus.ASSIGNED
                and (from_agent_id is None or row.agent_id == from_agent_id)
            )
        ):
            self._fact(
                WorkAction.TRANSFERRED if reason == "transfer" else WorkAction.REQUEUED,
                conversation_id,
                at,
                actor=actor,
                agent_id=from_agent_id,
                queue_id=queue_id,
                details={
                    "reason": reason,
                    "from_agent_id": str(row.agent_id) if row.agent_id else None,
                    "from_queue_id": str(row.queue_id) if row.queue_id else None,
                    "to_queue_id": str(queue_id),
                    "to_agent_id": str(to_agent_id) if to_agent_id else None,
                },
            )
            row.status, row.agent_id, row.offer_id, row.queue_id, row.dirty = (
                ConversationStatus.WAITING,
                None,
                None,
                queue_id,
                True,
            )
        self._end_assignments(conversation_id, at, reason)

    def move_queue(self, conversation_id: ConversationId, queue_id: QueueId) -> None:
        row = self._rows.get(conversation_id)
        if row is not None and row.status in ROUTABLE_CONVERSATION_STATUSES:
            row.queue_id, row.dirty = queue_id, True

    def choose_queue(self, conversation_id: ConversationId, queue_id: QueueId) -> None:
        row = self._rows.get(conversation_id)
        if row is not None and row.queue_id is None:
            row.queue_id, row.dirty = queue_id, True

    def close(self, conversation_id: ConversationId, at: datetime) -> None:
        """Closed (by the agent, or abandoned): its offer and assignment end.  A row still open
        is closed here, by the router — abandoned while waiting or offered: its
        ``conversation.closed`` (reason ``abandoned``) is the router's; one the API closed has its
        fact already."""
        row = self._rows.get(conversation_id)
        if row is not None and row.offer_id is not None:
            self.end_offer(
                OfferId(row.offer_id), conversation_id, OfferStatus.WITHDRAWN, "conversation_closed", at
            )
        if row is not None and row.status != ConversationStatus.CLOSED:
            self._fact(
                WorkAction.CLOSED,
                conversation_id,
                at,
                agent_id=row.agent_id,
                details={"reason": CloseReason.ABANDONED, "status": str(row.status)},
                dedupe=f"{conversation_id}:closed:{at.isoformat()}",
            )
            row.status, row.offer_id, row.closed_at, row.dirty = ConversationStatus.CLOSED, None, at, True
        self._end_assignments(conversation_id, at, "closed")
        self._closed.append(conversation_id)

    def claim_auto_reply(self, conversation_id: ConversationId, at: datetime) -> bool:
        """True once per conversation: the caller sends the outside-hours auto-reply."""
        row = self._rows.get(conversation_id)
        if row is None or row.auto_replied:
            return False
        row.auto_replied, row.auto_replied_at, row.dirty = True, at, True
        return True

    def _end_assignments(self, conversation_id: ConversationId, at: datetime, reason: str) -> None:
        for assignment in self._open.pop(conversation_id, []):
            assignment_id = assignment.id
            self._fact(
                WorkAction.ASSIGNMENT_ENDED,
                conversation_id,
                at,
                agent_id=assignment.agent_id,
                details={
                    "assignment_id": str(assignment_id),
                    "reason": reason,
                    "active_s": round(max(0.0, (at - assignment.assigned_at).total_seconds()), 3),
                },
                dedupe=f"{assignment_id}:ended",
            )
            fresh = self._new_assignments.get(assignment_id)
            if fresh is not None:
                fresh.update(ended_at=at, reason=reason)
            else:
                self._ended_assignments[assignment_id] = {
                    "b_id": assignment_id,
                    "ended_at": at,
                    "reason": reason,
                }

    # -- agents and decisions -----------------------------------------------------------------

    def presence(
        self, agent_id: AgentId, presence: str, until: datetime | None, connected: bool | None = None
    ) -> None:
        values = self._agents.setdefault(agent_id, {})
        values.update(presence=presence, presence_until=until)
        if connected is not None:
            values["connected"] = connected

    def wrap_up(
        self, agent_id: AgentId, conversation_id: ConversationId, until: datetime | None, at: datetime
    ) -> None:
        """The agent wraps ``conversation_id`` up until ``until`` (its fact; the presence itself
        is ``presence``)."""
        self._fact(
            WorkAction.WRAP_UP,
            conversation_id,
            at,
            agent_id=agent_id,
            details={"until": until.isoformat() if until is not None else None},
            dedupe=f"{conversation_id}:wrap_up:{agent_id}",
        )

    def connected(self, agent_id: AgentId, connected: bool) -> None:
        self._agents.setdefault(agent_id, {})["connected"] = connected

    def decision(self, decision: DecisionRecord) -> None:
        self._decisions.append(decision)

    def alert(self, alert: AlertDraft) -> None:
        """Raise an alert for the supervisors (once per kind, conversation and queue)."""
        self._alerts.append(alert)

    # -- writing ------------------------------------------------------------------------------

    async def flush(self) -> None:
        session = self.session
        if self._new_offers:
            await session.execute(sa.insert(OFFER), list(self._new_offers.values()))
        if self._offer_updates:
            await session.execute(
                sa.update(OFFER)
                .where(OFFER.c.id == sa.bindparam("b_id"), OFFER.c.status == OfferStatus.OFFERED)
                .values(
                    status=sa.bindparam("status"),
                    reason=sa.bindparam("reason"),
                    answered_at=sa.bindparam("answered_at"),
                ),
                [self._offer_updates[k] for k in sorted(self._offer_updates)],
            )
        dirty = [(cid, row) for cid, row in sorted(self._rows.items(), key=lambda item: item[0]) if row.dirty]
        if dirty:
            await self._write_conversations(dirty)
        if self._ended_assignments:
            await session.execute(
                sa.update(ASSIGNMENT)
                .where(ASSIGNMENT.c.id == sa.bindparam("b_id"), ASSIGNMENT.c.ended_at.is_(None))
                .values(ended_at=sa.bindparam("ended_at"), reason=sa.bindparam("reason")),
                [self._ended_assignments[k] for k in sorted(self._ended_assignments)],
            )
        if self._new_assignments:
            await session.execute(sa.insert(ASSIGNMENT), list(self._new_assignments.values()))
        if self._closed:
            # Any offer of a closed conversation left open (by an earlier router) ends too.
            await session.execute(
                sa.update(OFFER)
                .where(OFFER.c.conversation_id.in_(self._closed), OFFER.c.status == OfferStatus.OFFERED)
                .values(status=OfferStatus.WITHDRAWN, reason="conversation_closed")
            )
        for agent_id in sorted(self._agents):  # agents after conversations, by id
            values = self._agents[agent_id]
            await session.execute(sa.update(AGENT).where(AGENT.c.id == agent_id).values(**values))
        if self._decisions:
            await session.execute(
                sa.insert(DECISION),
                [
                    {
                        "id": new_id(),
                        "workspace_id": self.workspace_id,
                        "conversation_id": d.conversation_id,
                        "decided_at": d.at,
                        "outcome": d.outcome,
                        "explanation": dict(d.explanation),
                    }
                    for d in self._decisions
                ],
            )
        events: list[EventDraft] = []
        if self._alerts:
            ids = [new_id() for _ in self._alerts]
            rows = [
                {
                    "id": alert_id,
                    "workspace_id": self.workspace_id,
                    "kind": a.kind.value,
                    "queue_id": a.queue_id,
                    "conversation_id": a.conversation_id,
                    "raised_at": a.raised_at,
                    "details": dict(a.details or {}),
                }
                for alert_id, a in zip(ids, self._alerts, strict=True)
            ]
            raised = set(
                await insert_ignore(
                    session,
                    ALERT,
                    rows,
                    conflict=("kind", "conversation_id", "queue_id"),
                    returning=ALERT.c.id,
                )
            )
            events = [
                alert_raised(
                    self.workspace_id,
                    alert_id,
                    a.kind,
                    a.raised_at,
                    conversation_id=a.conversation_id,
                    queue_id=a.queue_id,
                    details=a.details,
                )
                for alert_id, a in zip(ids, self._alerts, strict=True)
                if alert_id in raised
            ]
        if self._facts or events:  # last: report rows after every other row (LOCK ORDER)
            await FactLog(session).append(self._facts, events=events)

    async def _write_conversations(self, dirty: list[tuple[ConversationId, _ConvRow]]) -> None:
        """One bulk UPDATE per shape of change (timestamps are set only by the writes that own them)."""
        base: dict[str, Any] = {
            "status": sa.bindparam("status"),
            "offer_id": sa.bindparam("offer_id"),
            "agent_id": sa.bindparam("agent_id"),
            "queue_id": sa.bindparam("queue_id"),
        }
        groups: dict[tuple[bool, bool, bool], list[dict[str, Any]]] = {}
        for cid, row in dirty:
            shape = (row.assigned_at is not None, row.closed_at is not None, row.auto_replied_at is not None)
            values: dict[str, Any] = {
                "b_id": cid,
                "status": row.status,
                "offer_id": row.offer_id,
                "agent_id": row.agent_id,
                "queue_id": row.queue_id,
            }
            if shape[0]:
                values["assigned_at"] = row.assigned_at
            if shape[1]:
                values["closed_at"] = row.closed_at
            if shape[2]:
                values["auto_replied_at"] = row.auto_replied_at
            groups.setdefault(shape, []).append(values)
        for (assigned, closed, replied), params in groups.items():
            columns = dict(base)
            if assigned:
                columns["assigned_at"] = sa.bindparam("assigned_at")
            if closed:
                columns["closed_at"] = sa.bindparam("closed_at")
            if replied:
                columns["auto_replied_at"] = sa.bindparam("auto_replied_at")
            await self.session.execute(
                sa.update(CONV).where(CONV.c.id == sa.bindparam("b_id")).values(**columns), params
            )


def _attachment_kinds(payload: Any) -> tuple[str, ...]:
    found = payload.get("attachments") if isinstance(payload, Mapping) else None
    if not isinstance(found, list):
        return ()
    return tuple(str(a["kind"]) for a in found if isinstance(a, Mapping) and "kind" in a)


def _first_words(text: str | None) -> str | None:
    if not text:
        return None
    flat = " ".join(text.split())
    if len(flat) <= PREVIEW_CHARS:
        return flat
    cut = flat[:PREVIEW_CHARS].rsplit(" ", 1)[0] or flat[:PREVIEW_CHARS]
    return cut + "…"
