"""Moving a conversation between queues and agents, and the router's stored decisions about it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from pydantic import Field

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from centralita.schemas.queues import NotOfferedNow
from storage.work import RoutingDecisionRecord

__all__ = [
    "AssignRequest",
    "NamedRef",
    "RequeueRequest",
    "RoutedQueue",
    "RoutingDecision",
    "RoutingDecisions",
    "TransferRequest",
]


class TransferRequest(RequestBody):
    """Exactly one of ``queue_id`` or ``agent_id``."""

    queue_id: UUID | None = None
    agent_id: UUID | None = None


class AssignRequest(RequestBody):
    agent_id: UUID


class RequeueRequest(RequestBody):
    """``queue_id``: another queue; absent (or no body): back to its own."""

    queue_id: UUID | None = None


class RoutingDecision(ResponseBody):
    id: UUID
    decided_at: IsoDateTime
    outcome: str = Field(examples=["offered", "no_agent"])
    explanation: dict[str, Any] = Field(
        description="Candidates considered, who was filtered and why, scores, winner."
    )

    @classmethod
    def of(cls, record: RoutingDecisionRecord) -> RoutingDecision:
        return cls(
            id=record.id,
            decided_at=record.decided_at,
            outcome=record.outcome,
            explanation=dict(record.explanation),
        )


class NamedRef(ResponseBody):
    """An id the explanations mention, and what people call it."""

    id: UUID
    name: str


class RoutedQueue(NamedRef):
    """A queue the explanations mention, with the skills it asks for (before any expansion step)."""

    required_skills: dict[str, int]


class RoutingDecisions(ResponseBody):
    """Every routing decision stored for a conversation, oldest first, and the names of the
    agents and queues their explanations mention (so a desk can say it in words)."""

    conversation_id: UUID
    decisions: list[RoutingDecision]
    agents: list[NamedRef] = Field(description="The workspace's agents the explanations name.")
    queues: list[RoutedQueue] = Field(description="The queues the explanations name.")
    not_offered: NotOfferedNow | None = Field(
        description="While the conversation waits: why it is not being offered now (null: it is "
        "not waiting, or it is being routed)."
    )

    @classmethod
    def of(
        cls,
        conversation_id: UUID,
        records: list[RoutingDecisionRecord],
        agents: Mapping[UUID, str],
        queues: Mapping[UUID, tuple[str, Mapping[str, int]]],
        not_offered: NotOfferedNow | None = None,
    ) -> RoutingDecisions:
        named_agents: set[UUID] = set()
        named_queues: set[UUID] = set()
        for record in records:
            doc = record.explanation
            named_queues |= _ids([doc.get("queue_id")])
            named_agents |= _ids([doc.get("winner")])
            for key in ("candidates", "filtered"):
                rows = doc.get(key)
                if isinstance(rows, list):
                    named_agents |= _ids([r.get("agent_id") for r in rows if isinstance(r, dict)])
        return cls(
            conversation_id=conversation_id,
            decisions=[RoutingDecision.of(r) for r in records],
            agents=[NamedRef(id=i, name=agents[i]) for i in sorted(named_agents, key=str) if i in agents],
            queues=[
                RoutedQueue(id=i, name=queues[i][0], required_skills=dict(queues[i][1]))
                for i in sorted(named_queues, key=str)
                if i in queues
            ],
            not_offered=not_offered,
        )


def _ids(values: list[Any]) -> set[UUID]:
    out: set[UUID] = set()
    for value in values:
        try:
            out.add(UUID(str(value)))
        except ValueError:
            continue
    return out
