"""A tiny driver for the routing policy in tests: a virtual clock, helpers to build agents and
queues, and the commands seen so far.  It drives the real ``RouterState`` (no fakes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TypeVar

from core.ids import AgentId, ConversationId, CustomerId, QueueId, WorkspaceId
from router.policy import (
    AgentPresenceChanged,
    AgentProfile,
    AgentUpdated,
    Command,
    ConversationArrived,
    OfferAccepted,
    Presence,
    QueueConfig,
    QueueUpdated,
    RouterConfig,
    RouterEvent,
    RouterState,
    Tick,
    sequential_offer_ids,
)
from router.policy.commands import Offer

T0 = datetime(2024, 3, 4, 12, 0, tzinfo=UTC).timestamp()  # a Monday, noon UTC
WS = WorkspaceId(uuid.UUID(int=0xA))
WS_B = WorkspaceId(uuid.UUID(int=0xB))
CHAT = "whatsapp"
MAIL = "email"

C = TypeVar("C")


def agent_id(n: int) -> AgentId:
    return AgentId(uuid.UUID(int=0x1000 + n))


def queue_id(n: int) -> QueueId:
    return QueueId(uuid.UUID(int=0x2000 + n))


def conv_id(n: int) -> ConversationId:
    return ConversationId(uuid.UUID(int=0x3000 + n))


def customer_id(n: int) -> CustomerId:
    return CustomerId(uuid.UUID(int=0x4000 + n))


def of_type(commands: Iterable[Command], kind: type[C]) -> list[C]:
    return [c for c in commands if isinstance(c, kind)]


class Harness:
    def __init__(self, config: RouterConfig | None = None, *, start: float = T0) -> None:
        self.state = RouterState(config or RouterConfig(ramp_period_s=0), offer_ids=sequential_offer_ids())
        self.now = start
        self.log: list[Command] = []

    def send(self, event: RouterEvent) -> list[Command]:
        commands = self.state.handle(event, self.now)
        self.log.extend(commands)
        return commands

    def advance(self, seconds: float) -> list[Command]:
        """Let virtual time pass, waking the router at each deadline on the way."""
        target = self.now + seconds
        seen: list[Command] = []
        while (deadline := self.state.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            seen += self.send(Tick())
        self.now = target
        seen += self.send(Tick())
        return seen

    def queue(
        self,
        n: int = 1,
        *,
        workspace: WorkspaceId = WS,
        required: Mapping[str, int] | None = None,
        **kw: object,
    ) -> QueueId:
        config = QueueConfig(
            id=queue_id(n),
            workspace_id=workspace,
            name=f"q{n}",
            required_skills=required if required is not None else {"ventas": 1},
            **kw,  # type: ignore[arg-type]
        )
        self.send(QueueUpdated(queue=config))
        return config.id

    def agent(
        self,
        n: int,
        *,
        skills: Mapping[str, int] | None = None,
        capacity: Mapping[str, int] | None = None,
        workspace: WorkspaceId = WS,
        available: bool = True,
        **kw: object,
    ) -> AgentId:
        profile = AgentProfile(
            id=agent_id(n),
            workspace_id=workspace,
            skills=skills if skills is not None else {"ventas": 5},
            capacity=capacity if capacity is not None else {CHAT: 1},
            **kw,  # type: ignore[arg-type]
        )
        self.send(AgentUpdated(agent=profile))
        if available:
            self.send(AgentPresenceChanged(agent_id=profile.id, presence=Presence.AVAILABLE))
        return profile.id

    def arrive(
        self,
        n: int,
        *,
        queue: QueueId | None = None,
        channel: str = CHAT,
        workspace: WorkspaceId = WS,
        **kw: object,
    ) -> list[Command]:
        return self.send(
            ConversationArrived(
                conversation_id=conv_id(n),
                workspace_id=workspace,
                queue_id=queue or queue_id(1),
                channel=channel,
                **kw,  # type: ignore[arg-type]
            )
        )

    def accept(self, commands: Iterable[Command]) -> list[Command]:
        out: list[Command] = []
        for offer in of_type(commands, Offer):
            out += self.send(OfferAccepted(offer_id=offer.offer_id))
        return out

    def offers(self) -> list[Offer]:
        return of_type(self.log, Offer)

    def status(self, n: int) -> str:
        snapshot = self.state.conversation_snapshot(conv_id(n))
        return "closed" if snapshot is None else snapshot.status

    def holder(self, n: int) -> AgentId | None:
        snapshot = self.state.conversation_snapshot(conv_id(n))
        return None if snapshot is None else snapshot.agent_id
