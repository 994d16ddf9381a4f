"""Webhooks out: subscriptions made and changed through the API, a subscription's delivery log
and a redelivery (``/api/admin/webhooks/...``)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field, field_validator

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from core.campaign.fields import Slug
from core.webhooks import valid_pattern
from storage.webhooks import Delivery, Subscription

__all__ = [
    "DeliveryAttempt",
    "DeliveryLog",
    "Redelivered",
    "WebhookChange",
    "WebhookCreate",
    "WebhookList",
    "WebhookView",
]


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


_EVENTS = Field(
    min_length=1,
    description="Event types wanted; '*' and '<family>.*' (e.g. 'conversation.*') allowed.",
    examples=[["disposition.recorded", "conversation.*"]],
)
_SECRET_ENV = Field(
    pattern=r"^[A-Z][A-Z0-9_]*$",
    description="Environment variable holding the signing secret (never the secret itself); "
    "it must be set where the API runs and on the outbound servers.",
    examples=["CRM_WEBHOOK_SECRET"],
)
_URL = Field(
    min_length=1,
    max_length=2000,
    description="Where events are POSTed: https, on a public address.",
    examples=["https://crm.example.com/hooks/centralita"],
)


def _known(events: list[str] | None) -> list[str] | None:
    unknown = [p for p in events or () if not valid_pattern(p)]
    if unknown:
        raise ValueError(f"unknown event type or pattern {unknown[0]!r}")
    return events


class WebhookCreate(RequestBody):
    """A subscription made through the API (a manifest never changes it)."""

    name: Slug = Field(description="Stable identifier, unique in the workspace.", examples=["crm-cobranza"])
    url: str = _URL
    events: list[str] = _EVENTS
    secret_env: str = _SECRET_ENV
    active: bool = Field(default=True, description="Inactive: nothing is queued for it.")

    _events = field_validator("events")(_known)


class WebhookChange(RequestBody):
    """What to change of an API-made subscription (omitted fields stay)."""

    url: str | None = Field(default=None, min_length=1, max_length=2000, description="A new destination.")
    events: list[str] | None = Field(default=None, min_length=1, description="The types wanted now.")
    secret_env: str | None = Field(
        default=None, pattern=r"^[A-Z][A-Z0-9_]*$", description="Another variable."
    )
    active: bool | None = Field(
        default=None, description="false: nothing more is queued; true also resumes it."
    )

    _events = field_validator("events")(_known)


class WebhookView(ResponseBody):
    """A subscription of the workspace."""

    name: str
    url: str
    events: list[str]
    secret_env: str = Field(description="The variable's name (the secret is never stored).")
    active: bool
    paused: bool = Field(description="Paused after failing for hours; a redelivery or activating resumes it.")
    source: Literal["manifest", "api"] = Field(
        description="manifest: a campaign's apply manages it (change it there); api: made and changed here."
    )

    @classmethod
    def of(cls, s: Subscription) -> WebhookView:
        return cls(
            name=s.name,
            url=s.url,
            events=list(s.events),
            secret_env=s.secret_env,
            active=s.active,
            paused=s.paused_at is not None,
            source="api" if s.source == "api" else "manifest",
        )


class WebhookList(ResponseBody):
    """The workspace's subscriptions, by name."""

    items: list[WebhookView]
