"""The provider-facing edge: a signed delivery acknowledged once it is durably queued."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from centralita.ingress import Accepted
from centralita.schemas.common import ResponseBody

__all__ = ["WebhookAccepted"]


class WebhookAccepted(ResponseBody):
    """Verified and durably queued (never acknowledged before)."""

    status: Literal["accepted"] = "accepted"
    raw_delivery_id: UUID = Field(description="The id the delivery is queued, stored and traced by.")
    events: int = Field(description="The events the adapter found in it.")

    @classmethod
    def of(cls, accepted: Accepted) -> WebhookAccepted:
        return cls(raw_delivery_id=accepted.raw_delivery_id, events=accepted.events)
