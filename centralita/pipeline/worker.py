"""The pipeline worker: ``ingest.<p>`` → store raw → parse → dedupe → identity → conversation → timeline.

One transaction per raw delivery: the raw row, the messages and the conversation changes commit
together, so a crash anywhere replays the whole delivery and the unique indexes make the replay
change nothing.  After the commit the worker nudges the workspace's router (``route.<ws>``);
the router also re-reads waiting conversations from the database, so a lost nudge delays a
conversation but never loses it.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy.exc import DBAPIError

from centralita.envelope import RawEnvelope
from centralita.metrics import partition_of
from centralita.outbound import nudge_outbound, queue_auto_reply
from centralita.pipeline.identity import identity_policy, observation_for
from centralita.runtime import Runtime
from centralita.surveys import SurveyTaken, take_survey_message
from core.campaign import Manifest
from core.campaign.greeting import Opening, opening, triage_menu_for, triage_step
from core.channel import ChannelAccount
from core.errors import CentralitaError, InvalidInput, ServiceUnavailable
from core.events import (
    DeliveryStatus,
    InboundEvent,
    InboundMessage,
    MessageDeleted,
    MessageEdited,
    Postback,
    Reaction,
    ReadReceipt,
    SystemNotice,
    Unsupported,
)
from core.ids import (
    AgentId,
    CampaignId,
    ChannelAccountId,
    ConversationId,
    CustomerId,
    IdentityId,
    MessageId,
    RawDeliveryId,
    WorkspaceId,
    new_id,
)
from core.logging import get_logger
from core.records import OpenConversation, StatusApplied
from core.reply_window import window_notices_may_be_due
from core.states import ConversationStatus, RawDeliveryStatus
from core.supervise import supervise
from core.text import storable
from core.transport.protocol import Consumer, Delivery, Message
from core.transport.topology import (
    AGENTS_EXCHANGE,
    ROUTE_EXCHANGE,
    agent_queue,
    ingest_queue,
    route_queue,
    workspace_topology,
)
from core.webhooks import delivery_status, message_received
from identity import IdentityPolicy, Observation
from router.wire import ConversationNudge, MessagePush, MessageStatusPush
from storage.database import Failure, classify_failure, sqlstate, translate_failure
from storage.inbound import InboundStore, raw_row
from storage.media import MediaRows
from storage.outbound import OutboundStore

__all__ = ["AutoReplyOrder", "Outcome", "Pipeline", "RouteNudge", "ToPark"]

log = get_logger("centralita.pipeline")
T = TypeVar("T")


# Customer traffic that opens (or continues) a conversation; the rest only joins an open one.
_OPENS = (InboundMessage, Postback)
_TIMELINE_ONLY = (Reaction, MessageDeleted, MessageEdited, ReadReceipt, SystemNotice, Unsupported)


@dataclass(frozen=True, slots=True)
class RouteNudge:
    workspace_id: WorkspaceId
    conversation_id: ConversationId
    reason: str  # "opened", "message"


@dataclass(frozen=True, slots=True)
class AutoReplyOrder:
    """A text the campaign sends on its own (welcome, triage menu): its outbox row
    (``message_id``) is written in the transaction of the inbound message that caused it."""

    workspace_id: WorkspaceId
    conversation_id: ConversationId
    channel_account_id: ChannelAccountId
    identifier_id: IdentityId
    text: str
    reason: str  # "welcome", "triage_invalid"
    message_id: MessageId = field(default_factory=lambda: MessageId(new_id()))


@dataclass
class Outcome:
    duplicate: bool = False
    stored_messages: int = 0
    duplicates: int = 0
    statuses: int = 0
    unknown_accounts: int = 0
    media: int = 0  # attachments to fetch from the provider (media rows written)
    nudges: list[RouteNudge] = field(default_factory=list)
    # For the agents' desks, after the commit: new timeline entries and delivery ticks of the
    # conversations they hold (``agent.<id>``).
    pushes: list[tuple[AgentId, MessagePush | MessageStatusPush]] = field(default_factory=list)
    auto_replies: list[AutoReplyOrder] = field(default_factory=list)
    triaged: list[ConversationId] = field(default_factory=list)  # waiting for a menu answer
    survey_replies: list[MessageId] = field(default_factory=list)  # thanks for a survey's answer


@dataclass
class _BatchPlan:
    """What a batch's deliveries need from the database, worked out before it is read in one
    go (``InboundStore.prefetch``): each event's account and identity observation, each
    delivery's raw row."""

    accounts: dict[int, list[ChannelAccount | None]] = field(default_factory=dict)  # by id(envelope)
    observations: dict[int, Observation] = field(default_factory=dict)  # by id(event)
    policies: dict[WorkspaceId, IdentityPolicy] = field(default_factory=dict)
    raw_rows: list[dict[str, Any]] = field(default_factory=list)
    senders: set[tuple[WorkspaceId, str]] = field(default_factory=set)
    statuses: set[tuple[str, str]] = field(default_factory=set)
    inbound: set[tuple[str, str]] = field(default_factory=set)  # (channel, provider id) to store
    # each observation with its workspace and the sender's display name, in the batch's order
    senders_in_order: list[tuple[Observation, WorkspaceId, str | None]] = field(default_factory=list)
    new_raw: set[RawDeliveryId] = field(default_factory=set)  # the raw ids that were not kept before


