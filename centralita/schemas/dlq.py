"""The deliveries parked in the dead-letter queues, as the admin API and ``centralita dlq`` show them."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field

from centralita.schemas.common import IsoDateTime, ResponseBody
from core.transport.deadletters import Parked
from core.transport.protocol import HeaderValue

__all__ = ["DeadLetter", "DeadLetterDetail", "DeadLetterPage", "DeadLetterReplay"]


class DeadLetter(ResponseBody):
    """A delivery waiting in a dead-letter queue (never its body or headers: they may hold personal data)."""

    id: str = Field(description="The message id (copies of one message share it).")
    queue: str = Field(description="The original queue, e.g. ingest.0.")
    reason: str = Field(description="Why it was parked, or the broker's reason.")
    parked_at: IsoDateTime | None
    size: int = Field(description="Body size in bytes.")
    routing_key: str
    message_id: str | None

    @classmethod
    def of(cls, entry: Parked) -> DeadLetter:
        return cls(
            id=entry.id,
            queue=entry.queue,
            reason=entry.reason,
            parked_at=entry.parked_at,
            size=entry.size,
            routing_key=entry.routing_key,
            message_id=entry.message_id,
        )


class DeadLetterDetail(DeadLetter):
    """One parked delivery in full: its headers and body (UTF-8 text, else base64)."""

    content_type: str | None
    headers: dict[str, HeaderValue]
    body: str = Field(description="May contain personal data.")
    body_encoding: Literal["utf-8", "base64"]

    @classmethod
    def of(cls, entry: Parked) -> DeadLetterDetail:
        encoding: Literal["utf-8", "base64"] = "utf-8"
        try:
            body = entry.body.decode("utf-8")
        except UnicodeDecodeError:
            body, encoding = base64.b64encode(entry.body).decode("ascii"), "base64"
        return cls(
            **DeadLetter.of(entry).model_dump(),
            content_type=entry.content_type,
            headers=dict(entry.headers),
            body=body,
            body_encoding=encoding,
        )


class DeadLetterPage(ResponseBody):
    """The parked deliveries, oldest first per queue, at most ``limit``."""

    items: list[DeadLetter]


class DeadLetterReplay(ResponseBody):
    """The deliveries published back to their queue (confirmed), then unparked."""

    replayed: list[DeadLetter]
