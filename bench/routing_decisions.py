"""Routing decisions per second and decision latency (p50/p99) as agents and backlog grow.

    python -m bench.routing_decisions            # 100/1,000/10,000 agents × 1,000/10,000/100,000 waiting
    python -m bench.routing_decisions --quick    # 100/1,000 agents × 1,000/10,000 waiting

Each cell builds one workspace with 10 queues (one required skill each, a preferred skill, bullseye
steps ≥7 / ≥4 after 30 s / any after 90 s) and agents with three random skills (proficiency 1–10)
and capacity 2 WhatsApp + 2 email, fills every agent to capacity, and leaves ``waiting``
conversations in the backlog with ages spread over 0–300 s (so they sit at every bullseye step).
Then, with virtual time advancing 1 µs per event (``--step-ms`` to change it), it times
``RouterState.handle`` for:

- **free → offer**: a conversation closes; the freed agent gets the best waiting conversation it can
  serve (agent-side decision, summary explanation included), followed by its acceptance (untimed);
- **arrival (backlog)**: a new conversation arrives while no agent is free (conversation-side
  decision that finds nobody, with its ``Explained`` record) — keeps the backlog constant;
- **arrival → offer**: separately, with every agent free and no backlog: a conversation arrives
  and is offered to the best agent (then accepted and closed, untimed).

Garbage collection is frozen after setup (as a long-running router would do after warm-up).
Latency is reported as this thread's CPU time and as wall-clock time: on a shared machine the
wall-clock tail also holds preemption by other processes.  With ``--step-ms 1`` the backlog's own
timers (bullseye promotions, SLA escalations — each an O(log n) routing attempt) fire during the
run and are counted in whichever event wakes them.

**Router memory.** With 1,000 and then 10,000 agents (``--quick``: 100 and 1,000), 100,000 open
conversations (``--quick``: 10,000) are admitted into a fresh ``RouterState``, ids made as the live
router makes them (UUIDv7 conversation, customer and offer ids): agents are offered conversations
up to their capacity, 10% of offers stay unanswered (``offered``), the rest are accepted
(``assigned``), and everything else waits with an age over 0–300 s.  The live router's own
per-conversation side tables (``RouterService._known`` and ``_offers``) are kept beside it and fed
the same way.  Each cell runs in a fresh process, twice: once for the growth of the process's
resident memory (``VmRSS``), once under ``tracemalloc`` for the bytes still allocated after the
admissions (minus before: agents present, nothing routed yet), each divided by the number of
conversations.  That difference also holds the agent pools, made when the first conversation is
routed at a queue, step and channel and sized by the agents: shown apart ("agent pools").  The
floor it is compared with is a bare ``dict`` of conversation id → customer id.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import resource
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from core.ids import AgentId, ConversationId, CustomerId, OfferId, QueueId, WorkspaceId, new_id
from router.policy import (
    AgentPresenceChanged,
    AgentProfile,
    AgentUpdated,
    Assigned,
    BullseyeStep,
    Command,
    ConversationArrived,
    ConversationClosed,
    Offer,
    OfferAccepted,
    Presence,
    QueueConfig,
    QueueUpdated,
    RouterConfig,
    RouterEvent,
    RouterState,
    WithdrawOffer,
    random_offer_ids,
    sequential_offer_ids,
)

WS = WorkspaceId(uuid.UUID(int=1))
SKILLS = [f"s{i}" for i in range(5)]
CHANNELS = ("whatsapp", "email")
QUEUES = 10
STEPS = (BullseyeStep(0, 7), BullseyeStep(30, 4), BullseyeStep(90, None))
T0 = 1_700_000_000.0
STEP_S = 1e-6  # virtual time between events (--step-ms)


class Bench:
    def __init__(self, agents: int, seed: int, *, live_ids: bool = False) -> None:
        """``live_ids``: conversation, customer and offer ids are UUIDv7s as in the live router
        (full-size objects, for the memory figures) instead of small sequential ones."""
        self.rng = random.Random(seed)
        self.live_ids = live_ids
        self.state = RouterState(
            RouterConfig(ramp_period_s=0, offer_timeout_s=3600),
            offer_ids=random_offer_ids() if live_ids else sequential_offer_ids(),
        )
        self.now = T0
        self.next_conv = 0
        self.assigned: list[ConversationId] = []
        self.queues = [QueueId(uuid.UUID(int=10_000 + i)) for i in range(QUEUES)]
        for i, qid in enumerate(self.queues):
            config = QueueConfig(
                id=qid,
                workspace_id=WS,
                name=f"q{i}",
                required_skills={SKILLS[i % 5]: 1},
                preferred_skills={SKILLS[(i + 1) % 5]: 1},
                bullseye=STEPS,
            )
            self.send(QueueUpdated(queue=config))
        for n in range(agents):
            aid = AgentId(uuid.UUID(int=1_000_000 + n))
            skills = {skill: self.rng.randint(1, 10) for skill in self.rng.sample(SKILLS, 3)}
            profile = AgentProfile(
                id=aid, workspace_id=WS, skills=skills, capacity=dict.fromkeys(CHANNELS, 2)
            )
            self.send(AgentUpdated(agent=profile))
            self.send(AgentPresenceChanged(agent_id=aid, presence=Presence.AVAILABLE))

    def send(self, event: RouterEvent) -> list[Command]:
        return self.state.handle(event, self.now)

    def arrival(self, age: float = 0.0) -> ConversationArrived:
        self.next_conv += 1
        live = self.live_ids
        return ConversationArrived(
            conversation_id=ConversationId(new_id() if live else uuid.UUID(int=self.next_conv)),
            customer_id=CustomerId(new_id()) if live else None,
            workspace_id=WS,
            queue_id=self.rng.choice(self.queues),
            channel=self.rng.choice(CHANNELS),
            priority=self.rng.randint(0, 2),
            enqueued_at=self.now - age,
        )

    def accept_all(self, commands: list[Command]) -> None:
        offers: list[Offer] = [c for c in commands if isinstance(c, Offer)]
        while offers:
            offer = offers.pop()
            self.assigned.append(offer.conversation_id)
            offers += [c for c in self.send(OfferAccepted(offer_id=offer.offer_id)) if isinstance(c, Offer)]

    def fill(self, waiting: int) -> None:
        """Saturate every agent, then build a backlog of ``waiting`` conversations."""
        while self.state.waiting_count() < waiting:
            self.accept_all(self.send(self.arrival(age=self.rng.uniform(0, 300))))


class Samples:
    """Per-call latency in µs, wall clock and this thread's CPU time.  On a shared machine the
    wall-clock tail includes preemption by other processes (scheduler slices of ~4 ms); the CPU
    time is what the decision itself costs."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []


