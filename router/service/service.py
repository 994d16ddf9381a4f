"""The live router of one workspace: feeds ``RouterState`` from ``route.<ws>`` and the database,
and carries out its commands.

One loop does everything, in order, so the policy is never touched concurrently:

1. **Inputs.** ``route.<ws>`` is a single-active-consumer queue; deliveries land in an inbox and
   the loop takes up to ``router_batch_max`` at a time.  ``RouterInput`` messages become policy
   events (``router.wire`` → ``router.policy``); a conversation nudge reads the conversation from
   the database (the source of truth) and, for a new one, picks its queue, its sticky agent and
   its reply window.
2. **Decide.** Each event goes through ``RouterState.handle(event, now)``; the timer (from
   ``next_deadline()``) sends ``Tick``.  ``now`` comes from ``RouterDeps.clock``.
3. **Persist** the whole batch in one transaction: offers, assignments, conversation status,
   presence and every ``Decision`` (``routing_decision``).  Each conversation move is a
   compare-and-set; one that finds the row elsewhere (closed meanwhile) is reconciled in the
   next round.  The transaction first checks the router's epoch (fencing): a router that lost
   its place never writes after its successor started.
4. **Publish** the agents' pushes (``agent.<id>``) in one confirmed batch, then ack the inputs.
   Auto-replies (out of hours) are outbox rows written in the round's transaction; the outbound
   workers are nudged after the commit.

Everything it uses from the process comes in a ``RouterDeps`` (``router.service.deps``).

Active or standby: every instance publishes a ``Resync`` to ``route.<ws>`` every
``router_resync_s``; whichever instance receives deliveries is the active one.  A standby that
receives its first delivery becomes active: it takes the epoch and (re)loads everything from the
database — agents (only those a gateway holds are restored to their presence), queues, and the
open conversations with their original ``enqueued_at``: assigned ones stay assigned, an offer in
flight is withdrawn (the agent is told) and the conversation routed again.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from core.errors import BrokerUnavailable, DatabaseConflict, DatabaseUnavailable, InvalidInput
from core.ids import AgentId, ConversationId, CustomerId, MessageId, OfferId, QueueId, WorkspaceId
from core.logging import get_logger
from core.states import ROUTABLE_CONVERSATION_STATUSES, AlertKind, ConversationStatus, OfferStatus
from core.supervise import supervise
from core.transport.protocol import Consumer, Delivery, Message
from core.transport.topology import (
    AGENTS_EXCHANGE,
    EVENTS_EXCHANGE,
    ROUTE_EXCHANGE,
    agent_queue,
    agent_topology,
    alert_key,
    queue_stats_key,
    route_queue,
    workspace_topology,
)
from router.policy import (
    AgentConnected,
    AgentDisconnected,
    AgentLeaseExpired,
    AgentPresenceChanged,
    AgentUpdated,
    Assigned,
    Command,
    ConversationArrived,
    ConversationClosed,
    Escalated,
    ExplainDetail,
    Explained,
    ForceAssign,
    Offer,
    OfferAccepted,
    OfferDeclined,
    Overflowed,
    Presence,
    PresenceSet,
    QueueStats,
    QueueUpdated,
    Refused,
    ReplyWindowChanged,
    Requeue,
    Requeued,
    RouterConfig,
    RouterState,
    SendAutoReply,
    Tick,
    TransferRequested,
    WindowClosed,
    WindowClosing,
    WithdrawOffer,
    from_epoch,
    to_epoch,
)
from router.service.clock import AdvancingClock
from router.service.config import agent_profile, queue_config, router_config
from router.service.deps import RouterDeps
from router.service.ops import (
    OP_TYPES,
    Closed,
    Connection,
    Declined,
    Item,
    Op,
    PresenceChosen,
    QueueChosen,
    StaleOffer,
    Unassign,
)
from router.service.stats import stats_item
from router.wire import (
    AgentConnection,
    AlertEvent,
    AssignedPush,
    ConfigChanged,
    ConversationClosedInput,
    ConversationNudge,
    ForceAssignInput,
    OfferAnswer,
    OfferPush,
    OfferWithdrawnPush,
    PresenceInput,
    QueueStatsEvent,
    RequeueInput,
    Resync,
    TransferInput,
    UnassignedPush,
    WindowClosedPush,
    WindowWarningPush,
    decode_router_input,
)
from storage.alerts import AlertDraft
from storage.routing import (
    AgentRecord,
    ConversationRecord,
    DecisionRecord,
    OfferPreviewRecord,
    QueueRecord,
    RoutingStore,
    RoutingWrites,
)

__all__ = ["BatchReport", "RouterService"]

log = get_logger("router.service")

_RETRY_S = 0.5
_SLOW_ROUND_S = 0.05  # a round slower than this says where its time went (router.slow_round)
_NOTICES = (WindowClosing, WindowClosed)  # pushes only: they write nothing, so they lock nothing


@dataclass(frozen=True, slots=True)
class _Ask:
    """Who asked for a transfer, requeue or forced assignment this round (the router input's
    ``actor``), and the agent it names."""

    actor: str
    to_agent_id: uuid.UUID | None


class _Superseded(Exception):
    """Another router instance took the workspace's epoch: this one is a standby now."""


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What one committed round did (observers: tests, metrics)."""

    workspace_id: WorkspaceId
    at: float
    inputs: tuple[Any, ...]
    commands: tuple[Command, ...]
    activated: bool = False
    round_s: float | None = None  # read + decide + commit + publish (None: the activation's catch-up)


@dataclass
class _Outcome:
    pushes: list[Message] = field(default_factory=list)
    stale: set[ConversationId] = field(default_factory=set)
    auto_replies: list[SendAutoReply] = field(default_factory=list)
    outbox: list[MessageId] = field(default_factory=list)  # auto-replies written in the commit
    previews: dict[ConversationId, OfferPreviewRecord] = field(default_factory=dict)  # of the offers


class RouterService:
    """The router of one workspace on this server (active or standby)."""

    def __init__(self, deps: RouterDeps, workspace_id: WorkspaceId, *, instance: str | None = None) -> None:
        self.deps = deps
        self.workspace_id = workspace_id
        self.settings = deps.settings
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.observers: list[Callable[[BatchReport], None]] = []
        self.latest_stats: list[QueueStats] = []
        self._config: RouterConfig = router_config(deps.settings)
        self._inbox: deque[Delivery] = deque()
        self._wake = asyncio.Event()
        self._state: RouterState | None = None
        self._epoch = 0
        self._queues: dict[QueueId, QueueRecord] = {}
        self._agents: dict[AgentId, AgentRecord] = {}
        self._known: dict[ConversationId, CustomerId | None] = {}  # in the policy, with its customer
        self._offers: dict[OfferId, tuple[ConversationId, AgentId]] = {}
        self._unpushed: set[OfferId] = set()
        self._asked: dict[ConversationId, _Ask] = {}  # this round's transfers, requeues, forced
        self._outbox: list[Message] = []
        self._declared_agents: set[AgentId] = set()
        self._consumer: Consumer | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._next_stats = 0.0
        self._next_lease_check = 0.0  # loop time
        self._lease_suspects: dict[AgentId, float] = {}  # lease found expired first at (loop time)
        self.leases_checked_at: float | None = None  # the clock's time of the last lease check
        self._stopped = False
        self._broker_lost = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def active(self) -> bool:
        return self._state is not None

    @property
    def state(self) -> RouterState | None:
        """The policy's state while active (read it only between rounds: tests, diagnostics)."""
        return self._state

    async def start(self) -> None:
        transport = self.deps.transport
        await transport.declare(workspace_topology(str(self.workspace_id)))
        clock = self.deps.clock
        if isinstance(clock, AdvancingClock):
            clock.listen(self._wake.set)
        workers = self.deps.workers
        self._loop_task = supervise(workers, f"router.{self.workspace_id}", self._run)
        self._consumer = await transport.consume(
            route_queue(str(self.workspace_id)), self._on_delivery, prefetch=self.settings.router_batch_max
        )
        self._beat_task = supervise(workers, f"router.beat.{self.workspace_id}", self._heartbeat)
        log.info("router.started", workspace_id=str(self.workspace_id), instance=self.instance)

    async def stop(self) -> None:
        """Leave: unsettled inputs go back to the queue for the next router."""
        self._stopped = True
        clock = self.deps.clock
        if isinstance(clock, AdvancingClock):
            clock.unlisten(self._wake.set)
        for task in (self._beat_task, self._loop_task):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._beat_task, self._loop_task) if t is not None), return_exceptions=True
        )
        if self._consumer is not None:
            try:
                await self._consumer.cancel()
            except BrokerUnavailable as exc:
                log.info("router.cancel_failed", workspace_id=str(self.workspace_id), reason=exc.message)
            self._consumer = None
        self._state = None
        log.info("router.stopped", workspace_id=str(self.workspace_id), instance=self.instance)

    def nudge(self) -> None:
        """Wake the loop (the clock moved, a test wants the timer checked)."""
        self._wake.set()

    async def _on_delivery(self, delivery: Delivery) -> None:
        self._inbox.append(delivery)
        self._wake.set()

    async def _heartbeat(self) -> None:
        message = Message(
            body=Resync(sender=self.instance).model_dump_json().encode(),
            exchange=ROUTE_EXCHANGE,
            routing_key=route_queue(str(self.workspace_id)),
        )
        while True:
            try:
                await self.deps.transport.publish([message])
            except BrokerUnavailable as exc:
                log.warning(
                    "router.resync_not_published", workspace_id=str(self.workspace_id), reason=exc.message
                )
                if self._state is not None:
                    self._broker_lost = True  # the loop releases the epoch (see _run)
                    self._wake.set()
            await asyncio.sleep(self.settings.router_resync_s)

    # ------------------------------------------------------------------ the loop

    def _now(self) -> float:
        return to_epoch(self.deps.clock())

    async def _run(self) -> None:
        pending: list[Delivery] = []
        follow_up: list[Item] = []
        while True:
            if not pending and not follow_up:
                await self._sleep()
                pending = self._drain()
            if self._broker_lost:
                # Its inputs (and its place as the single active consumer) may be with another
                # instance by now: start again as a standby; the next delivery re-activates it
                # from the database with a new epoch.
                self._broker_lost = False
                if self._state is not None:
                    log.warning(
                        "router.broker_lost", workspace_id=str(self.workspace_id), instance=self.instance
                    )
                    self._state = None
                    self._outbox = []
                    follow_up = []
            if self._state is None:
                if not pending:
                    follow_up = []
                    continue
                try:
                    await self._activate()
                except (DatabaseUnavailable, DatabaseConflict, BrokerUnavailable, _Superseded) as exc:
                    log.warning(
                        "router.activation_failed", workspace_id=str(self.workspace_id), error=str(exc)
                    )
                    self._state = None
                    await asyncio.sleep(_RETRY_S)
                    continue
                except Exception:
                    log.exception("router.activation_crashed", workspace_id=str(self.workspace_id))
                    self._state = None
                    await asyncio.sleep(_RETRY_S)
                    continue
            try:
                follow_up = await self._round(pending, follow_up)
                pending = []
            except _Superseded:
                log.warning("router.superseded", workspace_id=str(self.workspace_id), instance=self.instance)
                self._state = None
                self._outbox = []  # the successor withdrew or re-announced all of it
                follow_up = []
                await self._give_back(pending)  # a round can fail after it acknowledged its inputs
                pending = []
            except (DatabaseUnavailable, DatabaseConflict, BrokerUnavailable) as exc:
                # The policy moved ahead of the database: start again from the database.
                log.warning("router.round_failed", workspace_id=str(self.workspace_id), reason=exc.message)
                self._state = None
                follow_up = []
                pending = [d for d in pending if not d.settled]  # retry only what is still ours
                await asyncio.sleep(_RETRY_S)
            except Exception:
                # A bug must not silence the workspace: say so loudly, give the inputs back and
                # start again from the database.
                log.exception("router.round_crashed", workspace_id=str(self.workspace_id))
                self._state = None
                self._outbox = []
                follow_up = []
                await self._give_back(pending)
                pending = []
                await asyncio.sleep(_RETRY_S)
            if self._state is not None:
                await self._maybe_publish_stats()

    async def _give_back(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            if delivery.settled:
                continue
            try:
                await delivery.requeue()
            except BrokerUnavailable as exc:
                # Its channel is gone with the broker: RabbitMQ delivers it again anyway.
                log.info("router.give_back_lost", workspace_id=str(self.workspace_id), reason=exc.message)

    def _drain(self) -> list[Delivery]:
        out: list[Delivery] = []
        limit = self.settings.router_batch_max
        while self._inbox and len(out) < limit:
            out.append(self._inbox.popleft())
        return out

    async def _sleep(self) -> None:
        self._wake.clear()
        if self._inbox:
            return
        timeout: float | None = None
        state = self._state
        if state is not None:
            loop_now = asyncio.get_running_loop().time()
            timeout = max(0.0, min(self._next_stats, self._next_lease_check) - loop_now)
            deadline = state.next_deadline()
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - self._now()))
            if self._outbox:
                timeout = min(timeout, _RETRY_S)
            if timeout <= 0:
                return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return

    async def _maybe_publish_stats(self) -> None:
        loop_now = asyncio.get_running_loop().time()
        if loop_now < self._next_stats or self._state is None:
            return
        self._next_stats = loop_now + self.settings.router_stats_interval_s
        now = self._now()
        stats = self._state.workspace_stats(self.workspace_id, now)
        self.latest_stats = stats
        event = QueueStatsEvent(
            workspace_id=self.workspace_id, at=from_epoch(now), queues=[stats_item(s) for s in stats]
        )
        try:
            await self.deps.transport.publish(
                [
                    Message(
                        body=event.model_dump_json().encode(),
                        exchange=EVENTS_EXCHANGE,
                        routing_key=queue_stats_key(str(self.workspace_id)),
                    )
                ]
            )
        except BrokerUnavailable as exc:
            log.info("router.stats_not_published", workspace_id=str(self.workspace_id), reason=exc.message)

    # ------------------------------------------------------------------ one round

    async def _round(self, deliveries: list[Delivery], follow_up: list[Item]) -> list[Item]:
        now = self._now()
        inputs: list[Any] = []
        settle: list[Delivery] = []
        for delivery in deliveries:
            try:
                inputs.append(decode_router_input(delivery.body))
                settle.append(delivery)
            except ValidationError:
                log.warning("router.input_malformed", workspace_id=str(self.workspace_id))
                await delivery.reject()
        loop = asyncio.get_running_loop()
        started = loop.time()
        items = list(follow_up)
        items.extend(await self._expired_leases(now))
        items.extend(await self._translate(inputs, now))
        translated = loop.time()
        commands: list[Command] = []
        ops = self._feed([Tick(), *items], now, commands)
        ops = await self._confirm_notices(ops, now, commands)
        decided = loop.time()
        outcome = await self._commit(ops, now) if ops else _Outcome()
        committed = loop.time()
        await self._publish(outcome.pushes)
        for delivery in settle:
            await delivery.ack()
        finished = loop.time()
        if finished - started > _SLOW_ROUND_S:
            log.info(
                "router.slow_round",
                workspace_id=str(self.workspace_id),
                inputs=len(inputs),
                writes=len(ops),
                pushes=len(outcome.pushes),
                read_ms=round((translated - started) * 1000, 1),
                decide_ms=round((decided - translated) * 1000, 1),
                commit_ms=round((committed - decided) * 1000, 1),
                publish_ms=round((finished - committed) * 1000, 1),
            )
        await self._nudge_outbound(outcome.outbox)
        self._report(
            BatchReport(self.workspace_id, now, tuple(inputs), tuple(commands), round_s=finished - started)
        )
        return await self._reconcile(outcome.stale) if outcome.stale else []

    async def _confirm_notices(
        self, ops: list[Command | Op], now: float, commands: list[Command]
    ) -> list[Command | Op]:
        """Check the policy's reply-window notices against the database before they are sent.

        A customer's message in an assigned conversation reaches the agent directly, and the
        pipeline tells the router of it only when the window's notices may already be behind it
        (``core.reply_window.window_notices_may_be_due``), so the window the policy holds can be an
        earlier one.  A notice of a window the customer has since moved is dropped, and the
        policy learns the window it now has (its notices are scheduled again)."""
        notices = [op for op in ops if isinstance(op, _NOTICES)]
        if not notices:
            return ops
        wanted = [n.conversation_id for n in notices]
        rows = await self._read(lambda store: store.conversations(self.workspace_id, wanted))
        moved: dict[ConversationId, float | None] = {}
        for notice in notices:
            row = rows.get(notice.conversation_id)
            if row is None:
                continue
            closes = self._window(row)
            held = notice.closes_at if isinstance(notice, WindowClosing) else notice.closed_at
            if closes is not None and closes > held + 1e-3:
                moved[notice.conversation_id] = closes
        if not moved:
            return ops

        def stale(item: Command | Op) -> bool:
            return isinstance(item, _NOTICES) and item.conversation_id in moved

        commands[:] = [c for c in commands if not stale(c)]
        kept = [op for op in ops if not stale(op)]
        changes = [ReplyWindowChanged(conversation_id=cid, closes_at=closes) for cid, closes in moved.items()]
        kept.extend(self._feed(changes, now, commands))
        return kept

    def _report(self, report: BatchReport) -> None:
        for observer in list(self.observers):
            observer(report)

    def _feed(self, items: Iterable[Item], now: float, commands: list[Command]) -> list[Command | Op]:
        """Run the events through the policy; input-derived writes keep their place in the order."""
        state = self._state
        assert state is not None
        ops: list[Command | Op] = []
        for item in items:
            if isinstance(item, OP_TYPES):
                ops.append(item)
                continue
            out = state.handle(item, now)
            if isinstance(item, ConversationArrived):
                refused = any(isinstance(c, Refused) and c.event == "ConversationArrived" for c in out)
                if not refused:
                    self._known[item.conversation_id] = item.customer_id
            elif isinstance(item, ConversationClosed):
                self._known.pop(item.conversation_id, None)
            for command in out:
                if isinstance(command, Offer):
                    self._offers[command.offer_id] = (command.conversation_id, command.agent_id)
                elif isinstance(command, WithdrawOffer | Assigned) and command.offer_id is not None:
                    self._offers.pop(command.offer_id, None)
            commands.extend(out)
            ops.extend(out)
        return ops

    # ------------------------------------------------------------------ inputs → events

    async def _translate(self, inputs: Sequence[Any], now: float) -> list[Item]:
        state = self._state
        assert state is not None
        self._asked = {
            ConversationId(m.conversation_id): _Ask(
                m.actor or "system", getattr(m, "to_agent_id", None) or getattr(m, "agent_id", None)
            )
            for m in inputs
            if isinstance(m, TransferInput | ForceAssignInput | RequeueInput)
        }
        wanted: list[ConversationId] = []
        reload_agents = False
        reload_config = False
        resync = False
        for message in inputs:
            if isinstance(message, ConversationNudge):
                wanted.append(ConversationId(message.conversation_id))
            elif isinstance(message, ConversationClosedInput):
                cid = ConversationId(message.conversation_id)
                if cid not in self._known:
                    wanted.append(cid)
            elif isinstance(message, TransferInput | ForceAssignInput | RequeueInput):
                # read even when known: the window it waits with next may have moved meanwhile
                # (a message in an assigned conversation need not reach the router)
                wanted.append(ConversationId(message.conversation_id))
            elif isinstance(message, PresenceInput | AgentConnection):
                reload_agents |= AgentId(message.agent_id) not in self._agents
            elif isinstance(message, ConfigChanged):
                reload_config = True
            elif isinstance(message, Resync):
                resync = True
            if isinstance(message, TransferInput) and message.to_agent_id is not None:
                reload_agents |= AgentId(message.to_agent_id) not in self._agents
            if isinstance(message, ForceAssignInput):
                reload_agents |= AgentId(message.agent_id) not in self._agents
        items: list[Item] = []
        if reload_config:
            items.extend(await self._reload_config(now))
        elif reload_agents:
            items.extend(await self._reload_agents(now))
        rows: dict[ConversationId, ConversationRecord] = {}
        if resync:
            items.extend(await self._resync(now))
        if wanted:
            rows = await self._read(lambda store: store.conversations(self.workspace_id, wanted))
        admissions = await self._admissions([r for r in rows.values() if r.id not in self._known], now)
        admitted: set[ConversationId] = set()

        def admit(cid: ConversationId) -> None:
            if cid in admissions and cid not in admitted:
                admitted.add(cid)
                items.extend(admissions[cid])

        def refresh(cid: ConversationId) -> None:
            row = rows.get(cid)
            if cid in self._known and row is not None and row.status in ROUTABLE_CONVERSATION_STATUSES:
                items.append(ReplyWindowChanged(conversation_id=cid, closes_at=self._window(row)))

        for message in inputs:
            if isinstance(message, ConversationNudge):
                cid = ConversationId(message.conversation_id)
                row = rows.get(cid)
                if row is None:
                    continue
                if cid in self._known:
                    if row.status not in ROUTABLE_CONVERSATION_STATUSES:
                        items.extend([Closed(cid), ConversationClosed(conversation_id=cid)])
                    else:
                        items.append(ReplyWindowChanged(conversation_id=cid, closes_at=self._window(row)))
                else:
                    admit(cid)
            elif isinstance(message, OfferAnswer):
                offer_id = OfferId(message.offer_id)
                held = self._offers.get(offer_id)
                if held is None or held[1] != AgentId(message.agent_id):
                    log.info("router.answer_ignored", offer_id=str(offer_id), agent_id=str(message.agent_id))
                    continue
                if message.accepted:
                    items.append(OfferAccepted(offer_id=offer_id))
                else:
                    items.extend([Declined(offer_id, held[0], held[1]), OfferDeclined(offer_id=offer_id)])
            elif isinstance(message, PresenceInput):
                agent_id = AgentId(message.agent_id)
                until = to_epoch(message.until) if message.until is not None else None
                items.append(PresenceChosen(agent_id, message.presence, until))
                items.append(
                    AgentPresenceChanged(agent_id=agent_id, presence=Presence(message.presence), until=until)
                )
            elif isinstance(message, AgentConnection):
                agent_id = AgentId(message.agent_id)
                items.append(Connection(agent_id, message.connected))
                event = (
                    AgentConnected(agent_id=agent_id)
                    if message.connected
                    else AgentDisconnected(agent_id=agent_id)
                )
                items.append(event)
            elif isinstance(message, ConversationClosedInput):
                cid = ConversationId(message.conversation_id)
                admit(cid)
                items.extend([Closed(cid), ConversationClosed(conversation_id=cid)])
            elif isinstance(message, TransferInput):
                cid = ConversationId(message.conversation_id)
                admit(cid)
                refresh(cid)
                items.append(
                    TransferRequested(
                        conversation_id=cid,
                        to_queue_id=QueueId(message.to_queue_id) if message.to_queue_id else None,
                        to_agent_id=AgentId(message.to_agent_id) if message.to_agent_id else None,
                    )
                )
            elif isinstance(message, ForceAssignInput):
                cid = ConversationId(message.conversation_id)
                admit(cid)
                refresh(cid)
                items.append(ForceAssign(conversation_id=cid, agent_id=AgentId(message.agent_id)))
            elif isinstance(message, RequeueInput):
                cid = ConversationId(message.conversation_id)
                admit(cid)
                refresh(cid)
                items.append(
                    Requeue(
                        conversation_id=cid, queue_id=QueueId(message.queue_id) if message.queue_id else None
                    )
                )
        return items

    async def _expired_leases(self, now: float) -> list[Item]:
        """Every ``presence_renew_s``: the connected agents whose gateway stopped renewing their
        presence lease (it died without closing their sockets) go offline.  A lease found expired
        is confirmed two renewal periods later first: a gateway whose renewals failed while the
        database was away, or a clock that jumped, renews it meanwhile."""
        loop_now = asyncio.get_running_loop().time()
        state = self._state
        if state is None or loop_now < self._next_lease_check:
            return []
        renew_s = self.settings.presence_renew_s
        self._next_lease_check = loop_now + renew_s
        connected = [
            agent_id
            for agent_id in self._agents
            if (snapshot := state.agent_snapshot(agent_id)) is not None and snapshot.connected
        ]
        leases: dict[AgentId, datetime | None] = (
            await self._read(lambda store: store.leases(self.workspace_id)) if connected else {}
        )
        items: list[Item] = []
        suspects, self._lease_suspects = self._lease_suspects, {}
        for agent_id in connected:
            until = leases.get(agent_id)
            if until is not None and to_epoch(until) > now:
                continue
            first = suspects.get(agent_id, loop_now)
            if loop_now - first < 2 * renew_s:
                self._lease_suspects[agent_id] = first
                continue
            log.warning(
                "router.lease_expired",
                workspace_id=str(self.workspace_id),
                agent_id=str(agent_id),
                lease_until=until.isoformat() if until is not None else None,
            )
            items.extend([Connection(agent_id, False), AgentLeaseExpired(agent_id=agent_id)])
        self.leases_checked_at = now
        return items

    async def _read(self, query: Callable[[RoutingStore], Any]) -> Any:
        async with self.deps.database.session() as session:
            return await query(RoutingStore(session))

    def _window(self, row: ConversationRecord) -> float | None:
        if row.last_customer_message_at is None:
            return None
        rule = self.deps.reply_window_of(row.channel)
        if rule is None:
            return None
        return to_epoch(row.last_customer_message_at + timedelta(hours=rule.free_form_hours))

    def _choose_queue(self, row: ConversationRecord, settings: Mapping[str, Any]) -> QueueId | None:
        """The account's ``default_queue`` (by name, in the conversation's campaign), else the
        campaign's first active queue serving the channel, else its first active queue."""
        campaign = [q for q in self._queues.values() if q.campaign_id == row.campaign_id and q.active]
        campaign.sort(key=lambda q: q.name)
        default = settings.get("default_queue")
        if default:
            for queue in campaign:
                if queue.name == default:
                    return queue.id
        for queue in campaign:
            channels = queue.config.get("channels") or []
            if row.channel in channels:
                return queue.id
        return campaign[0].id if campaign else None

    async def _admissions(
        self, rows: Sequence[ConversationRecord], now: float
    ) -> dict[ConversationId, list[Item]]:
        """The events (and writes) that bring open conversations unknown to the policy into it."""
        rows = [r for r in rows if r.status in ROUTABLE_CONVERSATION_STATUSES]
        if not rows:
            return {}
        accounts = [r.channel_account_id for r in rows if r.queue_id is None and r.channel_account_id]
        waiting = [(r.customer_id, r.campaign_id) for r in rows if r.status != ConversationStatus.ASSIGNED]

        async def query(store: RoutingStore) -> tuple[Any, Any]:
            return await store.account_settings(accounts), await store.last_agents(self.workspace_id, waiting)

        settings, sticky = await self._read(query)
        foreign = [
            r.offer_id
            for r in rows
            if r.status == ConversationStatus.OFFERED and r.offer_id and r.offer_id not in self._offers
        ]
        offer_agents: dict[OfferId, AgentId] = {}
        if foreign:
            live = await self._read(lambda store: store.live_offers(self.workspace_id))
            offer_agents = {o.id: o.agent_id for o in live}
        out: dict[ConversationId, list[Item]] = {}
        for row in rows:
            items: list[Item] = []
            queue_id = row.queue_id
            if queue_id is None:
                queue_id = self._choose_queue(
                    row, settings.get(row.channel_account_id, {}) if row.channel_account_id else {}
                )
                if queue_id is None:
                    log.warning(
                        "router.no_queue", conversation_id=str(row.id), workspace_id=str(self.workspace_id)
                    )
                    continue
                items.append(QueueChosen(row.id, queue_id))
            if queue_id not in self._queues:
                log.warning("router.unknown_queue", conversation_id=str(row.id), queue_id=str(queue_id))
                continue
            arrival = ConversationArrived(
                conversation_id=row.id,
                workspace_id=self.workspace_id,
                queue_id=queue_id,
                channel=row.channel,
                customer_id=row.customer_id,
                priority=row.priority - 5,  # 5 is the neutral default of a conversation
                enqueued_at=to_epoch(row.enqueued_at),
                reply_window_closes_at=self._window(row),
            )
            if row.status == ConversationStatus.ASSIGNED and row.agent_id is not None:
                if row.agent_id in self._agents:
                    items.append(replace(arrival, assigned_agent_id=row.agent_id))
                    out[row.id] = items
                    continue
                items.append(Unassign(row.id, row.agent_id, queue_id))
            if row.status == ConversationStatus.OFFERED and row.offer_id is not None:
                held = self._offers.get(row.offer_id)
                agent = held[1] if held is not None else offer_agents.get(row.offer_id)
                items.append(StaleOffer(row.offer_id, row.id, agent))
            preferred = sticky.get((row.customer_id, row.campaign_id))
            items.append(replace(arrival, preferred_agent_id=preferred))
            out[row.id] = items
        return out

    async def _resync(self, now: float) -> list[Item]:
        """Open conversations the policy does not know (a lost nudge) come in; those the database
        closed leave."""
        rows: list[ConversationRecord] = await self._read(lambda s: s.open_conversations(self.workspace_id))
        open_ids = {r.id for r in rows}
        items: list[Item] = []
        for cid in [c for c in self._known if c not in open_ids]:
            items.extend([Closed(cid), ConversationClosed(conversation_id=cid)])
        fresh = [r for r in rows if r.id not in self._known]
        admissions = await self._admissions(fresh, now)
        for row in fresh:
            items.extend(admissions.get(row.id, []))
        if fresh:
            log.info(
                "router.resync_admitted", workspace_id=str(self.workspace_id), conversations=len(admissions)
            )
        return items

    async def _reload_agents(self, now: float) -> list[Item]:
        agents: list[AgentRecord] = await self._read(lambda s: s.agents(self.workspace_id))
        return self._agent_items(agents)

    async def _reload_config(self, now: float) -> list[Item]:
        async def query(store: RoutingStore) -> tuple[Any, Any]:
            return await store.queues(self.workspace_id), await store.agents(self.workspace_id)

        queues, agents = await self._read(query)
        return [*self._queue_items(queues), *self._agent_items(agents)]

    def _queue_items(self, queues: Sequence[QueueRecord]) -> list[Item]:
        by_name = {q.name: q.id for q in queues}
        items: list[Item] = []
        for record in queues:
            previous = self._queues.get(record.id)
            self._queues[record.id] = record
            if (
                previous is not None
                and previous.config == record.config
                and previous.timezone == record.timezone
            ):
                continue
            try:
                items.append(QueueUpdated(queue=queue_config(record, by_name)))
            except InvalidInput as exc:
                log.warning("router.queue_skipped", queue_id=str(record.id), reason=exc.message)
        return items

    def _agent_items(self, agents: Sequence[AgentRecord]) -> list[Item]:
        items: list[Item] = []
        for record in agents:
            previous = self._agents.get(record.id)
            self._agents[record.id] = record
            if previous is None or (previous.skills, previous.capacity) != (record.skills, record.capacity):
                try:
                    items.append(AgentUpdated(agent=agent_profile(record)))
                except InvalidInput as exc:
                    log.warning("router.agent_skipped", agent_id=str(record.id), reason=exc.message)
                    continue
            if previous is not None and previous.active and not record.active:
                items.append(PresenceChosen(record.id, Presence.OFFLINE.value, None))
                items.append(AgentPresenceChanged(agent_id=record.id, presence=Presence.OFFLINE))
        return items

    # ------------------------------------------------------------------ becoming active

    async def _activate(self) -> None:
        now = self._now()
        at = from_epoch(now)
        async with self.deps.database.transaction(urgent=True) as session:
            self._epoch = await RoutingStore(session).take_epoch(self.workspace_id, self.instance, at)

        async def query(store: RoutingStore) -> tuple[Any, ...]:
            return (
                await store.queues(self.workspace_id),
                await store.agents(self.workspace_id),
                await store.open_conversations(self.workspace_id),
                await store.live_offers(self.workspace_id),
            )

        queues, agents, conversations, offers = await self._read(query)
        self._lease_suspects, self._next_lease_check = {}, 0.0
        state = RouterState(self._config)
        # Loading is not news: no ramp-up for agents restored to their presence, no explanation
        # for conversations that wait only until the agents are back in.
        state.config = replace(self._config, ramp_period_s=0.0, explain=ExplainDetail.MINIMAL)
        self._state = state
        self._queues, self._agents, self._known = {}, {}, {}
        self._offers, self._unpushed = {}, set()
        items: list[Item] = [*self._queue_items(queues), *self._agent_items(agents)]
        for offer in offers:
            items.append(StaleOffer(offer.id, offer.conversation_id, offer.agent_id))
        rows = [
            replace(r, status=ConversationStatus.WAITING, offer_id=None)
            if r.status == ConversationStatus.OFFERED
            else r
            for r in conversations
        ]
        admissions = await self._admissions(rows, now)
        assigned = [r for r in rows if r.status == ConversationStatus.ASSIGNED]
        for row in assigned:
            items.extend(admissions.get(row.id, []))
        restored = 0
        for record in agents:
            if not record.active:
                continue
            presence = Presence(record.presence) if record.presence in Presence._value2member_map_ else None
            until = to_epoch(record.presence_until) if record.presence_until is not None else None
            if not record.connected or presence in (None, Presence.OFFLINE):
                if record.presence != Presence.OFFLINE.value:
                    items.append(PresenceChosen(record.id, Presence.OFFLINE.value, None))
                continue
            assert presence is not None
            if presence is Presence.WRAP_UP and until is not None and until <= now:
                presence, until = Presence.AVAILABLE, None
            if presence is Presence.AVAILABLE:
                continue  # after the waiting conversations are in, so each agent takes the best
            items.append(AgentPresenceChanged(agent_id=record.id, presence=presence, until=until))
        for row in rows:
            if row.status != ConversationStatus.ASSIGNED:
                items.extend(admissions.get(row.id, []))
        config_items = len(items)
        for record in agents:
            if record.active and record.connected and record.presence == Presence.AVAILABLE.value:
                items.append(AgentPresenceChanged(agent_id=record.id, presence=Presence.AVAILABLE))
                restored += 1
        commands: list[Command] = []
        ops = self._feed(items[:config_items], now, commands)
        state.config = replace(self._config, ramp_period_s=0.0)
        ops.extend(self._feed(items[config_items:], now, commands))
        state.config = self._config
        outcome = await self._commit(ops, now)
        # Agents learn their conversations again: a push the previous router committed but never
        # published is not lost (clients take an ``assigned`` they already hold as a no-op).
        for row in assigned:
            if row.agent_id is not None and row.agent_id in self._agents and row.id in self._known:
                push = AssignedPush(
                    conversation_id=row.id, queue_id=row.queue_id, channel=row.channel, forced=False
                )
                outcome.pushes.append(self._push(row.agent_id, push))
        await self._publish(outcome.pushes)
        self._next_stats = 0.0
        log.info(
            "router.activated",
            workspace_id=str(self.workspace_id),
            instance=self.instance,
            epoch=self._epoch,
            queues=len(queues),
            agents=len(agents),
            agents_available=restored,
            conversations=len(self._known),
            offers_withdrawn=len(offers),
        )
        await self._nudge_outbound(outcome.outbox)
        self._report(BatchReport(self.workspace_id, now, (), tuple(commands), activated=True))

    # ------------------------------------------------------------------ commands → writes + pushes

    async def _commit(self, ops: Sequence[Command | Op], now: float) -> _Outcome:
        outcome = _Outcome()
        at = from_epoch(now)
        touched = [
            cid
            for op in ops
            if not isinstance(op, _NOTICES) and (cid := getattr(op, "conversation_id", None)) is not None
        ]
        async with self.deps.database.transaction(urgent=True) as session:
            store = RoutingStore(session)
            if not await store.check_epoch(self.workspace_id, self._epoch):
                raise _Superseded(f"epoch {self._epoch} is no longer the workspace's")
            writes = await store.begin_writes(self.workspace_id, touched)
            outcome.previews = await store.offer_previews(
                op.conversation_id for op in ops if isinstance(op, Offer)
            )
            for op in ops:
                self._write(writes, op, at, outcome)
            await writes.flush()
            outcome.outbox = await self._queue_auto_replies(store, outcome.auto_replies)
        return outcome

    async def _queue_auto_replies(
        self, store: RoutingStore, replies: Sequence[SendAutoReply]
    ) -> list[MessageId]:
        """Write the claimed auto-replies (out of hours) as outbox rows in the round's transaction,
        so a crash after the commit delays them and never drops them."""
        if not replies:
            return []
        queued: list[MessageId] = []
        for reply in replies:
            queue = self._queues.get(reply.queue_id)
            if queue is None:
                continue
            hours = queue.config.get("business_hours") or {}
            key = hours.get("outside_hours_reply") if isinstance(hours, Mapping) else None
            manifest: Mapping[str, Any] = await store.campaign_manifest(queue.campaign_id) if key else {}
            entry = (manifest.get("auto_replies") or {}).get(key) if key else None
            text = entry.get("text") if isinstance(entry, Mapping) else None
            if not text:
                log.info(
                    "router.no_auto_reply", conversation_id=str(reply.conversation_id), queue_id=str(queue.id)
                )
                continue
            written = await self.deps.queue_auto_reply(
                store.session,
                workspace_id=self.workspace_id,
                conversation_id=reply.conversation_id,
                text=str(text),
                reason=reply.kind,
            )
            if written is not None:
                queued.append(written)
                log.info(
                    "router.auto_reply_queued", conversation_id=str(reply.conversation_id), kind=reply.kind
                )
        return queued

    @staticmethod
    def _preview(found: OfferPreviewRecord | None, queue: Any, trigger: str) -> dict[str, Any]:
        return {
            "queue": queue.name if queue is not None else None,
            "trigger": trigger,
            "customer_name": found.customer_name if found else None,
            "text": found.text if found else None,
            "message_kind": found.kind if found else None,
            "attachments": list(found.attachments) if found else [],
        }

    def _push(self, agent_id: AgentId, push: BaseModel) -> Message:
        return Message(
            body=push.model_dump_json().encode(),
            exchange=AGENTS_EXCHANGE,
            routing_key=agent_queue(str(agent_id)),
        )

    def _write(
        self,
        writes: RoutingWrites,
        op: Command | Op,
        at: datetime,
        outcome: _Outcome,
    ) -> None:
        ws = self.workspace_id
        pushes = outcome.pushes
        if isinstance(op, Offer):
            writes.decision(DecisionRecord(op.conversation_id, at, "offered", op.decision.to_dict()))
            expires = from_epoch(op.expires_at)
            ok = writes.offer(op.offer_id, op.conversation_id, op.agent_id, op.queue_id, at, expires)
            if not ok:
                self._unpushed.add(op.offer_id)
                outcome.stale.add(op.conversation_id)
                return
            queue = self._queues.get(op.queue_id)
            push: BaseModel = OfferPush(
                offer_id=op.offer_id,
                conversation_id=op.conversation_id,
                queue_id=op.queue_id,
                channel=op.channel,
                expires_at=expires,
                customer_id=self._known.get(op.conversation_id),
                preview=self._preview(outcome.previews.get(op.conversation_id), queue, op.decision.trigger),
            )
            pushes.append(self._push(op.agent_id, push))
            log.info(
                "router.offered",
                workspace_id=str(ws),
                conversation_id=str(op.conversation_id),
                agent_id=str(op.agent_id),
                offer_id=str(op.offer_id),
                trigger=op.decision.trigger,
            )
        elif isinstance(op, WithdrawOffer):
            status = OfferStatus.EXPIRED if op.reason == "timeout" else OfferStatus.WITHDRAWN
            writes.end_offer(op.offer_id, op.conversation_id, status, op.reason, at, agent_id=op.agent_id)
            if op.offer_id in self._unpushed:
                self._unpushed.discard(op.offer_id)
                return
            push = OfferWithdrawnPush(
                offer_id=op.offer_id, conversation_id=op.conversation_id, reason=op.reason
            )
            pushes.append(self._push(op.agent_id, push))
            log.info(
                "router.offer_withdrawn",
                workspace_id=str(ws),
                conversation_id=str(op.conversation_id),
                agent_id=str(op.agent_id),
                offer_id=str(op.offer_id),
                reason=op.reason,
            )
        elif isinstance(op, Assigned):
            ask = self._asked.get(op.conversation_id) if op.forced else None
            ok = writes.assign(
                op.conversation_id,
                op.agent_id,
                op.queue_id,
                op.offer_id,
                at,
                how="forced" if op.forced else "transfer" if op.transferred else "offer",
                waited_s=op.answer_waited_s,
                actor=ask.actor if ask is not None else "router",
            )
            if not ok:
                outcome.stale.add(op.conversation_id)
                return
            push = AssignedPush(
                conversation_id=op.conversation_id, queue_id=op.queue_id, channel=op.channel, forced=op.forced
            )
            pushes.append(self._push(op.agent_id, push))
            log.info(
                "router.assigned",
                workspace_id=str(ws),
                conversation_id=str(op.conversation_id),
                agent_id=str(op.agent_id),
                waited_s=round(op.waited_s, 3),
                forced=op.forced,
            )
        elif isinstance(op, Requeued):
            ask = self._asked.get(op.conversation_id) if op.reason in ("transfer", "supervisor") else None
            writes.unassign(
                op.conversation_id,
                op.from_agent_id,
                op.queue_id,
                at,
                op.reason,
                actor=ask.actor if ask is not None else "router",
                to_agent_id=ask.to_agent_id if ask is not None and op.reason == "transfer" else None,
            )
            if op.from_agent_id is not None:
                push = UnassignedPush(conversation_id=op.conversation_id, reason=op.reason)
                pushes.append(self._push(op.from_agent_id, push))
            log.info(
                "router.requeued",
                workspace_id=str(ws),
                conversation_id=str(op.conversation_id),
                agent_id=str(op.from_agent_id) if op.from_agent_id else None,
                reason=op.reason,
            )
        elif isinstance(op, Overflowed):
            writes.move_queue(op.conversation_id, op.to_queue_id)
            log.info(
                "router.overflowed",
                workspace_id=str(ws),
                conversation_id=str(op.conversation_id),
                from_queue_id=str(op.from_queue_id),
                to_queue_id=str(op.to_queue_id),
                reason=op.reason,
            )
        elif isinstance(op, SendAutoReply):
            if writes.claim_auto_reply(op.conversation_id, at):
                outcome.auto_replies.append(op)
        elif isinstance(op, PresenceSet):
            until = from_epoch(op.until) if op.until is not None else None
            writes.presence(op.agent_id, op.presence.value, until)
            if op.reason == "wrap_up" and op.conversation_id is not None:
                writes.wrap_up(op.agent_id, op.conversation_id, until, at)
            log.info(
                "router.presence_set", agent_id=str(op.agent_id), presence=op.presence.value, reason=op.reason
            )
        elif isinstance(op, WindowClosing):
            closes_at = from_epoch(op.closes_at)
            warning = WindowWarningPush(conversation_id=op.conversation_id, closes_at=closes_at)
            pushes.append(self._push(op.agent_id, warning))
            log.info(
                "router.window_warning",
                workspace_id=str(ws),
                conversation_id=str(op.conversation_id),
                agent_id=str(op.agent_id),
                closes_at=warning.closes_at.isoformat(),
            )
        elif isinstance(op, WindowClosed):
            closed = WindowClosedPush(conversation_id=op.conversation_id, closed_at=from_epoch(op.closed_at))
            pushes.append(self._push(op.agent_id, closed))
            log.info(
                "router.window_closed",
                workspace_id=str(ws),
                conversation_id=str(op.conversation_id),
                agent_id=str(op.agent_id),
            )
        elif isinstance(op, Explained):
            writes.decision(
                DecisionRecord(op.decision.conversation_id, at, "no_agent", op.decision.to_dict())
            )
        elif isinstance(op, Escalated):
            log.warning(
                "router.sla_breached",
                workspace_id=str(ws),
                conversation_id=str(op.conversation_id),
                queue_id=str(op.queue_id),
                waited_s=round(op.waited_s, 1),
            )
            writes.alert(
                AlertDraft(
                    kind=AlertKind(op.kind),
                    raised_at=at,
                    queue_id=op.queue_id,
                    conversation_id=op.conversation_id,
                    details={"waited_s": round(op.waited_s, 1)},
                )
            )
            queue = self._queues.get(op.queue_id)
            alert = AlertEvent(
                kind=op.kind,
                workspace_id=ws,
                conversation_id=op.conversation_id,
                queue_id=op.queue_id,
                queue=queue.name if queue else None,
                waited_s=round(op.waited_s, 1),
                at=at,
            )
            pushes.append(
                Message(
                    body=alert.model_dump_json().encode(),
                    exchange=EVENTS_EXCHANGE,
                    routing_key=alert_key(str(ws), op.kind),
                )
            )
        elif isinstance(op, Refused):
            log.info(
                "router.refused",
                workspace_id=str(ws),
                event=op.event,
                reason=op.reason,
                conversation_id=str(op.conversation_id) if op.conversation_id else None,
                agent_id=str(op.agent_id) if op.agent_id else None,
            )
        elif isinstance(op, Declined):
            writes.end_offer(
                op.offer_id, op.conversation_id, OfferStatus.DECLINED, None, at, agent_id=op.agent_id
            )
        elif isinstance(op, Closed):
            writes.close(op.conversation_id, at)
        elif isinstance(op, PresenceChosen):
            until = from_epoch(op.until) if op.until is not None else None
            writes.presence(op.agent_id, op.presence, until)
        elif isinstance(op, Connection):
            writes.connected(op.agent_id, op.connected)
        elif isinstance(op, QueueChosen):
            writes.choose_queue(op.conversation_id, op.queue_id)
        elif isinstance(op, StaleOffer):
            writes.end_offer(
                op.offer_id, op.conversation_id, OfferStatus.WITHDRAWN, "failover", at, agent_id=op.agent_id
            )
            if op.agent_id is not None:
                push = OfferWithdrawnPush(
                    offer_id=op.offer_id, conversation_id=op.conversation_id, reason="failover"
                )
                pushes.append(self._push(op.agent_id, push))
        elif isinstance(op, Unassign):
            writes.unassign(op.conversation_id, op.agent_id, op.queue_id, at, "agent_removed")
            push = UnassignedPush(conversation_id=op.conversation_id, reason="agent_removed")
            pushes.append(self._push(op.agent_id, push))

    async def _publish(self, pushes: list[Message]) -> None:
        messages = [*self._outbox, *pushes]
        self._outbox = []
        if not messages:
            return
        try:
            for key in {m.routing_key for m in messages if m.exchange == AGENTS_EXCHANGE}:
                agent = AgentId(uuid.UUID(key.removeprefix("agent.")))
                if agent not in self._declared_agents:
                    await self.deps.transport.declare(agent_topology(str(agent)))
                    self._declared_agents.add(agent)
            await self.deps.transport.publish(messages)
        except BrokerUnavailable as exc:
            # The decisions are committed: the pushes wait here and go out on the next round.
            self._outbox = messages
            log.warning(
                "router.pushes_delayed",
                workspace_id=str(self.workspace_id),
                count=len(messages),
                reason=exc.message,
            )

    async def _nudge_outbound(self, message_ids: Sequence[MessageId]) -> None:
        """The committed auto-replies are due: wake the outbound workers (their poll finds the
        rows anyway when the nudge is lost)."""
        if not message_ids:
            return
        await self.deps.nudge_outbound(message_ids)

    async def _reconcile(self, stale: Iterable[ConversationId]) -> list[Item]:
        """The database had these conversations elsewhere than the policy thought: drop them from
        the policy and take them back in as the database has them."""
        ids = list(stale)
        rows: dict[ConversationId, ConversationRecord] = await self._read(
            lambda s: s.conversations(self.workspace_id, ids)
        )
        items: list[Item] = []
        for cid in ids:
            items.append(ConversationClosed(conversation_id=cid))
            log.info("router.reconciled", workspace_id=str(self.workspace_id), conversation_id=str(cid))
        admissions = await self._admissions(
            [r for r in rows.values() if r.status in ROUTABLE_CONVERSATION_STATUSES], 0.0
        )
        for cid in ids:
            items.extend(admissions.get(cid, []))
        return items
