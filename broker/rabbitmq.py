"""The production transport: RabbitMQ through aio-pika.

- Durable queues are **quorum** queues (``x-queue-type: quorum``) with
  ``x-single-active-consumer`` when asked, ``x-delivery-limit`` against poison messages and
  dead-lettering to ``<name>.dlq`` through the default exchange; the dead-letter queue is
  declared alongside.  Exclusive (or non-durable) queues are classic and transient; RabbitMQ
  enforces no delivery limit on those, only ``reject()`` dead-letters there.
- ``publish`` pipelines publisher confirms: every message of the batch is written, then all
  confirmations are awaited together.  Messages are persistent (delivery mode 2).
- Each consumer has its own channel (so ``prefetch`` is its own ``basic.qos``); cancelling a
  consumer closes that channel, which returns its unsettled messages to the queue.  A handler
  that raises has its delivery requeued.  Settling a delivery whose channel is gone (consumer
  cancelled, connection lost) is a logged no-op: RabbitMQ redelivers the message anyway.
- The connection is aio-pika's robust connection.  The first connect is retried a bounded
  number of times (tenacity); after that a lost connection is reconnected by aio-pika for as
  long as it takes, and a keeper task declares the topology again and re-attaches every
  consumer the broker is not delivering to (after each reconnection, and every few seconds),
  retrying with backoff and jitter without ever giving up.  ``detached_consumers()`` names the
  queues still waiting for it.
- ``prefix`` is put in front of every exchange and queue name (tests and benchmarks use a unique
  one); names seen by callers (``Delivery.routing_key`` on the default exchange) are unprefixed.

Failures — aiormq's and aio-pika's channel and connection states included
(``ChannelInvalidStateError``, ``ChannelClosed``, ``ConnectionClosed``, "Connection was not
opened") — become ``BrokerUnavailable`` with a one-line message that names the broker URL
without its password.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, cast

import aio_pika
import aiormq
import aiormq.abc
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from pamqp import commands as spec
from pamqp.common import Arguments
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential
from yarl import URL

from core.errors import BrokerUnavailable, Conflict, InvalidInput, Overloaded
from core.logging import get_logger
from core.transport.deadletters import Parked
from core.transport.protocol import Consumer, Handler, HeaderValue, Message, Queue, Topology

__all__ = ["RabbitMQTransport", "redact_url"]

log = get_logger(__name__)

Outcome = Literal["ack", "requeue", "reject"]

# What the network and the broker raise when they cannot serve us right now: AMQP errors
# (``ChannelClosed``, ``ConnectionClosed``, ``AMQPConnectionError``...), socket errors, and
# aiormq's ``ChannelInvalidStateError`` (a ``RuntimeError``: the channel of a delivery, a
# consumer or a publish is gone with its connection).
_BROKER_ERRORS: tuple[type[Exception], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)
_CONNECT_ERRORS: tuple[type[Exception], ...] = (*_BROKER_ERRORS, TimeoutError)
_RESTORE_RETRYABLE: tuple[type[Exception], ...] = (*_CONNECT_ERRORS, BrokerUnavailable)
_RESTORE_ERRORS: tuple[type[Exception], ...] = (*_RESTORE_RETRYABLE, Conflict, InvalidInput)
_PING_EXCHANGE = "amq.direct"
_RESTORE_BACKOFF_MAX_S = 5.0
_SWEEP_S = 5.0  # how often the keeper checks that every consumer is still attached
# What one restore pass may meet: RuntimeError is aio-pika's connection states under a reconnect.
_KEEPER_RETRYABLE: tuple[type[Exception], ...] = (*_RESTORE_ERRORS, RuntimeError)
_CONSUME_RETRYABLE: tuple[type[Exception], ...] = (*_BROKER_ERRORS, RuntimeError)


def redact_url(url: str) -> str:
    """``amqp://guest:guest@host:5672/`` → ``amqp://guest@host:5672/``."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "<invalid broker url>"
    if parsed.password is None:
        return str(parsed)
    return str(parsed.with_password(None))