def timed(bench: Bench, event: RouterEvent, samples: Samples) -> list[Command]:
    cpu = time.thread_time_ns()
    start = time.perf_counter_ns()
    commands = bench.state.handle(event, bench.now)
    end = time.perf_counter_ns()
    samples.cpu.append((time.thread_time_ns() - cpu) / 1000)
    samples.wall.append((end - start) / 1000)
    return commands


def backlog_cell(agents: int, waiting: int, rounds: int) -> tuple[Samples, Samples, float]:
    bench = Bench(agents, seed=agents * 7 + waiting)
    started = time.perf_counter()
    bench.fill(waiting)
    setup = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    freed = Samples()
    arrivals = Samples()
    rng = bench.rng
    for _ in range(rounds):
        bench.now += STEP_S
        index = rng.randrange(len(bench.assigned))
        bench.assigned[index], bench.assigned[-1] = bench.assigned[-1], bench.assigned[index]
        closing = bench.assigned.pop()
        commands = timed(bench, ConversationClosed(conversation_id=closing), freed)
        offers = [c.offer_id for c in commands if isinstance(c, Offer)]
        bench.now += STEP_S
        for offer_id in offers:
            bench.accept_all(
                [c for c in bench.send(OfferAccepted(offer_id=offer_id)) if isinstance(c, Offer)]
            )
            bench.assigned.append(next(c for c in commands if isinstance(c, Offer)).conversation_id)
        bench.now += STEP_S
        bench.accept_all(timed(bench, bench.arrival(), arrivals))
    gc.unfreeze()
    return freed, arrivals, setup


def free_agents_cell(agents: int, rounds: int) -> Samples:
    bench = Bench(agents, seed=agents)
    gc.collect()
    gc.freeze()
    samples = Samples()
    for _ in range(rounds):
        bench.now += STEP_S
        event = bench.arrival()
        commands = timed(bench, event, samples)
        for command in commands:
            if isinstance(command, Offer):
                bench.send(OfferAccepted(offer_id=OfferId(command.offer_id)))
                bench.send(ConversationClosed(conversation_id=command.conversation_id))
    gc.unfreeze()
    return samples


