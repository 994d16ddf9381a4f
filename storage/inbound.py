"""Storage for the inbound pipeline: raw deliveries, senders, conversations, timeline entries.

``InboundStore`` works inside the caller's transaction (one per raw delivery).  Senders are
resolved through the identity graph (``storage.identity_store``): two workers meeting the
same new identifier at once never create two customers — identifiers are unique per
(workspace, key); the loser of the race rolls back its savepoint, reloads and resolves again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.ids import (
    AgentId,
    CampaignId,
    ChannelAccountId,
    ConversationId,
    CustomerId,
    IdentityId,
    MessageId,
    QueueId,
    RawDeliveryId,
    WorkspaceId,
    new_id,
)
from core.records import OpenConversation, ResolvedSender, StatusApplied
from core.states import ConversationStatus, DeliveryState, MessageDirection, RawDeliveryStatus
from core.text import storable
from identity import IdentityPolicy, Observation, carries_new_evidence
from storage.identity_store import IdentityStore
from storage.tables import CampaignRow, ConversationRow, MessageRow, QueueRow, RawDeliveryRow
from storage.upsert import insert_ignore

__all__ = ["InboundStore"]

RAW = RawDeliveryRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]

# How far a provider's delivery status goes: a status never moves a row back.  ``played`` (a
# voice note heard) ranks with ``read``, ``deleted`` with ``failed``; any other state counts 0.
_STATE_ORDER: dict[str, int] = {
    DeliveryState.QUEUED: 0,
    DeliveryState.SENT: 1,
    DeliveryState.DELIVERED: 2,
    DeliveryState.READ: 3,
    "played": 3,
    DeliveryState.FAILED: 4,
    "deleted": 4,
}


class InboundStore:
    """``customer_wrote`` updates wait for ``flush`` (the end of the caller's batch), which writes
    them by conversation id: the lock order the router shares (``storage.routing``)."""

    def __init__(self, session: AsyncSession):
        self.session = session
        self._wrote: dict[ConversationId, dict[str, Any]] = {}

    async def flush(self) -> None:
        """Write the conversation updates held back so far, by id; call before the commit."""
        wrote, self._wrote = self._wrote, {}
        for conversation_id in sorted(wrote):
            await self.session.execute(
                sa.update(CONV).where(CONV.c.id == conversation_id).values(**wrote[conversation_id])
            )

    async def record_raw(
        self,
        raw_id: RawDeliveryId,
        channel: str,
        received_at: datetime,
        headers: Mapping[str, str],
        body: bytes,
        body_sha256: str,
        *,
        workspace_id: WorkspaceId | None = None,
        status: str = RawDeliveryStatus.PROCESSED,
        error: str | None = None,
    ) -> bool:
        """Keep the delivery (with what processing it will say, known before it starts: the
        same transaction commits both); False when the very same body was already kept.

        The body is kept byte for byte (``bytea`` / ``BLOB``: a NUL or a lone surrogate escaped
        in its JSON is stored as received); the headers are JSON and are made storable
        (``core.text``)."""
        new = await insert_ignore(
            self.session,
            RAW,
            [
                {
                    "id": raw_id,
                    "channel": channel,
                    "received_at": received_at,
                    "headers": storable(dict(headers)),
                    "body": body,
                    "body_sha256": body_sha256,
                    "workspace_id": workspace_id,
                    "status": status,
                    "error": error,
                }
            ],
            conflict=("channel", "body_sha256"),
            returning=RAW.c.id,
        )
        return bool(new)

    async def resolve_sender(
        self,
        workspace_id: WorkspaceId,
        observation: Observation,
        now: datetime,
        *,
        policy: IdentityPolicy | None = None,
        display_name: str | None = None,
    ) -> ResolvedSender:
        """Resolve the sender through the identity graph (``IdentityStore.resolve``): evidence
        recorded, deterministic merges applied, suggestions stored — in a savepoint retried on
        collisions, so two workers meeting the same new identifier never create two customers."""
        identities = IdentityStore(self.session)
        known = await identities.known_sender(workspace_id, observation.sender.key)
        partners = {v.key for v in observation.verified}
        linked = (
            await identities.linked_keys(workspace_id, observation.sender.key, partners)
            if known is not None and partners and not observation.stated
            else set()
        )
        if known is not None and not carries_new_evidence(observation, known.display_names, linked):
            # Most traffic: a known customer writing again.  One read instead of the graph.
            customer_id, created = known.customer_id, False
        else:
            resolution = await identities.resolve(workspace_id, observation, now, policy=policy)
            customer_id, created = resolution.customer_id, resolution.created_customer
            known = await identities.known_sender(workspace_id, observation.sender.key)
            if known is None:  # resolve() always writes the sender's identifier
                raise NotFound("the sender's identifier was not stored", field="sender")
        if display_name and display_name[:200] != known.display_name:
            await identities.remember_display_name(
                workspace_id, observation.sender.key, customer_id, display_name
            )
        return ResolvedSender(customer_id, known.identifier_id, created=created)

    async def open_conversation_of(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId | None, customer_id: CustomerId
    ) -> OpenConversation | None:
        """The customer's open conversation with this campaign, on any channel."""
        campaign_match = CONV.c.campaign_id == campaign_id if campaign_id else CONV.c.campaign_id.is_(None)
        row = (
            await self.session.execute(
                sa.select(CONV.c.id, CONV.c.status, CONV.c.triage_attempts, CONV.c.agent_id)
                .where(
                    CONV.c.workspace_id == workspace_id,
                    CONV.c.customer_id == customer_id,
                    campaign_match,
                    CONV.c.status != ConversationStatus.CLOSED,
                )
                .order_by(CONV.c.opened_at.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        return OpenConversation(
            ConversationId(row.id),
            ConversationStatus(row.status),
            int(row.triage_attempts or 0),
            AgentId(row.agent_id) if row.agent_id else None,
        )

    async def open_conversation(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId | None,
        customer_id: CustomerId,
        channel: str,
        account_id: ChannelAccountId,
        at: datetime,
        identifier_id: IdentityId | None = None,
        *,
        triage: bool = False,
    ) -> ConversationId:
        """A new conversation; ``identifier_id`` (the sender) is its origin — an unmerge moves
        the conversation with it — and its first reply target.  ``triage``: it waits for the
        customer's answer to the menu before it is queued (the router does not see it)."""
        conversation_id = ConversationId(new_id())
        await self.session.execute(
            sa.insert(CONV).values(
                id=conversation_id,
                workspace_id=workspace_id,
                campaign_id=campaign_id,
                customer_id=customer_id,
                status=ConversationStatus.TRIAGE if triage else ConversationStatus.WAITING,
                channel=channel,
                channel_account_id=account_id,
                identifier_id=identifier_id,
                origin_identifier_id=identifier_id,
                priority=5,
                opened_at=at,
                enqueued_at=None if triage else at,
                last_customer_message_at=at,
            )
        )
        return conversation_id

    async def triage_attempt(self, conversation_id: ConversationId, attempts: int) -> None:
        """One more invalid answer to the menu."""
        await self.session.execute(
            sa.update(CONV)
            .where(CONV.c.id == conversation_id, CONV.c.status == ConversationStatus.TRIAGE)
            .values(triage_attempts=attempts)
        )

    async def leave_triage(
        self,
        conversation_id: ConversationId,
        queue_id: QueueId | None,
        at: datetime,
        *,
        attempts: int | None = None,
    ) -> None:
        """The conversation waits in ``queue_id`` from ``at`` (None: the router picks the account's
        default queue)."""
        values: dict[str, Any] = {
            "status": ConversationStatus.WAITING,
            "queue_id": queue_id,
            "enqueued_at": at,
        }
        if attempts is not None:
            values["triage_attempts"] = attempts
        await self.session.execute(
            sa.update(CONV)
            .where(CONV.c.id == conversation_id, CONV.c.status == ConversationStatus.TRIAGE)
            .values(**values)
        )

    async def queue_named(self, campaign_id: CampaignId | None, name: str) -> QueueId | None:
        """The active queue ``name`` of the campaign."""
        if campaign_id is None:
            return None
        found = (
            await self.session.execute(
                sa.select(QUEUE.c.id).where(
                    QUEUE.c.campaign_id == campaign_id, QUEUE.c.name == name, QUEUE.c.active.is_(True)
                )
            )
        ).scalar()
        return QueueId(found) if found is not None else None

    async def campaign_manifest(self, campaign_id: CampaignId) -> Mapping[str, Any]:
        """The applied manifest of a campaign (empty when there is none)."""
        manifest = (
            await self.session.execute(sa.select(CAMPAIGN.c.manifest).where(CAMPAIGN.c.id == campaign_id))
        ).scalar()
        return dict(manifest or {})

    async def campaign_version(self, campaign_id: CampaignId) -> int | None:
        found = (
            await self.session.execute(sa.select(CAMPAIGN.c.version).where(CAMPAIGN.c.id == campaign_id))
        ).scalar()
        return int(found) if found is not None else None

    async def customer_wrote(
        self,
        conversation_id: ConversationId,
        channel: str,
        account_id: ChannelAccountId,
        identifier_id: IdentityId,
        at: datetime,
    ) -> None:
        """The conversation continues on the channel the customer last used; its window restarts
        (written at ``flush``; the latest message of the batch wins)."""
        self._wrote[conversation_id] = {
            "last_customer_message_at": at,
            "channel": channel,
            "channel_account_id": account_id,
            "identifier_id": identifier_id,
        }

    async def add_inbound(
        self,
        *,
        workspace_id: WorkspaceId,
        conversation_id: ConversationId | None,
        sender: ResolvedSender,
        kind: str,
        channel: str,
        account_id: ChannelAccountId,
        external_id: str,
        text: str | None,
        payload: dict[str, Any],
        created_at: datetime,
        stored_at: datetime,
        raw_delivery_id: RawDeliveryId | None,
    ) -> MessageId | None:
        """A timeline entry, its id; None when that provider id was already stored (a redelivery)."""
        inserted = await insert_ignore(
            self.session,
            MSG,
            [
                {
                    "id": new_id(),
                    "workspace_id": workspace_id,
                    "conversation_id": conversation_id,
                    "customer_id": sender.customer_id,
                    "identifier_id": sender.identifier_id,
                    "direction": MessageDirection.IN,
                    "kind": kind,
                    "channel": channel,
                    "channel_account_id": account_id,
                    "external_id": external_id,
                    "text": text,
                    "payload": payload,
                    "created_at": created_at,
                    "stored_at": stored_at,
                    "raw_delivery_id": raw_delivery_id,
                }
            ],
            conflict=("channel", "direction", "external_id"),
            returning=MSG.c.id,
        )
        return MessageId(inserted[0]) if inserted else None

    async def status_of(
        self, message_id: MessageId, status: str, errors: Sequence[dict[str, Any]]
    ) -> StatusApplied:
        """A status just applied to our message ``message_id``: its conversation and agent."""
        row = (
            await self.session.execute(
                sa.select(MSG.c.conversation_id, CONV.c.agent_id)
                .select_from(MSG)
                .outerjoin(CONV, CONV.c.id == MSG.c.conversation_id)
                .where(MSG.c.id == message_id)
            )
        ).first()
        return StatusApplied(
            message_id,
            ConversationId(row.conversation_id) if row is not None and row.conversation_id else None,
            AgentId(row.agent_id) if row is not None and row.agent_id else None,
            status,
            tuple(errors),
        )

    async def apply_status(
        self, channel: str, external_id: str, status: str, errors: Sequence[dict[str, Any]]
    ) -> StatusApplied | None:
        """A provider's delivery status for one of our outbound messages; never moves backwards.
        None: not one of ours, or older news than the state it is in."""
        row = (
            await self.session.execute(
                sa.select(MSG.c.id, MSG.c.delivery_state, MSG.c.conversation_id, CONV.c.agent_id)
                .select_from(MSG)
                .outerjoin(CONV, CONV.c.id == MSG.c.conversation_id)
                .where(
                    MSG.c.channel == channel,
                    MSG.c.direction == MessageDirection.OUT,
                    MSG.c.external_id == external_id,
                )
            )
        ).first()
        if row is None:
            return None
        if _STATE_ORDER.get(status, 0) < _STATE_ORDER.get(row.delivery_state or DeliveryState.QUEUED, 0):
            return None
        await self.session.execute(
            sa.update(MSG).where(MSG.c.id == row.id).values(delivery_state=status, error=list(errors) or None)
        )
        return StatusApplied(
            MessageId(row.id),
            ConversationId(row.conversation_id) if row.conversation_id else None,
            AgentId(row.agent_id) if row.agent_id else None,
            status,
            tuple(errors),
        )
