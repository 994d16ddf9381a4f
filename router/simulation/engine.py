"""The discrete-event engine: synthetic arrivals, handle times and patience on a virtual clock,
fed to the production ``RouterState`` — the policy decides, the engine only plays the world.

The world's events sit in one heap of ``(time, kind, slot, generation)`` tuples: a contact's
arrival, an agent accepting an offer (after ``accept_delay_s``), a conversation closing after its
handle time, a waiting contact abandoning after its patience.  Before each of them the router
gets a ``Tick`` at every deadline it reported (``next_deadline()``: offer expiry, wrap-up end,
ramp) that comes first, so its timers fire at their own instant.  The router's commands are
carried out as an agent desk would: an ``Offer`` is accepted, an ``Assigned`` conversation closes
after its handle time, a ``WithdrawOffer`` cancels the pending acceptance.

Cheap by construction: a contact lives in a *slot* whose conversation id, ``ConversationArrived``
and ``ConversationClosed`` events are built once and reused by every later contact of that slot
(the router forgets a conversation when it closes); ids are ``UUID(int=base + index)`` so a command
maps back to its slot and agent group by arithmetic, not hashing; a contact's handle time and
patience are drawn when it arrives from its queue's own random stream, so two runs that differ
only in staffing see the same contacts (common random numbers, smoother sweeps).
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from heapq import heappop, heappush

from core.errors import InvalidInput
from core.ids import AgentId, ConversationId, QueueId, WorkspaceId
from router.policy import (
    AgentPresenceChanged,
    AgentProfile,
    AgentUpdated,
    Assigned,
    Command,
    ConversationArrived,
    ConversationClosed,
    Offer,
    OfferAccepted,
    Presence,
    QueueConfig,
    QueueUpdated,
    RouterState,
    Tick,
    WithdrawOffer,
    sequential_offer_ids,
)
from router.simulation.distributions import HOUR_S, Sampler, next_arrival
from router.simulation.scenario import Scenario

__all__ = ["WORKSPACE", "Progress", "RunCounts", "run_once"]

WORKSPACE = WorkspaceId(uuid.UUID(int=0x5100))
_QUEUE_BASE = 1 << 100
_AGENT_BASE = 1 << 101
_CONV_BASE = 1 << 102

# Event kinds, in the order ties at one instant are taken.
_CLOSE, _ABANDON, _ACCEPT, _ARRIVAL = range(4)
# Slot states.
_FREE, _WAITING, _ANSWERED = range(3)

Progress = Callable[[float], None]
"""Told the share of the run done (0 … 1) now and then."""


@dataclass(slots=True)
class RunCounts:
    """Raw tallies of one replication, over the measured contacts.  Per queue (index as in the
    scenario): ``offered``, ``answered``, ``abandoned``, ``waited`` (not offered on arrival),
    ``wait_sum`` (answered), ``within[j]`` (answered within threshold ``j``), ``busy`` (slot-seconds
    spent on its contacts) and ``capacity`` (slot-seconds of the agents able to serve it); per
    group ``group_busy`` / ``group_capacity``; ``hourly`` per queue and hour of arrival (day runs
    only): ``[offered, answered, abandoned, wait_sum, within…]``.  ``cpu_s``: the replication's CPU time."""

    offered: list[int]
    answered: list[int]
    abandoned: list[int]
    waited: list[int]
    wait_sum: list[float]
    within: list[list[int]]
    busy: list[float]
    capacity: list[float]
    group_busy: list[float]
    group_capacity: list[float]
    hourly: list[list[list[float]]]
    contacts_simulated: int
    handle_calls: int
    window_s: float
    cpu_s: float


def _queue_id(index: int) -> QueueId:
    return QueueId(uuid.UUID(int=_QUEUE_BASE + index))


def _agent_id(index: int) -> AgentId:
    return AgentId(uuid.UUID(int=_AGENT_BASE + index))


