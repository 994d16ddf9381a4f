"""The embedded transport: exchanges, queues, manual ack and dead-lettering inside one process.

It follows RabbitMQ's quorum-queue semantics closely enough that the same contract suite runs
against both (``tests/contract/test_transport_contract.py``):

- exchanges ``direct``, ``topic`` (AMQP wildcards ``*`` one word, ``#`` zero or more words),
  ``fanout`` and the default exchange ``""`` (routing key = queue name); an unroutable
  message is dropped, as RabbitMQ does without ``mandatory``;
- a message returned to its queue (``requeue()``, a handler that raises, a consumer cancelled
  with it unacked) goes back to the head of the queue and counts as one more delivery attempt;
  the return that makes the count exceed ``Queue.delivery_limit`` dead-letters it instead
  (so a message is delivered at most ``delivery_limit + 1`` times); ``reject()`` dead-letters
  at once; a queue without ``dead_letter`` drops such messages;
- ``prefetch`` bounds the unsettled deliveries per consumer (0 = unbounded, as in AMQP);
- ``single_active_consumer``: only the earliest registered consumer receives; when it cancels,
  its unsettled messages return to the queue and the next consumer takes over.

Settling a delivery whose consumer was cancelled (or whose transport was closed) does nothing:
the message was already returned to its queue and will be delivered again.  Nothing is
durable; handlers run as asyncio tasks, one per delivery, as aio-pika runs them.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from core.errors import BrokerUnavailable, Conflict, InvalidInput, Overloaded
from core.logging import get_logger
from core.transport.deadletters import Parked, dead_letter_queue, parked_copy, parked_entry, replay_copy
from core.transport.protocol import (
    Binding,
    Consumer,
    Exchange,
    Handler,
    HeaderValue,
    Message,
    Queue,
    Topology,
)

__all__ = ["InMemoryTransport", "topic_matches"]

log = get_logger(__name__)

Outcome = Literal["ack", "requeue", "reject"]


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: words split on ``.``; ``*`` is exactly one word, ``#`` zero or more."""
    words = routing_key.split(".") if routing_key else []
    parts = pattern.split(".") if pattern else []
    # positions[i] is True when the first i words can be matched so far.
    positions = [True] + [False] * len(words)
    for part in parts:
        nxt = [False] * (len(words) + 1)
        if part == "#":
            reachable = False
            for i in range(len(words) + 1):
                reachable = reachable or positions[i]
                nxt[i] = reachable
        else:
            for i in range(len(words)):
                if positions[i] and (part == "*" or part == words[i]):
                    nxt[i + 1] = True
        positions = nxt
    return positions[len(words)]


@dataclass(slots=True)
class _Envelope:
    body: bytes
    routing_key: str
    exchange: str
    headers: dict[str, HeaderValue]
    message_id: str | None
    content_type: str
    returns: int = 0
    delivered: bool = False
    expires_at: float | None = None


@dataclass(slots=True, eq=False)
class _MemoryQueue:
    spec: Queue
    ready: deque[_Envelope] = field(default_factory=deque)
    consumers: list[_MemoryConsumer] = field(default_factory=list)
    turn: int = 0


class _MemoryDelivery:
    __slots__ = ("_consumer", "_envelope", "_redelivered", "_settled", "_tag", "_transport")

    def __init__(
        self,
        transport: InMemoryTransport,
        consumer: _MemoryConsumer,
        envelope: _Envelope,
        tag: int,
        redelivered: bool,
    ) -> None:
        self._transport = transport
        self._consumer = consumer
        self._envelope = envelope
        self._tag = tag
        self._redelivered = redelivered
        self._settled = False

    @property
    def body(self) -> bytes:
        return self._envelope.body

    @property
    def routing_key(self) -> str:
        return self._envelope.routing_key

    @property
    def headers(self) -> Mapping[str, HeaderValue]:
        return MappingProxyType(self._envelope.headers)

    @property
    def message_id(self) -> str | None:
        return self._envelope.message_id

    @property
    def redelivered(self) -> bool:
        return self._redelivered

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self) -> None:
        self._transport._settle(self, "ack")

    async def requeue(self) -> None:
        self._transport._settle(self, "requeue")

    async def reject(self) -> None:
        self._transport._settle(self, "reject")

    async def park(self, reason: str) -> None:
        if self._settled:
            raise Conflict("this delivery was already settled")
        await self._transport._park(self, reason)
        await self.ack()