def _reason(exc: BaseException, url: str) -> str:
    """A short, password-free reason for a connection failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, aiormq.exceptions.ProbableAuthenticationError):
            return "authentication refused"
        if isinstance(current, TimeoutError):
            return "timed out"
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = current.__cause__ or current.__context__ or (nested[0] if nested else None)
    text = (str(exc).splitlines() or [type(exc).__name__])[0] or type(exc).__name__
    password = URL(url).password if "://" in url else None
    if password:
        text = text.replace(password, "***")
    return text


def _is_nack(exc: BaseException) -> bool:
    """aiormq raises ``DeliveryError`` carrying the ``basic.nack`` of a refused publish."""
    return isinstance(exc, aiormq.exceptions.DeliveryError) and isinstance(exc.frame, spec.Basic.Nack)


def _is_retryable_connect_error(exc: BaseException) -> bool:
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
        return False
    return isinstance(exc, _CONNECT_ERRORS)


def _header_value(value: Any) -> HeaderValue | type[_Skip]:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return _Skip


class _Skip:
    """Marker: a header value that is not a scalar (``x-death`` lists, tables) is left out."""


def _queue_arguments(queue: Queue, full_name: str, quorum_enabled: bool = True) -> Arguments:
    arguments: dict[str, Any] = {}
    if quorum_enabled and _is_quorum(queue):
        arguments["x-queue-type"] = "quorum"
        if queue.delivery_limit is not None:
            arguments["x-delivery-limit"] = queue.delivery_limit
    if queue.single_active_consumer:
        arguments["x-single-active-consumer"] = True
    if queue.dead_letter:
        arguments["x-dead-letter-exchange"] = ""
        arguments["x-dead-letter-routing-key"] = f"{full_name}.dlq"
    if queue.message_ttl_ms is not None:
        arguments["x-message-ttl"] = queue.message_ttl_ms
    if queue.max_length is not None:
        arguments["x-max-length"] = queue.max_length
        arguments["x-overflow"] = "reject-publish"  # a full queue nacks the publish: Overloaded
    return arguments


def _is_quorum(queue: Queue) -> bool:
    return queue.durable and queue.replicated and not queue.exclusive


def _dead_letter_spec(queue: Queue) -> Queue:
    return Queue(
        name=queue.dlq_name,
        durable=queue.durable,
        dead_letter=False,
        delivery_limit=None,
        exclusive=queue.exclusive,
        replicated=False,  # parked poison waits for a person; a classic queue is enough
    )


class _RabbitDelivery:
    __slots__ = ("_message", "_queue", "_routing_key", "_settled", "_transport")

    def __init__(
        self,
        message: AbstractIncomingMessage,
        routing_key: str,
        queue: str,
        transport: RabbitMQTransport | None = None,
    ) -> None:
        self._message = message
        self._routing_key = routing_key
        self._queue = queue
        self._settled = False
        self._transport = transport

    @property
    def body(self) -> bytes:
        return self._message.body

    @property
    def routing_key(self) -> str:
        return self._routing_key

    @property
    def headers(self) -> Mapping[str, HeaderValue]:
        out: dict[str, HeaderValue] = {}
        for key, raw in (self._message.headers or {}).items():
            value = _header_value(raw)
            if value is not _Skip:
                out[key] = value  # type: ignore[assignment]
        return MappingProxyType(out)

    @property
    def message_id(self) -> str | None:
        return self._message.message_id

    @property
    def redelivered(self) -> bool:
        return bool(self._message.redelivered)

    @property
    def settled(self) -> bool:
        return self._settled

    async def ack(self) -> None:
        await self._settle("ack")

    async def requeue(self) -> None:
        await self._settle("requeue")

    async def reject(self) -> None:
        await self._settle("reject")

    async def park(self, reason: str) -> None:
        from broker import rabbitmq_deadletters  # builds on this module

        if self._transport is None:
            raise InvalidInput("this delivery has no transport to park it with")
        await rabbitmq_deadletters.park(self._transport, self, reason)

    async def _settle(self, outcome: Outcome) -> None:
        if self._settled:
            raise Conflict("this delivery was already settled")
        self._settled = True
        try:
            if outcome == "ack":
                await self._message.ack()
            elif outcome == "requeue":
                await self._message.nack(requeue=True)
            else:
                await self._message.reject(requeue=False)
        except _BROKER_ERRORS as exc:
            # The delivery's channel is gone: RabbitMQ has returned the message and will deliver
            # it again, which is the at-least-once promise the callers are written for.
            log.info("transport.settle_lost", queue=self._queue, outcome=outcome, error=type(exc).__name__)


class _RabbitConsumer:
    def __init__(
        self,
        transport: RabbitMQTransport,
        name: str,
        handler: Handler,
        channel: AbstractRobustChannel,
        queue: AbstractRobustQueue,
    ) -> None:
        self.transport = transport
        self.name = name
        self.handler = handler
        self.channel = channel
        self.queue = queue
        self.tag: str | None = None
        self.underlay: aiormq.abc.AbstractChannel | None = None  # the AMQP channel it consumes on
        self.cancelled = False

    @property
    def attached(self) -> bool:
        """Whether the broker is delivering to this consumer now (its channel open, its tag live)."""
        underlay = self.underlay
        if self.tag is None or underlay is None or underlay.is_closed or self.channel.is_closed:
            return False
        return not isinstance(underlay, aiormq.Channel) or self.tag in underlay.consumers

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        delivery = _RabbitDelivery(message, self.transport._unprefixed(message), self.name, self.transport)
        try:
            await self.handler(delivery)
        except Exception as exc:
            # The exception's text may quote customer data: only its type is logged above DEBUG.
            log.warning(
                "transport.handler_failed",
                queue=self.name,
                message_id=delivery.message_id,
                error=type(exc).__name__,
            )
            log.debug("transport.handler_traceback", queue=self.name, exc_info=True)
            if not delivery.settled:
                await delivery.requeue()

    async def start(self) -> None:
        self.underlay = await self.channel.get_underlay_channel()
        self.tag = await self.queue.consume(self.on_message, no_ack=False, robust=False)

    async def cancel(self) -> None:
        await self.transport._cancel(self)


class RabbitMQTransport:
    """``Transport`` over RabbitMQ.  Build it with ``await RabbitMQTransport.connect(url)``."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        url: str,
        *,
        prefix: str = "",
        ping_timeout_s: float = 2.0,
        publish_timeout_s: float = 30.0,
    ) -> None:
        self._connection = connection
        self._safe_url = redact_url(url)
        self._prefix = prefix
        self._ping_timeout_s = ping_timeout_s
        self._publish_timeout_s = publish_timeout_s
        self._publish_channel: AbstractRobustChannel | None = None
        self._declare_channel: AbstractRobustChannel | None = None
        self._channel_lock = asyncio.Lock()
        self._declare_lock = asyncio.Lock()
        self._known_exchanges: set[str] = set()
        self._topologies: list[Topology] = []
        self._consumers: list[_RabbitConsumer] = []
        self._restore_task: asyncio.Task[None] | None = None
        self._restore_wanted = asyncio.Event()
        self._redeclare = False
        self._closed = False
        self.delete_on_close = False  # set by tests and benchmarks (``Settings.broker_ephemeral``)
        # False: durable queues are declared classic (``Settings.broker_quorum``).  Engine-level
        # test runs use it: RabbitMQ 3.10's Raft segment writer wedges under the churn of hundreds
        # of short-lived quorum queues a minute; the contract suite covers the quorum behaviour.
        self.quorum_enabled = True
        connection.reconnect_callbacks.add(self._on_reconnect)

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        prefix: str = "",
        connect_attempts: int = 3,
        connect_timeout_s: float = 5.0,
        reconnect_interval_s: float = 1.0,
        ping_timeout_s: float = 2.0,
        publish_timeout_s: float = 30.0,
    ) -> RabbitMQTransport:
        """Connect (``connect_attempts`` tries with backoff) or raise ``BrokerUnavailable``."""
        safe = redact_url(url)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, connect_attempts)),
            wait=wait_exponential(multiplier=0.2, max=2.0),
            retry=retry_if_exception(_is_retryable_connect_error),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    connection = await aio_pika.connect_robust(
                        url, timeout=connect_timeout_s, reconnect_interval=reconnect_interval_s
                    )
        except _CONNECT_ERRORS as exc:
            raise BrokerUnavailable(f"cannot reach RabbitMQ at {safe}: {_reason(exc, url)}") from exc
        except ValueError as exc:
            raise InvalidInput(f"invalid broker URL {safe}", field="broker_url") from exc
        log.info("transport.connected", broker=safe, prefix=prefix)
        return cls(
            connection,
            url,
            prefix=prefix,
            ping_timeout_s=ping_timeout_s,
            publish_timeout_s=publish_timeout_s,
        )

    # -- Transport ---------------------------------------------------------------------------

    async def declare(self, topology: Topology) -> None:
        self._check_connected()
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await self._declare(topology)
        except TimeoutError as exc:
            raise self._unavailable("no answer to declare") from exc
        if topology not in self._topologies:
            self._topologies.append(topology)

    async def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        self._check_connected()
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                for exchange in {m.exchange for m in messages if m.exchange}:
                    await self._require_exchange(exchange)
                # aiormq's concrete channel: its basic_publish takes ``wait`` (the abstract one does not).
                channel = cast(aiormq.Channel, await self._channel("publish"))
                results = await asyncio.gather(
                    *(
                        channel.basic_publish(
                            message.body,
                            exchange=self._name(message.exchange),
                            routing_key=(
                                message.routing_key if message.exchange else self._name(message.routing_key)
                            ),
                            properties=spec.Basic.Properties(
                                content_type=message.content_type,
                                delivery_mode=2,
                                message_id=message.message_id,
                                headers=dict(message.headers) or None,
                            ),
                            # Do not wait for each frame to reach the socket: the confirmations
                            # awaited together below are what tells the batch is safe.
                            wait=False,
                        )
                        for message in messages
                    ),
                    return_exceptions=True,
                )
        except TimeoutError as exc:
            raise self._unavailable("publisher confirms did not arrive in time") from exc
        except _BROKER_ERRORS as exc:
            raise self._unavailable(_reason(exc, "")) from exc
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            first = failures[0]
            if isinstance(first, aiormq.exceptions.ChannelNotFoundEntity):
                self._known_exchanges.clear()
                raise InvalidInput(_reason(first, ""), field="exchange") from first
            if all(_is_nack(f) for f in failures):
                # basic.nack: a queue at its x-max-length (reject-publish) refused them — backpressure.
                raise Overloaded(
                    f"RabbitMQ at {self._safe_url} refused {len(failures)} of {len(messages)} messages:"
                    " queue full"
                ) from first
            if isinstance(first, _BROKER_ERRORS) or isinstance(first, asyncio.CancelledError):
                raise self._unavailable(
                    f"{len(failures)} of {len(messages)} messages not confirmed"
                ) from first
            raise first
        refused = sum(1 for r in results if not isinstance(r, spec.Basic.Ack))
        if refused:
            # basic.nack: a queue at its x-max-length (reject-publish) refused them — backpressure.
            raise Overloaded(
                f"RabbitMQ at {self._safe_url} refused {refused} of {len(messages)} messages: queue full"
            )

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 64) -> Consumer:
        self._check_connected()
        if prefetch < 0:
            raise InvalidInput("prefetch must be 0 (unbounded) or more", field="prefetch")
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                channel = await self._open_channel(confirms=False)
        except TimeoutError as exc:
            raise self._unavailable("no answer to open a channel") from exc
        except _BROKER_ERRORS as exc:
            raise self._unavailable(_reason(exc, "")) from exc
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await channel.set_qos(prefetch_count=prefetch)
                amqp_queue = await channel.declare_queue(self._name(queue), passive=True, robust=False)
                consumer = _RabbitConsumer(self, queue, handler, channel, amqp_queue)
                await consumer.start()
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            await _close_quietly(channel)
            raise InvalidInput(f"queue {queue!r} is not declared", field="queue") from exc
        except _BROKER_ERRORS as exc:  # TimeoutError is an OSError
            await _close_quietly(channel)
            raise self._unavailable(_reason(exc, "")) from exc
        channel.reopen_callbacks.add(self._on_channel_reopen)
        self._consumers.append(consumer)
        self._ensure_keeper()
        return consumer

    async def ping(self) -> None:
        self._check_connected()
        try:
            async with asyncio.timeout(self._ping_timeout_s):
                channel = await self._open_channel(confirms=False)
                try:
                    await channel.declare_exchange(_PING_EXCHANGE, passive=True, robust=False)
                finally:
                    await _close_quietly(channel)
        except TimeoutError as exc:
            raise self._unavailable(f"no answer within {self._ping_timeout_s:g} s") from exc
        except _BROKER_ERRORS as exc:
            raise self._unavailable(_reason(exc, "")) from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._restore_task is not None:
            self._restore_task.cancel()
            await asyncio.gather(self._restore_task, return_exceptions=True)
        for consumer in list(self._consumers):
            await self._cancel(consumer)
        if self.delete_on_close:
            # Tests and benchmarks: leave no queue behind (quorum queues are not free to keep).
            for topology in list(reversed(self._topologies)):
                try:
                    async with asyncio.timeout(self._publish_timeout_s):
                        await self.delete_topology(topology)
                except (TimeoutError, RuntimeError, aiormq.exceptions.AMQPError, OSError, BrokerUnavailable):
                    # A broker that is away (or reconnecting) does not keep the connection open.
                    log.warning("transport.cleanup_incomplete", broker=self._safe_url)
                    break
        await self._connection.close()
        log.info("transport.closed", broker=self._safe_url)

    # -- Extras (not in the Protocol) --------------------------------------------------------

    async def delete_topology(self, topology: Topology) -> None:
        """Delete the topology's queues (with their dead-letter queues) and exchanges."""
        if topology in self._topologies:
            self._topologies.remove(topology)
        channel = await self._open_channel(confirms=False)
        try:
            underlay = await channel.get_underlay_channel()
            for queue in topology.queues:
                await underlay.queue_delete(self._name(queue.name))
                if queue.dead_letter:
                    await underlay.queue_delete(self._name(queue.dlq_name))
            for exchange in topology.exchanges:
                await underlay.exchange_delete(self._name(exchange.name))
                self._known_exchanges.discard(exchange.name)
        finally:
            await _close_quietly(channel)

    def detached_consumers(self) -> list[str]:
        """The queues whose consumer the broker is not delivering to now (``/readyz`` names them);
        the keeper re-attaches them once the broker answers."""
        return sorted({c.name for c in self._consumers if not c.cancelled and not c.attached})

    async def parked(self, queue: str, *, limit: int = 1000) -> list[Parked]:
        """``DeadLetters.parked`` (see ``broker.rabbitmq_deadletters``)."""
        from broker import rabbitmq_deadletters  # builds on this module

        return await rabbitmq_deadletters.parked(self, queue, limit=limit)

    async def replay(self, queue: str, ids: Collection[str] | None = None) -> list[Parked]:
        """``DeadLetters.replay`` (see ``broker.rabbitmq_deadletters``)."""
        from broker import rabbitmq_deadletters  # builds on this module

        return await rabbitmq_deadletters.replay(self, queue, ids)

    @property
    def prefix(self) -> str:
        return self._prefix

    # -- internals ---------------------------------------------------------------------------

    def _name(self, name: str) -> str:
        return f"{self._prefix}{name}" if name else ""

    def _unprefixed(self, message: AbstractIncomingMessage) -> str:
        key = message.routing_key or ""
        if not message.exchange and self._prefix and key.startswith(self._prefix):
            return key[len(self._prefix) :]
        return key

    def _unavailable(self, reason: str) -> BrokerUnavailable:
        return BrokerUnavailable(f"cannot reach RabbitMQ at {self._safe_url}: {reason}")

    def _check_connected(self) -> None:
        if self._closed:
            raise BrokerUnavailable(f"the transport to RabbitMQ at {self._safe_url} is closed")
        if self._connection.is_closed or not self._connection.connected.is_set():
            raise self._unavailable("connection lost, reconnecting")

    async def _open_channel(self, *, confirms: bool) -> AbstractRobustChannel:
        try:
            channel = self._connection.channel(publisher_confirms=confirms)
            await channel.initialize(timeout=self._ping_timeout_s)
        except RuntimeError as exc:
            # aio-pika's connection states: "Connection was not opened", "... closed", a channel
            # that closed while it opened (ChannelInvalidStateError is one of these too).
            raise self._unavailable(f"connection not ready ({_reason(exc, '')})") from exc
        return channel

    async def _channel(self, role: Literal["publish", "declare"]) -> aiormq.abc.AbstractChannel:
        """The long-lived publishing (or declaring) channel, reopened when the broker closed it."""
        async with self._channel_lock:
            current = self._publish_channel if role == "publish" else self._declare_channel
            if current is None or current.is_closed:
                if current is not None:
                    await _close_quietly(current)
                current = await self._open_channel(confirms=role == "publish")
                if role == "publish":
                    self._publish_channel = current
                else:
                    self._declare_channel = current
        return await current.get_underlay_channel()

    async def _require_exchange(self, exchange: str) -> None:
        if exchange in self._known_exchanges:
            return
        channel = await self._open_channel(confirms=False)
        try:
            await channel.declare_exchange(self._name(exchange), passive=True, robust=False)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            raise InvalidInput(f"exchange {exchange!r} is not declared", field="exchange") from exc
        finally:
            await _close_quietly(channel)
        self._known_exchanges.add(exchange)

    async def _declare(self, topology: Topology) -> None:
        async with self._declare_lock:
            channel = await self._channel("declare")
            try:
                for exchange in topology.exchanges:
                    if not exchange.name:
                        raise InvalidInput("the default exchange cannot be declared", field="exchange")
                    await channel.exchange_declare(
                        self._name(exchange.name), exchange_type=exchange.type, durable=exchange.durable
                    )
                    self._known_exchanges.add(exchange.name)
                for queue in topology.queues:
                    if queue.dead_letter:
                        await self._declare_queue(channel, _dead_letter_spec(queue))
                    await self._declare_queue(channel, queue)
                for binding in topology.bindings:
                    await channel.queue_bind(
                        self._name(binding.queue),
                        self._name(binding.exchange),
                        routing_key=binding.routing_key,
                    )
            except aiormq.exceptions.ChannelPreconditionFailed as exc:
                raise Conflict(_reason(exc, "")) from exc
            except aiormq.exceptions.ChannelNotFoundEntity as exc:
                raise InvalidInput(_reason(exc, "")) from exc
            except _BROKER_ERRORS as exc:
                raise self._unavailable(_reason(exc, "")) from exc

    async def _declare_queue(self, channel: aiormq.abc.AbstractChannel, queue: Queue) -> None:
        if not queue.name:
            raise InvalidInput("a queue needs a name", field="queue")
        full = self._name(queue.name)
        await channel.queue_declare(
            full,
            durable=queue.durable and not queue.exclusive,
            exclusive=queue.exclusive,
            auto_delete=False,
            arguments=_queue_arguments(queue, full, self.quorum_enabled),
        )

    async def _cancel(self, consumer: _RabbitConsumer) -> None:
        if consumer.cancelled:
            return
        consumer.cancelled = True
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        consumer.channel.reopen_callbacks.discard(self._on_channel_reopen)
        # Closing the consumer's channel returns its unsettled messages to the queue.
        await _close_quietly(consumer.channel)

    # -- recovery ----------------------------------------------------------------------------

    def _on_reconnect(self, *_: Any) -> None:
        log.info("transport.reconnected", broker=self._safe_url)
        self._redeclare = True
        self._schedule_restore()

    def _on_channel_reopen(self, *_: Any) -> None:
        self._schedule_restore()

    def _schedule_restore(self) -> None:
        if self._closed:
            return
        self._restore_wanted.set()
        self._ensure_keeper()

    def _ensure_keeper(self) -> None:
        if self._closed:
            return
        if self._restore_task is None or self._restore_task.done():
            self._restore_task = asyncio.get_running_loop().create_task(
                self._keep(), name="rabbitmq-transport-keeper"
            )

    async def _keep(self) -> None:
        """Until the transport closes: after every reconnection (and every ``_SWEEP_S``) declare the
        topology again and re-attach every consumer the broker is not delivering to, retrying with
        backoff and jitter for as long as it takes."""
        failures = 0
        while not self._closed:
            if failures:
                delay = min(_RESTORE_BACKOFF_MAX_S, 0.2 * 2 ** min(failures, 6))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_SWEEP_S):
                        await self._restore_wanted.wait()
            self._restore_wanted.clear()
            if self._closed or not self._connection.connected.is_set():
                failures = 0  # the robust connection reconnects by itself, then calls _on_reconnect
                continue
            if not self._redeclare and not self.detached_consumers():
                continue
            try:
                async with asyncio.timeout(self._publish_timeout_s):
                    await self._restore_once()
            except _KEEPER_RETRYABLE as exc:
                failures += 1
                log.warning(
                    "transport.restore_failed",
                    broker=self._safe_url,
                    attempt=failures,
                    error=type(exc).__name__,
                    reason=_reason(exc, ""),
                )
                continue
            if failures:
                log.info("transport.restore_succeeded", broker=self._safe_url, attempts=failures + 1)
            failures = 0

    async def _restore_once(self) -> None:
        """One pass: every topology and every detached consumer; the first failure is raised after
        the others were tried, so one broken queue does not keep the rest detached."""
        first: BaseException | None = None
        if self._redeclare:
            self._redeclare = False
            for topology in list(self._topologies):
                try:
                    await self._declare(topology)
                except _RESTORE_ERRORS as exc:
                    self._redeclare = True
                    first = first or exc
        for consumer in list(self._consumers):
            if consumer.cancelled or consumer.attached:
                continue
            try:
                await consumer.start()
            except _CONSUME_RETRYABLE as exc:
                first = first or exc
                continue
            log.info("transport.consumer_restored", queue=consumer.name)
        if first is not None:
            raise first


async def _close_quietly(channel: AbstractRobustChannel) -> None:
    """Close a channel the broker may already have closed (that outcome is the one we want)."""
    try:
        await channel.close()
    except _BROKER_ERRORS as exc:
        log.debug("transport.channel_close_failed", error=type(exc).__name__)