def _build_router(scenario: Scenario) -> tuple[RouterState, list[int]]:
    """The production state machine with the scenario's queues and agents, all available at 0."""
    state = RouterState(scenario.policy.router, offer_ids=sequential_offer_ids())
    for index, queue in enumerate(scenario.queues):
        config = QueueConfig(
            id=_queue_id(index),
            workspace_id=WORKSPACE,
            name=queue.name,
            required_skills=dict(queue.skills),
            preferred_skills=dict(queue.preferred_skills),
            priority=queue.priority,
            sla=None,  # the simulator measures service levels itself; no escalation timers
        )
        state.handle(QueueUpdated(queue=config), 0.0)
    agent_group: list[int] = []
    for group_index, group in enumerate(scenario.agents):
        for _ in range(group.count):
            profile = AgentProfile(
                id=_agent_id(len(agent_group)),
                workspace_id=WORKSPACE,
                skills=dict(group.skills),
                capacity=dict(group.capacity),
                weights=dict(group.weights),
                total_capacity=group.total_capacity,
            )
            agent_group.append(group_index)
            state.handle(AgentUpdated(agent=profile), 0.0)
    for index in range(len(agent_group)):
        state.handle(AgentPresenceChanged(agent_id=_agent_id(index), presence=Presence.AVAILABLE), 0.0)
    return state, agent_group


