"""The routing policy: a pure state machine, ``RouterState.handle(event, now) -> [Command]``.

No I/O, no clock: ``now`` (float epoch seconds, see ``router.policy.clock``) comes with every
event, and ``next_deadline()`` tells the driver when to call again with a ``Tick`` if nothing else
happens first (offer expiry, bullseye step, overflow, wrap-up end, grace end, opening hour, …).
The live router and the simulator drive the same instance type.

How a decision stays ~O(log n) (n = agents or waiting conversations):

- **Conversation order.** Waiting conversations are served by effective priority, then age, with
  priority rising by one point every ``aging_s_per_priority_point`` seconds of waiting.  Since
  ``priority + (now − enqueued_at)/aging`` orders the same as ``enqueued_at − priority·aging``
  at every instant, that time-invariant key orders the heaps and aging never re-sorts anything.
  A reply window closing within the margin adds ``window_priority_boost`` points once (a timer
  re-keys that one conversation).
- **Bullseye.** A queue with steps ``s0 … sk`` keeps one heap of waiting conversations per step
  and channel: ``ready[j]`` holds those that have waited at least ``after_s`` of step ``j``
  (promotion is a timer per conversation, and it keeps the key, so the conversation keeps its
  place).  An agent's first eligible step ``m`` for a queue is fixed by its skills, so the agent
  looks only at the heads of ``ready[m]``.
- **Agents.** ``pools[j][channel]`` holds the agents eligible at step ``j`` who can take one more
  conversation of that channel right now, ordered by (−score, selection key, id).  A conversation
  at step ``j`` takes the head of its pool, skipping agents it must skip.  Any change to an agent
  pushes a fresh entry into the pools of its queues (O(queues × steps × log n)).

Fairness: at most ``max_pending_offers_per_agent`` unanswered offers per agent, and for
``ramp_period_s`` after coming back from offline/away at most one offer per ``ramp_interval_s``;
``longest_idle`` counts idleness from the later of the last offer and the return, so a returning
agent does not jump the line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from heapq import heapify, heappop, heappush
from typing import Any

from core.errors import InvalidInput
from core.ids import AgentId, ConversationId, OfferId, QueueId, WorkspaceId
from core.states import Presence
from router.policy.commands import (
    Assigned,
    Candidate,
    Command,
    Decision,
    Escalated,
    Explained,
    FilteredAgent,
    Offer,
    Overflowed,
    PresenceSet,
    Refused,
    Requeued,
    SendAutoReply,
    WindowClosed,
    WindowClosing,
    WithdrawOffer,
)
from router.policy.config import AgentProfile, ExplainDetail, QueueConfig, RouterConfig, Selection
from router.policy.events import (
    AgentConnected,
    AgentDisconnected,
    AgentLeaseExpired,
    AgentPresenceChanged,
    AgentUpdated,
    ConversationArrived,
    ConversationClosed,
    ForceAssign,
    OfferAccepted,
    OfferDeclined,
    QueueUpdated,
    ReplyWindowChanged,
    Requeue,
    RouterEvent,
    Tick,
    TransferRequested,
)
from router.policy.offer_ids import OfferIdFactory, random_offer_ids
from router.policy.runtime import (
    ASSIGNED,
    CLOSED,
    OFFERED,
    STATUS_NAMES,
    WAITING,
    AgentEntry,
    AgentRt,
    ConvEntry,
    ConvKey,
    ConvRt,
    OfferRt,
    Pool,
    QueueRt,
)
from router.policy.snapshots import AgentSnapshot, ConversationSnapshot, QueueStats

__all__ = ["RouterState"]

# Timer kinds.  A timer is (when, seq, kind, object, token); it is live while its token matches.
_PROMOTE, _OFFER, _GRACE, _WRAP, _RAMP, _OVERFLOW, _WINDOW, _STICKY, _HOURS, _SLA, _WARN, _SHUT = range(12)

_TimerObj = AgentRt | ConvRt | OfferRt | QueueRt
_Timer = tuple[float, int, int, _TimerObj, int]
_Handler = Callable[[Any, float, list[Command]], None]
_COMPACT_SLACK = 64
_MINIMAL = ExplainDetail.MINIMAL.value


class RouterState:
    """Agents, queues and waiting conversations, and the decisions over them.

    Register queues and agents with ``QueueUpdated`` / ``AgentUpdated`` events (agents start
    offline), then feed everything else.  ``offer_ids`` makes offer ids (fresh UUIDv7 by default;
    ``sequential_offer_ids()`` for reproducible simulations).
    """

    def __init__(
        self, config: RouterConfig | None = None, *, offer_ids: OfferIdFactory | None = None
    ) -> None:
        self.config = config or RouterConfig()  # a property: see below
        self._new_offer_id = offer_ids or random_offer_ids()
        self._now = float("-inf")
        self._agents: dict[AgentId, AgentRt] = {}
        self._queues: dict[QueueId, QueueRt] = {}
        self._convs: dict[ConversationId, ConvRt] = {}
        self._offers: dict[OfferId, OfferRt] = {}
        self._ws_agents: dict[WorkspaceId, dict[AgentId, AgentRt]] = {}
        self._ws_queues: dict[WorkspaceId, dict[QueueId, QueueRt]] = {}
        self._timers: list[_Timer] = []
        self._timer_seq = 0
        self._conv_seq = 0
        self._layout = 0  # moves whenever an agent's pools may have changed (see _lay_out)
        self._handlers: dict[type, _Handler] = {
            ConversationArrived: self._on_arrived,
            ConversationClosed: self._on_closed,
            ReplyWindowChanged: self._on_window_changed,
            OfferAccepted: self._on_accepted,
            OfferDeclined: self._on_declined,
            AgentUpdated: self._on_agent_updated,
            AgentPresenceChanged: self._on_presence,
            AgentDisconnected: self._on_disconnected,
            AgentConnected: self._on_connected,
            AgentLeaseExpired: self._on_lease_expired,
            QueueUpdated: self._on_queue_updated,
            TransferRequested: self._on_transfer,
            ForceAssign: self._on_force_assign,
            Requeue: self._on_requeue,
            Tick: self._on_tick,
        }

    @property
    def config(self) -> RouterConfig:
        """The router's settings; replace them whole (the live router does while it reloads)."""
        return self._config

    @config.setter
    def config(self, config: RouterConfig) -> None:
        self._config = config
        # Read on every decision: kept as plain attributes rather than looked up each time.
        self._minimal = config.explain is ExplainDetail.MINIMAL
        self._least_loaded = config.selection is Selection.LEAST_LOADED
        self._max_pending = config.max_pending_offers_per_agent

    # ------------------------------------------------------------------ driving

    def handle(self, event: RouterEvent, now: float) -> list[Command]:
        """Apply ``event`` at ``now`` (after every timer due by ``now``) and return the commands.

        ``now`` never goes backwards: an earlier value is taken as the last one seen.
        """
        handler = self._handlers.get(type(event))
        if handler is None:
            raise InvalidInput(f"the router does not handle {type(event).__name__}", field="event")
        if now < self._now:
            now = self._now
        self._now = now
        out: list[Command] = []
        timers = self._timers
        if timers and timers[0][0] <= now:
            self._fire_timers(now, out)
        handler(event, now, out)
        return out

    def next_deadline(self) -> float | None:
        """When the state machine next needs a ``Tick`` (epoch seconds), or ``None``."""
        timers = self._timers
        while timers and not self._timer_live(timers[0]):
            heappop(timers)
        return timers[0][0] if timers else None

    @property
    def now(self) -> float:
        """The latest ``now`` handled."""
        return self._now

    # ------------------------------------------------------------------ reading

    def queue_stats(self, queue_id: QueueId, now: float | None = None) -> QueueStats:
        queue = self._queues.get(queue_id)
        if queue is None:
            raise InvalidInput(f"unknown queue {queue_id}", field="queue_id")
        at = self._now if now is None else max(now, self._now)
        self._roll_day(queue, at)
        available = busy = away = offline = 0
        if queue.eligible:
            for agent in queue.eligible[-1]:
                presence = agent.presence
                if presence is Presence.OFFLINE:
                    offline += 1
                elif presence is Presence.AWAY:
                    away += 1
                elif presence is Presence.WRAP_UP or agent.total_load > 0:
                    busy += 1
                else:
                    available += 1
        sla = queue.config.sla
        return QueueStats(
            queue_id=queue.id,
            workspace_id=queue.ws,
            name=queue.config.name,
            open=queue.open,
            waiting=len(queue.waiting),
            offered=queue.offered,
            longest_wait_s=self._longest_wait(queue, at),
            agents_available=available,
            agents_busy=busy,
            agents_away=away,
            agents_offline=offline,
            day=queue.day,
            answered=queue.answered,
            answered_within_sla=queue.within_sla,
            abandoned=queue.abandoned,
            escalated=queue.escalated,
            sla_target=None if sla is None else sla.fraction,
            sla_threshold_s=None if sla is None else sla.threshold_s,
        )

    def workspace_stats(self, workspace_id: WorkspaceId, now: float | None = None) -> list[QueueStats]:
        return [self.queue_stats(qid, now) for qid in self._ws_queues.get(workspace_id, {})]

    def agent_snapshot(self, agent_id: AgentId) -> AgentSnapshot | None:
        agent = self._agents.get(agent_id)
        if agent is None:
            return None
        return AgentSnapshot(
            agent_id=agent.id,
            workspace_id=agent.ws,
            presence=agent.presence,
            connected=agent.connected,
            load={ch: units for ch, units in agent.load.items() if units},
            pending_offers=tuple(agent.offers),
            conversations=tuple(agent.assigned),
            wrap_up_until=agent.wrap_until if agent.presence is Presence.WRAP_UP else None,
            idle_since=agent.idle_since,
        )

    def conversation_snapshot(self, conversation_id: ConversationId) -> ConversationSnapshot | None:
        conv = self._convs.get(conversation_id)
        if conv is None:
            return None
        agent = conv.agent if conv.state == ASSIGNED else (conv.offer.agent if conv.offer else None)
        return ConversationSnapshot(
            conversation_id=conv.id,
            workspace_id=conv.ws,
            queue_id=conv.queue.id,
            channel=conv.channel,
            status=STATUS_NAMES[conv.state],
            agent_id=None if agent is None else agent.id,
            offer_id=None if conv.offer is None else conv.offer.id,
            enqueued_at=conv.enqueued_at,
            step=conv.step,
            skipped=dict(conv.skip),
        )

    def waiting_count(self) -> int:
        return sum(len(queue.waiting) for queue in self._queues.values())

    def audit(self) -> list[str]:
        """Check the invariants; returns what is wrong (empty when all hold).  O(state): for tests."""
        problems: list[str] = []
        for agent in self._agents.values():
            load: dict[str, int] = {}
            for offer in agent.offers.values():
                load[offer.channel] = load.get(offer.channel, 0) + offer.units
            for conv in agent.assigned.values():
                load[conv.channel] = load.get(conv.channel, 0) + conv.units
            actual = {ch: units for ch, units in agent.load.items() if units}
            if actual != load:
                problems.append(f"agent {agent.id}: load {actual} != offers+assigned {load}")
            for channel, units in load.items():
                if units > agent.profile.capacity.get(channel, 0):
                    problems.append(f"agent {agent.id}: {units} units of {channel} above capacity")
            total = agent.profile.total_capacity
            if total is not None and sum(load.values()) > total:
                problems.append(f"agent {agent.id}: above total capacity")
            if agent.pending != len(agent.offers):
                problems.append(f"agent {agent.id}: pending {agent.pending} != {len(agent.offers)} offers")
            if agent.layout == self._layout:
                cached = [(ch, [(id(p), n, id(e)) for p, n, e in ts]) for ch, ts in agent.targets]
                fresh = [(ch, [(id(p), n, id(e)) for p, n, e in ts]) for ch, ts in self._targets(agent)]
                if cached != fresh:  # the same pools and eligible sets, not merely equal ones
                    problems.append(f"agent {agent.id}: cached pools differ from its memberships' pools")
        for conv in self._convs.values():
            if conv.ws != conv.queue.ws:
                problems.append(f"conversation {conv.id}: in a queue of another workspace")
            in_queue = conv.id in conv.queue.waiting
            if conv.state == WAITING:
                if not in_queue or conv.offer is not None or conv.agent is not None:
                    problems.append(f"conversation {conv.id}: waiting but not only in its queue")
            elif conv.state == OFFERED:
                live = conv.offer
                if live is None or not live.live or self._offers.get(live.id) is not live or in_queue:
                    problems.append(f"conversation {conv.id}: offered without exactly one live offer")
                elif live.id not in live.agent.offers:
                    problems.append(f"conversation {conv.id}: offer missing from its agent")
            elif conv.state == ASSIGNED:
                if conv.agent is None or conv.id not in conv.agent.assigned or in_queue or conv.offer:
                    problems.append(f"conversation {conv.id}: assigned but not held by exactly one agent")
            else:
                problems.append(f"conversation {conv.id}: closed but still tracked")
        for offer in self._offers.values():
            if offer.conv.offer is not offer:
                problems.append(f"offer {offer.id}: not its conversation's live offer")
        holders: dict[ConversationId, int] = {}
        for agent in self._agents.values():
            for cid in (*agent.assigned, *(o.conv.id for o in agent.offers.values())):
                holders[cid] = holders.get(cid, 0) + 1
        problems.extend(f"conversation {cid}: held {n} times" for cid, n in holders.items() if n > 1)
        for queue in self._queues.values():
            for cid, conv in queue.waiting.items():
                if self._convs.get(cid) is not conv or conv.queue is not queue or conv.state != WAITING:
                    problems.append(f"queue {queue.id}: stale waiting entry {cid}")
        return problems

    # ------------------------------------------------------------------ timers

    def _at(self, when: float, kind: int, obj: _TimerObj, token: int) -> None:
        heappush(self._timers, (when, self._timer_seq, kind, obj, token))
        self._timer_seq += 1

    def _fire_timers(self, now: float, out: list[Command]) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heappop(timers)
            if self._timer_live(timer):
                self._fire(timer, now, out)

    def _timer_live(self, timer: _Timer) -> bool:
        _, _, kind, obj, token = timer
        if kind == _PROMOTE:
            assert isinstance(obj, ConvRt)
            return obj.state == WAITING and obj.version == token and obj.reserved_for is None
        if kind == _OFFER:
            assert isinstance(obj, OfferRt)
            return obj.live
        if kind == _GRACE:
            assert isinstance(obj, AgentRt)
            return obj.grace_token == token and not obj.connected and obj.presence is not Presence.OFFLINE
        if kind == _WRAP:
            assert isinstance(obj, AgentRt)
            return obj.presence is Presence.WRAP_UP and obj.wrap_token == token
        if kind == _RAMP:
            assert isinstance(obj, AgentRt)
            return obj.throttle_token == token
        if kind == _OVERFLOW:
            assert isinstance(obj, ConvRt)
            return obj.state == WAITING and obj.queue_epoch == token
        if kind == _WINDOW:
            assert isinstance(obj, ConvRt)
            return obj.state == WAITING and obj.window_token == token
        if kind == _STICKY:
            assert isinstance(obj, ConvRt)
            return obj.state == WAITING and obj.reserved_for is not None and obj.reserve_token == token
        if kind == _HOURS:
            assert isinstance(obj, QueueRt)
            return obj.hours_token == token
        if kind == _WARN or kind == _SHUT:
            assert isinstance(obj, ConvRt)
            return obj.state == ASSIGNED and obj.notice_token == token
        assert isinstance(obj, ConvRt)  # _SLA
        return obj.state in (WAITING, OFFERED) and not obj.escalated and obj.queue_epoch == token

    def _fire(self, timer: _Timer, now: float, out: list[Command]) -> None:
        kind, obj = timer[2], timer[3]
        if isinstance(obj, ConvRt):
            if kind == _PROMOTE:
                self._promote(obj, now, out)
            elif kind == _OVERFLOW:
                self._overflow(obj, "timeout", now, out)
            elif kind == _WINDOW:
                self._rekey(obj, now)
            elif kind == _STICKY:
                self._release_reservation(obj, now, out)
            elif kind == _WARN:
                self._warn(obj, now, out)
            elif kind == _SHUT:
                self._window_shut(obj, out)
            else:
                obj.escalated = True
                queue = obj.queue
                self._roll_day(queue, now)
                queue.escalated += 1
                out.append(
                    Escalated(
                        conversation_id=obj.id,
                        queue_id=queue.id,
                        kind="sla_breach",
                        waited_s=now - obj.enqueued_at,
                    )
                )
        elif isinstance(obj, OfferRt):
            self._withdraw(obj, "timeout", now, out, skip="timeout")
        elif isinstance(obj, AgentRt):
            if kind == _GRACE:
                self._set_presence(obj, Presence.OFFLINE)
                out.append(PresenceSet(agent_id=obj.id, presence=Presence.OFFLINE, reason="connection_lost"))
                self._agent_gone(obj, "agent_offline", self.config.requeue_open_on_offline, now, out)
            elif kind == _WRAP:
                obj.wrap_until = None
                self._set_presence(obj, Presence.AVAILABLE)
                out.append(PresenceSet(agent_id=obj.id, presence=Presence.AVAILABLE, reason="wrap_up_ended"))
                self._serve(obj, now, out)
            else:  # _RAMP: the agent may take its next offer
                self._serve(obj, now, out)
        else:
            self._apply_hours(obj, now, out)

    # ------------------------------------------------------------------ events

    def _on_tick(self, event: Tick, now: float, out: list[Command]) -> None:
        return None

    def _on_queue_updated(self, event: QueueUpdated, now: float, out: list[Command]) -> None:
        config: QueueConfig = event.queue
        queue = self._queues.get(config.id)
        if queue is None:
            queue = QueueRt(config)
            # The workspace's agents, shared with _ws_agents (a conversation's workspace is always
            # its queue's, so its decisions count these).
            queue.ws_agents = self._ws_agents.setdefault(queue.ws, {})
            self._queues[config.id] = queue
            self._ws_queues.setdefault(queue.ws, {})[queue.id] = queue
            for agent in self._ws_agents.get(queue.ws, {}).values():
                self._attach(agent, queue)
            self._apply_hours(queue, now, out)
            return
        if config.workspace_id != queue.ws:
            out.append(Refused(event="QueueUpdated", reason="other_workspace"))
            return
        members = list(queue.eligible[-1]) if queue.eligible else []
        for agent in members:
            self._detach_membership(agent, queue)
        queue.reconfigure(config)
        self._layout += 1
        for agent in self._ws_agents.get(queue.ws, {}).values():
            self._attach(agent, queue)
        # Waiting conversations keep their place under the new steps; timers are rescheduled.
        for conv in sorted(queue.waiting.values(), key=lambda c: c.seq):
            conv.version += 1
            self._schedule_queue_timers(conv, now)
            if conv.reserved_for is None:
                self._insert_ready(conv, now)
            else:
                conv.key = self._key(conv, now)
        queue.hours_token += 1
        was_open = queue.open
        self._apply_hours(queue, now, out)
        if queue.open and was_open:
            for agent in list(queue.eligible[-1]):
                self._serve(agent, now, out)

    def _on_agent_updated(self, event: AgentUpdated, now: float, out: list[Command]) -> None:
        profile: AgentProfile = event.agent
        agent = self._agents.get(profile.id)
        if agent is None:
            agent = AgentRt(profile, now)
            self._agents[agent.id] = agent
            self._ws_agents.setdefault(agent.ws, {})[agent.id] = agent
            for queue in self._ws_queues.get(agent.ws, {}).values():
                self._attach(agent, queue)
            return
        if profile.workspace_id != agent.ws:
            out.append(Refused(event="AgentUpdated", reason="other_workspace", agent_id=agent.id))
            return
        for queue, _, _ in list(agent.memberships):
            self._detach_membership(agent, queue)
        agent.set_profile(profile)
        for queue in self._ws_queues.get(agent.ws, {}).values():
            self._attach(agent, queue)
        self._serve(agent, now, out)

    def _on_presence(self, event: AgentPresenceChanged, now: float, out: list[Command]) -> None:
        agent = self._agents.get(event.agent_id)
        if agent is None:
            out.append(Refused(event="AgentPresenceChanged", reason="unknown_agent", agent_id=event.agent_id))
            return
        presence = event.presence
        old = agent.presence
        if presence is Presence.AVAILABLE:
            agent.connected = True  # a presence change arrives over a live connection
            agent.grace_token += 1
            if old is Presence.AVAILABLE:
                self._serve(agent, now, out)
                return
            if old in (Presence.OFFLINE, Presence.AWAY):
                agent.idle_since = now
                agent.ramp_until = now + self.config.ramp_period_s
                agent.next_offer_at = now
            agent.wrap_until = None
            agent.wrap_token += 1
            self._set_presence(agent, Presence.AVAILABLE)
            self._serve(agent, now, out)
        elif presence is Presence.WRAP_UP:
            until = event.until
            if until is None and self.config.wrap_up_s > 0:
                until = now + self.config.wrap_up_s
            self._start_wrap_up(agent, until, now)
        else:
            if old is presence:
                return
            self._set_presence(agent, presence)
            reason = "agent_offline" if presence is Presence.OFFLINE else "agent_away"
            requeue = presence is Presence.OFFLINE and self.config.requeue_open_on_offline
            self._agent_gone(agent, reason, requeue, now, out)

    def _on_disconnected(self, event: AgentDisconnected, now: float, out: list[Command]) -> None:
        agent = self._agents.get(event.agent_id)
        if agent is None:
            out.append(Refused(event="AgentDisconnected", reason="unknown_agent", agent_id=event.agent_id))
            return
        if not agent.connected or agent.presence is Presence.OFFLINE:
            return
        agent.connected = False
        agent.grace_token += 1
        self._at(now + self.config.disconnect_grace_s, _GRACE, agent, agent.grace_token)
        self._refresh(agent, now)

    def _on_lease_expired(self, event: AgentLeaseExpired, now: float, out: list[Command]) -> None:
        agent = self._agents.get(event.agent_id)
        if agent is None:
            out.append(Refused(event="AgentLeaseExpired", reason="unknown_agent", agent_id=event.agent_id))
            return
        if not agent.connected:
            return
        agent.connected = False
        agent.grace_token += 1
        if agent.presence is Presence.OFFLINE:
            self._refresh(agent, now)
            return
        self._set_presence(agent, Presence.OFFLINE)
        out.append(PresenceSet(agent_id=agent.id, presence=Presence.OFFLINE, reason="lease_expired"))
        self._agent_gone(agent, "agent_offline", False, now, out)

    def _on_connected(self, event: AgentConnected, now: float, out: list[Command]) -> None:
        agent = self._agents.get(event.agent_id)
        if agent is None:
            out.append(Refused(event="AgentConnected", reason="unknown_agent", agent_id=event.agent_id))
            return
        if agent.connected:
            return
        agent.connected = True
        agent.grace_token += 1
        self._serve(agent, now, out)

    def _on_arrived(self, event: ConversationArrived, now: float, out: list[Command]) -> None:
        if event.conversation_id in self._convs:
            return  # redelivery
        queue = self._queues.get(event.queue_id)
        if queue is None or queue.ws != event.workspace_id:
            reason = "unknown_queue" if queue is None else "other_workspace"
            out.append(
                Refused(event="ConversationArrived", reason=reason, conversation_id=event.conversation_id)
            )
            return
        self._conv_seq += 1
        conv = ConvRt(
            event.conversation_id,
            event.workspace_id,
            queue,
            event.channel,
            event.customer_id,
            event.priority,
            now if event.enqueued_at is None else event.enqueued_at,
            self._conv_seq,
            event.reply_window_closes_at,
        )
        self._convs[conv.id] = conv
        restored = self._agents.get(event.assigned_agent_id) if event.assigned_agent_id else None
        if restored is not None and restored.ws == conv.ws:
            conv.units = restored.profile.weight(conv.channel)
            restored.take(conv.channel, conv.units)
            restored.assigned[conv.id] = conv
            conv.state = ASSIGNED
            conv.agent = restored
            conv.answered = True
            self._refresh(restored, now)
            self._schedule_notices(conv, now, restored=True)
            return
        if conv.window_closes_at is not None:  # (without one both would only move their tokens)
            self._schedule_window(conv, now)
            self._schedule_notices(conv, now)
        preferred = self._agents.get(event.preferred_agent_id) if event.preferred_agent_id else None
        if preferred is not None and preferred.ws == conv.ws:
            wait = self.config.sticky_wait_s if event.sticky_wait_s is None else event.sticky_wait_s
            self._reserve(conv, preferred, now + wait, "sticky", needs_skills=True)
        self._enter_queue(conv, queue, now)
        self._enqueue(conv, now, "arrival", out)

    def _on_window_changed(self, event: ReplyWindowChanged, now: float, out: list[Command]) -> None:
        conv = self._convs.get(event.conversation_id)
        if conv is None:
            return
        conv.window_closes_at = event.closes_at
        self._schedule_window(conv, now)
        self._schedule_notices(conv, now)
        if conv.state == WAITING:
            self._rekey(conv, now)

    def _on_accepted(self, event: OfferAccepted, now: float, out: list[Command]) -> None:
        offer = self._offers.get(event.offer_id)
        if offer is None:
            return  # no longer live (withdrawn, or a redelivered answer)
        conv, agent = offer.conv, offer.agent
        self._end_offer(offer)
        conv.state = ASSIGNED
        conv.version += 1
        conv.agent = agent
        conv.units = offer.units  # the reservation becomes the assignment's load
        agent.assigned[conv.id] = conv
        answer_waited = self._count_answer(conv, now)
        transferred, conv.transferred = conv.transferred, False
        out.append(
            Assigned(
                conversation_id=conv.id,
                agent_id=agent.id,
                queue_id=conv.queue.id,
                channel=conv.channel,
                offer_id=offer.id,
                waited_s=now - conv.enqueued_at,
                transferred=transferred,
                answer_waited_s=answer_waited,
            )
        )
        if conv.window_closes_at is not None:
            self._warn(conv, now, out)
        self._serve(agent, now, out)

    def _on_declined(self, event: OfferDeclined, now: float, out: list[Command]) -> None:
        offer = self._offers.get(event.offer_id)
        if offer is None:
            return
        self._withdraw(offer, None, now, out, skip="declined")

    def _on_closed(self, event: ConversationClosed, now: float, out: list[Command]) -> None:
        conv = self._convs.pop(event.conversation_id, None)
        if conv is None:
            return
        queue = conv.queue
        if conv.state != ASSIGNED:
            self._roll_day(queue, now)
            queue.abandoned += 1
        agent = conv.agent
        if conv.state == ASSIGNED and agent is not None:  # = self._detach(…), its commonest case
            del agent.assigned[conv.id]
            agent.give_back(conv.channel, conv.units)
            conv.agent = None
            was_assigned = True
        else:
            agent, was_assigned = self._detach(conv, "conversation_closed", out)
        conv.state = CLOSED
        conv.version += 1
        if agent is None:
            return
        if was_assigned and self.config.wrap_up_s > 0 and agent.presence is Presence.AVAILABLE:
            until = now + self.config.wrap_up_s
            self._start_wrap_up(agent, until, now)
            out.append(
                PresenceSet(
                    agent_id=agent.id,
                    presence=Presence.WRAP_UP,
                    reason="wrap_up",
                    until=until,
                    conversation_id=conv.id,
                )
            )
            return
        self._serve(agent, now, out)

    def _on_transfer(self, event: TransferRequested, now: float, out: list[Command]) -> None:
        conv = self._convs.get(event.conversation_id)
        name = "TransferRequested"
        if conv is None:
            out.append(
                Refused(event=name, reason="unknown_conversation", conversation_id=event.conversation_id)
            )
            return
        target_agent = self._agents.get(event.to_agent_id) if event.to_agent_id else None
        target_queue = self._queues.get(event.to_queue_id) if event.to_queue_id else None
        reason = None
        if event.to_agent_id is None and event.to_queue_id is None:
            reason = "no_target"
        elif event.to_agent_id is not None and target_agent is None:
            reason = "unknown_agent"
        elif event.to_queue_id is not None and target_queue is None:
            reason = "unknown_queue"
        elif (target_agent and target_agent.ws != conv.ws) or (target_queue and target_queue.ws != conv.ws):
            reason = "other_workspace"
        if reason is not None:
            out.append(
                Refused(event=name, reason=reason, conversation_id=conv.id, agent_id=event.to_agent_id)
            )
            return
        previous, was_assigned = self._detach(conv, "transferred", out)
        conv.transferred = True
        if previous is not None and was_assigned:
            conv.skip[previous.id] = "transferred"
        if target_queue is not None and target_queue is not conv.queue:
            self._enter_queue(conv, target_queue, now)
        if target_agent is not None:
            conv.skip.pop(target_agent.id, None)
            self._reserve(
                conv, target_agent, now + self.config.transfer_wait_s, "transfer", needs_skills=False
            )
        out.append(
            Requeued(
                conversation_id=conv.id,
                queue_id=conv.queue.id,
                from_agent_id=previous.id if previous is not None and was_assigned else None,
                reason="transfer",
                enqueued_at=conv.enqueued_at,
            )
        )
        self._enqueue(conv, now, "transfer", out)
        if previous is not None:
            self._serve(previous, now, out)

    def _on_requeue(self, event: Requeue, now: float, out: list[Command]) -> None:
        conv = self._convs.get(event.conversation_id)
        if conv is None:
            out.append(
                Refused(event="Requeue", reason="unknown_conversation", conversation_id=event.conversation_id)
            )
            return
        target = self._queues.get(event.queue_id) if event.queue_id else None
        if event.queue_id is not None and (target is None or target.ws != conv.ws):
            reason = "unknown_queue" if target is None else "other_workspace"
            out.append(Refused(event="Requeue", reason=reason, conversation_id=conv.id))
            return
        previous, was_assigned = self._detach(conv, "requeued", out)
        if previous is not None and was_assigned:
            conv.skip[previous.id] = "requeued"
        if target is not None and target is not conv.queue:
            self._enter_queue(conv, target, now)
        out.append(
            Requeued(
                conversation_id=conv.id,
                queue_id=conv.queue.id,
                from_agent_id=previous.id if previous is not None and was_assigned else None,
                reason="supervisor",
                enqueued_at=conv.enqueued_at,
            )
        )
        self._enqueue(conv, now, "requeue", out)
        if previous is not None:
            self._serve(previous, now, out)

    def _on_force_assign(self, event: ForceAssign, now: float, out: list[Command]) -> None:
        conv = self._convs.get(event.conversation_id)
        agent = self._agents.get(event.agent_id)
        reason = None
        if conv is None:
            reason = "unknown_conversation"
        elif agent is None:
            reason = "unknown_agent"
        elif agent.ws != conv.ws:
            reason = "other_workspace"
        elif agent.presence is Presence.OFFLINE:
            reason = "offline"
        elif conv.state == ASSIGNED and conv.agent is agent:
            return
        elif not (conv.offer is not None and conv.offer.agent is agent) and not agent.free(conv.channel):
            reason = f"at_capacity:{conv.channel}"
        if reason is not None or conv is None or agent is None:
            out.append(
                Refused(
                    event="ForceAssign",
                    reason=reason or "",
                    conversation_id=event.conversation_id,
                    agent_id=event.agent_id,
                )
            )
            return
        previous, _ = self._detach(conv, "forced", out)
        conv.units = agent.profile.weight(conv.channel)
        agent.take(conv.channel, conv.units)
        agent.assigned[conv.id] = conv
        agent.idle_since = now
        conv.state = ASSIGNED
        conv.version += 1
        conv.agent = agent
        answer_waited = self._count_answer(conv, now)
        conv.transferred = False
        out.append(
            Assigned(
                conversation_id=conv.id,
                agent_id=agent.id,
                queue_id=conv.queue.id,
                channel=conv.channel,
                offer_id=None,
                waited_s=now - conv.enqueued_at,
                forced=True,
                answer_waited_s=answer_waited,
            )
        )
        self._warn(conv, now, out)
        self._refresh(agent, now)
        if previous is not None and previous is not agent:
            self._serve(previous, now, out)

    # ------------------------------------------------------------------ agents

    def _routable(self, agent: AgentRt, now: float) -> bool:
        return (
            agent.presence is Presence.AVAILABLE
            and agent.connected
            and agent.pending < self._max_pending
            and now >= agent.next_offer_at
        )

    def _selection_key(self, agent: AgentRt) -> tuple[float, float]:
        if self._least_loaded:
            return agent.load_share(), agent.idle_since
        return agent.idle_since, agent.load_share()

    def _refresh(self, agent: AgentRt, now: float) -> None:
        """The agent changed: invalidate its pool entries and push fresh ones where it now fits."""
        agent.version += 1
        version = agent.version
        if agent.layout != self._layout:
            self._lay_out(agent)
        ok = (
            agent.presence is Presence.AVAILABLE
            and agent.connected
            and agent.pending < self._max_pending
            and now >= agent.next_offer_at
        )  # = self._routable(agent, now), inlined: this runs on every change of every agent
        if not ok:
            for _, targets in agent.targets:
                for pool, _, _ in targets:
                    pool.members.discard(agent)
            return
        share = agent.total_load / agent.cap_units
        if self._least_loaded:
            key1, key2 = share, agent.idle_since
        else:
            key1, key2 = agent.idle_since, share
        tie = agent.tie
        for channel, targets in agent.targets:
            if agent.free(channel):
                for pool, negative_score, eligible in targets:
                    heap = pool.heap
                    heappush(heap, (negative_score, key1, key2, tie, version, agent))
                    pool.members.add(agent)
                    if len(heap) > 2 * len(eligible) + _COMPACT_SLACK:
                        self._compact_pool(pool)
            else:
                for pool, _, _ in targets:
                    pool.members.discard(agent)

    def _lay_out(self, agent: AgentRt) -> None:
        """Cache the pools ``_refresh`` keeps the agent in, until ``_layout`` moves (a membership,
        a queue's steps or a channel's pool appeared or went)."""
        agent.targets = self._targets(agent)
        agent.layout = self._layout

    @staticmethod
    def _targets(agent: AgentRt) -> list[tuple[str, list[tuple[Pool, int, set[AgentRt]]]]]:
        """Every pool of the agent's memberships at their eligible steps, by channel, with the
        agent's entry score there and the queue's eligible agents of that step (the pool's bound)."""
        by_channel: dict[str, list[tuple[Pool, int, set[AgentRt]]]] = {}
        for queue, first, score in agent.memberships:
            pools = queue.pools
            for step in range(first, len(pools)):
                eligible = queue.eligible[step]
                for channel, pool in pools[step].items():
                    by_channel.setdefault(channel, []).append((pool, -score, eligible))
        return list(by_channel.items())

    @staticmethod
    def _compact_pool(pool: Pool) -> None:
        members = pool.members
        pool.heap = [e for e in pool.heap if e[4] == e[5].version and e[5] in members]
        heapify(pool.heap)

    def _pool(self, queue: QueueRt, step: int, channel: str) -> Pool:
        pools = queue.pools[step]
        pool = pools.get(channel)
        if pool is None:
            pool = Pool()
            pools[channel] = pool
            self._layout += 1
            now = self._now
            for agent in queue.eligible[step]:
                if self._routable(agent, now) and agent.free(channel):
                    key1, key2 = self._selection_key(agent)
                    pool.heap.append((-queue.scores[agent], key1, key2, agent.tie, agent.version, agent))
                    pool.members.add(agent)
            heapify(pool.heap)
        return pool

    def _attach(self, agent: AgentRt, queue: QueueRt) -> None:
        first = queue.first_eligible_step(agent.profile)
        if first is None:
            return
        score = queue.score(agent.profile)
        agent.memberships.append((queue, first, score))
        self._layout += 1
        queue.scores[agent] = score
        for step in range(first, len(queue.steps)):
            queue.eligible[step].add(agent)
            queue.presence_counts[step][agent.presence] += 1

    def _detach_membership(self, agent: AgentRt, queue: QueueRt) -> None:
        for index, (member_queue, first, _) in enumerate(agent.memberships):
            if member_queue is queue:
                del agent.memberships[index]
                self._layout += 1
                queue.scores.pop(agent, None)
                for step in range(first, len(queue.steps)):
                    queue.eligible[step].discard(agent)
                    queue.presence_counts[step][agent.presence] -= 1
                    for pool in queue.pools[step].values():
                        pool.members.discard(agent)
                return

    def _set_presence(self, agent: AgentRt, presence: Presence) -> None:
        old = agent.presence
        if old is presence:
            return
        for queue, first, _ in agent.memberships:
            counts = queue.presence_counts
            for step in range(first, len(counts)):
                counts[step][old] -= 1
                counts[step][presence] += 1
        agent.presence = presence

    def _start_wrap_up(self, agent: AgentRt, until: float | None, now: float) -> None:
        self._set_presence(agent, Presence.WRAP_UP)
        agent.wrap_until = until
        agent.wrap_token += 1
        if until is not None:
            self._at(until, _WRAP, agent, agent.wrap_token)
        self._refresh(agent, now)

    def _agent_gone(
        self, agent: AgentRt, reason: str, requeue_open: bool, now: float, out: list[Command]
    ) -> None:
        """Away or offline: pending offers withdrawn and re-routed, held sticky conversations released,
        and (offline, when configured) open conversations re-queued with their original age."""
        self._refresh(agent, now)
        for offer in list(agent.offers.values()):
            self._withdraw(offer, reason, now, out, skip=None, serve_agent=False)
        for conv in list(agent.reserved.values()):
            self._release_reservation(conv, now, out)
        if requeue_open:
            for conv in list(agent.assigned.values()):
                del agent.assigned[conv.id]
                agent.give_back(conv.channel, conv.units)
                conv.agent = None
                out.append(
                    Requeued(
                        conversation_id=conv.id,
                        queue_id=conv.queue.id,
                        from_agent_id=agent.id,
                        reason=reason,
                        enqueued_at=conv.enqueued_at,
                    )
                )
                self._enqueue(conv, now, "requeue", out)
        self._refresh(agent, now)

    def _serve(self, agent: AgentRt, now: float, out: list[Command]) -> None:
        """The agent changed and may take more: offer it the best conversation it can serve, while it
        can, and re-index it (each offer re-indexes it; without one, it is re-indexed here)."""
        offered = False
        while (
            agent.presence is Presence.AVAILABLE
            and agent.connected
            and agent.pending < self._max_pending
            and now >= agent.next_offer_at
        ):  # = self._routable(agent, now)
            best: ConvRt | None = None
            if agent.reserved:
                for conv in agent.reserved.values():
                    if conv.queue.open and agent.free(conv.channel) and (best is None or conv.key < best.key):
                        best = conv
            if best is None:
                for queue, first, _ in agent.memberships:
                    if not queue.open:
                        continue
                    for channel, heap in queue.ready[first].items():
                        if heap and agent.free(channel):
                            entry = heap[0]
                            top = entry[4]
                            # The top entry is live and skips nobody (most often): no need to search.
                            live = entry[3] == top.version and top.state == WAITING and not top.skip
                            head = top if live else self._head(heap, agent)
                            if head is not None and (best is None or head.key < best.key):
                                best = head
            if best is None:
                break
            trigger = best.reserve_kind if best.reserved_for is agent else "agent_available"
            self._offer(best, agent, now, trigger, out)
            offered = True
        if not offered:
            self._refresh(agent, now)

    @staticmethod
    def _head(heap: list[ConvEntry], agent: AgentRt) -> ConvRt | None:
        """The best live conversation of a ready heap that ``agent`` need not skip."""
        held: list[ConvEntry] = []
        found = None
        while heap:
            entry = heap[0]
            conv = entry[4]
            if entry[3] != conv.version or conv.state != WAITING:
                heappop(heap)
                continue
            if conv.skip and agent.id in conv.skip:
                held.append(heappop(heap))
                continue
            found = conv
            break
        for entry in held:
            heappush(heap, entry)
        return found

    # ------------------------------------------------------------------ conversations

    def _key(self, conv: ConvRt, now: float) -> ConvKey:
        priority = conv.queue.config.priority + conv.priority
        closes = conv.window_closes_at
        if closes is not None and now >= closes - self.config.window_margin_s:
            priority += self.config.window_priority_boost
        aging = self.config.aging_s_per_priority_point
        if aging is None:
            return (float(-priority), conv.enqueued_at, conv.seq)
        return (conv.enqueued_at - priority * aging, conv.enqueued_at, conv.seq)

    def _schedule_window(self, conv: ConvRt, now: float) -> None:
        conv.window_token += 1
        closes = conv.window_closes_at
        if closes is not None:
            when = closes - self.config.window_margin_s
            if when > now:
                self._at(when, _WINDOW, conv, conv.window_token)

    def _schedule_notices(self, conv: ConvRt, now: float, *, restored: bool = False) -> None:
        """The agent-facing timers of a reply window: the warning ``window_warning_s`` before it
        closes and the notice at its close (both fire only while the conversation is assigned).
        A conversation restored by a router taking over, already inside its warning period,
        counts as warned: its previous router said so."""
        conv.notice_token += 1
        closes = conv.window_closes_at
        if closes is None:
            return
        warning = self.config.window_warning_s
        if warning > 0:
            when = closes - warning
            if when > now:
                self._at(when, _WARN, conv, conv.notice_token)
            elif restored and now < closes and conv.agent is not None:
                conv.warned_for = (closes, conv.agent.id)
        if closes > now:
            self._at(closes, _SHUT, conv, conv.notice_token)

    def _warn(self, conv: ConvRt, now: float, out: list[Command]) -> None:
        """Warn the agent holding ``conv`` when its window closes within ``window_warning_s``:
        once per window and agent (a new customer message opens a new window)."""
        closes, agent, warning = conv.window_closes_at, conv.agent, self.config.window_warning_s
        if closes is None or agent is None or conv.state != ASSIGNED or warning <= 0:
            return
        if not closes - warning <= now < closes or conv.warned_for == (closes, agent.id):
            return
        conv.warned_for = (closes, agent.id)
        out.append(WindowClosing(conversation_id=conv.id, agent_id=agent.id, closes_at=closes))

    @staticmethod
    def _window_shut(conv: ConvRt, out: list[Command]) -> None:
        closes, agent = conv.window_closes_at, conv.agent
        if closes is not None and agent is not None and conv.state == ASSIGNED:
            out.append(WindowClosed(conversation_id=conv.id, agent_id=agent.id, closed_at=closes))

    def _reserve(self, conv: ConvRt, agent: AgentRt, until: float, kind: str, *, needs_skills: bool) -> None:
        if conv.reserved_for is not None:
            conv.reserved_for.reserved.pop(conv.id, None)
        conv.reserved_for = agent
        conv.reserve_until = until
        conv.reserve_kind = kind
        conv.reserve_needs_skills = needs_skills

    def _enter_queue(self, conv: ConvRt, queue: QueueRt, now: float) -> None:
        conv.queue = queue
        conv.queue_entered_at = now
        self._schedule_queue_timers(conv, now)

    def _schedule_queue_timers(self, conv: ConvRt, now: float) -> None:
        conv.queue_epoch += 1
        config = conv.queue.config
        if config.overflow is not None and config.overflow.after_s is not None:
            self._at(conv.queue_entered_at + config.overflow.after_s, _OVERFLOW, conv, conv.queue_epoch)
        if config.sla is not None and not conv.escalated and not conv.answered:
            hours = config.hours
            due = (
                conv.enqueued_at + config.sla.threshold_s
                if hours is None
                else hours.after_open_seconds(conv.enqueued_at, config.sla.threshold_s)
            )
            if due is not None:
                self._at(due, _SLA, conv, conv.queue_epoch)

    @staticmethod
    def _sla_waited(conv: ConvRt, now: float) -> float:
        """How long the conversation has waited as its queue's SLA counts it: only while the queue
        is open (its business hours), since it entered routing."""
        hours = conv.queue.config.hours
        return now - conv.enqueued_at if hours is None else hours.open_seconds(conv.enqueued_at, now)

    def _enqueue(self, conv: ConvRt, now: float, trigger: str, out: list[Command]) -> None:
        """Put a conversation (new, declined, requeued, transferred, overflowed) up for routing."""
        queue = conv.queue
        conv.state = WAITING
        conv.version += 1
        conv.agent = None
        conv.offer = None
        queue.waiting[conv.id] = conv
        heappush(queue.age_heap, (conv.enqueued_at, conv.seq, conv))
        if len(queue.age_heap) > 2 * len(queue.waiting) + _COMPACT_SLACK:
            queue.age_heap = [(c.enqueued_at, c.seq, c) for c in queue.waiting.values()]
            heapify(queue.age_heap)
        overflow = queue.config.overflow
        if overflow is not None and conv.hops < self.config.max_overflow_hops:
            due = overflow.after_s is not None and now >= conv.queue_entered_at + overflow.after_s
            if due and self._overflow(conv, "timeout", now, out):
                return
            if overflow.when_no_eligible_agents and self._logged_in(queue) == 0:
                if self._overflow(conv, "no_eligible_agents", now, out):
                    return
        if not queue.open:
            self._reserve_clear(conv)
            if not conv.auto_replied:
                conv.auto_replied = True
                out.append(
                    SendAutoReply(
                        conversation_id=conv.id,
                        queue_id=queue.id,
                        kind="outside_hours",
                        opens_at=queue.next_change,
                    )
                )
            self._insert_ready(conv, now)
            return
        agent = conv.reserved_for
        if agent is not None:
            if (
                now < conv.reserve_until
                and agent.id not in conv.skip
                and agent.presence in (Presence.AVAILABLE, Presence.WRAP_UP)
                and (not conv.reserve_needs_skills or agent in queue.scores)
            ):
                conv.key = self._key(conv, now)
                if self._routable(agent, now) and agent.free(conv.channel):
                    self._offer(conv, agent, now, conv.reserve_kind, out)
                    return
                agent.reserved[conv.id] = conv
                conv.reserve_token += 1
                self._at(conv.reserve_until, _STICKY, conv, conv.reserve_token)
                return
            self._reserve_clear(conv)
        self._insert_ready(conv, now)
        self._route(conv, now, trigger, out)

    @staticmethod
    def _reserve_clear(conv: ConvRt) -> None:
        if conv.reserved_for is not None:
            conv.reserved_for.reserved.pop(conv.id, None)
            conv.reserved_for = None

    def _release_reservation(self, conv: ConvRt, now: float, out: list[Command]) -> None:
        """The sticky/transfer wait is over: route normally, keeping the conversation's place."""
        self._reserve_clear(conv)
        self._insert_ready(conv, now)
        self._route(conv, now, "reroute", out)

    def _logged_in(self, queue: QueueRt) -> int:
        counts = queue.presence_counts[-1]
        return len(queue.eligible[-1]) - counts[Presence.OFFLINE]

    def _insert_ready(self, conv: ConvRt, now: float) -> None:
        queue = conv.queue
        steps = queue.steps
        waited = now - conv.enqueued_at
        step = 0
        while step + 1 < len(steps) and steps[step + 1].after_s <= waited:
            step += 1
        conv.step = step
        key = self._key(conv, now)
        conv.key = key
        entry: ConvEntry = (key[0], key[1], key[2], conv.version, conv)
        for index in range(step + 1):
            self._push_ready(queue, index, conv.channel, entry)
        if step + 1 < len(steps):
            self._at(conv.enqueued_at + steps[step + 1].after_s, _PROMOTE, conv, conv.version)

    def _push_ready(self, queue: QueueRt, step: int, channel: str, entry: ConvEntry) -> None:
        heaps = queue.ready[step]
        heap = heaps.get(channel)
        if heap is None:
            heap = heaps[channel] = []
        heappush(heap, entry)
        if len(heap) > 2 * len(queue.waiting) + _COMPACT_SLACK:
            heap[:] = [e for e in heap if e[3] == e[4].version and e[4].state == WAITING]
            heapify(heap)

    def _promote(self, conv: ConvRt, now: float, out: list[Command]) -> None:
        """The conversation reached its next bullseye step: more agents may take it now."""
        queue = conv.queue
        step = conv.step + 1
        conv.step = step
        self._push_ready(queue, step, conv.channel, (*conv.key, conv.version, conv))
        if step + 1 < len(queue.steps):
            self._at(conv.enqueued_at + queue.steps[step + 1].after_s, _PROMOTE, conv, conv.version)
        self._route(conv, now, "step", out)

    def _rekey(self, conv: ConvRt, now: float) -> None:
        """Priority changed (reply window): re-enter the heaps with the new key."""
        if conv.state != WAITING:
            return
        if conv.reserved_for is not None:
            conv.key = self._key(conv, now)
            return
        conv.version += 1
        self._insert_ready(conv, now)

    def _route(
        self, conv: ConvRt, now: float, trigger: str, out: list[Command], explain: bool = True
    ) -> bool:
        """Find the best agent for a waiting conversation at its current step and offer it."""
        queue = conv.queue
        if not queue.open:
            return False
        pool = queue.pools[conv.step].get(conv.channel) or self._pool(queue, conv.step, conv.channel)
        heap = pool.heap
        held: list[AgentEntry] = []
        winner = None
        skip = conv.skip
        while heap:
            entry = heap[0]
            agent = entry[5]
            if entry[4] != agent.version:
                heappop(heap)
                continue
            if skip and agent.id in skip:
                held.append(heappop(heap))
                continue
            winner = agent
            break
        for entry in held:
            heappush(heap, entry)
        if winner is not None:
            self._offer(conv, winner, now, trigger, out)
            return True
        if explain and not self._minimal:
            out.append(Explained(decision=self._explain(conv, None, now, trigger)))
        return False

    def _overflow(self, conv: ConvRt, reason: str, now: float, out: list[Command]) -> bool:
        source = conv.queue
        overflow = source.config.overflow
        if overflow is None or conv.hops >= self.config.max_overflow_hops:
            return False
        target = self._queues.get(overflow.to_queue_id)
        if target is None or target.ws != conv.ws or target is source:
            return False
        self._leave_waiting(conv)
        conv.hops += 1
        out.append(
            Overflowed(conversation_id=conv.id, from_queue_id=source.id, to_queue_id=target.id, reason=reason)
        )
        self._enter_queue(conv, target, now)
        self._enqueue(conv, now, "overflow", out)
        return True

    def _leave_waiting(self, conv: ConvRt) -> None:
        conv.queue.waiting.pop(conv.id, None)
        self._reserve_clear(conv)
        conv.version += 1

    # ------------------------------------------------------------------ offers

    def _offer(self, conv: ConvRt, agent: AgentRt, now: float, trigger: str, out: list[Command]) -> None:
        decision = self._explain(conv, agent, now, trigger)
        queue = conv.queue
        channel = conv.channel
        # = self._leave_waiting(conv), inlined (one of the hottest paths)
        queue.waiting.pop(conv.id, None)
        if conv.reserved_for is not None:
            self._reserve_clear(conv)
        conv.version += 1
        units = agent.profile.weights.get(channel, 1)  # = agent.profile.weight(channel)
        agent.take(channel, units)
        agent.pending += 1
        agent.idle_since = now
        config = self.config
        if now < agent.ramp_until and config.ramp_interval_s > 0:
            agent.next_offer_at = now + config.ramp_interval_s
            agent.throttle_token += 1
            self._at(agent.next_offer_at, _RAMP, agent, agent.throttle_token)
        timeout = queue.config.offer_timeout_s or config.offer_timeout_s
        offer_id = self._new_offer_id()
        expires_at = now + timeout
        offer = OfferRt(offer_id, conv, agent, units, expires_at)
        self._offers[offer_id] = offer
        agent.offers[offer_id] = offer
        conv.state = OFFERED
        conv.offer = offer
        queue.offered += 1
        self._at(expires_at, _OFFER, offer, 0)
        self._refresh(agent, now)
        out.append(
            Offer(
                offer_id=offer_id,
                conversation_id=conv.id,
                agent_id=agent.id,
                queue_id=queue.id,
                channel=channel,
                expires_at=expires_at,
                decision=decision,
            )
        )

    def _end_offer(self, offer: OfferRt) -> None:
        offer.live = False
        del self._offers[offer.id]
        agent = offer.agent
        del agent.offers[offer.id]
        agent.pending -= 1
        offer.conv.offer = None
        offer.conv.queue.offered -= 1

    def _withdraw(
        self,
        offer: OfferRt,
        reason: str | None,
        now: float,
        out: list[Command],
        *,
        skip: str | None,
        serve_agent: bool = True,
    ) -> None:
        """End a live offer without assignment (declined: ``reason`` None, no command) and re-route."""
        conv, agent = offer.conv, offer.agent
        self._end_offer(offer)
        agent.give_back(offer.channel, offer.units)
        if reason is not None:
            out.append(
                WithdrawOffer(offer_id=offer.id, conversation_id=conv.id, agent_id=agent.id, reason=reason)
            )
        if skip is not None:
            conv.skip[agent.id] = skip
        self._enqueue(conv, now, "reroute", out)  # the agent has no live pool entry while it had the offer
        if serve_agent:
            self._serve(agent, now, out)

    def _detach(self, conv: ConvRt, reason: str, out: list[Command]) -> tuple[AgentRt | None, bool]:
        """Take a conversation out of wherever it is (waiting, offered, assigned).  Returns the agent
        that held it or had its offer, and whether it was assigned; the caller refreshes that agent."""
        if conv.state == WAITING:
            self._leave_waiting(conv)
            return None, False
        if conv.state == OFFERED and conv.offer is not None:
            offer = conv.offer
            self._end_offer(offer)
            offer.agent.give_back(offer.channel, offer.units)
            out.append(
                WithdrawOffer(
                    offer_id=offer.id, conversation_id=conv.id, agent_id=offer.agent.id, reason=reason
                )
            )
            return offer.agent, False
        agent = conv.agent
        if agent is not None:
            del agent.assigned[conv.id]
            agent.give_back(conv.channel, conv.units)
            conv.agent = None
        return agent, True

    # ------------------------------------------------------------------ hours and counters

    def _apply_hours(self, queue: QueueRt, now: float, out: list[Command]) -> None:
        hours = queue.config.hours
        was_open = queue.open
        if hours is None:
            queue.open, queue.next_change = True, None
        else:
            queue.open, queue.next_change = hours.state_at(now)
        queue.hours_token += 1
        if queue.next_change is not None:
            self._at(queue.next_change, _HOURS, queue, queue.hours_token)
        if queue.open and not was_open:
            self._open_queue(queue, now, out)

    def _open_queue(self, queue: QueueRt, now: float, out: list[Command]) -> None:
        """Opening time: route the waiting in priority order while agents can take them."""
        waiting = sorted((c for c in queue.waiting.values() if c.reserved_for is None), key=lambda c: c.key)
        channels = {c.channel for c in waiting}
        last = len(queue.steps) - 1
        loosest = [self._pool(queue, last, channel) for channel in channels]
        for conv in waiting:
            if not any(pool.members for pool in loosest):
                break
            if conv.state == WAITING and conv.queue is queue:
                self._route(conv, now, "queue_open", out, explain=False)

    def _roll_day(self, queue: QueueRt, now: float) -> None:
        if now < queue.day_ends_at:
            return
        hours = queue.config.hours
        if hours is not None:
            queue.day = datetime.fromtimestamp(now, tz=hours.zone).date()
            queue.day_ends_at = hours.local_midnight_after(now)
        else:
            queue.day = datetime.fromtimestamp(now, tz=UTC).date()
            midnight = datetime.combine(queue.day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
            queue.day_ends_at = midnight.timestamp()
        queue.answered = queue.within_sla = queue.abandoned = queue.escalated = 0

    def _count_answer(self, conv: ConvRt, now: float) -> float | None:
        """Count the conversation's first answer in its queue's day; its wait as the SLA counts
        it (``_sla_waited``), or None when it was answered before."""
        if conv.answered:
            return None
        conv.answered = True
        queue = conv.queue
        self._roll_day(queue, now)
        queue.answered += 1
        waited = self._sla_waited(conv, now)
        sla = queue.config.sla
        if sla is not None and waited <= sla.threshold_s:
            queue.within_sla += 1
        return waited

    def _longest_wait(self, queue: QueueRt, now: float) -> float:
        heap = queue.age_heap
        while heap and (heap[0][2].state != WAITING or heap[0][2].queue is not queue):
            heappop(heap)
        return max(0.0, now - heap[0][0]) if heap else 0.0

    # ------------------------------------------------------------------ explanations

    def _why_not(self, agent: AgentRt, conv: ConvRt, queue: QueueRt, step: int, now: float) -> str | None:
        if agent.ws != conv.ws:
            return "other_workspace"
        if agent.presence is not Presence.AVAILABLE:
            return agent.presence.value
        if not agent.connected:
            return "disconnected"
        skills = agent.profile.skills
        for skill, level in queue.mins[step].items():
            if skills.get(skill, 0) < level:
                return f"missing_skill:{skill}<{level}"
        skipped = conv.skip.get(agent.id)
        if skipped is not None:
            return f"skipped_{skipped}"
        if not agent.free(conv.channel):
            return f"at_capacity:{conv.channel}"
        if agent.pending >= self.config.max_pending_offers_per_agent:
            return "pending_offer"
        if now < agent.next_offer_at:
            return "ramping"
        return None

    def _candidate(self, agent: AgentRt, queue: QueueRt) -> Candidate:
        return Candidate(
            agent_id=agent.id,
            score=queue.scores.get(agent, 0),
            load=agent.load_share(),
            idle_since=agent.idle_since,
        )

    def _explain(self, conv: ConvRt, winner: AgentRt | None, now: float, trigger: str) -> Decision:
        queue = conv.queue
        step = conv.step
        ws_agents = queue.ws_agents
        if self._minimal:  # the winner only (the simulator's setting): no scan, no sort
            return Decision(
                conversation_id=conv.id,
                queue_id=queue.id,
                workspace_id=conv.ws,
                at=now,
                trigger=trigger,
                step=step,
                min_proficiency=queue.steps[step].min_proficiency,
                detail=_MINIMAL,
                considered=len(ws_agents),
                candidates=()
                if winner is None
                else (
                    Candidate(  # = self._candidate(winner, queue), inlined
                        agent_id=winner.id,
                        score=queue.scores.get(winner, 0),
                        load=winner.total_load / winner.cap_units,
                        idle_since=winner.idle_since,
                    ),
                ),
                filtered=(),
                filtered_counts=(),
                winner=None if winner is None else winner.id,
            )
        config = self.config
        detail = config.explain
        if detail is ExplainDetail.AUTO:
            full = len(ws_agents) <= config.explain_full_max_agents
            detail = ExplainDetail.FULL if full else ExplainDetail.SUMMARY
        candidates: list[AgentRt] = []
        filtered: list[FilteredAgent] = []
        counts: dict[str, int] = {}
        if detail is ExplainDetail.FULL:
            for agent in ws_agents.values():
                reason = None if agent is winner else self._why_not(agent, conv, queue, step, now)
                if reason is None:
                    candidates.append(agent)
                else:
                    filtered.append(FilteredAgent(agent_id=agent.id, reason=reason))
                    klass = reason.partition(":")[0]
                    counts[klass] = counts.get(klass, 0) + 1
            score = queue.scores
            candidates.sort(key=lambda a: (-score.get(a, 0), *self._selection_key(a), a.tie))
            if winner is not None and candidates[0] is not winner:
                candidates.remove(winner)
                candidates.insert(0, winner)
        elif detail is ExplainDetail.SUMMARY:
            pool = self._pool(queue, step, conv.channel)
            heap = pool.heap
            held: list[AgentEntry] = []
            while heap and len(candidates) < config.explain_top_k:
                entry = heappop(heap)
                agent = entry[5]
                if entry[4] != agent.version:
                    continue
                held.append(entry)
                why = conv.skip.get(agent.id)
                if why is not None:
                    filtered.append(FilteredAgent(agent_id=agent.id, reason=f"skipped_{why}"))
                else:
                    candidates.append(agent)
            for entry in held:
                heappush(heap, entry)
            if winner is not None and winner not in candidates:
                candidates.insert(0, winner)
            presence = queue.presence_counts[step]
            not_routable = presence[Presence.AVAILABLE] - len(pool.members)
            counts = {
                "missing_skill": len(ws_agents) - len(queue.eligible[step]),
                "offline": presence[Presence.OFFLINE],
                "away": presence[Presence.AWAY],
                "wrap_up": presence[Presence.WRAP_UP],
                "not_routable": max(0, not_routable),
                "skipped": len(filtered),
            }
        elif winner is not None:
            candidates.append(winner)
        return Decision(
            conversation_id=conv.id,
            queue_id=queue.id,
            workspace_id=conv.ws,
            at=now,
            trigger=trigger,
            step=step,
            min_proficiency=queue.steps[step].min_proficiency,
            detail=detail.value,
            considered=len(ws_agents),
            candidates=tuple(self._candidate(agent, queue) for agent in candidates),
            filtered=tuple(filtered),
            filtered_counts=tuple(sorted((k, v) for k, v in counts.items() if v)),
            winner=None if winner is None else winner.id,
        )
