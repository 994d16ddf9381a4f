"""Who is calling, the workspace's agents, and an agent's presence."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from centralita.schemas.common import RequestBody, ResponseBody
from storage.tokens import Principal
from storage.work import AgentRecord

__all__ = ["Agent", "AgentList", "Me", "PresenceRequest", "WorkspaceRef"]


class Agent(ResponseBody):
    """An agent with presence, live load per channel, pending offers, skills and capacity."""

    id: UUID
    name: str
    email: str
    role: str
    active: bool
    presence: Literal["available", "away", "offline", "wrap_up"] = Field(
        description="As the live router last stored it."
    )
    presence_until: datetime | None = Field(description="The end of a wrap-up.")
    connected: bool = Field(description="A gateway holds the agent's WebSocket.")
    skills: dict[str, int]
    capacity: dict[str, int]
    load: dict[str, int] = Field(description="Open conversations per channel.")
    open_conversations: int
    pending_offers: int

    @classmethod
    def of(cls, agent: AgentRecord) -> Agent:
        return cls(
            id=agent.id,
            name=agent.name,
            email=agent.email,
            role=agent.role,
            active=agent.active,
            presence=agent.presence,  # type: ignore[arg-type]  # the router stores only these
            presence_until=agent.presence_until,
            connected=agent.connected,
            skills=dict(agent.skills),
            capacity=dict(agent.capacity),
            load=dict(agent.load),
            open_conversations=agent.open_conversations,
            pending_offers=agent.pending_offers,
        )


class AgentList(ResponseBody):
    items: list[Agent]


class WorkspaceRef(ResponseBody):
    id: UUID
    slug: str | None


class Me(ResponseBody):
    """The calling token: its workspace, role and agent."""

    workspace: WorkspaceRef
    role: Literal["agent", "supervisor", "admin"]
    token_id: str
    agent: Agent | None

    @classmethod
    def of(cls, principal: Principal, slug: str | None, agent: AgentRecord | None) -> Me:
        return cls(
            workspace=WorkspaceRef(id=principal.workspace_id, slug=slug),
            role=principal.role,  # type: ignore[arg-type]  # a token holds one of the three roles
            token_id=principal.token_id,
            agent=Agent.of(agent) if agent is not None else None,
        )


class PresenceRequest(RequestBody):
    presence: Literal["available", "away", "offline"]
