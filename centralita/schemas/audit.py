"""The audit trail on the wire: ``GET /api/audit`` pages, its exports' lines, a conversation's
history (``GET /api/conversations/{id}/history``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from pydantic import Field

from centralita.schemas.common import IsoDateTime, ResponseBody
from core.audit import AuditEntry as AuditRecord

__all__ = ["CSV_COLUMNS", "AuditEntry", "AuditPage", "ConversationHistory", "HistoryEntry", "csv_row"]


class AuditEntry(ResponseBody):
    """One audited action: who, when, what, and what it is about."""

    id: UUID
    at: IsoDateTime
    actor: str = Field(description="agent:<id>, token:<id>, cli, router, customer, system, anonymous.")
    action: str = Field(examples=["conversation.closed", "token.revoked", "identity.merge"])
    subject_type: str = Field(examples=["conversation", "token", "customer", "agent", "campaign"])
    subject_id: str
    details: dict[str, Any] = Field(description="What it was: before/after where it applies.")
    conversation_id: UUID | None
    customer_id: UUID | None
    agent_id: UUID | None = Field(description="The agent the action is about (its actor may be another).")
    campaign_id: UUID | None
    queue_id: UUID | None

    @classmethod
    def of(cls, e: AuditRecord) -> AuditEntry:
        return cls(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            subject_type=e.subject_type,
            subject_id=e.subject_id,
            details=dict(e.details),
            conversation_id=e.conversation_id,
            customer_id=e.customer_id,
            agent_id=e.agent_id,
            campaign_id=e.campaign_id,
            queue_id=e.queue_id,
        )


class AuditPage(ResponseBody):
    items: list[AuditEntry]
    next_cursor: str | None = Field(description="The next page's cursor (null: this is the last).")


class HistoryEntry(AuditEntry):
    actor_name: str | None = Field(description="The name of the agent who acted, when an agent did.")
    agent_name: str | None = Field(description="The name of the agent the action is about.")


class ConversationHistory(ResponseBody):
    """Every fact of one conversation in order, and the names of the agents they mention."""

    conversation_id: UUID
    entries: list[HistoryEntry]
    agents: dict[str, str] = Field(description="Agent id → name, for every agent of the entries.")

    @classmethod
    def of(
        cls, conversation_id: UUID, entries: Sequence[AuditRecord], names: Mapping[UUID, str]
    ) -> ConversationHistory:
        items = []
        for e in entries:
            base = AuditEntry.of(e).model_dump()
            actor = e.actor_agent_id
            items.append(
                HistoryEntry(
                    **base,
                    actor_name=names.get(actor) if actor else None,
                    agent_name=names.get(e.agent_id) if e.agent_id else None,
                )
            )
        return cls(
            conversation_id=conversation_id,
            entries=items,
            agents={str(k): v for k, v in sorted(names.items(), key=lambda kv: str(kv[0]))},
        )


CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "subject_type",
    "subject_id",
    "conversation_id",
    "customer_id",
    "agent_id",
    "campaign_id",
    "queue_id",
    "details",
)


def csv_row(entry: AuditEntry) -> list[str]:
    """One CSV line's cells (``details`` as compact JSON)."""
    data = entry.model_dump(mode="json")
    return [
        json.dumps(data["details"], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        if column == "details"
        else ""
        if data[column] is None
        else str(data[column])
        for column in CSV_COLUMNS
    ]