def run_once(scenario: Scenario, seed: int, progress: Progress | None = None) -> RunCounts:
    """One replication of ``scenario`` with random streams derived from ``seed``."""
    started = time.process_time()
    queues = scenario.queues
    groups = scenario.agents
    nq, ng = len(queues), len(groups)
    thresholds = scenario.thresholds_s
    nth = len(thresholds)
    run = scenario.run
    delay = scenario.policy.accept_delay_s
    day_end = math.inf if run.hours is None else run.hours * HOUR_S
    hourly_on = run.hours is not None
    hours = run.hours or 0
    warm = run.warmup_contacts
    end = math.inf if run.contacts is None else warm + run.contacts

    for queue in queues:
        if queue.patience is None and not any(g.count > 0 and g.can_serve(queue) for g in groups):
            raise InvalidInput(
                f"no agent can serve queue {queue.name!r} and its contacts never abandon: "
                "the run would not end"
            )
    state, agent_group = _build_router(scenario)
    handle = state.handle
    next_deadline = state.next_deadline
    tick = Tick()

    # Per queue: its own random stream for gaps, handle times and patience.
    streams = [random.Random(seed * 1_000_003 + index) for index in range(nq)]
    gap_uniform = [s.random for s in streams]
    handle_draw: list[Sampler] = [q.handle_time.sampler(s) for q, s in zip(queues, streams, strict=True)]
    patience_draw: list[Sampler | None] = [
        None if q.patience is None else q.patience.sampler(s) for q, s in zip(queues, streams, strict=True)
    ]
    constant_rate = [len(q.arrivals_per_hour) == 1 for q in queues]
    mean_gap = [HOUR_S / q.arrivals_per_hour[0] if len(q.arrivals_per_hour) == 1 else 0.0 for q in queues]
    rates = [q.arrivals_per_hour for q in queues]
    units = [[g.weights.get(q.channel, 1) for q in queues] for g in groups]  # [group][queue]

    # Slots: index → conversation; each bound to one queue for life.
    s_queue: list[int] = []
    s_gen: list[int] = []
    s_state: list[int] = []
    s_measured: list[bool] = []
    s_handle: list[float] = []
    s_hour: list[int] = []
    s_group: list[int] = []
    s_busy_from: list[float] = []
    s_offer: list[object] = []
    s_arrive: list[ConversationArrived] = []
    s_close: list[ConversationClosed] = []
    free: list[list[int]] = [[] for _ in range(nq)]
    queue_ids = [_queue_id(index) for index in range(nq)]
    channels = [q.channel for q in queues]

    def new_slot(q: int) -> int:
        slot = len(s_queue)
        cid = ConversationId(uuid.UUID(int=_CONV_BASE + slot))
        s_queue.append(q)
        s_gen.append(0)
        s_state.append(_FREE)
        s_measured.append(False)
        s_handle.append(0.0)
        s_hour.append(0)
        s_group.append(0)
        s_busy_from.append(0.0)
        s_offer.append(None)
        s_arrive.append(
            ConversationArrived(
                conversation_id=cid, workspace_id=WORKSPACE, queue_id=queue_ids[q], channel=channels[q]
            )
        )
        s_close.append(ConversationClosed(conversation_id=cid))
        return slot

    offered = [0] * nq
    answered = [0] * nq
    abandoned = [0] * nq
    waited = [0] * nq
    wait_sum = [0.0] * nq
    within = [[0] * nth for _ in range(nq)]
    busy = [0.0] * nq
    group_busy = [0.0] * ng
    hourly = [[[0.0] * (4 + nth) for _ in range(hours)] for _ in range(nq)]

    heap: list[tuple[float, int, int, int]] = []
    window = [math.inf, math.inf]  # [start, end] of the measured arrivals
    if hourly_on:
        window[0], window[1] = 0.0, day_end
    counters = [0, 0, 0]  # arrivals so far, measured contacts still open, handle() calls

    def react(commands: list[Command], now: float) -> None:
        """Carry out the router's commands at ``now`` (the list grows as acceptances answer)."""
        i = 0
        while i < len(commands):
            command = commands[i]
            i += 1
            kind = type(command)
            if kind is Offer:
                if delay == 0:
                    counters[2] += 1
                    commands.extend(handle(OfferAccepted(offer_id=command.offer_id), now))  # type: ignore[union-attr,arg-type]
                else:
                    slot = command.conversation_id.int - _CONV_BASE  # type: ignore[union-attr]
                    s_offer[slot] = command.offer_id  # type: ignore[union-attr]
                    heappush(heap, (now + delay, _ACCEPT, slot, s_gen[slot]))
            elif kind is Assigned:
                slot = command.conversation_id.int - _CONV_BASE  # type: ignore[union-attr]
                s_state[slot] = _ANSWERED
                s_offer[slot] = None
                if s_measured[slot]:
                    q = s_queue[slot]
                    wait = command.waited_s  # type: ignore[union-attr]
                    answered[q] += 1
                    wait_sum[q] += wait
                    counts = within[q]
                    for j in range(nth):
                        if wait <= thresholds[j]:
                            counts[j] += 1
                    if hourly_on:
                        row = hourly[q][s_hour[slot]]
                        row[1] += 1
                        row[3] += wait
                        for j in range(nth):
                            if wait <= thresholds[j]:
                                row[4 + j] += 1
                s_group[slot] = agent_group[command.agent_id.int - _AGENT_BASE]  # type: ignore[union-attr]
                s_busy_from[slot] = now - delay
                heappush(heap, (now + s_handle[slot], _CLOSE, slot, s_gen[slot]))
            elif kind is WithdrawOffer:
                s_offer[command.conversation_id.int - _CONV_BASE] = None  # type: ignore[union-attr]

    def release(slot: int) -> None:
        s_gen[slot] += 1
        s_state[slot] = _FREE
        free[s_queue[slot]].append(slot)
        if s_measured[slot]:
            counters[1] -= 1

    def schedule_arrival(q: int, now: float) -> None:
        if constant_rate[q]:
            at = now - mean_gap[q] * math.log(1.0 - gap_uniform[q]())
        else:
            at = next_arrival(now, rates[q], gap_uniform[q])
        if at < day_end:
            heappush(heap, (at, _ARRIVAL, q, 0))

    for q in range(nq):
        schedule_arrival(q, 0.0)

    report_every = 4096
    total_hint = end if run.contacts is not None else None
    inf = math.inf
    while True:
        upcoming = heap[0][0] if heap else inf
        deadline = next_deadline()
        if deadline is not None and deadline < upcoming:
            counters[2] += 1
            commands = handle(tick, deadline)
            if commands:
                react(commands, deadline)
            continue
        if not heap:
            break
        now, kind, slot, gen = heappop(heap)
        if kind == _ARRIVAL:
            q = slot
            index = counters[0]
            counters[0] = index + 1
            bucket = free[q]
            slot = bucket.pop() if bucket else new_slot(q)
            measured = warm <= index < end
            s_state[slot] = _WAITING
            s_measured[slot] = measured
            s_handle[slot] = handle_draw[q]()
            draw = patience_draw[q]
            if draw is not None:
                heappush(heap, (now + draw(), _ABANDON, slot, s_gen[slot]))
            arrival = s_arrive[slot]
            counters[2] += 1
            commands = handle(arrival, now)
            if measured:
                counters[1] += 1
                if index == warm and not hourly_on:
                    window[0] = now
                if index == end - 1:
                    window[1] = now
                offered[q] += 1
                at_once = bool(commands) and type(commands[-1]) is Offer
                if at_once:
                    at_once = commands[-1].conversation_id is arrival.conversation_id  # type: ignore[union-attr]
                if not at_once:
                    waited[q] += 1
                if hourly_on:
                    hour = int(now // HOUR_S)
                    s_hour[slot] = hour
                    hourly[q][hour][0] += 1
            if commands:
                react(commands, now)
            schedule_arrival(q, now)
            if progress is not None and index % report_every == 0:
                progress(index / total_hint if total_hint else now / day_end)
        elif kind == _CLOSE:
            counters[2] += 1
            commands = handle(s_close[slot], now)
            low = s_busy_from[slot]
            if low < window[0]:
                low = window[0]
            high = now if now < window[1] else window[1]
            if high > low:
                q = s_queue[slot]
                g = s_group[slot]
                share = (high - low) * units[g][q]
                busy[q] += share
                group_busy[g] += share
            release(slot)
            if commands:
                react(commands, now)
        elif kind == _ABANDON:
            if s_gen[slot] != gen or s_state[slot] != _WAITING:
                continue
            counters[2] += 1
            commands = handle(s_close[slot], now)
            if s_measured[slot]:
                q = s_queue[slot]
                abandoned[q] += 1
                if hourly_on:
                    hourly[q][s_hour[slot]][2] += 1
            release(slot)
            if commands:
                react(commands, now)
        else:  # _ACCEPT
            offer_id = s_offer[slot]
            if s_gen[slot] != gen or offer_id is None:
                continue
            s_offer[slot] = None
            counters[2] += 1
            react(handle(OfferAccepted(offer_id=offer_id), now), now)  # type: ignore[arg-type]
        if counters[1] == 0 and counters[0] >= end:
            break
    # Conversations still being handled when the run stops: their part of the window is busy too.
    for at, kind, slot, _ in heap:
        if kind == _CLOSE:
            low = max(s_busy_from[slot], window[0])
            high = min(at, window[1])
            if high > low:
                q, g = s_queue[slot], s_group[slot]
                busy[q] += (high - low) * units[g][q]
                group_busy[g] += (high - low) * units[g][q]
    span = window[1] - window[0] if window[1] > window[0] and math.isfinite(window[1]) else 0.0
    group_capacity = [g.count * g.slots() * span for g in groups]
    capacity = [sum(g.count * g.slots(q.channel) * span for g in groups if g.can_serve(q)) for q in queues]
    if progress is not None:
        progress(1.0)
    return RunCounts(
        offered=offered,
        answered=answered,
        abandoned=abandoned,
        waited=waited,
        wait_sum=wait_sum,
        within=within,
        busy=busy,
        capacity=capacity,
        group_busy=group_busy,
        group_capacity=group_capacity,
        hourly=hourly,
        contacts_simulated=counters[0],
        handle_calls=counters[2],
        window_s=span,
        cpu_s=time.process_time() - started,
    )


def scaled(scenario: Scenario, contacts: int, warmup: int) -> Scenario:
    """The same scenario run for another number of contacts (tests and benchmarks)."""
    return replace(scenario, run=replace(scenario.run, contacts=contacts, warmup_contacts=warmup, hours=None))