@dataclass(frozen=True, slots=True)
class ToPark:
    """A delivery set aside for a person (``<queue>.dlq``): ``reason`` is short and machine-read,
    e.g. ``refused_by_database:22001``, ``bad_envelope``, ``unparseable``."""

    reason: str


class Pipeline:
    """Consumes every ingest partition; each partition is processed strictly in order, in batches.

    A partition's deliveries are drained up to ``batch_max`` at a time and processed in one
    transaction (group commit), each inside its own savepoint so a poison delivery is parked
    without taking its neighbours down; then the routing nudges go out as one confirmed batch
    and the deliveries are acknowledged.  Nothing is acknowledged before it is committed.
    """

    def __init__(
        self, runtime: Runtime, *, batch_max: int = 100, retry_base_s: float = 0.2, retry_cap_s: float = 5.0
    ):
        self.runtime = runtime
        self.batch_max = batch_max
        self.retry_base_s = retry_base_s  # backoff while a dependency is unavailable: 0.2 s → 5 s
        self.retry_cap_s = retry_cap_s
        self.retries = 0  # attempts made again after an outage or a conflict, since start
        self._consumers: dict[int, list[Consumer]] = {}  # by lane
        self._declared: set[WorkspaceId] = set()
        self._lanes: dict[int, asyncio.Queue[Delivery]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.observers: list[Callable[[RawEnvelope, Outcome], None]] = []
        self._manifests: dict[CampaignId, tuple[int, Manifest]] = {}

    # ------------------------------------------------------------------ consuming
    async def start(self) -> None:
        """Consume every partition into ``pipeline_lanes`` lanes (partition ``p`` feeds lane
        ``p % lanes``); each lane commits its batches one after another, in the order its
        deliveries came, so a partition's deliveries keep their order.  One lane per process makes
        the biggest batches (a batch costs little more than one delivery; see
        ``docs/benchmarks.md``); SQLite has one writer anyway.  Each lane runs supervised
        (``pipeline.lane.<n>`` in ``Runtime.workers``): a lane that dies is logged and started
        again."""
        transport = self.runtime.transport
        partitions = self.runtime.settings.ingest_partitions
        lanes = max(1, min(self.runtime.settings.pipeline_lanes, partitions))

        async def consume(n: int) -> None:
            lane: asyncio.Queue[Delivery] = asyncio.Queue()
            self._lanes[n] = lane
            self._consumers[n] = [
                await transport.consume(ingest_queue(p), lane.put, prefetch=self.batch_max)
                for p in range(partitions)
                if p % lanes == n
            ]

        def lane_worker(n: int) -> Callable[[], Awaitable[None]]:
            runs = 0

            async def run() -> None:
                nonlocal runs
                runs += 1
                if runs > 1:
                    # The previous run died holding a batch: cancelling its consumers gives every
                    # unsettled delivery back to its queue; consume again into a fresh lane.
                    for consumer in self._consumers.pop(n, []):
                        await consumer.cancel()
                    await consume(n)
                await self._drain(self._lanes[n])

            return run

        for n in range(lanes):
            await consume(n)
            self._tasks.append(supervise(self.runtime.workers, f"pipeline.lane.{n}", lane_worker(n)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for consumers in self._consumers.values():
            for consumer in consumers:
                await consumer.cancel()
        self._consumers.clear()
        self._tasks.clear()

    async def _drain(self, lane: asyncio.Queue[Delivery]) -> None:
        """Take a batch, handle it, repeat; the lane never ends on an error.

        Outages are waited out inside ``handle_batch`` (the batch stays in hand, unsettled).  A
        batch that fails for any other reason is a bug or a broken delivery: it is logged, the
        deliveries still unsettled go back to the queue (each return counts towards the delivery
        limit, so a delivery that always breaks the lane ends in the dead-letter queue) and the
        lane goes on after a pause.
        """
        crashes = 0
        while True:
            batch = [await lane.get()]
            while len(batch) < self.batch_max and not lane.empty():
                batch.append(lane.get_nowait())
            try:
                await self.handle_batch(batch)
                crashes = 0
            except Exception as exc:  # the lane outlives any batch; the batch is given back below
                crashes += 1
                log.error("pipeline.batch_crashed", error=type(exc).__name__, deliveries=len(batch))
                log.debug("pipeline.batch_traceback", exc_info=True)
                for delivery in batch:
                    if not delivery.settled:
                        await self._settle(delivery, "requeue")
                await asyncio.sleep(self._delay(crashes))

    async def handle(self, delivery: Delivery) -> None:
        """One delivery on its own (``centralita ingest`` and tests)."""
        await self.handle_batch([delivery])

    async def handle_batch(self, batch: Sequence[Delivery]) -> None:
        """Commit the batch, nudge the routers, then settle every delivery.

        While the database or the broker is unavailable (or the commit meets a deadlock) the
        same batch is tried again with capped exponential backoff and jitter; nothing is acked,
        requeued or rejected meanwhile, so the delivery count is not burned.  Only a delivery
        the database refuses for its content, or one that does not parse, is parked.
        """
        prepared: list[tuple[Delivery, RawEnvelope | None, list[InboundEvent] | None]] = []
        for delivery in batch:
            try:
                envelope: RawEnvelope | None = RawEnvelope.from_delivery(delivery)
            except InvalidInput:
                log.error("pipeline_bad_envelope", message_id=delivery.message_id)
                envelope = None
            events = self._parse(envelope) if envelope is not None else None
            prepared.append((delivery, envelope, events))
        received: dict[str, list[datetime]] = defaultdict(list)
        for delivery, envelope, _ in prepared:
            if envelope is not None:
                received[partition_of(delivery.routing_key)].append(envelope.received_at)
        self.runtime.metrics.pipeline_batch(received, self.runtime.clock())
        results = await self._until_done("commit", lambda: self._commit_batch(prepared))
        nudges = [n for _, _, outcome in results if isinstance(outcome, Outcome) for n in outcome.nudges]
        await self._until_done("nudge", lambda: self.publish_nudges(nudges))
        pushes = [p for _, _, outcome in results if isinstance(outcome, Outcome) for p in outcome.pushes]
        await self._until_done("push", lambda: self.publish_pushes(pushes))
        for delivery, _envelope, outcome in results:
            if isinstance(outcome, ToPark):
                await self._until_done("park", functools.partial(self._park, delivery, outcome.reason))
            else:
                await self._settle(delivery, "ack")
        done = [outcome for _, _, outcome in results if isinstance(outcome, Outcome)]
        await self.send_auto_replies([o for outcome in done for o in outcome.auto_replies])
        await nudge_outbound(self.runtime, [m for outcome in done for m in outcome.survey_replies])
        for _, envelope, outcome in results:
            if isinstance(outcome, Outcome):
                for observer in self.observers:
                    observer(envelope, outcome)  # type: ignore[arg-type]

    async def _until_done(self, stage: str, step: Callable[[], Awaitable[T]]) -> T:
        """``step()``, tried again while a dependency is unavailable; one warning when the pause
        starts and one info line when it ends."""
        attempts = 0
        started = 0.0
        while True:
            try:
                result = await step()
            except ServiceUnavailable as exc:
                attempts += 1
                self.retries += 1
                if attempts == 1:
                    started = time.monotonic()
                    log.warning("pipeline.paused", stage=stage, error=exc.code)
                await asyncio.sleep(self._delay(attempts))
                continue
            if attempts:
                log.info(
                    "pipeline.resumed",
                    stage=stage,
                    attempts=attempts,
                    paused_s=round(time.monotonic() - started, 3),
                )
            return result

    def _delay(self, attempt: int) -> float:
        """Capped exponential backoff with jitter: between half and all of base·2^(attempt-1)."""
        ceiling = min(self.retry_cap_s, self.retry_base_s * 2 ** min(attempt - 1, 30))
        return random.uniform(ceiling / 2, ceiling)

    async def _settle(self, delivery: Delivery, how: Literal["ack", "requeue"]) -> None:
        """Ack or give back; a delivery whose channel went away meanwhile (broker restart) is
        already back in its queue and comes again (dedupe makes the replay harmless)."""
        if delivery.settled:
            return
        try:
            await (delivery.ack() if how == "ack" else delivery.requeue())
        except CentralitaError as exc:  # the transport translates its channel states at its edge
            log.info("pipeline.settle_lost", outcome=how, error=type(exc).__name__)

    async def _park(self, delivery: Delivery, reason: str) -> None:
        if not delivery.settled:
            await delivery.park(reason)

    async def _commit_batch(
        self, prepared: Sequence[tuple[Delivery, RawEnvelope | None, list[InboundEvent] | None]]
    ) -> list[tuple[Delivery, RawEnvelope | None, Outcome | ToPark]]:
        """The group commit; when the database refuses some delivery's content, the batch again
        with each delivery in its own savepoint, so that only the culprit is parked.  Outages
        and conflicts (deadlock, serialization failure, lock timeout) raise ``ServiceUnavailable``:
        the whole batch is tried again, nothing parked."""
        try:
            return await self._commit(prepared, isolate=False)
        except DBAPIError as exc:  # the storage edge translated the rest: this is refused content
            log.warning("pipeline_batch_isolating", deliveries=len(prepared), error=type(exc.orig).__name__)
        try:
            return await self._commit(prepared, isolate=True)
        except DBAPIError as exc:  # refused outside every delivery's savepoint: wait, never park
            raise translate_failure(exc, "the pipeline could not commit") from exc

    def _parse(self, envelope: RawEnvelope) -> list[InboundEvent] | None:
        """The delivery's events, every string made storable (``core.text``: NUL removed, lone
        surrogates → U+FFFD); None (and an error logged) when it does not parse: poison."""
        try:
            adapter = self.runtime.adapters.get(envelope.channel)
            return [
                storable(event) for event in adapter.parse(envelope.body, received_at=envelope.received_at)
            ]
        except InvalidInput as exc:
            # The ingress validated this body; if it no longer parses it is poison: park it.
            log.error(
                "pipeline_unparseable", raw_delivery_id=str(envelope.raw_delivery_id), reason=exc.message
            )
            return None

    async def _commit(
        self,
        prepared: Sequence[tuple[Delivery, RawEnvelope | None, list[InboundEvent] | None]],
        *,
        isolate: bool,
    ) -> list[tuple[Delivery, RawEnvelope | None, Outcome | ToPark]]:
        """One transaction for the batch (group commit); ``isolate`` gives each delivery its own
        savepoint and parks one whose content the database refuses (and only that: any other
        database error ends the transaction and reaches the caller)."""
        results: list[tuple[Delivery, RawEnvelope | None, Outcome | ToPark]] = []
        async with self.runtime.database.transaction() as session:
            store = InboundStore(session)
            plan: _BatchPlan | None = None
            if not isolate:  # read as sets; a savepoint rolled back would leave the reads stale
                plan = self._plan(prepared)
                plan.new_raw = await store.record_raws(plan.raw_rows)
                await store.prefetch(plan.senders, plan.statuses, plan.inbound)
                await self._resolve_new_senders(store, plan)
            for delivery, envelope, events in prepared:
                if envelope is None:
                    results.append((delivery, envelope, ToPark("bad_envelope")))
                    continue
                if events is None:
                    results.append((delivery, envelope, ToPark("unparseable")))
                    continue
                if plan is not None:
                    results.append((delivery, envelope, await self._process(store, envelope, events, plan)))
                    continue
                mark = store.mark()
                try:
                    async with session.begin_nested():
                        outcome: Outcome | ToPark = await self._process(store, envelope, events)
                except DBAPIError as exc:
                    if classify_failure(exc) is not Failure.REFUSED:
                        raise
                    store.rewind(mark)  # its facts and counts were rolled back with it
                    code = sqlstate(exc) or type(exc.orig).__name__
                    log.error(
                        "pipeline_refused_by_database",
                        raw_delivery_id=str(envelope.raw_delivery_id),
                        error=type(exc.orig).__name__,
                        sqlstate=sqlstate(exc),
                    )
                    outcome = ToPark(f"refused_by_database:{code}")
                results.append((delivery, envelope, outcome))
            await store.flush()  # the batch's conversation updates, by id (the global lock order)
        return results

    def _plan(
        self, prepared: Sequence[tuple[Delivery, RawEnvelope | None, list[InboundEvent] | None]]
    ) -> _BatchPlan:
        plan = _BatchPlan()
        for _delivery, envelope, events in prepared:
            if envelope is None or events is None:
                continue
            accounts = self._accounts(envelope, events)
            plan.accounts[id(envelope)] = accounts
            plan.raw_rows.append(self._raw_row(envelope, accounts))
            for event, account in zip(events, accounts, strict=True):
                if account is None:
                    continue
                if isinstance(event, DeliveryStatus):
                    plan.statuses.add((event.channel, event.external_id))
                elif isinstance(event, _OPENS + _TIMELINE_ONLY):
                    observation = self._observe(event, account, plan.policies)
                    plan.observations[id(event)] = observation
                    plan.senders.add((account.workspace_id, observation.sender.key))
                    plan.inbound.add((event.channel, event.external_id))
                    plan.senders_in_order.append(
                        (observation, account.workspace_id, event.sender.display_name)
                    )
        return plan

    async def _resolve_new_senders(self, store: InboundStore, plan: _BatchPlan) -> None:
        """The batch's new customers, resolved together per workspace before its deliveries are
        processed (``InboundStore.resolve_new_senders``) — but not a sender whose identifier
        another delivery of the batch names (stated or channel-verified): that one is resolved
        in its turn, after the delivery before it."""
        named = {key for o in plan.observations.values() for key in o.others}
        by_workspace: dict[WorkspaceId, list[tuple[Observation, str | None]]] = {}
        for observation, workspace_id, name in plan.senders_in_order:
            if observation.sender.key not in named:
                by_workspace.setdefault(workspace_id, []).append((observation, name))
        now = self.runtime.clock()
        for workspace_id, observations in by_workspace.items():
            await store.resolve_new_senders(
                workspace_id, observations, now, policy=plan.policies.get(workspace_id)
            )

    def _accounts(self, envelope: RawEnvelope, events: Sequence[InboundEvent]) -> list[ChannelAccount | None]:
        directory = self.runtime.directory
        return [directory.find(envelope.channel, event.business_address) for event in events]

    @staticmethod
    def _raw_row(envelope: RawEnvelope, accounts: Sequence[ChannelAccount | None]) -> dict[str, Any]:
        """The delivery's raw row, with what processing it will say (known before it starts:
        the same transaction commits both)."""
        known = [a for a in accounts if a is not None]
        unroutable = not known and len(accounts) > 0
        return raw_row(
            envelope.raw_delivery_id,
            envelope.channel,
            envelope.received_at,
            envelope.headers,
            envelope.body,
            envelope.body_sha256,
            workspace_id=known[-1].workspace_id if known else None,
            status=RawDeliveryStatus.UNROUTABLE if unroutable else RawDeliveryStatus.PROCESSED,
            error="no channel account is configured for this address" if unroutable else None,
        )

    def _observe(
        self, event: InboundEvent, account: ChannelAccount, policies: dict[WorkspaceId, IdentityPolicy]
    ) -> Observation:
        policy = policies.get(account.workspace_id)
        if policy is None:
            policy = identity_policy(
                a for a in self.runtime.directory.all() if a.workspace_id == account.workspace_id
            )
            policies[account.workspace_id] = policy
        return observation_for(
            event,  # type: ignore[arg-type]
            account,
            default_region=self.runtime.settings.identity_default_region,
            policy=policy,
        )

    # ------------------------------------------------------------------ processing
    async def process(self, envelope: RawEnvelope) -> Outcome:
        """Process one raw delivery in its own transaction (``centralita ingest``)."""
        adapter = self.runtime.adapters.get(envelope.channel)
        events = [storable(e) for e in adapter.parse(envelope.body, received_at=envelope.received_at)]
        async with self.runtime.database.transaction() as session:
            store = InboundStore(session)
            outcome = await self._process(store, envelope, events)
            await store.flush()
        await self.publish_nudges(outcome.nudges)
        await self.publish_pushes(outcome.pushes)
        await self.send_auto_replies(outcome.auto_replies)
        await nudge_outbound(self.runtime, outcome.survey_replies)
        return outcome

    async def _process(
        self,
        store: InboundStore,
        envelope: RawEnvelope,
        events: Sequence[InboundEvent],
        plan: _BatchPlan | None = None,
    ) -> Outcome:
        """One delivery; with a ``plan`` its raw row is already written and its reads made."""
        outcome = Outcome()
        if plan is None:
            accounts = self._accounts(envelope, events)
            row = self._raw_row(envelope, accounts)
            new = bool(await store.record_raws([row]))
            policies: dict[WorkspaceId, IdentityPolicy] = {}
        else:
            accounts = plan.accounts[id(envelope)]
            new = envelope.raw_delivery_id in plan.new_raw
            policies = plan.policies
        if not new:
            outcome.duplicate = True
            return outcome
        for event, account in zip(events, accounts, strict=True):
            if account is None:
                outcome.unknown_accounts += 1
                log.warning(
                    "pipeline_unknown_account",
                    channel=envelope.channel,
                    raw_delivery_id=str(envelope.raw_delivery_id),
                    kind=event.kind,
                )
                continue
            observation = plan.observations.get(id(event)) if plan is not None else None
            if observation is None and isinstance(event, _OPENS + _TIMELINE_ONLY):
                observation = self._observe(event, account, policies)
            event = event.model_copy(update={"raw_delivery_id": envelope.raw_delivery_id})
            await self._apply(
                store,
                account,
                event,
                outcome,
                observation,
                policies[account.workspace_id] if observation else None,
            )
        outcome.auto_replies[:] = await self._queue_auto_replies(store, outcome.auto_replies)
        return outcome

    async def _apply(
        self,
        store: InboundStore,
        account: ChannelAccount,
        event: InboundEvent,
        outcome: Outcome,
        observation: Observation | None,
        policy: IdentityPolicy | None,
    ) -> None:
        now = self.runtime.clock()
        if isinstance(event, DeliveryStatus):
            errors = [e.model_dump(exclude_none=True) for e in event.errors]
            applied = await store.apply_status(event.channel, event.external_id, event.status, errors)
            if applied is None:
                applied = await self._reconcile(store, event, errors)
            if applied is not None:
                outcome.statuses += 1
                store.emit(
                    delivery_status(
                        account.workspace_id,
                        applied.message_id,
                        event.timestamp,
                        conversation_id=applied.conversation_id,
                        agent_id=applied.agent_id,
                        channel=event.channel,
                        status=applied.state,
                        errors=applied.errors,
                    )
                )
                if applied.agent_id is not None and applied.conversation_id is not None:
                    push = MessageStatusPush(
                        conversation_id=applied.conversation_id,
                        message_id=applied.message_id,
                        delivery_state=applied.state,
                        errors=list(applied.errors),
                    )
                    outcome.pushes.append((applied.agent_id, push))
            return
        if observation is None or not isinstance(event, _OPENS + _TIMELINE_ONLY):
            return  # echoes of our own sends, ignored webhook fields
        sender = await store.resolve_sender(
            account.workspace_id, observation, now, policy=policy, display_name=event.sender.display_name
        )
        # Auto-replies and bounces join the timeline but never open, answer or trigger anything.
        opens = isinstance(event, _OPENS) and not (isinstance(event, InboundMessage) and event.automated)
        counted = opens  # a customer's message: the traffic counters count it, survey answers too
        existing = await store.open_conversation_of(
            account.workspace_id, account.campaign_id, sender.customer_id
        )
        conversation_id = existing.id if existing is not None else None
        if opens and (
            survey := await self._survey_message(store, account, sender.customer_id, event, existing)
        ):
            # An answer to a survey joins its closed conversation's timeline and opens nothing.
            conversation_id, existing, opens = survey.conversation_id, None, False
            outcome.survey_replies.extend(survey.replies)
        start: Opening | None = None
        if conversation_id is None and opens:
            manifest = await self._manifest(store, account.campaign_id)
            start = opening(manifest, account.name) if manifest is not None else Opening(None, False)
            conversation_id = await store.open_conversation(
                account.workspace_id,
                account.campaign_id,
                sender.customer_id,
                event.channel,
                account.id,
                event.timestamp,
                identifier_id=sender.identifier_id,
                triage=start.triage,
                first_text=getattr(event, "text", None),
            )
        stored = await store.add_inbound(
            workspace_id=account.workspace_id,
            conversation_id=conversation_id,
            sender=sender,
            kind=event.kind,
            channel=event.channel,
            account_id=account.id,
            external_id=event.external_id,
            text=getattr(event, "text", None),
            payload=event.model_dump(mode="json", exclude_none=True),
            created_at=event.timestamp,
            stored_at=now,
            raw_delivery_id=event.raw_delivery_id,
        )
        if stored is None:
            outcome.duplicates += 1
            return
        outcome.stored_messages += 1
        store.emit(
            message_received(
                account.workspace_id,
                stored,
                event.timestamp,
                conversation_id=conversation_id,
                customer_id=sender.customer_id,
                campaign_id=account.campaign_id,
                channel=event.channel,
                kind=event.kind,
            )
        )
        if counted:
            store.count_inbound(account.workspace_id, account.campaign_id, event.channel, event.timestamp)
        attachments = getattr(event, "attachments", ())
        if attachments:
            await store.write_held()  # its media rows refer to it
            outcome.media += await MediaRows(store.session).add_pending(
                workspace_id=account.workspace_id,
                message_id=stored,
                customer_id=sender.customer_id,
                channel_account_id=account.id,
                attachments=[a.model_dump(mode="json", exclude_none=True) for a in attachments],
                now=now,
            )
        if (
            existing is not None
            and existing.agent_id is not None
            and existing.status == ConversationStatus.ASSIGNED
        ):
            message = MessagePush(
                conversation_id=existing.id,
                message_id=stored,
                direction="in",
                kind=event.kind,
                channel=event.channel,
                text=getattr(event, "text", None),
                attachments=[a.kind.value for a in attachments],
                created_at=event.timestamp,
            )
            outcome.pushes.append((existing.agent_id, message))
        if conversation_id is not None and opens:
            if start is not None:  # a new conversation starts with channel and time already set
                self._greet(account, conversation_id, sender.identifier_id, start, outcome)
            else:
                await store.customer_wrote(
                    conversation_id, event.channel, account.id, sender.identifier_id, event.timestamp
                )
                if existing is not None and existing.status == ConversationStatus.TRIAGE:
                    await self._triage_answer(
                        store, account, existing, sender.identifier_id, event, outcome, sender.customer_id
                    )
                elif existing is None or self._router_hears(existing, event.channel, now):
                    outcome.nudges.append(RouteNudge(account.workspace_id, conversation_id, "message"))
        log.info(
            "message_stored",
            kind=event.kind,
            channel=event.channel,
            workspace_id=str(account.workspace_id),
            customer_id=str(sender.customer_id),
            conversation_id=str(conversation_id) if conversation_id else None,
        )

    def _router_hears(self, conversation: OpenConversation, channel: str, now: datetime) -> bool:
        """Whether the router must hear of a customer's message in ``conversation``.

        A waiting or offered conversation: yes, its reply window moves its place in the queue.
        An assigned one: its agent heard of it on their own queue (``MessagePush``); the router
        only keeps the window's notices, and checks each against the database before sending it
        (``RouterService``), so a follow-up costs it no round unless those notices may already
        have fired or the conversation changes channel (and so window rule)."""
        if conversation.status != ConversationStatus.ASSIGNED or conversation.agent_id is None:
            return True
        if conversation.channel != channel:
            return True
        return window_notices_may_be_due(
            self.runtime.reply_window_of(channel),
            conversation.customer_wrote_at,
            now,
            self.runtime.settings.window_warning_s,
        )

    async def _survey_message(
        self,
        store: InboundStore,
        account: ChannelAccount,
        customer_id: CustomerId,
        event: InboundEvent,
        existing: OpenConversation | None,
    ) -> SurveyTaken | None:
        manifest = await self._manifest(store, account.campaign_id)
        if manifest is None or manifest.survey is None:
            return None
        return await take_survey_message(
            self.runtime,
            store.session,
            manifest,
            account,
            customer_id,
            event,
            has_open_conversation=existing is not None,
            now=self.runtime.clock(),
        )

    # ------------------------------------------------------------------ welcome and triage
    async def _manifest(self, store: InboundStore, campaign_id: CampaignId | None) -> Manifest | None:
        """The campaign's applied manifest, parsed once per version."""
        if campaign_id is None:
            return None
        cached = self._manifests.get(campaign_id)
        version = await store.campaign_version(campaign_id)
        if version is None:
            return None
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            manifest = Manifest.model_validate(dict(await store.campaign_manifest(campaign_id)))
        except ValueError as exc:  # applied manifests are validated; this is a stored-data bug
            log.error("pipeline_manifest_unreadable", campaign_id=str(campaign_id), error=str(exc)[:200])
            return None
        self._manifests[campaign_id] = (version, manifest)
        return manifest

    def _greet(
        self,
        account: ChannelAccount,
        conversation_id: ConversationId,
        identifier_id: IdentityId,
        start: Opening,
        outcome: Outcome,
    ) -> None:
        if start.reply:
            outcome.auto_replies.append(
                AutoReplyOrder(
                    account.workspace_id, conversation_id, account.id, identifier_id, start.reply, "welcome"
                )
            )
        if start.triage:
            outcome.triaged.append(conversation_id)
            log.info(
                "conversation_in_triage",
                workspace_id=str(account.workspace_id),
                conversation_id=str(conversation_id),
            )
        else:
            outcome.nudges.append(RouteNudge(account.workspace_id, conversation_id, "opened"))

    async def _triage_answer(
        self,
        store: InboundStore,
        account: ChannelAccount,
        conversation: OpenConversation,
        identifier_id: IdentityId,
        event: InboundEvent,
        outcome: Outcome,
        customer_id: CustomerId,
    ) -> None:
        """One message while the conversation waits for its menu answer."""
        now = self.runtime.clock()
        manifest = await self._manifest(store, account.campaign_id)
        menu = triage_menu_for(manifest, account.name) if manifest is not None else None
        if menu is None:  # the menu was withdrawn meanwhile: the account's default queue takes it
            await store.leave_triage(
                conversation.id,
                None,
                now,
                workspace_id=account.workspace_id,
                campaign_id=account.campaign_id,
                customer_id=customer_id,
            )
            outcome.nudges.append(RouteNudge(account.workspace_id, conversation.id, "opened"))
            return
        step = triage_step(
            menu,
            getattr(event, "text", None) or getattr(event, "payload", None),
            conversation.triage_attempts,
        )
        if step.queue is None:
            await store.triage_attempt(conversation.id, step.attempts)
            outcome.triaged.append(conversation.id)
        else:
            queue_id = await store.queue_named(account.campaign_id, step.queue)
            if queue_id is None:
                log.warning("triage_queue_missing", conversation_id=str(conversation.id), queue=step.queue)
            await store.leave_triage(
                conversation.id,
                queue_id,
                now,
                attempts=step.attempts,
                option=step.option.label if step.option is not None else None,
                number=menu.options.index(step.option) + 1 if step.option is not None else None,
                queue=step.queue,
                workspace_id=account.workspace_id,
                campaign_id=account.campaign_id,
                customer_id=customer_id,
            )
            outcome.nudges.append(RouteNudge(account.workspace_id, conversation.id, "opened"))
            log.info(
                "triage_answered",
                workspace_id=str(account.workspace_id),
                conversation_id=str(conversation.id),
                queue=step.queue,
                chosen=step.option is not None,
                attempts=step.attempts,
            )
        if step.reply:
            outcome.auto_replies.append(
                AutoReplyOrder(
                    account.workspace_id,
                    conversation.id,
                    account.id,
                    identifier_id,
                    step.reply,
                    "triage_invalid",
                )
            )

    async def _queue_auto_replies(
        self, store: InboundStore, orders: Sequence[AutoReplyOrder]
    ) -> list[AutoReplyOrder]:
        """Write the orders' outbox rows in the delivery's transaction; an order the channel
        refuses is logged and dropped (the customer's next message is answered again)."""
        if orders:
            await store.write_held()  # their rows refer to the conversation and read it
        outbox = OutboundStore(store.session, traffic=store.traffic)  # counted at the batch's flush
        return [
            order
            for order in orders
            if await queue_auto_reply(
                self.runtime,
                outbox,
                workspace_id=order.workspace_id,
                conversation_id=order.conversation_id,
                text=order.text,
                reason=order.reason,
                channel_account_id=order.channel_account_id,
                identifier_id=order.identifier_id,
                message_id=order.message_id,
            )
            is not None
        ]

    async def _reconcile(
        self, store: InboundStore, event: DeliveryStatus, errors: list[Any]
    ) -> StatusApplied | None:
        """A status for a row whose provider id was not recorded (yet), named by the client
        reference we sent (``unknown`` or ``sending`` rows only) — a status can outrun the
        outbound worker's record of the send."""
        try:
            message_id = MessageId(uuid.UUID(event.client_reference or ""))
        except ValueError:
            return None
        reconciled = await OutboundStore(store.session).reconcile(
            event.channel, message_id, event.external_id, event.status, errors
        )
        if not reconciled:
            # The outbound worker may have recorded the send between the first look and this
            # one (the row is ``sent`` now, no longer ``sending``): its provider id is there.
            return await store.apply_status(event.channel, event.external_id, event.status, errors)
        log.info("reply_reconciled", message_id=str(message_id), channel=event.channel, status=event.status)
        return await store.status_of(message_id, event.status, errors)

    async def send_auto_replies(self, orders: Sequence[AutoReplyOrder]) -> None:
        """After the commit: nudge the outbound workers about the committed auto-replies (they
        also find them in the database without the nudge)."""
        await nudge_outbound(self.runtime, [order.message_id for order in orders])

    # ------------------------------------------------------------------ the agents' desks
    async def publish_pushes(self, pushes: Sequence[tuple[AgentId, MessagePush | MessageStatusPush]]) -> None:
        """Committed entries to the desks of the agents holding their conversations, in one
        confirmed batch.  An agent who has not connected has no queue yet: the push is dropped
        and their desk reads the timeline when it opens."""
        if not pushes:
            return
        await self.runtime.transport.publish(
            [
                Message(
                    body=push.model_dump_json().encode(),
                    exchange=AGENTS_EXCHANGE,
                    routing_key=agent_queue(str(agent_id)),
                )
                for agent_id, push in pushes
            ]
        )

    # ------------------------------------------------------------------ routing nudges
    async def publish_nudges(self, nudges: Sequence[RouteNudge]) -> None:
        if not nudges:
            return
        for ws in {n.workspace_id for n in nudges} - self._declared:
            await self.runtime.transport.declare(workspace_topology(str(ws)))
            self._declared.add(ws)
        await self.runtime.transport.publish(
            [
                Message(
                    body=ConversationNudge(conversation_id=n.conversation_id, reason=n.reason)
                    .model_dump_json()
                    .encode(),
                    exchange=ROUTE_EXCHANGE,
                    routing_key=route_queue(str(n.workspace_id)),
                    message_id=f"{n.conversation_id}:{n.reason}",
                )
                for n in nudges
            ]
        )
