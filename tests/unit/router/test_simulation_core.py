"""The policy is usable as a discrete-event simulator's core: a virtual clock, ``next_deadline``
and the commands are all it needs.  A single-agent Poisson/exponential run matches M/M/1."""

from __future__ import annotations

import heapq
import random
import uuid

from core.ids import ConversationId
from router.policy import (
    Assigned,
    Command,
    ConversationArrived,
    ConversationClosed,
    ExplainDetail,
    Offer,
    OfferAccepted,
    RouterConfig,
    RouterEvent,
    RouterState,
    Tick,
    sequential_offer_ids,
)
from tests.unit.router.harness import CHAT, WS, Harness, queue_id


def simulate_mm1(arrival_rate: float, service_rate: float, customers: int, seed: int) -> tuple[float, float]:
    """Mean wait in queue and agent utilisation, driving ``RouterState`` with a virtual clock."""
    rng = random.Random(seed)
    config = RouterConfig(ramp_period_s=0, explain=ExplainDetail.MINIMAL, offer_timeout_s=1e9)
    setup = Harness(config, start=0.0)  # builds the queue and the agent through real events
    setup.queue()
    setup.agent(1, capacity={CHAT: 1})
    state: RouterState = setup.state
    clock = 0.0
    pending: list[tuple[float, int, RouterEvent]] = []
    seq = 0
    arrived_at: dict[ConversationId, float] = {}
    waits: list[float] = []
    busy_time = 0.0

    def schedule(at: float, event: RouterEvent) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(pending, (at, seq, event))

    def react(commands: list[Command], at: float) -> None:
        nonlocal busy_time
        for command in commands:
            if isinstance(command, Offer):  # the agent accepts at once
                react(state.handle(OfferAccepted(offer_id=command.offer_id), at), at)
            elif isinstance(command, Assigned):
                waits.append(at - arrived_at[command.conversation_id])
                service = rng.expovariate(service_rate)
                busy_time += service
                schedule(at + service, ConversationClosed(conversation_id=command.conversation_id))

    def arrival(n: int, at: float) -> None:
        cid = ConversationId(uuid.UUID(int=n + 1))
        arrived_at[cid] = at
        schedule(
            at, ConversationArrived(conversation_id=cid, workspace_id=WS, queue_id=queue_id(1), channel=CHAT)
        )

    arrival(0, rng.expovariate(arrival_rate))
    arrivals = 1
    while len(waits) < customers:
        deadline = state.next_deadline()
        if deadline is not None and deadline < pending[0][0]:
            clock = deadline
            react(state.handle(Tick(), clock), clock)
            continue
        clock, _, event = heapq.heappop(pending)
        if isinstance(event, ConversationArrived):
            arrival(arrivals, clock + rng.expovariate(arrival_rate))
            arrivals += 1
        react(state.handle(event, clock), clock)
    return sum(waits) / len(waits), busy_time / clock


def test_a_single_agent_run_on_a_virtual_clock_matches_mm1_queueing_theory() -> None:
    arrival_rate, service_rate = 1 / 60, 1 / 30  # rho = 0.5
    mean_wait, utilisation = simulate_mm1(arrival_rate, service_rate, customers=20_000, seed=7)
    rho = arrival_rate / service_rate
    expected_wait = rho / (service_rate - arrival_rate)  # Wq = 30 s
    assert abs(mean_wait - expected_wait) / expected_wait < 0.1
    assert abs(utilisation - rho) < 0.03


def test_the_router_reports_its_next_deadline_so_a_simulator_never_polls() -> None:
    state = RouterState(RouterConfig(ramp_period_s=0, offer_timeout_s=30), offer_ids=sequential_offer_ids())
    h = Harness(start=0.0)
    h.state = state
    h.queue()
    h.agent(1)
    assert state.next_deadline() is None  # nothing pending: the simulator may jump to its next event
    h.arrive(1)
    assert state.next_deadline() == 30.0  # the offer's expiry
