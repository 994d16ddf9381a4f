"""Storage for replies: the outbound ``message`` rows, the facts a reply needs, delivery results.

The outbound rows are the outbox: a reply is a ``queued`` row written in the transaction that
decided it, due at ``due_at``.  Workers claim due rows (``claim_due``: ``FOR UPDATE SKIP LOCKED``
on PostgreSQL; one conditional ``UPDATE`` on SQLite, whose writers are serialized) by moving them
to ``sending`` with ``claimed_at`` as their lease; a lease nobody renewed (``expire_leases``)
makes the row ``unknown`` — never ``queued`` again, which could send it twice.  A conversation's
replies are claimed one at a time, in the order they were written, so a customer reads them in
that order.

``OutboundStore`` works inside the caller's session/transaction.  Rows come back as the small
frozen records below, never as ORM rows.  Times come back aware UTC (``storage.types.UtcDateTime``),
so callers always compare aware datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.delivery import UNCONFIRMED_REASON, DeliveryState
from core.facts import Fact, WorkAction
from core.ids import (
    AgentId,
    CampaignId,
    ChannelAccountId,
    ConversationId,
    CustomerId,
    IdentityId,
    MessageId,
    WorkspaceId,
)
from core.states import CUSTOMER_KINDS, ConversationStatus, MessageDirection, MessageKind
from storage.facts import FactLog, TrafficCount, count_traffic, traffic
from storage.tables import (
    CampaignRow,
    ChannelAccountRow,
    ConversationRow,
    IdentifierRow,
    MessageRow,
)

__all__ = [
    "CUSTOMER_KINDS",
    "Claimed",
    "ConversationFacts",
    "IdentifierFacts",
    "InboundRef",
    "OutboundRecord",
    "OutboundStore",
    "shown_error",
]

MSG = MessageRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
IDENT = IdentifierRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
ACCOUNT = ChannelAccountRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    id: ConversationId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    customer_id: CustomerId
    agent_id: AgentId | None
    status: ConversationStatus
    channel: str
    channel_account_id: ChannelAccountId | None
    identifier_id: IdentityId | None
    first_response_at: datetime | None


@dataclass(frozen=True, slots=True)
class IdentifierFacts:
    id: IdentityId
    customer_id: CustomerId
    kind: str
    value: str
    scope: str | None
    display_name: str | None


@dataclass(frozen=True, slots=True)
class InboundRef:
    """The customer's last message on one business address from one identity."""

    id: MessageId
    external_id: str | None
    created_at: datetime
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A timeline entry as the reply API shows it (inbound entries too, for the GET)."""

    id: MessageId
    workspace_id: WorkspaceId
    conversation_id: ConversationId | None
    customer_id: CustomerId | None
    identifier_id: IdentityId | None
    direction: MessageDirection
    kind: str
    channel: str
    channel_account_id: ChannelAccountId | None
    agent_id: AgentId | None
    text: str | None
    payload: Mapping[str, Any]
    external_id: str | None
    delivery_state: str | None
    error: Any
    created_at: datetime
    attempts: int = 0
    resend_of: MessageId | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker moved to ``sending``; ``attempt`` counts this one."""

    id: MessageId
    attempt: int


def shown_error(error: Any) -> dict[str, Any] | None:
    """One shape for the agent: a send failure is already ``{code, provider_code, message}``; a
    failed delivery status keeps the provider's list, summarised by its first entry."""
    if not error:
        return None
    if isinstance(error, dict):
        return error
    first = error[0] if isinstance(error, list) and error and isinstance(error[0], dict) else {}
    return {
        "code": "delivery_failed",
        "provider_code": first.get("code"),
        "message": first.get("message") or first.get("title") or "the provider could not deliver the message",
        "errors": error,
    }


