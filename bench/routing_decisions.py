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
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from core.ids import AgentId, ConversationId, OfferId, QueueId, WorkspaceId
from router.policy import (
    AgentPresenceChanged,
    AgentProfile,
    AgentUpdated,
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
    def __init__(self, agents: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.state = RouterState(
            RouterConfig(ramp_period_s=0, offer_timeout_s=3600), offer_ids=sequential_offer_ids()
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
        return ConversationArrived(
            conversation_id=ConversationId(uuid.UUID(int=self.next_conv)),
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
