"""Dead-letter queues a person can work: what a parked delivery says, and the port to read them.

A delivery ends in ``<queue>.dlq`` two ways:

- ``Delivery.park(reason)``: the consumer decided (e.g. the database refused its content).  The
  copy carries ``x-centralita-parked-reason``, ``-from`` (the original queue), ``-routing-key``,
  ``-message-id`` and ``-at`` (ISO 8601, UTC).
- the broker dead-lettered it (``reject()``, the delivery limit, a time-to-live): RabbitMQ's own
  ``x-death`` / ``x-first-death-reason`` / ``x-first-death-queue`` name the reason and queue.

``DeadLetters`` lists the parked deliveries of a queue without consuming them, and replays
chosen ones to their original queue: the copy is published (confirmed) first and removed from
the dead-letter queue after, so a crash in between leaves it in both places, never in neither.
Both transports implement it (``InMemoryTransport``, ``RabbitMQTransport``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from core.transport.protocol import HeaderValue, Message

__all__ = [
    "PARKED_AT",
    "PARKED_FROM",
    "PARKED_MESSAGE_ID",
    "PARKED_REASON",
    "PARKED_ROUTING_KEY",
    "DeadLetters",
    "Parked",
    "dead_letter_queue",
    "parked_copy",
    "parked_entry",
    "replay_copy",
]

PARKED_REASON = "x-centralita-parked-reason"
PARKED_FROM = "x-centralita-parked-from"
PARKED_ROUTING_KEY = "x-centralita-parked-routing-key"
PARKED_MESSAGE_ID = "x-centralita-parked-message-id"
PARKED_AT = "x-centralita-parked-at"

_DLQ_SUFFIX = ".dlq"
# Headers that describe a stay in a dead-letter queue: not carried back by a replay.
_DEAD_LETTER_HEADER_PREFIXES = ("x-centralita-parked-", "x-death", "x-first-death-", "x-last-death-")
_BROKER_HEADERS = frozenset({"x-delivery-count"})


def dead_letter_queue(queue: str) -> str:
    return f"{queue}{_DLQ_SUFFIX}"


@dataclass(frozen=True, slots=True)
class Parked:
    """One delivery waiting in a dead-letter queue.

    ``id`` is the message id (a digest of the body when the publisher set none); copies of one
    message share it.  ``body`` and ``headers`` may hold personal data: list views leave them out.
    """

    id: str
    queue: str
    reason: str
    parked_at: datetime | None
    routing_key: str
    message_id: str | None
    size: int
    content_type: str | None
    headers: Mapping[str, HeaderValue]
    body: bytes


@runtime_checkable
class DeadLetters(Protocol):
    """Read and replay the dead-letter queue of ``queue`` (its ``<queue>.dlq``)."""

    async def parked(self, queue: str, *, limit: int = 1000) -> list[Parked]:
        """The first ``limit`` parked deliveries, oldest first; nothing is consumed.

        A queue without a dead-letter queue (or never declared) has none: ``[]``.
        """
        ...

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> list[Parked]:
        """Publish each chosen delivery (all when ``ids`` is None) back to its original queue,
        confirmed, then remove it from the dead-letter queue; return those replayed.

        Only deliveries present when the call starts are considered, so one that is parked
        again meanwhile is not replayed twice.  Raises ``InvalidInput`` when the original queue
        is not declared and ``BrokerUnavailable`` (``Overloaded``) when the publish is refused:
        the delivery then stays parked.
        """
        ...


def parked_copy(
    *,
    queue: str,
    body: bytes,
    routing_key: str,
    headers: Mapping[str, HeaderValue],
    message_id: str | None,
    content_type: str | None,
    reason: str,
    now: datetime | None = None,
) -> Message:
    """The message ``Delivery.park`` publishes to ``<queue>.dlq`` (default exchange)."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return Message(
        body=body,
        routing_key=dead_letter_queue(queue),
        exchange="",
        headers={
            **headers,
            PARKED_REASON: reason,
            PARKED_FROM: queue,
            PARKED_ROUTING_KEY: routing_key,
            PARKED_MESSAGE_ID: message_id,
            PARKED_AT: at.isoformat(),
        },
        message_id=message_id,
        content_type=content_type or "application/octet-stream",
    )


def parked_entry(
    *,
    dead_letter: str,
    body: bytes,
    headers: Mapping[str, HeaderValue],
    message_id: str | None,
    content_type: str | None,
    death_reason: str | None = None,
    death_queue: str | None = None,
    death_routing_key: str | None = None,
    death_at: datetime | None = None,
) -> Parked:
    """Describe one message of ``dead_letter`` from its headers (ours first, then the broker's)."""
    reason = _text(headers.get(PARKED_REASON)) or death_reason or _text(headers.get("x-first-death-reason"))
    queue = _text(headers.get(PARKED_FROM)) or death_queue or _text(headers.get("x-first-death-queue"))
    if not queue:
        queue = dead_letter[: -len(_DLQ_SUFFIX)] if dead_letter.endswith(_DLQ_SUFFIX) else dead_letter
    parked_at = _time(headers.get(PARKED_AT)) or death_at
    routing_key = _text(headers.get(PARKED_ROUTING_KEY)) or death_routing_key or queue
    return Parked(
        id=message_id or f"sha256-{hashlib.sha256(body).hexdigest()[:24]}",
        queue=queue,
        reason=reason or "unknown",
        parked_at=parked_at,
        routing_key=routing_key,
        message_id=message_id,
        size=len(body),
        content_type=content_type,
        headers=dict(headers),
        body=body,
    )


def replay_copy(entry: Parked) -> Message:
    """The message a replay publishes: to the original queue, without the dead-letter headers."""
    headers = {
        k: v
        for k, v in entry.headers.items()
        if not k.startswith(_DEAD_LETTER_HEADER_PREFIXES) and k not in _BROKER_HEADERS
    }
    return Message(
        body=entry.body,
        routing_key=entry.queue,
        exchange="",
        headers=headers,
        message_id=entry.message_id,
        content_type=entry.content_type or "application/octet-stream",
    )


def _text(value: HeaderValue) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: HeaderValue) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