def _record(row: Any) -> OutboundRecord:
    return OutboundRecord(
        id=MessageId(row.id),
        workspace_id=WorkspaceId(row.workspace_id),
        conversation_id=ConversationId(row.conversation_id) if row.conversation_id else None,
        customer_id=CustomerId(row.customer_id) if row.customer_id else None,
        identifier_id=IdentityId(row.identifier_id) if row.identifier_id else None,
        direction=MessageDirection(row.direction),
        kind=row.kind,
        channel=row.channel,
        channel_account_id=ChannelAccountId(row.channel_account_id) if row.channel_account_id else None,
        agent_id=AgentId(row.agent_id) if row.agent_id else None,
        text=row.text,
        payload=dict(row.payload or {}),
        external_id=row.external_id,
        delivery_state=row.delivery_state,
        error=row.error,
        created_at=row.created_at,
        attempts=int(row.attempts or 0),
        resend_of=MessageId(row.resend_of) if row.resend_of else None,
    )


class OutboundStore:
    """``traffic``: a list the caller appends to the traffic counters itself, later in its
    transaction (the pipeline's batch, at its flush); without it each outbound row is counted
    as it is written."""

    def __init__(self, session: AsyncSession, *, traffic: list[TrafficCount] | None = None):
        self.session = session
        self._traffic = traffic

    # ------------------------------------------------------------------ reading what a reply needs
    async def conversation(
        self, workspace_id: WorkspaceId, conversation_id: ConversationId
    ) -> ConversationFacts | None:
        """The conversation, only within ``workspace_id`` (another workspace's id is None)."""
        row = (
            await self.session.execute(
                sa.select(CONV).where(CONV.c.id == conversation_id, CONV.c.workspace_id == workspace_id)
            )
        ).first()
        if row is None:
            return None
        return ConversationFacts(
            id=ConversationId(row.id),
            workspace_id=WorkspaceId(row.workspace_id),
            campaign_id=CampaignId(row.campaign_id) if row.campaign_id else None,
            customer_id=CustomerId(row.customer_id),
            agent_id=AgentId(row.agent_id) if row.agent_id else None,
            status=ConversationStatus(row.status),
            channel=row.channel,
            channel_account_id=ChannelAccountId(row.channel_account_id) if row.channel_account_id else None,
            identifier_id=IdentityId(row.identifier_id) if row.identifier_id else None,
            first_response_at=row.first_response_at,
        )

    async def identifier(
        self, workspace_id: WorkspaceId, identifier_id: IdentityId
    ) -> IdentifierFacts | None:
        row = (
            await self.session.execute(
                sa.select(IDENT).where(IDENT.c.id == identifier_id, IDENT.c.workspace_id == workspace_id)
            )
        ).first()
        if row is None:
            return None
        return IdentifierFacts(
            id=IdentityId(row.id),
            customer_id=CustomerId(row.customer_id),
            kind=row.kind,
            value=row.value,
            scope=row.scope,
            display_name=row.display_name,
        )

    async def identifiers_of(
        self, workspace_id: WorkspaceId, customer_id: CustomerId
    ) -> list[IdentifierFacts]:
        rows = (
            await self.session.execute(
                sa.select(IDENT)
                .where(IDENT.c.workspace_id == workspace_id, IDENT.c.customer_id == customer_id)
                .order_by(IDENT.c.created_at.desc())
            )
        ).all()
        return [
            IdentifierFacts(
                IdentityId(r.id),
                CustomerId(r.customer_id),
                r.kind,
                r.value,
                r.scope,
                r.display_name,
            )
            for r in rows
        ]

    async def last_customer_message(
        self, account_id: ChannelAccountId, identifier_ids: Sequence[IdentityId]
    ) -> InboundRef | None:
        """The last message the customer wrote to this business address from these identities."""
        if not identifier_ids:
            return None
        row = (
            await self.session.execute(
                sa.select(MSG.c.id, MSG.c.external_id, MSG.c.created_at, MSG.c.payload)
                .where(
                    MSG.c.channel_account_id == account_id,
                    MSG.c.identifier_id.in_(list(identifier_ids)),
                    MSG.c.direction == MessageDirection.IN,
                    MSG.c.kind.in_(CUSTOMER_KINDS),
                )
                .order_by(MSG.c.created_at.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return InboundRef(MessageId(row.id), row.external_id, row.created_at, dict(row.payload or {}))

    async def last_account_of(
        self, customer_identifiers: Sequence[IdentityId], identifier_id: IdentityId | None = None
    ) -> ChannelAccountId | None:
        """The business address the customer last wrote to (from ``identifier_id`` if given)."""
        ids = [identifier_id] if identifier_id is not None else list(customer_identifiers)
        if not ids:
            return None
        row = (
            await self.session.execute(
                sa.select(MSG.c.channel_account_id)
                .where(
                    MSG.c.identifier_id.in_(ids),
                    MSG.c.direction == MessageDirection.IN,
                    MSG.c.kind.in_(CUSTOMER_KINDS),
                    MSG.c.channel_account_id.is_not(None),
                )
                .order_by(MSG.c.created_at.desc())
                .limit(1)
            )
        ).first()
        return ChannelAccountId(row.channel_account_id) if row is not None else None

    async def last_identifier_on(
        self, account_id: ChannelAccountId, customer_identifiers: Sequence[IdentityId]
    ) -> IdentityId | None:
        """Which of the customer's identities last wrote to this business address."""
        if not customer_identifiers:
            return None
        row = (
            await self.session.execute(
                sa.select(MSG.c.identifier_id)
                .where(
                    MSG.c.channel_account_id == account_id,
                    MSG.c.identifier_id.in_(list(customer_identifiers)),
                    MSG.c.direction == MessageDirection.IN,
                    MSG.c.kind.in_(CUSTOMER_KINDS),
                )
                .order_by(MSG.c.created_at.desc())
                .limit(1)
            )
        ).first()
        return IdentityId(row.identifier_id) if row is not None else None

    async def inbound_message(
        self, conversation_id: ConversationId, message_id: MessageId
    ) -> InboundRef | None:
        row = (
            await self.session.execute(
                sa.select(MSG.c.id, MSG.c.external_id, MSG.c.created_at, MSG.c.payload).where(
                    MSG.c.id == message_id,
                    MSG.c.conversation_id == conversation_id,
                    MSG.c.direction == MessageDirection.IN,
                )
            )
        ).first()
        if row is None:
            return None
        return InboundRef(MessageId(row.id), row.external_id, row.created_at, dict(row.payload or {}))

    async def campaign_manifest(self, campaign_id: CampaignId | None) -> dict[str, Any]:
        if campaign_id is None:
            return {}
        row = (
            await self.session.execute(sa.select(CAMPAIGN.c.manifest).where(CAMPAIGN.c.id == campaign_id))
        ).first()
        return dict(row.manifest or {}) if row is not None else {}

    async def account_name(self, account_id: ChannelAccountId) -> str | None:
        row = (
            await self.session.execute(sa.select(ACCOUNT.c.name).where(ACCOUNT.c.id == account_id))
        ).first()
        return str(row.name) if row is not None and row.name else None

    # ------------------------------------------------------------------ the outbound rows
    async def add_outbound(
        self,
        *,
        message_id: MessageId,
        workspace_id: WorkspaceId,
        conversation_id: ConversationId,
        customer_id: CustomerId,
        identifier_id: IdentityId,
        channel: str,
        account_id: ChannelAccountId,
        agent_id: AgentId | None,
        text: str | None,
        payload: Mapping[str, Any],
        at: datetime,
        campaign_id: CampaignId | None,
        resend_of: MessageId | None = None,
        replied_by: str | None = None,
    ) -> None:
        """The outbox row: ``queued``, due now; the caller's transaction commits it, with the
        row's count in the outbound traffic (``storage.facts.count_traffic``) and, for a
        person's reply (``replied_by``: the actor), its ``message.replied`` fact (details
        ``message_id``, ``first``: no reply of an agent came before it in the conversation)."""
        await self.session.execute(
            sa.insert(MSG).values(
                id=message_id,
                workspace_id=workspace_id,
                conversation_id=conversation_id,
                customer_id=customer_id,
                identifier_id=identifier_id,
                direction=MessageDirection.OUT,
                kind=MessageKind.MESSAGE,
                channel=channel,
                channel_account_id=account_id,
                external_id=None,
                text=text,
                payload=dict(payload),
                agent_id=agent_id,
                delivery_state=DeliveryState.QUEUED.value,
                error=None,
                created_at=at,
                stored_at=at,
                attempts=0,
                due_at=at,
                resend_of=resend_of,
            )
        )
        if replied_by is not None:
            earlier = (
                await self.session.execute(
                    sa.select(MSG.c.id)
                    .where(
                        MSG.c.conversation_id == conversation_id,
                        MSG.c.direction == MessageDirection.OUT,
                        MSG.c.agent_id.is_not(None),
                        MSG.c.resend_of.is_(None),
                        MSG.c.id != message_id,
                    )
                    .limit(1)
                )
            ).first()
            await FactLog(self.session).append(
                [
                    Fact(
                        WorkAction.REPLIED,
                        at,
                        replied_by,
                        workspace_id,
                        conversation_id=conversation_id,
                        customer_id=customer_id,
                        agent_id=agent_id,
                        campaign_id=campaign_id,
                        details={"message_id": str(message_id), "first": earlier is None},
                        dedupe=f"{message_id}:replied",
                    )
                ]
            )
        count = traffic(workspace_id, campaign_id, channel, MessageDirection.OUT, at)
        if self._traffic is not None:
            self._traffic.append(count)
        else:
            await count_traffic(self.session, [count])

    async def message(
        self, message_id: MessageId, *, workspace_id: WorkspaceId | None = None
    ) -> OutboundRecord | None:
        query = sa.select(MSG).where(MSG.c.id == message_id)
        if workspace_id is not None:
            query = query.where(MSG.c.workspace_id == workspace_id)
        row = (await self.session.execute(query)).first()
        return _record(row) if row is not None else None

    async def resent(self, message_id: MessageId) -> MessageId | None:
        """The row that resends ``message_id``, if there is one."""
        row = (await self.session.execute(sa.select(MSG.c.id).where(MSG.c.resend_of == message_id))).first()
        return MessageId(row.id) if row is not None else None

    # ------------------------------------------------------------------ the worker's steps
    async def claim_due(self, now: datetime, limit: int) -> list[Claimed]:
        """Move up to ``limit`` due ``queued`` rows to ``sending`` (lease ``claimed_at=now``).

        A conversation's replies leave one at a time in the order they were written: a row is
        claimed only while no other reply of its conversation is ``sending`` and none written
        before it is still ``queued`` (waiting for its retry, say).  A failed or unconfirmed
        reply holds nothing back."""
        other = MSG.alias("other")
        held_back = sa.exists().where(
            other.c.conversation_id == MSG.c.conversation_id,
            other.c.direction == MessageDirection.OUT,
            other.c.id != MSG.c.id,
            sa.or_(
                other.c.delivery_state == DeliveryState.SENDING.value,
                sa.and_(
                    other.c.delivery_state == DeliveryState.QUEUED.value,
                    sa.tuple_(other.c.created_at, other.c.stored_at, other.c.id)
                    < sa.tuple_(MSG.c.created_at, MSG.c.stored_at, MSG.c.id),
                ),
            ),
        )
        due = (
            sa.select(MSG.c.id)
            .where(
                MSG.c.delivery_state == DeliveryState.QUEUED.value,
                MSG.c.due_at <= now,
                MSG.c.direction == MessageDirection.OUT,
                ~held_back,
            )
            .order_by(MSG.c.due_at, MSG.c.created_at, MSG.c.stored_at)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)  # two workers never wait on each other
        rows = (
            await self.session.execute(
                sa.update(MSG)
                .where(
                    MSG.c.id.in_(due.scalar_subquery()), MSG.c.delivery_state == DeliveryState.QUEUED.value
                )
                .values(
                    delivery_state=DeliveryState.SENDING.value, claimed_at=now, attempts=MSG.c.attempts + 1
                )
                .returning(MSG.c.id, MSG.c.attempts)
            )
        ).all()
        return [Claimed(MessageId(r.id), int(r.attempts)) for r in rows]

    async def renew(self, message_ids: Sequence[MessageId], now: datetime) -> None:
        """The worker still holds these ``sending`` rows (a slow provider call)."""
        if message_ids:
            await self.session.execute(
                sa.update(MSG)
                .where(MSG.c.id.in_(list(message_ids)), MSG.c.delivery_state == DeliveryState.SENDING.value)
                .values(claimed_at=now)
            )

    async def expire_leases(self, before: datetime) -> list[OutboundRecord]:
        """``sending`` rows whose lease ended before ``before`` (their worker is gone) → ``unknown``."""
        rows = (
            await self.session.execute(
                sa.update(MSG)
                .where(MSG.c.delivery_state == DeliveryState.SENDING.value, MSG.c.claimed_at < before)
                .values(delivery_state=DeliveryState.UNKNOWN.value, error=dict(UNCONFIRMED_REASON))
                .returning(*MSG.c)
            )
        ).all()
        return [_record(r) for r in rows]

    async def mark_sent(self, message_id: MessageId, external_id: str) -> bool:
        """Record the provider's id.  A ``sending`` row (or one already declared ``unknown``)
        becomes ``sent``; a row a delivery status already moved on only gets the id."""
        result = await self.session.execute(
            sa.update(MSG)
            .where(
                MSG.c.id == message_id,
                MSG.c.delivery_state.in_([DeliveryState.SENDING.value, DeliveryState.UNKNOWN.value]),
            )
            .values(external_id=external_id, delivery_state=DeliveryState.SENT.value, error=None)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        await self.session.execute(
            sa.update(MSG)
            .where(MSG.c.id == message_id, MSG.c.external_id.is_(None))
            .values(external_id=external_id)
        )
        return False

    async def mark_failed(self, message_id: MessageId, error: Mapping[str, Any]) -> None:
        await self.session.execute(
            sa.update(MSG)
            .where(
                MSG.c.id == message_id,
                MSG.c.delivery_state.in_([DeliveryState.QUEUED.value, DeliveryState.SENDING.value]),
            )
            .values(delivery_state=DeliveryState.FAILED.value, error=dict(error))
        )

    async def retry_later(self, message_id: MessageId, due_at: datetime, error: Mapping[str, Any]) -> None:
        """A transient failure: back to ``queued``, due again at ``due_at``."""
        await self.session.execute(
            sa.update(MSG)
            .where(MSG.c.id == message_id, MSG.c.delivery_state == DeliveryState.SENDING.value)
            .values(
                delivery_state=DeliveryState.QUEUED.value, due_at=due_at, claimed_at=None, error=dict(error)
            )
        )

    async def reconcile(
        self, channel: str, message_id: MessageId, external_id: str, status: str, errors: Sequence[Any]
    ) -> bool:
        """A delivery status that names our row by its client reference (WhatsApp's
        ``biz_opaque_callback_data``) although we never learnt the provider's id: an ``unknown``
        or still ``sending`` row takes the id and the status."""
        result = await self.session.execute(
            sa.update(MSG)
            .where(
                MSG.c.id == message_id,
                MSG.c.channel == channel,
                MSG.c.direction == MessageDirection.OUT,
                MSG.c.external_id.is_(None),
                MSG.c.delivery_state.in_([DeliveryState.SENDING.value, DeliveryState.UNKNOWN.value]),
            )
            .values(external_id=external_id, delivery_state=status, error=list(errors) or None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def first_response(self, conversation_id: ConversationId, at: datetime) -> None:
        """The conversation's first human reply (set once)."""
        await self.session.execute(
            sa.update(CONV)
            .where(CONV.c.id == conversation_id, CONV.c.first_response_at.is_(None))
            .values(first_response_at=at)
        )
