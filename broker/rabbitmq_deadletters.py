"""``DeadLetters`` and ``Delivery.park`` on RabbitMQ (``RabbitMQTransport`` delegates here).

Listing is non-destructive: on a channel of its own, ``basic.get`` without ack takes each
message of ``<queue>.dlq`` in turn (the broker hands out the next one while the earlier ones
stay unacked), then the channel is closed, which returns every one of them to its place in the
queue.  A consumer with a prefetch would need a guess of when the queue is exhausted;
``basic.get`` answers ``get-empty``.  Dead-letter queues are classic queues with no delivery
limit, so being looked at costs a message nothing (it comes back marked redelivered).  Two
operators listing at the same moment each see only what the other is not holding.

Replay takes the same walk, bounded by the depth the queue had when it started: each chosen
message is published (confirmed) to its original queue through the default exchange, then
acked in the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiormq
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustQueue

from broker.rabbitmq import _BROKER_ERRORS, _close_quietly, _header_value, _reason, _Skip
from core.errors import Conflict, InvalidInput
from core.transport.deadletters import Parked, dead_letter_queue, parked_copy, parked_entry, replay_copy
from core.transport.protocol import HeaderValue

if TYPE_CHECKING:
    from broker.rabbitmq import RabbitMQTransport, _RabbitDelivery

__all__ = ["park", "parked", "replay"]

_READ_ERRORS: tuple[type[Exception], ...] = (TimeoutError, *_BROKER_ERRORS)


async def park(transport: RabbitMQTransport, delivery: _RabbitDelivery, reason: str) -> None:
    if delivery.settled:
        raise Conflict("this delivery was already settled")
    queue = delivery._queue
    await _require_queue(transport, dead_letter_queue(queue), why="has no dead-letter queue to park in")
    copy = parked_copy(
        queue=queue,
        body=delivery.body,
        routing_key=delivery.routing_key,
        headers=delivery.headers,
        message_id=delivery.message_id,
        content_type=delivery._message.content_type,
        reason=reason,
    )
    await transport.publish([copy])
    await delivery.ack()


async def parked(transport: RabbitMQTransport, queue: str, *, limit: int = 1000) -> list[Parked]:
    transport._check_connected()
    dlq = dead_letter_queue(queue)
    channel = await transport._open_channel(confirms=False)
    try:
        amqp_queue = await _passive(transport, channel, dlq)
        if amqp_queue is None:
            return []
        out: list[Parked] = []
        while len(out) < limit:
            message = await amqp_queue.get(no_ack=False, fail=False, timeout=transport._publish_timeout_s)
            if message is None:
                break
            out.append(_entry(transport, dlq, message))
        return out
    except _READ_ERRORS as exc:
        raise transport._unavailable(f"cannot read {dlq}: {_reason(exc, '')}") from exc
    finally:
        # Closing the channel returns every message taken above to the queue, in its place.
        await _close_quietly(channel)


async def replay(
    transport: RabbitMQTransport, queue: str, ids: Collection[str] | None = None
) -> list[Parked]:
    transport._check_connected()
    dlq = dead_letter_queue(queue)
    channel = await transport._open_channel(confirms=False)
    replayed: list[Parked] = []
    try:
        amqp_queue = await _passive(transport, channel, dlq)
        if amqp_queue is None:
            return []
        declared = amqp_queue.declaration_result
        depth = declared.message_count if declared is not None and declared.message_count else 0
        present: set[str] = set()
        for _ in range(depth):
            message = await amqp_queue.get(no_ack=False, fail=False, timeout=transport._publish_timeout_s)
            if message is None:
                break
            entry = _entry(transport, dlq, message)
            if ids is not None and entry.id not in ids:
                continue
            if entry.queue not in present:
                await _require_queue(transport, entry.queue, why="is not declared")
                present.add(entry.queue)
            await transport.publish([replay_copy(entry)])
            await message.ack()
            replayed.append(entry)
        return replayed
    except _READ_ERRORS as exc:
        raise transport._unavailable(
            f"replay of {dlq} stopped after {len(replayed)}: {_reason(exc, '')}"
        ) from exc
    finally:
        await _close_quietly(channel)


# -- internals -------------------------------------------------------------------------------


async def _passive(transport: RabbitMQTransport, channel: Any, name: str) -> AbstractRobustQueue | None:
    try:
        queue: AbstractRobustQueue = await channel.declare_queue(
            transport._name(name), passive=True, robust=False
        )
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    return queue


async def _require_queue(transport: RabbitMQTransport, name: str, *, why: str) -> None:
    """Publishing to a queue that does not exist drops the message silently: look first."""
    channel = await transport._open_channel(confirms=False)
    try:
        found = await _passive(transport, channel, name)
    except _READ_ERRORS as exc:
        raise transport._unavailable(_reason(exc, "")) from exc
    finally:
        await _close_quietly(channel)
    if found is None:
        subject = name[: -len(".dlq")] if why.startswith("has no") else name
        raise InvalidInput(f"queue {subject!r} {why}", field="queue")


def _entry(transport: RabbitMQTransport, dlq: str, message: AbstractIncomingMessage) -> Parked:
    raw: Mapping[str, Any] = message.headers or {}
    headers: dict[str, HeaderValue] = {}
    for key, value in raw.items():
        scalar = _header_value(value)
        if scalar is not _Skip:
            headers[key] = scalar  # type: ignore[assignment]
    first_queue = headers.get("x-first-death-queue")
    first_reason = headers.get("x-first-death-reason")
    death = _first_death(raw.get("x-death"), first_queue, first_reason)
    death_queue = _unprefixed(transport, first_queue if isinstance(first_queue, str) else None)
    routing_keys = death.get("routing-keys") if death else None
    routing_key = None
    if isinstance(routing_keys, Sequence) and routing_keys and not isinstance(routing_keys, str | bytes):
        first_key = routing_keys[0]
        routing_key = _unprefixed(
            transport, first_key.decode() if isinstance(first_key, bytes) else str(first_key)
        )
    return parked_entry(
        dead_letter=dlq,
        body=message.body,
        headers=headers,
        message_id=message.message_id,
        content_type=message.content_type,
        death_reason=str(first_reason) if isinstance(first_reason, str) else None,
        death_queue=death_queue,
        death_routing_key=routing_key,
        death_at=_death_time(death),
    )


def _first_death(x_death: Any, queue: HeaderValue, reason: HeaderValue) -> Mapping[str, Any] | None:
    """The ``x-death`` entry of the first dead-lettering (the array is most recent first)."""
    if not isinstance(x_death, list) or not x_death:
        return None
    entries = [e for e in x_death if isinstance(e, Mapping)]
    for entry in entries:
        if _str(entry.get("queue")) == queue and _str(entry.get("reason")) == reason:
            return entry
    return entries[-1] if entries else None


def _death_time(death: Mapping[str, Any] | None) -> datetime | None:
    value = death.get("time") if death else None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return None


def _str(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _unprefixed(transport: RabbitMQTransport, name: str | None) -> str | None:
    prefix = transport.prefix
    if name and prefix and name.startswith(prefix):
        return name[len(prefix) :]
    return name