# -- router memory -----------------------------------------------------------------------------

OFFERS_LEFT_OPEN = 0.1
"""Share of offers the memory cells leave unanswered: those conversations stay ``offered``."""


class SideTables:
    """What ``router.service.service.RouterService`` keeps per conversation beside the policy
    (``_known``: open conversation → customer; ``_offers``: live offer → conversation, agent),
    fed as its ``_feed`` feeds them."""

    def __init__(self) -> None:
        self.known: dict[ConversationId, CustomerId | None] = {}
        self.offers: dict[OfferId, tuple[ConversationId, AgentId]] = {}

    def feed(self, event: RouterEvent, commands: list[Command]) -> None:
        if isinstance(event, ConversationArrived):
            self.known[event.conversation_id] = event.customer_id
        elif isinstance(event, ConversationClosed):
            self.known.pop(event.conversation_id, None)
        for command in commands:
            if isinstance(command, Offer):
                self.offers[command.offer_id] = (command.conversation_id, command.agent_id)
            elif isinstance(command, WithdrawOffer | Assigned) and command.offer_id is not None:
                self.offers.pop(command.offer_id, None)

    def nbytes(self) -> int:
        """Bytes held by these tables alone (their keys and customers are shared with the policy)."""
        return (
            sys.getsizeof(self.known)
            + sys.getsizeof(self.offers)
            + sum(sys.getsizeof(value) for value in self.offers.values())
        )


def admit(bench: Bench, conversations: int, side: SideTables) -> tuple[int, int, int]:
    """Admit ``conversations`` arrivals (ages over 0–300 s); accept each offer they cause unless
    it is one of the ``OFFERS_LEFT_OPEN`` left unanswered.  Returns (waiting, offered, assigned)."""
    rng = bench.rng
    offered = assigned = 0

    def send(event: RouterEvent) -> list[Command]:
        commands = bench.state.handle(event, bench.now)
        side.feed(event, commands)
        return commands

    for _ in range(conversations):
        bench.now += STEP_S
        offers = [c for c in send(bench.arrival(age=rng.uniform(0, 300))) if isinstance(c, Offer)]
        while offers:
            offer = offers.pop()
            if rng.random() < OFFERS_LEFT_OPEN:
                offered += 1
                continue
            assigned += 1
            offers += [c for c in send(OfferAccepted(offer_id=offer.offer_id)) if isinstance(c, Offer)]
    return bench.state.waiting_count(), offered, assigned


def agent_pool_bytes(state: RouterState) -> int:
    """Bytes in the agent pools (``QueueRt.pools``; private, read for this figure only).  A pool is
    made when the first conversation is routed at its queue, step and channel, and is sized by the
    agents, not by the conversations: it is inside "after − before" but is no per-conversation cost."""
    total = 0
    floats: set[int] = set()
    for queue in state._queues.values():
        for pools in queue.pools:
            for pool in pools.values():
                total += sys.getsizeof(pool) + sys.getsizeof(pool.heap) + sys.getsizeof(pool.members)
                for entry in pool.heap:
                    total += sys.getsizeof(entry)
                    for value in entry[1:3]:  # selection keys: floats made for the entry
                        if id(value) not in floats:
                            floats.add(id(value))
                            total += sys.getsizeof(value)
    return total


