"""The raw delivery as it travels from the ingress to the pipeline over the broker."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from core.errors import InvalidInput
from core.ids import RawDeliveryId
from core.transport.protocol import Delivery, Message

__all__ = ["RawEnvelope"]


@dataclass(frozen=True, slots=True)
class RawEnvelope:
    raw_delivery_id: RawDeliveryId
    channel: str
    received_at: datetime
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)  # kept provider headers, lower-cased

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    def to_message(self, exchange: str, routing_key: str) -> Message:
        return Message(
            body=self.body,
            exchange=exchange,
            routing_key=routing_key,
            message_id=str(self.raw_delivery_id),
            content_type="application/octet-stream",
            headers={
                "channel": self.channel,
                "raw_delivery_id": str(self.raw_delivery_id),
                "received_at": self.received_at.isoformat(),
                **{f"h-{k}": v for k, v in self.headers.items()},
            },
        )

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> RawEnvelope:
        import uuid

        h = delivery.headers
        try:
            return cls(
                raw_delivery_id=RawDeliveryId(uuid.UUID(str(h["raw_delivery_id"]))),
                channel=str(h["channel"]),
                received_at=datetime.fromisoformat(str(h["received_at"])),
                body=delivery.body,
                headers={k[2:]: str(v) for k, v in h.items() if k.startswith("h-") and v is not None},
            )
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"not a raw-delivery envelope: {exc}", field="headers") from exc
