"""Random event sequences never break the three guarantees: no agent above capacity, at most one
live offer or assignment per conversation, and nothing lost; nor the router's own indexes
(``RouterState.audit``, which recomputes what it caches)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.ids import ConversationId, OfferId
from router.policy import (
    AgentConnected,
    AgentDisconnected,
    AgentPresenceChanged,
    AgentProfile,
    AgentUpdated,
    Assigned,
    BullseyeStep,
    ConversationClosed,
    ForceAssign,
    Offer,
    OfferAccepted,
    OfferDeclined,
    Overflow,
    Presence,
    QueueConfig,
    QueueUpdated,
    Requeue,
    Requeued,
    RouterConfig,
    TransferRequested,
    WithdrawOffer,
)
from tests.unit.router.harness import CHAT, MAIL, WS, Harness, agent_id, conv_id, queue_id

AGENTS = 5
QUEUES = 3
CONVERSATIONS = 8
CAPACITY = {CHAT: 2, MAIL: 1}

ARRIVE = st.tuples(
    st.just("arrive"),
    st.integers(0, CONVERSATIONS - 1),
    st.integers(0, QUEUES - 1),
    st.sampled_from([CHAT, MAIL]),
    st.integers(-2, 3),
    st.one_of(st.none(), st.integers(0, AGENTS - 1)),
)
ANSWER = st.tuples(st.sampled_from(["accept", "accept", "decline"]), st.integers(0, 50))
op = st.one_of(
    ARRIVE,
    ARRIVE,
    ARRIVE,
    ANSWER,
    ANSWER,
    st.tuples(st.just("wait"), st.floats(0, 120)),
    st.tuples(st.just("wait"), st.floats(0, 5)),
    st.tuples(st.just("close"), st.integers(0, CONVERSATIONS - 1)),
    st.tuples(st.just("presence"), st.integers(0, AGENTS - 1), st.sampled_from(list(Presence))),
    st.tuples(st.sampled_from(["disconnect", "connect"]), st.integers(0, AGENTS - 1)),
    st.tuples(st.just("transfer_queue"), st.integers(0, CONVERSATIONS - 1), st.integers(0, QUEUES - 1)),
    st.tuples(st.just("transfer_agent"), st.integers(0, CONVERSATIONS - 1), st.integers(0, AGENTS - 1)),
    st.tuples(st.just("force"), st.integers(0, CONVERSATIONS - 1), st.integers(0, AGENTS - 1)),
    st.tuples(st.just("requeue"), st.integers(0, CONVERSATIONS - 1)),
    st.tuples(st.just("skills"), st.integers(0, AGENTS - 1), st.integers(1, 10)),
    st.tuples(st.just("steps"), st.booleans()),
)


def queue_zero(*, tight: bool) -> QueueUpdated:
    """Queue 0 with one of two sets of bullseye steps (a live reconfiguration switches them; the
    same number of steps, since an offered conversation keeps its step index)."""
    if tight:
        steps = (BullseyeStep(0, 7), BullseyeStep(20, 4), BullseyeStep(60, None))
    else:
        steps = (BullseyeStep(0, 6), BullseyeStep(30, 3), BullseyeStep(90, None))
    return QueueUpdated(
        queue=QueueConfig(id=queue_id(0), workspace_id=WS, required_skills={"a": 1}, bullseye=steps)
    )


def build(skills: list[int]) -> Harness:
    h = Harness(
        RouterConfig(
            ramp_period_s=60,
            ramp_interval_s=10,
            offer_timeout_s=20,
            disconnect_grace_s=30,
            wrap_up_s=5,
            sticky_wait_s=15,
        )
    )
    h.send(QueueUpdated(queue=QueueConfig(id=queue_id(2), workspace_id=WS, required_skills={"b": 1})))
    h.send(
        QueueUpdated(
            queue=QueueConfig(
                id=queue_id(1),
                workspace_id=WS,
                required_skills={"b": 1},
                overflow=Overflow(to_queue_id=queue_id(2), after_s=40, when_no_eligible_agents=True),
            )
        )
    )
    h.send(queue_zero(tight=True))
    for n, level in enumerate(skills):
        h.agent(n, skills={"a": level, "b": 11 - level}, capacity=CAPACITY)
    return h


class Ledger:
    """What the commands told the driver: who holds each conversation."""

    def __init__(self) -> None:
        self.offers: dict[OfferId, ConversationId] = {}
        self.holder: dict[ConversationId, str] = {}
        self.violations: list[str] = []

    def apply(self, commands: list[Any]) -> None:
        for command in commands:
            if isinstance(command, Offer):
                if command.conversation_id in self.holder:
                    self.violations.append(f"second holder for {command.conversation_id}")
                self.offers[command.offer_id] = command.conversation_id
                self.holder[command.conversation_id] = "offered"
            elif isinstance(command, WithdrawOffer):
                self.offers.pop(command.offer_id, None)
                self.holder.pop(command.conversation_id, None)
            elif isinstance(command, Assigned):
                if command.offer_id is not None:
                    self.offers.pop(command.offer_id, None)
                self.holder[command.conversation_id] = "assigned"
            elif isinstance(command, Requeued):
                self.holder.pop(command.conversation_id, None)

    def forget(self, conversation: ConversationId) -> None:
        self.holder.pop(conversation, None)
        for offer_id, cid in list(self.offers.items()):
            if cid == conversation:
                del self.offers[offer_id]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    skills=st.lists(st.integers(1, 10), min_size=AGENTS, max_size=AGENTS),
    ops=st.lists(op, min_size=10, max_size=80),
)
def test_random_event_sequences_keep_capacity_single_holder_and_lose_nothing(
    skills: list[int], ops: list[tuple[Any, ...]]
) -> None:
    h = build(skills)
    ledger = Ledger()
    arrived: set[ConversationId] = set()
    closed: set[ConversationId] = set()
    for n in range(CONVERSATIONS // 2):  # a backlog to start with
        ledger.apply(h.arrive(n, queue=queue_id(n % QUEUES), channel=(CHAT, MAIL)[n % 2]))
        arrived.add(conv_id(n))
    for item in ops:
        kind = item[0]
        commands: list[Any] = []
        if kind == "arrive":
            _, n, q, channel, priority, preferred = item
            commands = h.arrive(
                n,
                queue=queue_id(q),
                channel=channel,
                priority=priority,
                preferred_agent_id=None if preferred is None else agent_id(preferred),
            )
            arrived.add(conv_id(n))  # a closed conversation may come back (a follow-up)
            closed.discard(conv_id(n))
        elif kind == "close":
            cid = conv_id(item[1])
            commands = h.send(ConversationClosed(conversation_id=cid))
            if cid in arrived:
                closed.add(cid)
                arrived.discard(cid)
            ledger.forget(cid)
        elif kind in ("accept", "decline") and ledger.offers:
            offer_id = sorted(ledger.offers)[item[1] % len(ledger.offers)]
            if kind == "accept":
                commands = h.send(OfferAccepted(offer_id=offer_id))
            else:
                cid = ledger.offers.pop(offer_id)
                ledger.holder.pop(cid, None)
                commands = h.send(OfferDeclined(offer_id=offer_id))
        elif kind == "presence":
            commands = h.send(AgentPresenceChanged(agent_id=agent_id(item[1]), presence=item[2]))
        elif kind == "disconnect":
            commands = h.send(AgentDisconnected(agent_id=agent_id(item[1])))
        elif kind == "connect":
            commands = h.send(AgentConnected(agent_id=agent_id(item[1])))
        elif kind == "transfer_queue":
            commands = h.send(
                TransferRequested(conversation_id=conv_id(item[1]), to_queue_id=queue_id(item[2]))
            )
        elif kind == "transfer_agent":
            commands = h.send(
                TransferRequested(conversation_id=conv_id(item[1]), to_agent_id=agent_id(item[2]))
            )
        elif kind == "force":
            commands = h.send(ForceAssign(conversation_id=conv_id(item[1]), agent_id=agent_id(item[2])))
        elif kind == "requeue":
            commands = h.send(Requeue(conversation_id=conv_id(item[1])))
        elif kind == "skills":
            level = item[2]
            profile = AgentProfile(
                id=agent_id(item[1]), workspace_id=WS, skills={"a": level, "b": 11 - level}, capacity=CAPACITY
            )
            commands = h.send(AgentUpdated(agent=profile))
        elif kind == "steps":
            commands = h.send(queue_zero(tight=item[1]))
        elif kind == "wait":
            commands = h.advance(item[1])
        ledger.apply(commands)

        assert h.state.audit() == []
        assert ledger.violations == []
        for cid in arrived:
            snapshot = h.state.conversation_snapshot(cid)
            assert snapshot is not None and snapshot.status in ("waiting", "offered", "assigned")
            assert ledger.holder.get(cid, "waiting") == snapshot.status
        for cid in closed:
            assert h.state.conversation_snapshot(cid) is None
        for n in range(AGENTS):
            agent = h.state.agent_snapshot(agent_id(n))
            assert agent is not None
            for channel, units in agent.load.items():
                assert units <= CAPACITY[channel]
