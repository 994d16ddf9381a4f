"""Storage for the inbound pipeline: raw deliveries, senders, conversations, timeline entries.

``InboundStore`` works inside the caller's transaction (one per raw delivery).  Senders are
resolved through the identity graph (``storage.identity_store``): two workers meeting the
same new identifier at once never create two customers — identifiers are unique per
(workspace, key); the loser of the race rolls back its savepoint, reloads and resolves again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.facts import Fact, WorkAction
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
from core.webhooks import EventDraft
from identity import IdentityPolicy, Observation, Resolution, carries_new_evidence
from storage.facts import FactLog, TrafficCount, count_traffic, traffic
from storage.identity_store import IdentityStore, KnownSender
from storage.tables import CampaignRow, ConversationRow, IdentifierRow, MessageRow, QueueRow, RawDeliveryRow
from storage.types import as_utc
from storage.upsert import insert_ignore

__all__ = ["REOPEN_WITHIN", "InboundStore", "raw_row"]

# A new conversation reopens the customer's previous one with the same campaign when that one
# closed this long before it at most (``conversation.reopened``, on the previous one).
REOPEN_WITHIN: Final = timedelta(hours=24)

RAW = RawDeliveryRow.__table__  # type: ignore[attr-defined]
MSG = MessageRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
IDENT = IdentifierRow.__table__  # type: ignore[attr-defined]

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


@dataclass(frozen=True, slots=True)
class _Sent:
    """One of our outbound messages as a delivery status finds it."""

    id: MessageId
    delivery_state: str | None
    conversation_id: ConversationId | None
    agent_id: AgentId | None


# What ``_open_conversation`` reads of an open conversation.
_OPEN_COLUMNS = (
    CONV.c.id,
    CONV.c.status,
    CONV.c.triage_attempts,
    CONV.c.agent_id,
    CONV.c.channel,
    CONV.c.last_customer_message_at,
)

_WROTE = (
    sa.update(CONV)
    .where(CONV.c.id == sa.bindparam("w_conversation_id"))
    .values(
        last_customer_message_at=sa.bindparam("w_at"),
        channel=sa.bindparam("w_channel"),
        channel_account_id=sa.bindparam("w_account_id"),
        identifier_id=sa.bindparam("w_identifier_id"),
    )
)


class InboundStore:
    """``customer_wrote`` updates wait for ``flush`` (the end of the caller's batch), which writes
    them by conversation id: the lock order the router shares (``storage.routing``).  In a
    prefetched batch the inbound messages wait too, and go in with one statement.

    ``prefetch`` reads a whole batch's senders, their customers' open conversations, the
    messages its statuses name and the provider ids of its messages already stored, one query
    per table; the look-ups below answer from what it read
    and keep it current with the batch's own writes.  A resolution that merges customers drops
    it all (the look-ups then read the database, as without a prefetch).  Only for a batch in
    one transaction: a savepoint rolled back would leave it describing writes that never were.

    The facts of what it writes (``core.facts``: a conversation opened, a triage answer, a
    reopen) and the inbound traffic counts are held too, and appended at ``flush`` with one
    ``FactLog.append`` and one ``count_traffic`` — last in the transaction, after every
    conversation row (the lock order of ``storage.facts``).  **Reopen**: a conversation opened
    here reopens the customer's latest conversation with the same campaign that closed at most
    ``REOPEN_WITHIN`` (24 h) before the new one opened — ``conversation.reopened`` on that
    previous conversation, details ``conversation_id`` (the new one); one query for the whole
    batch's new conversations (none when they all belong to customers created in it).  ``mark`` and
    ``rewind`` drop what a rolled-back savepoint held."""

    def __init__(self, session: AsyncSession):
        self.session = session
        self._wrote: dict[ConversationId, dict[str, Any]] = {}
        self._senders: dict[tuple[WorkspaceId, str], KnownSender | None] = {}
        # Customers whose every open conversation was read: (ws, customer) → {campaign: open}.
        self._open: dict[tuple[WorkspaceId, CustomerId], dict[CampaignId | None, OpenConversation]] = {}
        self._sent: dict[tuple[str, str], _Sent | None] = {}
        self._versions: dict[CampaignId, int | None] = {}
        self._batch = False  # prefetch() was called: keep what the look-ups read
        # Inbound messages of the batch, written at ``flush`` (or before a graph resolution, or a
        # row that refers to one); the provider ids stored already or held here.
        self._held: list[dict[str, Any]] = []
        self._held_conversations: list[dict[str, Any]] = []  # the conversations they open, first
        self._inbound: set[tuple[str, str]] = set()
        # Facts and traffic counts, appended at ``flush``; the conversations opened (for reopens).
        self._facts: list[Fact] = []
        self._first_texts: dict[uuid.UUID, str | None] = {}
        self._traffic: list[TrafficCount] = []
        self._opened: list[Fact] = []
        self._created: set[CustomerId] = set()  # customers created in this transaction
        self._events: list[EventDraft] = []  # events no fact emits (messages, statuses), at flush

    @property
    def traffic(self) -> list[TrafficCount]:
        """Traffic counts held for ``flush`` (an ``OutboundStore`` of the same batch adds to it)."""
        return self._traffic

    def mark(self) -> tuple[int, int, int, int]:
        """Where the held facts, counts and events stand (before a savepoint)."""
        return len(self._facts), len(self._traffic), len(self._opened), len(self._events)

    def rewind(self, mark: tuple[int, int, int, int]) -> None:
        """Forget the facts, counts and events held since ``mark`` (its savepoint was rolled back)."""
        facts, counts, opened, events = mark
        for fact in self._facts[facts:]:
            if fact.conversation_id is not None:
                self._first_texts.pop(ConversationId(fact.conversation_id), None)
        del self._facts[facts:], self._traffic[counts:], self._opened[opened:], self._events[events:]

    def emit(self, event: EventDraft) -> None:
        """An event for the workspace's webhooks (``message.received``, ``message.delivery_status``),
        fanned out at ``flush`` with the batch's facts."""
        self._events.append(event)

    def count_inbound(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId | None, channel: str, at: datetime
    ) -> None:
        """One customer message in the traffic counters (written at ``flush``)."""
        self._traffic.append(traffic(workspace_id, campaign_id, channel, MessageDirection.IN, at))

    async def write_held(self) -> None:
        """Write the conversations and inbound messages held back so far, one statement each
        (``open_conversation``, ``add_inbound``); call before anything that reads or changes them
        in the database."""
        conversations, self._held_conversations = self._held_conversations, []
        if conversations:
            await self.session.execute(sa.insert(CONV), conversations)
        held, self._held = self._held, []
        if held:
            await insert_ignore(self.session, MSG, held, conflict=("channel", "direction", "external_id"))

    async def flush(self) -> None:
        """Write the inbound messages and the conversation updates held back so far (those by id,
        in one statement); call before the commit."""
        await self.write_held()
        wrote, self._wrote = self._wrote, {}
        if wrote:
            await self.session.execute(
                _WROTE, [{"w_conversation_id": cid, **wrote[cid]} for cid in sorted(wrote)]
            )
        facts, self._facts = self._facts, []
        opened, self._opened = self._opened, []
        first_texts, self._first_texts = self._first_texts, {}
        facts.extend(await self._reopens(opened))
        events, self._events = self._events, []
        if facts or events:
            await FactLog(self.session).append(facts, first_texts=first_texts, events=events)
        counts, self._traffic[:] = list(self._traffic), []
        if counts:
            await count_traffic(self.session, counts)

    async def _reopens(self, opened: Sequence[Fact]) -> list[Fact]:
        """``conversation.reopened`` for the previous conversations the ``opened`` ones reopen
        (see the class's docstring): one query."""
        candidates = [f for f in opened if f.customer_id not in self._created]
        if not candidates:
            return []
        since = min(f.at for f in candidates) - REOPEN_WITHIN
        rows = await self.session.execute(
            sa.select(CONV.c.id, CONV.c.customer_id, CONV.c.campaign_id, CONV.c.closed_at).where(
                CONV.c.customer_id.in_(sorted({f.customer_id for f in candidates if f.customer_id})),
                CONV.c.status == ConversationStatus.CLOSED,
                CONV.c.closed_at >= since,
            )
        )
        closed: dict[tuple[Any, Any], list[tuple[datetime, ConversationId]]] = {}
        for r in rows:
            closed.setdefault((r.customer_id, r.campaign_id), []).append(
                (as_utc(r.closed_at), ConversationId(r.id))
            )
        reopens: list[Fact] = []
        for fact in candidates:
            before = [
                (at, cid)
                for at, cid in closed.get((fact.customer_id, fact.campaign_id), [])
                if fact.at - REOPEN_WITHIN <= at <= fact.at and cid != fact.conversation_id
            ]
            if not before:
                continue
            _at, previous = max(before)
            reopens.append(
                Fact(
                    WorkAction.REOPENED,
                    fact.at,
                    "customer",
                    fact.workspace_id,
                    conversation_id=previous,
                    customer_id=fact.customer_id,
                    campaign_id=fact.campaign_id,
                    details={"conversation_id": str(fact.conversation_id)},
                    dedupe=f"{fact.conversation_id}:reopens",
                )
            )
        return reopens

    # ------------------------------------------------------------------ a batch's reads, at once
    async def prefetch(
        self,
        senders: Iterable[tuple[WorkspaceId, str]],
        statuses: Iterable[tuple[str, str]],
        inbound: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Read the known senders among ``senders`` ((workspace, identifier key)), the open
        conversations of their customers, our messages that ``statuses`` ((channel, provider
        id)) name, and which ``inbound`` messages ((channel, provider id)) are stored already:
        one query per workspace or channel and table."""
        self._batch = True
        by_channel_in: dict[str, set[str]] = {}
        for channel, external_id in inbound:
            by_channel_in.setdefault(channel, set()).add(external_id)
        for channel, external_ids in by_channel_in.items():
            stored = await self.session.execute(
                sa.select(MSG.c.external_id).where(
                    MSG.c.channel == channel,
                    MSG.c.direction == MessageDirection.IN,
                    MSG.c.external_id.in_(sorted(external_ids)),
                )
            )
            self._inbound |= {(channel, external_id) for (external_id,) in stored}
        by_workspace: dict[WorkspaceId, set[str]] = {}
        for ws, key in senders:
            if (ws, key) not in self._senders:
                by_workspace.setdefault(ws, set()).add(key)
        customers: dict[WorkspaceId, set[CustomerId]] = {}
        for ws, keys in by_workspace.items():
            found = await self.session.execute(
                sa.select(
                    IDENT.c.key, IDENT.c.id, IDENT.c.customer_id, IDENT.c.display_name, IDENT.c.display_names
                ).where(IDENT.c.workspace_id == ws, IDENT.c.key.in_(sorted(keys)))
            )
            for key in keys:
                self._senders[(ws, key)] = None
            for ident in found:
                known = KnownSender(
                    IdentityId(ident.id),
                    CustomerId(ident.customer_id),
                    ident.display_name,
                    tuple(ident.display_names or ()),
                )
                self._senders[(ws, ident.key)] = known
                if (ws, known.customer_id) not in self._open:
                    customers.setdefault(ws, set()).add(known.customer_id)
        for ws, ids in customers.items():
            convs = await self.session.execute(
                sa.select(CONV.c.customer_id, CONV.c.campaign_id, *_OPEN_COLUMNS)
                .where(
                    CONV.c.workspace_id == ws,
                    CONV.c.customer_id.in_(sorted(ids)),
                    CONV.c.status != ConversationStatus.CLOSED,
                )
                .order_by(CONV.c.opened_at.desc())
            )
            for customer_id in ids:
                self._open[(ws, customer_id)] = {}
            for conv in convs:
                latest = self._open[(ws, CustomerId(conv.customer_id))]
                campaign = CampaignId(conv.campaign_id) if conv.campaign_id else None
                if campaign not in latest:  # newest first: the first one seen is the open one
                    latest[campaign] = _open_conversation(conv)
        by_channel: dict[str, set[str]] = {}
        for channel, external_id in statuses:
            if (channel, external_id) not in self._sent:
                by_channel.setdefault(channel, set()).add(external_id)
        for channel, external_ids in by_channel.items():
            ours = await self.session.execute(
                sa.select(
                    MSG.c.external_id, MSG.c.id, MSG.c.delivery_state, MSG.c.conversation_id, CONV.c.agent_id
                )
                .select_from(MSG)
                .outerjoin(CONV, CONV.c.id == MSG.c.conversation_id)
                .where(
                    MSG.c.channel == channel,
                    MSG.c.direction == MessageDirection.OUT,
                    MSG.c.external_id.in_(sorted(external_ids)),
                )
            )
            for external_id in external_ids:
                self._sent[(channel, external_id)] = None
            for msg in ours:
                self._sent[(channel, msg.external_id)] = _sent(msg)

    def _forget_all(self) -> None:
        self._senders.clear()
        self._open.clear()
        self._sent.clear()

    def _set_open(
        self,
        ws: WorkspaceId,
        customer_id: CustomerId,
        campaign_id: CampaignId | None,
        conversation: OpenConversation,
    ) -> None:
        latest = self._open.get((ws, customer_id))
        if latest is not None:
            latest[campaign_id] = conversation

    def _update_open(self, conversation_id: ConversationId, **changes: Any) -> None:
        for latest in self._open.values():
            for campaign, conversation in latest.items():
                if conversation.id == conversation_id:
                    latest[campaign] = replace(conversation, **changes)
                    return

    async def record_raws(self, rows: Sequence[Mapping[str, Any]]) -> set[RawDeliveryId]:
        """Keep deliveries (``raw_row``: with what processing they will say, known before it starts,
        the same transaction commits both) in one statement: the ids of those kept, the rest being
        bodies already kept (an earlier row of the same statement included).

        A body is kept byte for byte (``bytea`` / ``BLOB``: a NUL or a lone surrogate escaped in its
        JSON is stored as received); the headers are JSON and are made storable (``core.text``)."""
        new = await insert_ignore(
            self.session, RAW, rows, conflict=("channel", "body_sha256"), returning=RAW.c.id
        )
        return {RawDeliveryId(i) for i in new}

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
        known = await self._known_sender(identities, workspace_id, observation.sender.key)
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
            if observation.others:
                await self.write_held()  # a merge re-points the messages it moves: held ones too
            resolution = await identities.resolve(
                workspace_id, observation, now, policy=policy, display_name=display_name
            )
            customer_id, created = resolution.customer_id, resolution.created_customer
            if created:
                self._created.add(customer_id)
            if resolution.merges:  # other senders' customers and conversations moved
                self._forget_all()
            key = observation.sender.key
            self._senders.pop((workspace_id, key), None)
            inserted = identities.inserted_ids.get(key)
            if inserted is None:  # an identifier we had: read back where the resolution left it
                known = await self._known_sender(identities, workspace_id, key)
                if known is None:  # resolve() always writes the sender's identifier
                    raise NotFound("the sender's identifier was not stored", field="sender")
            else:
                known = await self._written(identities, workspace_id, inserted, resolution, display_name)
        if display_name and display_name[:200] != known.display_name:
            await identities.remember_display_name(
                workspace_id, observation.sender.key, customer_id, display_name
            )
            if (workspace_id, observation.sender.key) in self._senders:
                self._senders[(workspace_id, observation.sender.key)] = replace(
                    known, display_name=display_name[:200]
                )
        return ResolvedSender(customer_id, known.identifier_id, created=created)

    async def resolve_new_senders(
        self,
        workspace_id: WorkspaceId,
        observations: Sequence[tuple[Observation, str | None]],
        now: datetime,
        *,
        policy: IdentityPolicy | None = None,
    ) -> None:
        """Resolve, in one go, the senders of a prefetched batch that the prefetch found unknown
        and whose observations carry no other identifier (most new customers): one working set,
        each table written once (``IdentityStore.resolve_all``), instead of a load and a write
        per customer.  Their deliveries' ``resolve_sender`` then finds them known.  The first
        observation of each sender counts; those that do not qualify are left to
        ``resolve_sender``."""
        chosen: dict[str, tuple[Observation, str | None]] = {}
        for observation, name in observations:
            key = observation.sender.key
            if (
                not observation.others
                and key not in chosen
                and (workspace_id, key) in self._senders
                and self._senders[(workspace_id, key)] is None
            ):
                chosen[key] = (observation, name)
        if not chosen:
            return
        identities = IdentityStore(self.session)
        resolved = await identities.resolve_all(workspace_id, list(chosen.values()), now, policy=policy)
        if any(r.merges for r in resolved.items):
            self._forget_all()
        for resolution, (observation, name) in zip(resolved.items, chosen.values(), strict=True):
            key = observation.sender.key
            inserted = identities.inserted_ids.get(key)
            if inserted is None:  # another worker created it meanwhile: read it when it is needed
                self._senders.pop((workspace_id, key), None)
            else:
                await self._written(identities, workspace_id, inserted, resolution, name)

    async def _written(
        self,
        identities: IdentityStore,
        ws: WorkspaceId,
        inserted: IdentityId,
        resolution: Resolution,
        display_name: str | None,
    ) -> KnownSender:
        """The sender whose identifier ``resolution`` wrote just now (as ``inserted``, with its
        name): remembered for the batch, without reading it back."""
        known = KnownSender(
            inserted,
            resolution.customer_id,
            display_name[:200] if display_name else None,
            tuple(sorted(resolution.sender.display_names)),
        )
        if resolution.created_customer:
            self._created.add(resolution.customer_id)
        if self._batch:
            self._senders[(ws, resolution.sender.key)] = known
            if resolution.created_customer:
                self._open[(ws, resolution.customer_id)] = {}  # a new customer has no conversation
        if display_name and not resolution.created_customer:  # joined a customer we had: may be unnamed
            await identities.remember_display_name(
                ws, resolution.sender.key, resolution.customer_id, display_name
            )
        return known

    async def _known_sender(self, identities: IdentityStore, ws: WorkspaceId, key: str) -> KnownSender | None:
        if (ws, key) in self._senders:
            return self._senders[(ws, key)]
        known = await identities.known_sender(ws, key)
        if self._batch:
            self._senders[(ws, key)] = known
        return known

    async def open_conversation_of(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId | None, customer_id: CustomerId
    ) -> OpenConversation | None:
        """The customer's open conversation with this campaign, on any channel."""
        latest = self._open.get((workspace_id, customer_id))
        if latest is not None:
            return latest.get(campaign_id)
        campaign_match = CONV.c.campaign_id == campaign_id if campaign_id else CONV.c.campaign_id.is_(None)
        row = (
            await self.session.execute(
                sa.select(*_OPEN_COLUMNS)
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
        return _open_conversation(row) if row is not None else None

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
        first_text: str | None = None,
    ) -> ConversationId:
        """A new conversation; ``identifier_id`` (the sender) is its origin — an unmerge moves
        the conversation with it — and its first reply target.  ``triage``: it waits for the
        customer's answer to the menu before it is queued (the router does not see it).
        ``first_text``: the customer's first message, for the report row (never the audit
        trail).  Its ``conversation.opened`` fact is appended at ``flush``."""
        conversation_id = ConversationId(new_id())
        row = {
            "id": conversation_id,
            "workspace_id": workspace_id,
            "campaign_id": campaign_id,
            "customer_id": customer_id,
            "status": ConversationStatus.TRIAGE if triage else ConversationStatus.WAITING,
            "channel": channel,
            "channel_account_id": account_id,
            "identifier_id": identifier_id,
            "origin_identifier_id": identifier_id,
            "priority": 5,
            "opened_at": at,
            "enqueued_at": None if triage else at,
            "last_customer_message_at": at,
        }
        if self._batch:  # written with the batch's others (``write_held``)
            self._held_conversations.append(row)
        else:
            await self.session.execute(sa.insert(CONV), [row])
        fact = Fact(
            WorkAction.OPENED,
            at,
            "customer",
            workspace_id,
            conversation_id=conversation_id,
            customer_id=customer_id,
            campaign_id=campaign_id,
            details={"channel": channel, "channel_account_id": str(account_id), "triage": triage},
            dedupe=f"{conversation_id}:opened",
        )
        self._facts.append(fact)
        self._opened.append(fact)
        self._first_texts[conversation_id] = first_text
        status = ConversationStatus.TRIAGE if triage else ConversationStatus.WAITING
        opened = OpenConversation(conversation_id, status, channel=channel, customer_wrote_at=at)
        self._set_open(workspace_id, customer_id, campaign_id, opened)
        return conversation_id

    async def triage_attempt(self, conversation_id: ConversationId, attempts: int) -> None:
        """One more invalid answer to the menu."""
        await self.write_held()
        await self.session.execute(
            sa.update(CONV)
            .where(CONV.c.id == conversation_id, CONV.c.status == ConversationStatus.TRIAGE)
            .values(triage_attempts=attempts)
        )
        self._update_open(conversation_id, triage_attempts=attempts)

    async def leave_triage(
        self,
        conversation_id: ConversationId,
        queue_id: QueueId | None,
        at: datetime,
        *,
        attempts: int | None = None,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId | None = None,
        customer_id: CustomerId | None = None,
        option: str | None = None,
        number: int | None = None,
        queue: str | None = None,
    ) -> None:
        """The conversation waits in ``queue_id`` from ``at`` (None: the router picks the account's
        default queue).  Its ``conversation.triaged`` fact (details ``option``: the chosen
        option's label, ``number``: its place in the menu — both None when no option was
        chosen — ``queue``: the queue's name and ``queue_id``) is appended at ``flush``."""
        values: dict[str, Any] = {
            "status": ConversationStatus.WAITING,
            "queue_id": queue_id,
            "enqueued_at": at,
        }
        if attempts is not None:
            values["triage_attempts"] = attempts
        await self.write_held()
        await self.session.execute(
            sa.update(CONV)
            .where(CONV.c.id == conversation_id, CONV.c.status == ConversationStatus.TRIAGE)
            .values(**values)
        )
        self._facts.append(
            Fact(
                WorkAction.TRIAGED,
                at,
                "customer",
                workspace_id,
                conversation_id=conversation_id,
                customer_id=customer_id,
                campaign_id=campaign_id,
                queue_id=queue_id,
                details={
                    "option": option,
                    "number": number,
                    "queue": queue,
                    "queue_id": str(queue_id) if queue_id else None,
                },
                dedupe=f"{conversation_id}:triaged",
            )
        )
        changes: dict[str, Any] = {"status": ConversationStatus.WAITING}
        if attempts is not None:
            changes["triage_attempts"] = attempts
        self._update_open(conversation_id, **changes)

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
        """The applied version of the campaign (read once per batch after a ``prefetch``)."""
        if campaign_id in self._versions:
            return self._versions[campaign_id]
        found = (
            await self.session.execute(sa.select(CAMPAIGN.c.version).where(CAMPAIGN.c.id == campaign_id))
        ).scalar()
        version = int(found) if found is not None else None
        if self._batch:
            self._versions[campaign_id] = version
        return version

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
            "w_at": at,
            "w_channel": channel,
            "w_account_id": account_id,
            "w_identifier_id": identifier_id,
        }
        self._update_open(conversation_id, channel=channel, customer_wrote_at=at)

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
        """A timeline entry, its id; None when that provider id was already stored (a redelivery).

        In a prefetched batch the row is held and written with the batch's others at ``flush``
        (whether the provider id is stored already the prefetch read); alone, it is written now."""
        message_id = MessageId(new_id())
        row = {
            "id": message_id,
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
        if self._batch:
            if (channel, external_id) in self._inbound:
                return None
            self._inbound.add((channel, external_id))
            self._held.append(row)
            return message_id
        inserted = await insert_ignore(
            self.session,
            MSG,
            [row],
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
        None: not one of ours, older news than the state it is in, or the state it is in already
        (without errors to add) — nothing written, nothing pushed to the agent."""
        if (channel, external_id) in self._sent:
            sent = self._sent[(channel, external_id)]
        else:
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
            sent = _sent(row) if row is not None else None
        if sent is None:
            self._sent.pop((channel, external_id), None)  # a reconciliation may record it next
            return None
        held = _STATE_ORDER.get(sent.delivery_state or DeliveryState.QUEUED, 0)
        if _STATE_ORDER.get(status, 0) < held or (status == sent.delivery_state and not errors):
            return None  # older news, or none: the outbound worker already recorded "sent"
        await self.session.execute(
            sa.update(MSG)
            .where(MSG.c.id == sent.id)
            .values(delivery_state=status, error=list(errors) or None)
        )
        if (channel, external_id) in self._sent:
            self._sent[(channel, external_id)] = replace(sent, delivery_state=status)
        return StatusApplied(sent.id, sent.conversation_id, sent.agent_id, status, tuple(errors))


def _open_conversation(row: Any) -> OpenConversation:
    return OpenConversation(
        ConversationId(row.id),
        ConversationStatus(row.status),
        int(row.triage_attempts or 0),
        AgentId(row.agent_id) if row.agent_id else None,
        row.channel,
        as_utc(row.last_customer_message_at),
    )


def _sent(row: Any) -> _Sent:
    return _Sent(
        MessageId(row.id),
        row.delivery_state,
        ConversationId(row.conversation_id) if row.conversation_id else None,
        AgentId(row.agent_id) if row.agent_id else None,
    )


def raw_row(
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
) -> dict[str, Any]:
    """A ``raw_delivery`` row for ``InboundStore.record_raws``."""
    return {
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
