"""Simulated agents on the real broker: they consume ``agent.<id>`` as a gateway would, answer
offers with ``OfferAnswer`` on ``route.<ws>``, hold each assigned conversation a short random
time and close it with ``ConversationClosedInput`` — and check, on every push, that the router
never had them above their capacity."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from pydantic import BaseModel

from core.ids import AgentId, WorkspaceId
from core.transport.protocol import Consumer, Delivery, Message, Transport
from core.transport.topology import (
    ROUTE_EXCHANGE,
    agent_queue,
    agent_topology,
    route_queue,
    workspace_topology,
)
from router.wire import (
    AgentConnection,
    AssignedPush,
    ConversationClosedInput,
    OfferAnswer,
    OfferPush,
    OfferWithdrawnPush,
    PresenceInput,
    decode_agent_push,
)

__all__ = ["SimulatedAgents"]


@dataclass
class _Agent:
    id: AgentId
    pending: dict[UUID, UUID] = field(default_factory=dict)  # offer → conversation
    holding: set[UUID] = field(default_factory=set)
    offers_seen: int = 0


class SimulatedAgents:
    def __init__(
        self,
        transport: Transport,
        workspace_id: WorkspaceId,
        agents: list[AgentId],
        *,
        capacity: int,
        expected: int,
        decline_every: int = 0,
        hold_s: tuple[float, float] = (0.005, 0.05),
        seed: int = 7,
    ) -> None:
        self.transport = transport
        self.workspace_id = workspace_id
        self.agents = {a: _Agent(a) for a in agents}
        self.capacity = capacity
        self.expected = expected
        self.decline_every = decline_every
        self.hold_s = hold_s
        self.random = random.Random(seed)
        self.violations: list[str] = []
        self.assigned_to: dict[UUID, set[AgentId]] = defaultdict(set)
        self.assigned_pushes: dict[UUID, int] = defaultdict(int)
        self.closed: set[UUID] = set()
        self.offers = 0
        self.declines = 0
        self.withdrawals = 0
        self.all_closed = asyncio.Event()
        self._progress = asyncio.Condition()
        self._consumers: list[Consumer] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.transport.declare(workspace_topology(str(self.workspace_id)))
        for agent in self.agents.values():
            await self.transport.declare(agent_topology(str(agent.id)))
            self._consumers.append(
                await self.transport.consume(agent_queue(str(agent.id)), self._handler(agent), prefetch=32)
            )
        await self._publish(
            *[AgentConnection(agent_id=a, connected=True) for a in self.agents],
            *[PresenceInput(agent_id=a, presence="available") for a in self.agents],
        )

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for consumer in self._consumers:
            await consumer.cancel()

    async def _publish(self, *messages: BaseModel) -> None:
        await self.transport.publish(
            [
                Message(
                    body=m.model_dump_json().encode(),
                    exchange=ROUTE_EXCHANGE,
                    routing_key=route_queue(str(self.workspace_id)),
                )
                for m in messages
            ]
        )

    def _check(self, agent: _Agent, when: str) -> None:
        held = len(agent.pending) + len(agent.holding)
        if held > self.capacity:
            self.violations.append(f"agent {agent.id} held {held} > {self.capacity} on {when}")

    def _handler(self, agent: _Agent):  # type: ignore[no-untyped-def]
        async def handle(delivery: Delivery) -> None:
            push = decode_agent_push(delivery.body)
            if isinstance(push, OfferPush):
                agent.pending[push.offer_id] = push.conversation_id
                self.offers += 1
                agent.offers_seen += 1
                self._check(agent, "offer")
                accept = not (self.decline_every and agent.offers_seen % self.decline_every == 0)
                if not accept:
                    self.declines += 1
                    agent.pending.pop(push.offer_id, None)
                await self._publish(OfferAnswer(offer_id=push.offer_id, agent_id=agent.id, accepted=accept))
            elif isinstance(push, OfferWithdrawnPush):
                if agent.pending.pop(push.offer_id, None) is not None:
                    self.withdrawals += 1
            elif isinstance(push, AssignedPush):
                conversation = push.conversation_id
                for offer, held in list(agent.pending.items()):
                    if held == conversation:
                        del agent.pending[offer]
                if conversation not in agent.holding and conversation not in self.closed:
                    agent.holding.add(conversation)
                    self.assigned_to[conversation].add(agent.id)
                    self.assigned_pushes[conversation] += 1
                    self._check(agent, "assigned")
                    task = asyncio.create_task(self._hold_and_close(agent, conversation))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            await delivery.ack()

        return handle

    async def _hold_and_close(self, agent: _Agent, conversation: UUID) -> None:
        await asyncio.sleep(self.random.uniform(*self.hold_s))  # the agent's handling time, simulated
        agent.holding.discard(conversation)
        self.closed.add(conversation)
        await self._publish(ConversationClosedInput(conversation_id=conversation))
        if len(self.closed) >= self.expected:
            self.all_closed.set()
        async with self._progress:
            self._progress.notify_all()

    async def wait_closed(self, count: int) -> None:
        """Until the agents closed at least ``count`` conversations."""
        async with self._progress:
            await self._progress.wait_for(lambda: len(self.closed) >= count)
