"""Moving a conversation between queues and agents, and the router's stored decisions about it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import Field

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from centralita.schemas.queues import NotOfferedNow
from storage.work import RoutingDecisionRecord

__all__ = ["AssignRequest", "RequeueRequest", "RoutingDecision", "RoutingDecisions", "TransferRequest"]


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


class RoutingDecisions(ResponseBody):
    """Every routing decision stored for a conversation, oldest first."""

    conversation_id: UUID
    decisions: list[RoutingDecision]
    not_offered: NotOfferedNow | None = Field(
        description="While the conversation waits: why it is not being offered now (null: it is "
        "not waiting, or it is being routed)."
    )
