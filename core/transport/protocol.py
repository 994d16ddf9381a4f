"""The transport seam: publish with confirm, consume with manual ack, declare topology.

Two implementations: ``broker.memory.InMemoryTransport`` (the embedded default) and
``broker.rabbitmq.RabbitMQTransport`` (aio-pika, production).  One contract suite
(``tests/contract/test_transport_contract.py``) runs against both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "Binding",
    "Consumer",
    "Delivery",
    "Exchange",
    "Handler",
    "Message",
    "Queue",
    "Topology",
    "Transport",
]

HeaderValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Exchange:
    name: str
    type: Literal["direct", "topic", "fanout"] = "direct"
    durable: bool = True


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue.  Durable queues are quorum queues on RabbitMQ.

    ``dead_letter``: rejected messages, and messages redelivered more than ``delivery_limit``
    times (poison), go to ``<name>.dlq``.  ``single_active_consumer``: only one consumer
    receives at a time; another takes over when it goes away (partitions, routers).
    ``exclusive``: a transient queue owned by one connection (gateways); not quorum.
    ``replicated=False``: a durable classic queue instead of a quorum queue, for queues whose
    loss costs only a retry (per-agent push queues, dead-letter queues): quorum queues are the
    broker's most expensive kind, and thousands of agents must not mean thousands of Raft groups.
    ``max_length``: at most this many ready messages; a publish into a full queue is refused
    (RabbitMQ ``x-max-length`` with ``x-overflow: reject-publish``) and ``publish`` raises
    ``Overloaded`` — backpressure, never a silent drop.
    """

    name: str
    durable: bool = True
    single_active_consumer: bool = False
    dead_letter: bool = True
    delivery_limit: int | None = 5
    exclusive: bool = False
    message_ttl_ms: int | None = None
    replicated: bool = True
    max_length: int | None = None

    @property
    def dlq_name(self) -> str:
        return f"{self.name}.dlq"


@dataclass(frozen=True, slots=True)
class Binding:
    queue: str
    exchange: str
    routing_key: str


@dataclass(frozen=True, slots=True)
class Topology:
    exchanges: Sequence[Exchange] = ()
    queues: Sequence[Queue] = ()
    bindings: Sequence[Binding] = ()

    def __add__(self, other: Topology) -> Topology:
        return Topology(
            tuple(self.exchanges) + tuple(other.exchanges),
            tuple(self.queues) + tuple(other.queues),
            tuple(self.bindings) + tuple(other.bindings),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish.  ``exchange=""`` is the default exchange (routing key = queue)."""

    body: bytes
    routing_key: str
    exchange: str = ""
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    message_id: str | None = None
    content_type: str = "application/json"


class Delivery(Protocol):
    """A received message.  The handler must settle it exactly once."""

    @property
    def body(self) -> bytes: ...

    @property
    def routing_key(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, HeaderValue]: ...

    @property
    def message_id(self) -> str | None: ...

    @property
    def redelivered(self) -> bool: ...

    @property
    def settled(self) -> bool:
        """Whether ack, requeue or reject was already called."""
        ...

    async def ack(self) -> None: ...

    async def requeue(self) -> None:
        """Give it back to the queue (counts towards the delivery limit)."""
        ...

    async def reject(self) -> None:
        """Poison: straight to the dead-letter queue (or dropped if the queue has none)."""
        ...

    async def park(self, reason: str) -> None:
        """Publish a copy to ``<queue>.dlq`` (confirmed), naming ``reason``, then ack this one.

        The copy carries the ``x-centralita-parked-*`` headers (``core.transport.deadletters``):
        the reason, the original queue, routing key and message id, and the time parked; a
        person lists, reads and replays it with ``centralita dlq``.  At least once: a crash
        between the confirm and the ack leaves the message in both places (the consumers
        dedupe).  Raises ``BrokerUnavailable`` (the delivery stays unsettled) or
        ``InvalidInput`` when the queue has no dead-letter queue.
        """
        ...


Handler = Callable[[Delivery], Awaitable[None]]


class Consumer(Protocol):
    async def cancel(self) -> None: ...


class Transport(Protocol):
    async def declare(self, topology: Topology) -> None: ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Return only once the broker confirmed every message; raise ``BrokerUnavailable``."""
        ...

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 64) -> Consumer:
        """Deliver to ``handler``; a handler that raises has its delivery requeued."""
        ...

    async def ping(self) -> None:
        """Raise ``BrokerUnavailable`` naming the broker if it cannot be reached now."""
        ...

    async def close(self) -> None: ...