def rss_bytes() -> int:
    """This process's resident set now (``VmRSS``); its peak (``ru_maxrss``) where /proc is absent."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_cell(agents: int, conversations: int, seed: int) -> dict[str, Any]:
    """Run in a fresh process: memory held per open conversation, resident and traced."""
    # Resident growth first, without tracing (tracemalloc's own bookkeeping would count too).
    bench, side = Bench(agents, seed, live_ids=True), SideTables()
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    waiting, offered, assigned = admit(bench, conversations, side)
    seconds = time.perf_counter() - started
    gc.collect()
    rss = rss_bytes() - before
    del bench, side
    gc.collect()
    # The same admissions again (same seed), traced from the start so that blocks made before the
    # admissions and freed during them are subtracted too: bytes still allocated afterwards.
    tracemalloc.start()
    bench, side = Bench(agents, seed, live_ids=True), SideTables()
    gc.collect()
    traced_before = tracemalloc.get_traced_memory()[0]
    admit(bench, conversations, side)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced_before
    tracemalloc.stop()
    side_bytes = side.nbytes()
    pools = agent_pool_bytes(bench.state)
    del bench, side
    gc.collect()
    # The floor: a bare dict of conversation id → customer id.
    tracemalloc.start()
    floor = {ConversationId(new_id()): CustomerId(new_id()) for _ in range(conversations)}
    floor_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del floor
    return {
        "agents": agents,
        "conversations": conversations,
        "waiting": waiting,
        "offered": offered,
        "assigned": assigned,
        "traced": traced,
        "side": side_bytes,
        "pools": pools,
        "rss": rss,
        "floor": floor_bytes,
        "seconds": seconds,
    }


def memory_row(cell: dict[str, Any]) -> str:
    count = cell["conversations"]
    per_conv = cell["traced"] / count
    rss = cell["rss"] / count
    return (
        f"| {'open conversations':<18} | {cell['agents']:>6,} | {count:>7,} | {cell['waiting']:>7,} "
        f"| {cell['offered']:>7,} | {cell['assigned']:>8,} | {per_conv:>10,.0f} "
        f"| {per_conv * 100_000 / 1e6:>7.1f} | {cell['traced'] / cell['floor']:>7.1f} "
        f"| {cell['side'] / count:>11,.0f} | {cell['pools'] / count:>11,.0f} "
        f"| {rss:>14,.0f} | {rss * 100_000 / 1e6:>11.1f} |"
    )


def memory_table(agent_sizes: tuple[int, ...], conversations: int) -> None:
    print()
    print(
        "| router memory      | agents |    open | waiting | offered | assigned | bytes/conv "
        "| MB/100k | × floor | side tables | agent pools | RSS bytes/conv | RSS MB/100k |"
    )
    print(
        "|--------------------|-------:|--------:|--------:|--------:|---------:|-----------:"
        "|--------:|--------:|------------:|------------:|---------------:|------------:|"
    )
    sys.stdout.flush()
    for agents in agent_sizes:
        # A fresh process per cell: memory freed by earlier cells would otherwise be reused.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            cell = pool.submit(memory_cell, agents, conversations, agents * 11 + conversations).result()
        print(memory_row(cell))
        sys.stdout.flush()
    print(
        "bytes/conv: tracemalloc, after − before (before: agents present, nothing routed), policy "
        f"state + service side tables, {conversations:,} open conversations"
        f'{" (--quick)" if conversations < 100_000 else ""}; of which per conversation "side tables" '
        '(_known, _offers) and "agent pools" (agent-sized, made on first use); MB = 10^6 bytes; '
        "floor: a bare dict conversation id → customer id"
    )


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(label: str, agents: int, waiting: int, samples: Samples) -> str:
    mean = statistics.fmean(samples.wall)
    return (
        f"| {label:<18} | {agents:>6,} | {waiting:>7,} | {1e6 / mean:>11,.0f} "
        f"| {pct(samples.cpu, 0.5):>7.1f} | {pct(samples.cpu, 0.99):>7.1f} "
        f"| {pct(samples.wall, 0.5):>8.1f} | {pct(samples.wall, 0.99):>8.1f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grid and fewer samples")
    parser.add_argument(
        "--step-ms",
        type=float,
        default=0.001,
        help="virtual time between events; 1 ms lets bullseye promotions and SLA timers of the backlog "
        "fire during the run (their routing attempts are then counted in the events that wake them)",
    )
    args = parser.parse_args(argv)
    global STEP_S
    STEP_S = args.step_ms / 1000
    agent_sizes = (100, 1_000) if args.quick else (100, 1_000, 10_000)
    waiting_sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    rounds = 1_000 if args.quick else 5_000
    print("| decision           | agents | waiting | decisions/s | cpu p50 | cpu p99 | wall p50 | wall p99 |")
    print("|--------------------|-------:|--------:|------------:|--------:|--------:|---------:|---------:|")
    emit: Callable[[str], None] = print
    for agents in agent_sizes:
        emit(row("arrival → offer", agents, 0, free_agents_cell(agents, rounds)))
        sys.stdout.flush()
    for agents in agent_sizes:
        for waiting in waiting_sizes:
            freed, arrivals, setup = backlog_cell(agents, waiting, rounds)
            emit(row("free → offer", agents, waiting, freed))
            emit(row("arrival (backlog)", agents, waiting, arrivals))
            print(f"|   (setup {setup:5.1f} s) |" + "|".join(" " * w for w in (8, 9, 13, 9, 9, 10, 10)) + "|")
            sys.stdout.flush()
    memory_table((100, 1_000) if args.quick else (1_000, 10_000), 10_000 if args.quick else 100_000)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
