"""Everything a workspace holds about one person, read for an export (``CustomerData``).

Set-based: one query per table, whatever the number of conversations or messages — the
customer rows (the live one and every id merged into it, followed transitively), identifiers,
identity blocks, evidence, suggestions, conversations (with their campaign's and queue's names),
assignments, messages, raw deliveries, and the audit entries.  Reads only, in the caller's
session; an id of another workspace is ``NotFound``, a merged-away id stands for its survivor
(as ``IdentityStore.live_customer`` reads it).

Raw webhook deliveries concern the person when one of the person's messages was parsed from
them (``message.raw_delivery_id``).  A delivery that also carried someone else's message (a
provider may batch several senders in one webhook) is listed with its body withheld
(``shared``).  Delivery-status webhooks are not linked to a message row and are not found.

Every export is recorded (``export_customer``): after the read, one ``customer.export`` row in
``audit_log`` — who (the token's agent, ``token:<id>`` or ``cli``), when (the bundle's
``exported_at``), the live and the requested customer id, and counts only, never a value of
the person.  The read runs in a read session and the row is written in its own transaction
right after, so the bundle lists the audit entries that existed before it (earlier exports
included) and not its own; a failed write fails the export (no bundle without its record).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.ids import CustomerId, WorkspaceId, new_id
from storage.database import Database
from storage.media import MediaRecord, MediaRows
from storage.outbound import shown_error
from storage.tables import (
    AssignmentRow,
    AuditRow,
    CampaignRow,
    ConversationRow,
    CustomerRow,
    EvidenceRow,
    IdentifierRow,
    IdentityAuditCustomerRow,
    IdentityBlockRow,
    MessageRow,
    QueueRow,
    RawDeliveryRow,
    SuggestionRow,
    WorkspaceRow,
)

__all__ = [
    "EXPORT_ACTION",
    "AssignmentFacts",
    "AuditFacts",
    "BlockFacts",
    "ConversationFacts",
    "CustomerData",
    "CustomerFacts",
    "EvidenceFacts",
    "ExportStore",
    "Exported",
    "IdentifierFacts",
    "MessageFacts",
    "RawDeliveryFacts",
    "SuggestionFacts",
    "export_customer",
]

WS = WorkspaceRow.__table__  # type: ignore[attr-defined]
CUST = CustomerRow.__table__  # type: ignore[attr-defined]
IDENT = IdentifierRow.__table__  # type: ignore[attr-defined]
BLOCK = IdentityBlockRow.__table__  # type: ignore[attr-defined]
EVID = EvidenceRow.__table__  # type: ignore[attr-defined]
SUGG = SuggestionRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]
ASSIGN = AssignmentRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
RAW = RawDeliveryRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
AUDCUST = IdentityAuditCustomerRow.__table__  # type: ignore[attr-defined]

_MAX_MERGE_DEPTH = 16  # as IdentityStore.live_customer follows merged_into

EXPORT_ACTION = "customer.export"  # as storage.erasure's customer.erase and customer.legal_hold


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    id: uuid.UUID
    display_name: str | None
    created_at: datetime
    merged_into: uuid.UUID | None
    active: bool
    legal_hold: str | None
    erased_at: datetime | None


@dataclass(frozen=True, slots=True)
class IdentifierFacts:
    id: uuid.UUID
    kind: str
    key: str
    value: str
    scope: str | None
    customer_id: uuid.UUID
    home_customer_id: uuid.UUID
    display_name: str | None
    display_names: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BlockFacts:
    key: str
    reason: str
    detail: str
    actor: str
    created_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None


@dataclass(frozen=True, slots=True)
class EvidenceFacts:
    id: uuid.UUID
    a_key: str
    b_key: str
    source: str
    actor: str
    reference: str | None
    suggestion_id: uuid.UUID | None
    created_at: datetime
    retracted_at: datetime | None
    retracted_by: str | None
    retraction_audit_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class SuggestionFacts:
    id: uuid.UUID
    a_kind: str
    a_key: str
    a_value: str
    b_kind: str
    b_key: str
    b_value: str
    source: str
    actor: str
    reference: str | None
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


@dataclass(frozen=True, slots=True)
class AssignmentFacts:
    conversation_id: uuid.UUID
    agent_id: uuid.UUID
    assigned_at: datetime
    ended_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    id: uuid.UUID
    customer_id: uuid.UUID
    campaign_id: uuid.UUID | None
    campaign_name: str | None
    queue_id: uuid.UUID | None
    queue_name: str | None
    agent_id: uuid.UUID | None
    status: str
    channel: str
    channel_account_id: uuid.UUID | None
    identifier_id: uuid.UUID | None
    origin_identifier_id: uuid.UUID | None
    priority: int
    opened_at: datetime
    enqueued_at: datetime | None
    assigned_at: datetime | None
    first_response_at: datetime | None
    closed_at: datetime | None
    last_customer_message_at: datetime | None
    auto_replied_at: datetime | None
    follow_up_at: datetime | None
    disposition: dict[str, Any] | None
    assignments: tuple[AssignmentFacts, ...]


@dataclass(frozen=True, slots=True)
class MessageFacts:
    id: uuid.UUID
    conversation_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    identifier_id: uuid.UUID | None
    direction: str
    kind: str
    channel: str
    channel_account_id: uuid.UUID | None
    external_id: str | None
    text: str | None
    payload: dict[str, Any]
    agent_id: uuid.UUID | None
    delivery_state: str | None
    error: dict[str, Any] | None
    attempts: int
    resend_of: uuid.UUID | None
    raw_delivery_id: uuid.UUID | None
    created_at: datetime
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class RawDeliveryFacts:
    id: uuid.UUID
    channel: str
    received_at: datetime
    status: str
    error: str | None
    headers: dict[str, Any]
    body: bytes | None  # None: withheld, the delivery also carried other people's messages
    body_sha256: str
    shared: bool


@dataclass(frozen=True, slots=True)
class AuditFacts:
    id: uuid.UUID
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerData:
    """What ``ExportStore.customer_data`` found: the live customer and everything linked to it."""

    workspace_id: WorkspaceId
    workspace_slug: str
    requested_id: uuid.UUID
    customer: CustomerFacts
    merged_customers: tuple[CustomerFacts, ...]  # merged into it, directly or through another
    identifiers: tuple[IdentifierFacts, ...]
    blocks: tuple[BlockFacts, ...]
    evidence: tuple[EvidenceFacts, ...]
    suggestions: tuple[SuggestionFacts, ...]
    conversations: tuple[ConversationFacts, ...]
    messages: tuple[MessageFacts, ...]
    raw_deliveries: tuple[RawDeliveryFacts, ...]
    audit: tuple[AuditFacts, ...]
    media: tuple[MediaRecord, ...] = ()  # the person's attachments kept in the media store


@dataclass(frozen=True, slots=True)
class Exported:
    """An export as ``export_customer`` made it: what was read, when, and its audit entry."""

    data: CustomerData
    exported_at: datetime
    audit_id: uuid.UUID


def _customer(r: Any) -> CustomerFacts:
    return CustomerFacts(
        id=r.id,
        display_name=r.display_name,
        created_at=r.created_at,
        merged_into=r.merged_into,
        active=bool(r.active),
        legal_hold=r.legal_hold,
        erased_at=r.erased_at,
    )


def _error(value: Any) -> dict[str, Any] | None:
    return shown_error(value)


class ExportStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def workspace_slug(self, ws: WorkspaceId) -> str:
        slug = (await self.session.execute(sa.select(WS.c.slug).where(WS.c.id == ws))).scalar()
        if slug is None:
            raise NotFound("no such workspace", field="workspace")
        return str(slug)

    async def customer_of_key(self, ws: WorkspaceId, key: str) -> CustomerId | None:
        """The customer holding the identifier ``key`` (``None``: no one in the workspace)."""
        found = (
            await self.session.execute(
                sa.select(IDENT.c.customer_id).where(IDENT.c.workspace_id == ws, IDENT.c.key == key)
            )
        ).scalar()
        return CustomerId(found) if found is not None else None

    async def _live(self, ws: WorkspaceId, requested: uuid.UUID) -> CustomerFacts:
        current = requested
        for _ in range(_MAX_MERGE_DEPTH):
            row = (
                await self.session.execute(
                    sa.select(CUST).where(CUST.c.workspace_id == ws, CUST.c.id == current)
                )
            ).first()
            if row is None:
                break
            if row.merged_into is None:
                return _customer(row)
            current = row.merged_into
        raise NotFound("no such customer", field="customer_id")

    async def _merged_into(self, ws: WorkspaceId, live: uuid.UUID) -> list[CustomerFacts]:
        """Every customer merged into ``live``, directly or through another (one recursive query)."""
        merged = (
            sa.select(CUST.c.id)
            .where(CUST.c.workspace_id == ws, CUST.c.merged_into == live)
            .cte("merged", recursive=True)
        )
        earlier = merged.alias("earlier")
        merged = merged.union(
            sa.select(CUST.c.id).where(CUST.c.workspace_id == ws, CUST.c.merged_into == earlier.c.id)
        )
        rows = await self.session.execute(
            sa.select(CUST)
            .where(CUST.c.id.in_(sa.select(merged.c.id)))
            .order_by(CUST.c.created_at, CUST.c.id)
        )
        return [_customer(r) for r in rows if r.id != live]

    async def customer_data(self, ws: WorkspaceId, requested: uuid.UUID) -> CustomerData:
        s = self.session
        slug = await self.workspace_slug(ws)
        live = await self._live(ws, requested)
        merged = await self._merged_into(ws, live.id)
        ids = [live.id, *(c.id for c in merged)]

        identifiers = [
            IdentifierFacts(
                id=r.id,
                kind=r.kind,
                key=r.key,
                value=r.value,
                scope=r.scope,
                customer_id=r.customer_id,
                home_customer_id=r.home_customer_id,
                display_name=r.display_name,
                display_names=tuple(r.display_names or ()),
                created_at=r.created_at,
            )
            for r in await s.execute(
                sa.select(IDENT)
                .where(IDENT.c.workspace_id == ws, IDENT.c.customer_id.in_(ids))
                .order_by(IDENT.c.created_at, IDENT.c.key)
            )
        ]
        keys = [i.key for i in identifiers]
        blocks = [
            BlockFacts(r.key, r.reason, r.detail or "", r.actor, r.created_at, r.lifted_at, r.lifted_by)
            for r in await s.execute(
                sa.select(BLOCK)
                .where(BLOCK.c.workspace_id == ws, BLOCK.c.key.in_(keys))
                .order_by(BLOCK.c.created_at, BLOCK.c.key)
            )
        ]
        evidence = [
            EvidenceFacts(
                id=r.id,
                a_key=r.a_key,
                b_key=r.b_key,
                source=r.source,
                actor=r.actor,
                reference=r.reference,
                suggestion_id=r.suggestion_id,
                created_at=r.created_at,
                retracted_at=r.retracted_at,
                retracted_by=r.retracted_by,
                retraction_audit_id=r.retraction_audit_id,
            )
            for r in await s.execute(
                sa.select(EVID)
                .where(EVID.c.workspace_id == ws, sa.or_(EVID.c.a_key.in_(keys), EVID.c.b_key.in_(keys)))
                .order_by(EVID.c.created_at, EVID.c.id)
            )
        ]
        suggestions = [
            SuggestionFacts(
                id=r.id,
                a_kind=r.a_kind,
                a_key=r.a_key,
                a_value=r.a_value,
                b_kind=r.b_kind,
                b_key=r.b_key,
                b_value=r.b_value,
                source=r.source,
                actor=r.actor,
                reference=r.reference,
                status=r.status,
                created_at=r.created_at,
                decided_at=r.decided_at,
                decided_by=r.decided_by,
            )
            for r in await s.execute(
                sa.select(SUGG)
                .where(SUGG.c.workspace_id == ws, sa.or_(SUGG.c.a_key.in_(keys), SUGG.c.b_key.in_(keys)))
                .order_by(SUGG.c.created_at, SUGG.c.id)
            )
        ]

        conversation_rows = (
            await s.execute(
                sa.select(CONV, CAMPAIGN.c.name.label("campaign_name"), QUEUE.c.name.label("queue_name"))
                .select_from(
                    CONV.outerjoin(CAMPAIGN, CAMPAIGN.c.id == CONV.c.campaign_id).outerjoin(
                        QUEUE, QUEUE.c.id == CONV.c.queue_id
                    )
                )
                .where(CONV.c.workspace_id == ws, CONV.c.customer_id.in_(ids))
                .order_by(CONV.c.opened_at, CONV.c.id)
            )
        ).all()
        # Later statements take the conversations as a subquery, never as a list of ids: a
        # person with thousands of them stays within SQLite's and asyncpg's parameter limits.
        their_conversations = sa.select(CONV.c.id).where(
            CONV.c.workspace_id == ws, CONV.c.customer_id.in_(ids)
        )
        assignments: dict[uuid.UUID, list[AssignmentFacts]] = {}
        if conversation_rows:
            for r in await s.execute(
                sa.select(ASSIGN)
                .where(ASSIGN.c.workspace_id == ws, ASSIGN.c.conversation_id.in_(their_conversations))
                .order_by(ASSIGN.c.assigned_at, ASSIGN.c.id)
            ):
                assignments.setdefault(r.conversation_id, []).append(
                    AssignmentFacts(r.conversation_id, r.agent_id, r.assigned_at, r.ended_at, r.reason)
                )
        conversations = [
            ConversationFacts(
                id=r.id,
                customer_id=r.customer_id,
                campaign_id=r.campaign_id,
                campaign_name=r.campaign_name,
                queue_id=r.queue_id,
                queue_name=r.queue_name,
                agent_id=r.agent_id,
                status=r.status,
                channel=r.channel,
                channel_account_id=r.channel_account_id,
                identifier_id=r.identifier_id,
                origin_identifier_id=r.origin_identifier_id,
                priority=r.priority,
                opened_at=r.opened_at,
                enqueued_at=r.enqueued_at,
                assigned_at=r.assigned_at,
                first_response_at=r.first_response_at,
                closed_at=r.closed_at,
                last_customer_message_at=r.last_customer_message_at,
                auto_replied_at=r.auto_replied_at,
                follow_up_at=r.follow_up_at,
                disposition=dict(r.disposition) if r.disposition is not None else None,
                assignments=tuple(assignments.get(r.id, ())),
            )
            for r in conversation_rows
        ]

        # A message is the person's when the store attributes it to one of their ids (every
        # writer sets customer_id, and an unmerge re-points the moved identifiers' messages);
        # one without a customer counts when it is in one of their conversations.  A message of
        # someone else's in one of their conversations is not exported.
        ours = MSG.c.customer_id.in_(ids)
        if conversation_rows:
            ours = sa.or_(
                ours, sa.and_(MSG.c.customer_id.is_(None), MSG.c.conversation_id.in_(their_conversations))
            )
        messages = [
            MessageFacts(
                id=r.id,
                conversation_id=r.conversation_id,
                customer_id=r.customer_id,
                identifier_id=r.identifier_id,
                direction=r.direction,
                kind=r.kind,
                channel=r.channel,
                channel_account_id=r.channel_account_id,
                external_id=r.external_id,
                text=r.text,
                payload=dict(r.payload or {}),
                agent_id=r.agent_id,
                delivery_state=r.delivery_state,
                error=_error(r.error),
                attempts=int(r.attempts or 0),
                resend_of=r.resend_of,
                raw_delivery_id=r.raw_delivery_id,
                created_at=r.created_at,
                stored_at=r.stored_at,
            )
            for r in await s.execute(
                sa.select(MSG).where(MSG.c.workspace_id == ws, ours).order_by(MSG.c.created_at, MSG.c.id)
            )
        ]
        linked = (
            sa.select(MSG.c.raw_delivery_id)
            .where(MSG.c.workspace_id == ws, ours, MSG.c.raw_delivery_id.is_not(None))
            .correlate(None)  # used inside a query of the message table: never correlated with it
        )
        raw = await self._raw_deliveries(ids, linked) if any(m.raw_delivery_id for m in messages) else []
        audit = await self._audit(ws, ids, keys)
        return CustomerData(
            workspace_id=ws,
            workspace_slug=slug,
            requested_id=requested,
            customer=live,
            merged_customers=tuple(merged),
            identifiers=tuple(identifiers),
            blocks=tuple(blocks),
            evidence=tuple(evidence),
            suggestions=tuple(suggestions),
            conversations=tuple(conversations),
            messages=tuple(messages),
            raw_deliveries=tuple(raw),
            audit=tuple(audit),
            media=tuple(await MediaRows(self.session).of_customers(ids)),
        )

    async def record_export(
        self, data: CustomerData, *, actor: str, now: datetime, token_id: str | None = None
    ) -> uuid.UUID:
        """Write the ``customer.export`` audit row of ``data``: ids and counts, nothing of the person."""
        details: dict[str, Any] = {
            "requested_id": str(data.requested_id),
            "customers": [str(data.customer.id), *(str(c.id) for c in data.merged_customers)],
            "counts": {
                "identifiers": len(data.identifiers),
                "evidence": len(data.evidence),
                "suggestions": len(data.suggestions),
                "conversations": len(data.conversations),
                "messages": len(data.messages),
                "raw_deliveries": len(data.raw_deliveries),
                "audit_entries": len(data.audit),
            },
        }
        if token_id is not None:
            details["token_id"] = token_id
        audit_id = new_id()
        await self.session.execute(
            sa.insert(AUDIT).values(
                id=audit_id,
                workspace_id=data.workspace_id,
                at=now,
                actor=actor[:200],
                action=EXPORT_ACTION,
                subject_type="customer",
                subject_id=str(data.customer.id),
                details=details,
            )
        )
        return audit_id

    async def _raw_deliveries(
        self, customers: Sequence[uuid.UUID], linked: sa.Select[Any]
    ) -> list[RawDeliveryFacts]:
        """The raw deliveries of the ``linked`` subquery's ids, and which of them also carried a
        message of someone else."""
        s = self.session
        shared = {
            r
            for (r,) in await s.execute(
                sa.select(MSG.c.raw_delivery_id)
                .where(  # any workspace's: one webhook may carry several business accounts
                    MSG.c.raw_delivery_id.in_(linked),
                    sa.or_(MSG.c.customer_id.is_(None), MSG.c.customer_id.not_in(list(customers))),
                )
                .distinct()
            )
        }
        return [
            RawDeliveryFacts(
                id=r.id,
                channel=r.channel,
                received_at=r.received_at,
                status=r.status,
                error=r.error,
                headers=dict(r.headers or {}),
                body=None if r.id in shared else bytes(r.body) if r.body is not None else None,
                body_sha256=r.body_sha256,
                shared=r.id in shared,
            )
            for r in await s.execute(
                sa.select(RAW)
                .where(RAW.c.id.in_(linked))  # linked from this workspace's messages
                .order_by(RAW.c.received_at, RAW.c.id)
            )
        ]

    async def _audit(
        self, ws: WorkspaceId, customers: Sequence[uuid.UUID], keys: Sequence[str]
    ) -> list[AuditFacts]:
        """Audit entries indexed for any of the customers (the identity audit), or whose subject
        is one of the customers or one of their identifiers."""
        indexed = sa.select(AUDCUST.c.audit_id).where(
            AUDCUST.c.workspace_id == ws, AUDCUST.c.customer_id.in_(list(customers))
        )
        about = sa.or_(
            AUDIT.c.id.in_(indexed),
            sa.and_(AUDIT.c.subject_type == "customer", AUDIT.c.subject_id.in_([str(c) for c in customers])),
        )
        if keys:
            about = sa.or_(
                about, sa.and_(AUDIT.c.subject_type == "identifier", AUDIT.c.subject_id.in_(list(keys)))
            )
        return [
            AuditFacts(r.id, r.at, r.actor, r.action, r.subject_type, r.subject_id, dict(r.details or {}))
            for r in await self.session.execute(
                sa.select(AUDIT).where(AUDIT.c.workspace_id == ws, about).order_by(AUDIT.c.at, AUDIT.c.id)
            )
        ]


async def export_customer(
    database: Database,
    ws: WorkspaceId,
    requested: uuid.UUID,
    *,
    actor: str,
    clock: Callable[[], datetime],
    token_id: str | None = None,
) -> Exported:
    """Read everything about the person, then record the export (``customer.export``) at
    ``clock()``, the bundle's ``exported_at``.  The read's session holds no write lock; the audit
    row is one short transaction after it."""
    async with database.session() as session:
        data = await ExportStore(session).customer_data(ws, requested)
    now = clock()
    async with database.transaction() as session:
        audit_id = await ExportStore(session).record_export(data, actor=actor, now=now, token_id=token_id)
    return Exported(data=data, exported_at=now, audit_id=audit_id)
