"""Webhooks out: a subscription's delivery log and a redelivery (``/api/admin/webhooks/...``)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from centralita.schemas.common import IsoDateTime, ResponseBody
from storage.webhooks import Delivery

__all__ = ["DeliveryAttempt", "DeliveryLog", "Redelivered"]


class DeliveryAttempt(ResponseBody):
    """One attempt to deliver an event."""

    event_id: UUID = Field(description="The event's id (its receivers' idempotency key).")
    type: str | None = Field(description="The event's type.", examples=["disposition.recorded"])
    attempted_at: IsoDateTime
    status_code: int | None = Field(description="The endpoint's HTTP status (null: no answer).")
    latency_ms: float | None = Field(description="How long the request took.")
    outcome: str = Field(description="delivered, failed (not retried) or retry.")
    error: str | None = Field(description="What went wrong (an HTTP status, a timeout, …).")

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryAttempt:
        return cls(
            event_id=delivery.event_id,
            type=delivery.type,
            attempted_at=delivery.attempted_at,
            status_code=delivery.status_code,
            latency_ms=delivery.latency_ms,
            outcome=delivery.outcome,
            error=delivery.error,
        )


class DeliveryLog(ResponseBody):
    """A subscription's latest attempts, newest first."""

    webhook: str
    active: bool
    paused: bool = Field(description="Paused after failing for hours; a redelivery resumes it.")
    items: list[DeliveryAttempt]


class Redelivered(ResponseBody):
    """The event is queued again, due now."""

    webhook: str
    event_id: UUID
