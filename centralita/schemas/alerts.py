"""The supervisors' alerts (``GET /api/alerts`` and the wall's socket, ``/ws/supervisor``)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from centralita.schemas.common import IsoDateTime, ResponseBody
from core.states import AlertKind
from storage.alerts import AlertRecord

__all__ = ["Alert", "AlertList"]


class Alert(ResponseBody):
    """One alert: what happened, where, when."""

    id: UUID
    kind: AlertKind
    raised_at: IsoDateTime
    queue_id: UUID | None
    queue_name: str | None = Field(description="The queue's display name, else its name.")
    conversation_id: UUID | None
    waited_s: float | None = Field(description="sla_breach: how long it had waited when it breached.")
    sla_threshold_s: float | None = Field(description="sla_breach: the queue's answer_within_s now.")

    @classmethod
    def of(cls, record: AlertRecord) -> Alert:
        waited = record.details.get("waited_s")
        return cls(
            id=record.id,
            kind=record.kind,
            raised_at=record.raised_at,
            queue_id=record.queue_id,
            queue_name=record.queue_display_name or record.queue_name,
            conversation_id=record.conversation_id,
            waited_s=float(waited) if waited is not None else None,
            sla_threshold_s=record.sla_threshold_s,
        )


class AlertList(ResponseBody):
    items: list[Alert] = Field(description="Newest first.")
