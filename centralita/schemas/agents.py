"""Who is calling, the workspace's agents, and an agent's presence."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal
from uuid import UUID

from pydantic import Field, field_validator

from centralita.schemas.common import RequestBody, ResponseBody
from core.states import Presence
from storage.tokens import Principal
from storage.work import AgentRecord

__all__ = ["SETTABLE_PRESENCES", "Agent", "AgentList", "Me", "PresenceRequest", "WorkspaceRef"]

SETTABLE_PRESENCES: Final = (Presence.AVAILABLE, Presence.AWAY, Presence.OFFLINE)
"""What an agent may set through the API; ``wrap_up`` is the router's (or the socket's, with ``until``)."""


class Agent(ResponseBody):
    """An agent with presence, live load per channel, pending offers, skills and capacity."""

    id: UUID
    name: str
    email: str
    role: str
    active: bool
    presence: Presence = Field(description="As the live router last stored it.")
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
            presence=agent.presence,
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
    presence: Literal[Presence.AVAILABLE, Presence.AWAY, Presence.OFFLINE]  # SETTABLE_PRESENCES

    @field_validator("presence", mode="before")
    @classmethod
    def _settable(cls, value: object) -> object:
        """Refused as before the enum: naming the values (not the members) an agent may set."""
        if value not in SETTABLE_PRESENCES:
            expected = ", ".join(repr(str(p)) for p in SETTABLE_PRESENCES[:-1])
            raise ValueError(f"Input should be {expected} or {str(SETTABLE_PRESENCES[-1])!r}")
        return value