class _MemoryConsumer:
    __slots__ = ("cancelled", "handler", "prefetch", "queue", "transport", "unacked")

    def __init__(self, transport: InMemoryTransport, queue: _MemoryQueue, handler: Handler, prefetch: int):
        self.transport = transport
        self.queue = queue
        self.handler = handler
        self.prefetch = prefetch
        self.unacked: dict[int, _MemoryDelivery] = {}
        self.cancelled = False

    @property
    def has_capacity(self) -> bool:
        return not self.cancelled and (self.prefetch == 0 or len(self.unacked) < self.prefetch)

    async def cancel(self) -> None:
        self.transport._cancel(self)


class InMemoryTransport:
    """The in-process ``Transport``: the embedded default and the fast half of the contract suite."""

    def __init__(self) -> None:
        self._exchanges: dict[str, Exchange] = {}
        self._bindings: dict[str, list[Binding]] = {}
        self._queues: dict[str, _MemoryQueue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._tags = itertools.count(1)
        self._closed = False

    # -- Transport ---------------------------------------------------------------------------

    async def declare(self, topology: Topology) -> None:
        self._check_open()
        for exchange in topology.exchanges:
            if not exchange.name:
                raise InvalidInput("the default exchange cannot be declared", field="exchange")
            known = self._exchanges.get(exchange.name)
            if known is not None and known != exchange:
                raise Conflict(f"exchange {exchange.name!r} already declared with other settings")
            self._exchanges[exchange.name] = exchange
            self._bindings.setdefault(exchange.name, [])
        for queue in topology.queues:
            if queue.dead_letter:
                self._declare_queue(_dead_letter_spec(queue))
            self._declare_queue(queue)
        for binding in topology.bindings:
            if binding.exchange not in self._exchanges:
                raise InvalidInput(f"exchange {binding.exchange!r} is not declared", field="exchange")
            if binding.queue not in self._queues:
                raise InvalidInput(f"queue {binding.queue!r} is not declared", field="queue")
            if binding not in self._bindings[binding.exchange]:
                self._bindings[binding.exchange].append(binding)

    async def publish(self, messages: Sequence[Message]) -> None:
        self._check_open()
        for message in messages:
            if message.exchange and message.exchange not in self._exchanges:
                raise InvalidInput(f"exchange {message.exchange!r} is not declared", field="exchange")
        touched: dict[str, _MemoryQueue] = {}
        refused = 0
        for message in messages:
            for queue in self._route(message):
                if queue.spec.max_length is not None and len(queue.ready) >= queue.spec.max_length:
                    refused += 1  # RabbitMQ's x-overflow: reject-publish answers basic.nack
                    continue
                self._enqueue(queue, _envelope_of(message))
                touched[queue.spec.name] = queue
        for queue in touched.values():
            self._dispatch(queue)
        if refused:
            raise Overloaded(f"the in-memory broker refused {refused} of {len(messages)} messages: full")

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 64) -> Consumer:
        self._check_open()
        if prefetch < 0:
            raise InvalidInput("prefetch must be 0 (unbounded) or more", field="prefetch")
        target = self._queues.get(queue)
        if target is None:
            raise InvalidInput(f"queue {queue!r} is not declared", field="queue")
        consumer = _MemoryConsumer(self, target, handler, prefetch)
        target.consumers.append(consumer)
        self._dispatch(target)
        return consumer

    async def ping(self) -> None:
        self._check_open()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for queue in self._queues.values():
            for consumer in list(queue.consumers):
                self._cancel(consumer, dispatch=False)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- Extras (not in the Protocol) --------------------------------------------------------

    def detached_consumers(self) -> list[str]:
        """Always none: an in-process consumer cannot lose its broker (``/readyz`` asks)."""
        return []

    async def delete_topology(self, topology: Topology) -> None:
        """Forget the topology's queues (and their dead-letter queues), bindings and exchanges."""
        for queue in topology.queues:
            for name in (queue.name, queue.dlq_name):
                gone = self._queues.pop(name, None)
                if gone is not None:
                    for consumer in list(gone.consumers):
                        consumer.cancelled = True
                    gone.consumers.clear()
                    for bindings in self._bindings.values():
                        bindings[:] = [b for b in bindings if b.queue != name]
        for exchange in topology.exchanges:
            self._exchanges.pop(exchange.name, None)
            self._bindings.pop(exchange.name, None)

    async def parked(self, queue: str, *, limit: int = 1000) -> list[Parked]:
        """``DeadLetters.parked``: the waiting messages of ``<queue>.dlq``, oldest first."""
        self._check_open()
        dlq = self._queues.get(dead_letter_queue(queue))
        if dlq is None:
            return []
        return [_parked_of(dlq, envelope) for envelope in list(dlq.ready)[:limit]]

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> list[Parked]:
        """``DeadLetters.replay``: publish back to the original queue, then drop from the DLQ."""
        self._check_open()
        dlq = self._queues.get(dead_letter_queue(queue))
        if dlq is None:
            return []
        replayed: list[Parked] = []
        for envelope in list(dlq.ready):
            entry = _parked_of(dlq, envelope)
            if ids is not None and entry.id not in ids:
                continue
            if entry.queue not in self._queues:
                raise InvalidInput(f"queue {entry.queue!r} is not declared", field="queue")
            await self.publish([replay_copy(entry)])
            if envelope in dlq.ready:
                dlq.ready.remove(envelope)
            replayed.append(entry)
        return replayed

    def queue_depth(self, queue: str) -> int:
        """Messages waiting (not delivered) in ``queue``; for tests and the demo dashboard."""
        target = self._queues.get(queue)
        if target is None:
            raise InvalidInput(f"queue {queue!r} is not declared", field="queue")
        return len(target.ready)

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerUnavailable("the in-memory broker is closed")

    async def _park(self, delivery: _MemoryDelivery, reason: str) -> None:
        spec = delivery._consumer.queue.spec
        if not spec.dead_letter or spec.dlq_name not in self._queues:
            raise InvalidInput(f"queue {spec.name!r} has no dead-letter queue to park in", field="queue")
        envelope = delivery._envelope
        copy = parked_copy(
            queue=spec.name,
            body=envelope.body,
            routing_key=envelope.routing_key,
            headers=envelope.headers,
            message_id=envelope.message_id,
            content_type=envelope.content_type,
            reason=reason,
        )
        await self.publish([copy])

    def _declare_queue(self, spec: Queue) -> None:
        if not spec.name:
            raise InvalidInput("a queue needs a name", field="queue")
        known = self._queues.get(spec.name)
        if known is None:
            self._queues[spec.name] = _MemoryQueue(spec)
        elif known.spec != spec:
            raise Conflict(f"queue {spec.name!r} already declared with other settings")

    def _route(self, message: Message) -> list[_MemoryQueue]:
        if not message.exchange:
            queue = self._queues.get(message.routing_key)
            return [queue] if queue is not None else []
        kind = self._exchanges[message.exchange].type
        names: dict[str, None] = {}
        for binding in self._bindings.get(message.exchange, ()):
            if (
                kind == "fanout"
                or (kind == "direct" and binding.routing_key == message.routing_key)
                or (kind == "topic" and topic_matches(binding.routing_key, message.routing_key))
            ):
                names[binding.queue] = None
        return [self._queues[name] for name in names if name in self._queues]

    def _enqueue(self, queue: _MemoryQueue, envelope: _Envelope) -> None:
        ttl_ms = queue.spec.message_ttl_ms
        if ttl_ms is not None:
            loop = asyncio.get_running_loop()
            envelope.expires_at = loop.time() + ttl_ms / 1000
            timer: asyncio.TimerHandle | None = None

            def expire() -> None:
                if timer is not None:
                    self._timers.discard(timer)
                if not self._closed and self._queues.get(queue.spec.name) is queue:
                    self._dispatch(queue)

            timer = loop.call_later(ttl_ms / 1000, expire)
            self._timers.add(timer)
        queue.ready.append(envelope)

    def _expire(self, queue: _MemoryQueue) -> None:
        if queue.spec.message_ttl_ms is None or not queue.ready:
            return
        now = asyncio.get_running_loop().time()
        expired = [e for e in queue.ready if e.expires_at is not None and e.expires_at <= now]
        if not expired:
            return
        queue.ready = deque(e for e in queue.ready if e.expires_at is None or e.expires_at > now)
        for envelope in expired:
            self._dead_letter(queue, envelope, "expired")

    def _pick(self, queue: _MemoryQueue) -> _MemoryConsumer | None:
        live = [c for c in queue.consumers if not c.cancelled]
        if not live:
            return None
        if queue.spec.single_active_consumer:
            active = live[0]
            return active if active.has_capacity else None
        for offset in range(len(live)):
            candidate = live[(queue.turn + offset) % len(live)]
            if candidate.has_capacity:
                queue.turn = (queue.turn + offset + 1) % len(live)
                return candidate
        return None

    def _dispatch(self, queue: _MemoryQueue) -> None:
        self._expire(queue)
        while queue.ready and not self._closed:
            consumer = self._pick(queue)
            if consumer is None:
                return
            envelope = queue.ready.popleft()
            delivery = _MemoryDelivery(self, consumer, envelope, next(self._tags), envelope.delivered)
            envelope.delivered = True
            consumer.unacked[delivery._tag] = delivery
            task = asyncio.get_running_loop().create_task(self._run(consumer, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, consumer: _MemoryConsumer, delivery: _MemoryDelivery) -> None:
        try:
            await consumer.handler(delivery)
        except Exception as exc:
            # The exception's text may quote customer data: only its type is logged above DEBUG.
            log.warning(
                "transport.handler_failed",
                queue=consumer.queue.spec.name,
                message_id=delivery.message_id,
                error=type(exc).__name__,
            )
            log.debug("transport.handler_traceback", queue=consumer.queue.spec.name, exc_info=True)
            if not delivery.settled:
                self._settle(delivery, "requeue")

    def _settle(self, delivery: _MemoryDelivery, outcome: Outcome) -> None:
        if delivery._settled:
            raise Conflict("this delivery was already settled")
        delivery._settled = True
        consumer = delivery._consumer
        if consumer.unacked.pop(delivery._tag, None) is None:
            # The consumer was cancelled (or the transport closed): the message went back already.
            log.debug("transport.settle_after_cancel", queue=consumer.queue.spec.name, outcome=outcome)
            return
        queue = consumer.queue
        if outcome == "requeue":
            self._return(queue, delivery._envelope)
        elif outcome == "reject":
            self._dead_letter(queue, delivery._envelope, "rejected")
        self._dispatch(queue)

    def _return(self, queue: _MemoryQueue, envelope: _Envelope) -> None:
        envelope.returns += 1
        limit = queue.spec.delivery_limit
        if limit is not None and envelope.returns > limit:
            self._dead_letter(queue, envelope, "delivery_limit")
        else:
            queue.ready.appendleft(envelope)

    def _dead_letter(self, queue: _MemoryQueue, envelope: _Envelope, reason: str) -> None:
        if not queue.spec.dead_letter:
            return
        dlq = self._queues.get(queue.spec.dlq_name)
        if dlq is None:
            return
        headers = dict(envelope.headers)
        headers.setdefault("x-first-death-reason", reason)
        headers.setdefault("x-first-death-queue", queue.spec.name)
        dead = replace(
            envelope,
            routing_key=dlq.spec.name,
            exchange="",
            headers=headers,
            returns=0,
            delivered=False,
            expires_at=None,
        )
        self._enqueue(dlq, dead)
        self._dispatch(dlq)

    def _cancel(self, consumer: _MemoryConsumer, *, dispatch: bool = True) -> None:
        if consumer.cancelled:
            return
        consumer.cancelled = True
        queue = consumer.queue
        if consumer in queue.consumers:
            queue.consumers.remove(consumer)
        pending = sorted(consumer.unacked.items(), reverse=True)
        consumer.unacked.clear()
        for _, delivery in pending:
            self._return(queue, delivery._envelope)
        if dispatch and not self._closed:
            self._dispatch(queue)


def _dead_letter_spec(queue: Queue) -> Queue:
    return Queue(
        name=queue.dlq_name,
        durable=queue.durable,
        single_active_consumer=False,
        dead_letter=False,
        delivery_limit=None,
        exclusive=queue.exclusive,
    )


def _parked_of(dlq: _MemoryQueue, envelope: _Envelope) -> Parked:
    return parked_entry(
        dead_letter=dlq.spec.name,
        body=envelope.body,
        headers=envelope.headers,
        message_id=envelope.message_id,
        content_type=envelope.content_type,
    )


def _envelope_of(message: Message) -> _Envelope:
    return _Envelope(
        body=message.body,
        routing_key=message.routing_key,
        exchange=message.exchange,
        headers=dict(message.headers),
        # RabbitMQ (aiormq) gives every message an id when the publisher sets none; so do we.
        message_id=message.message_id or uuid.uuid4().hex,
        content_type=message.content_type,
    )
