"""The transport contract: what every ``Transport`` does, in memory and on RabbitMQ.

Each test runs against ``InMemoryTransport`` and against ``RabbitMQTransport`` (marker
``rabbitmq``, a unique name prefix per test, everything deleted afterwards).  The last tests
are RabbitMQ-only: connection failures, quorum queues, and recovery after an outage.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import aiormq
import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from broker import open_transport
from broker.memory import InMemoryTransport
from broker.rabbitmq import RabbitMQTransport
from core.errors import BrokerUnavailable, InvalidInput
from core.settings import Settings
from core.transport import (
    Binding,
    Consumer,
    Delivery,
    Exchange,
    Message,
    Queue,
    Topology,
    Transport,
)
from core.transport.topology import (
    INGEST_EXCHANGE,
    agent_topology,
    app_topology,
    ingest_routing_key,
    workspace_topology,
)
from tests.support.tcpproxy import TcpProxy

TIMEOUT = 10.0


@dataclass
class Broker:
    """A transport under test plus the topology to clean up after the test."""

    transport: Transport
    declared: list[Topology] = field(default_factory=list)

    async def declare(self, topology: Topology) -> None:
        self.declared.append(topology)
        await self.transport.declare(topology)

    async def queue(self, *queues: Queue) -> None:
        await self.declare(Topology(queues=queues))


async def _cleanup(transport: InMemoryTransport | RabbitMQTransport, declared: list[Topology]) -> None:
    for topology in reversed(declared):
        await transport.delete_topology(topology)


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def broker(
    request: pytest.FixtureRequest, rabbitmq_url: str, unique_prefix: str
) -> AsyncIterator[Broker]:
    transport: InMemoryTransport | RabbitMQTransport
    if request.param == "memory":
        transport = InMemoryTransport()
    else:
        transport = await RabbitMQTransport.connect(rabbitmq_url, prefix=unique_prefix)
    subject = Broker(transport)
    try:
        yield subject
    finally:
        await _cleanup(transport, subject.declared)
        await transport.close()


class Inbox:
    """A handler that records deliveries and settles them as told (or leaves them unsettled)."""

    def __init__(self, settle: Callable[[Delivery], Awaitable[None]] | None = None) -> None:
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self._settle = settle

    async def __call__(self, delivery: Delivery) -> None:
        await self.deliveries.put(delivery)
        if self._settle is not None:
            await self._settle(delivery)

    async def next(self) -> Delivery:
        return await asyncio.wait_for(self.deliveries.get(), TIMEOUT)

    async def take(self, count: int) -> list[Delivery]:
        return [await self.next() for _ in range(count)]


async def ack(delivery: Delivery) -> None:
    await delivery.ack()


def text(message: Delivery) -> str:
    return message.body.decode()


def to_queue(queue: str, *bodies: str) -> list[Message]:
    return [Message(body=b.encode(), routing_key=queue) for b in bodies]


async def test_a_published_message_is_consumed_and_acked_once(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    await broker.transport.publish(to_queue("work", "hola"))
    first = Inbox(ack)
    consumer = await broker.transport.consume("work", first)
    delivery = await first.next()
    assert (delivery.body, delivery.routing_key, delivery.redelivered) == (b"hola", "work", False)
    await consumer.cancel()

    # The acked message is gone: a new consumer sees only what is published next.
    second = Inbox(ack)
    await broker.transport.consume("work", second)
    await broker.transport.publish(to_queue("work", "next"))
    assert text(await second.next()) == "next"


async def test_a_message_waits_in_its_queue_until_a_consumer_comes(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    await broker.transport.publish(to_queue("work", "early"))
    inbox = Inbox(ack)
    await broker.transport.consume("work", inbox)
    assert text(await inbox.next()) == "early"


async def test_order_is_kept_within_a_queue(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    bodies = [str(i) for i in range(60)]
    await broker.transport.publish(to_queue("work", *bodies[:30]))
    await broker.transport.publish(to_queue("work", *bodies[30:]))
    inbox = Inbox(ack)
    await broker.transport.consume("work", inbox, prefetch=10)
    assert [text(d) for d in await inbox.take(60)] == bodies


async def test_a_requeued_message_is_delivered_again_marked_redelivered(broker: Broker) -> None:
    await broker.queue(Queue("work"))

    async def requeue_first_time(delivery: Delivery) -> None:
        await (delivery.ack() if delivery.redelivered else delivery.requeue())

    inbox = Inbox(requeue_first_time)
    await broker.transport.consume("work", inbox)
    await broker.transport.publish(to_queue("work", "again"))
    first, second = await inbox.take(2)
    assert (text(first), first.redelivered) == ("again", False)
    assert (text(second), second.redelivered) == ("again", True)


async def test_a_rejected_message_goes_to_the_dead_letter_queue(broker: Broker) -> None:
    await broker.queue(Queue("work"))

    async def reject(delivery: Delivery) -> None:
        await delivery.reject()

    await broker.transport.consume("work", Inbox(reject))
    dead = Inbox(ack)
    await broker.transport.consume("work.dlq", dead)
    await broker.transport.publish(to_queue("work", "poison"))
    delivery = await dead.next()
    assert (text(delivery), delivery.routing_key) == ("poison", "work.dlq")


async def test_a_message_requeued_past_the_delivery_limit_is_dead_lettered(broker: Broker) -> None:
    await broker.queue(Queue("work", delivery_limit=2))

    async def requeue(delivery: Delivery) -> None:
        await delivery.requeue()

    attempts = Inbox(requeue)
    await broker.transport.consume("work", attempts)
    dead = Inbox(ack)
    await broker.transport.consume("work.dlq", dead)
    await broker.transport.publish(to_queue("work", "poison"))

    assert text(await dead.next()) == "poison"
    # Delivered once, then redelivered ``delivery_limit`` times before being dead-lettered.
    assert attempts.deliveries.qsize() == 3


async def test_a_handler_that_raises_gets_its_delivery_requeued(broker: Broker) -> None:
    await broker.queue(Queue("work"))

    async def fail_first_time(delivery: Delivery) -> None:
        if not delivery.redelivered:
            raise RuntimeError("database hiccup")
        await delivery.ack()

    inbox = Inbox(fail_first_time)
    await broker.transport.consume("work", inbox)
    await broker.transport.publish(to_queue("work", "retry me"))
    first, second = await inbox.take(2)
    assert (text(second), first.redelivered, second.redelivered) == ("retry me", False, True)


async def _barrier(broker: Broker, inboxes: dict[str, Inbox]) -> dict[str, list[str]]:
    """Send a marker straight to each queue; FIFO order means everything routed before it arrived."""
    await broker.transport.publish([Message(b"--barrier--", routing_key=q) for q in inboxes])
    received: dict[str, list[str]] = {}
    for name, inbox in inboxes.items():
        received[name] = []
        while (body := text(await inbox.next())) != "--barrier--":
            received[name].append(body)
    return received


async def _bound_queues(
    broker: Broker, exchange: Exchange, bindings: dict[str, list[str]]
) -> dict[str, Inbox]:
    await broker.declare(
        Topology(
            exchanges=(exchange,),
            queues=tuple(Queue(name) for name in bindings),
            bindings=tuple(Binding(q, exchange.name, key) for q, keys in bindings.items() for key in keys),
        )
    )
    inboxes = {name: Inbox(ack) for name in bindings}
    for name, inbox in inboxes.items():
        await broker.transport.consume(name, inbox)
    return inboxes


async def test_topic_exchange_routes_by_wildcard_patterns(broker: Broker) -> None:
    inboxes = await _bound_queues(
        broker,
        Exchange("events", "topic"),
        {
            "one-word": ["queue.stats.*"],
            "any-depth": ["queue.#"],
            "suffix": ["#.ws1"],
            "exact": ["queue.stats"],
        },
    )
    keys = ["queue.stats.ws1", "queue.stats", "queue.other.deep.ws1", "agent.7.offer"]
    await broker.transport.publish([Message(k.encode(), routing_key=k, exchange="events") for k in keys])

    assert await _barrier(broker, inboxes) == {
        "one-word": ["queue.stats.ws1"],
        "any-depth": ["queue.stats.ws1", "queue.stats", "queue.other.deep.ws1"],
        "suffix": ["queue.stats.ws1", "queue.other.deep.ws1"],
        "exact": ["queue.stats"],
    }


async def test_direct_exchange_routes_by_exact_key(broker: Broker) -> None:
    inboxes = await _bound_queues(broker, Exchange("route"), {"route.a": ["a"], "route.b": ["b", "both"]})
    keys = ["a", "b", "both", "nobody"]
    await broker.transport.publish([Message(k.encode(), routing_key=k, exchange="route") for k in keys])
    assert await _barrier(broker, inboxes) == {"route.a": ["a"], "route.b": ["b", "both"]}


async def test_fanout_exchange_copies_to_every_bound_queue(broker: Broker) -> None:
    inboxes = await _bound_queues(broker, Exchange("all", "fanout"), {"x": [""], "y": [""]})
    await broker.transport.publish([Message(b"news", routing_key="anything", exchange="all")])
    assert await _barrier(broker, inboxes) == {"x": ["news"], "y": ["news"]}


async def test_publishing_many_returns_once_all_are_confirmed_and_all_arrive(broker: Broker) -> None:
    await broker.queue(Queue("bulk"))
    ids = [f"m-{i}" for i in range(2000)]
    await broker.transport.publish([Message(b"{}", routing_key="bulk", message_id=i) for i in ids])
    inbox = Inbox(ack)
    await broker.transport.consume("bulk", inbox, prefetch=500)
    assert [d.message_id for d in await inbox.take(len(ids))] == ids


async def test_single_active_consumer_gets_everything_and_a_standby_takes_over(broker: Broker) -> None:
    await broker.queue(Queue("partition", single_active_consumer=True))
    active, standby = Inbox(), Inbox(ack)
    first: Consumer = await broker.transport.consume("partition", active, prefetch=1)
    await broker.transport.consume("partition", standby, prefetch=10)
    await broker.transport.publish(to_queue("partition", "m1", "m2", "m3"))

    m1 = await active.next()
    await m1.ack()
    m2 = await active.next()  # m2 waited for the active consumer instead of going to the standby
    assert (text(m1), text(m2), standby.deliveries.qsize()) == ("m1", "m2", 0)

    await first.cancel()  # m2 is unacked: it goes back and the standby receives it
    taken = await standby.take(2)
    assert [(text(d), d.redelivered) for d in taken] == [("m2", True), ("m3", False)]


async def test_prefetch_bounds_the_unacked_deliveries_of_a_consumer(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    await broker.transport.publish(to_queue("work", *(str(i) for i in range(10))))
    bounded = Inbox()
    await broker.transport.consume("work", bounded, prefetch=3)
    held = await bounded.take(3)

    # A second consumer drains the rest, so every message has been handed out by then.
    greedy = Inbox()
    await broker.transport.consume("work", greedy, prefetch=100)
    await greedy.take(7)
    assert ([text(d) for d in held], bounded.deliveries.qsize()) == (["0", "1", "2"], 0)


async def test_headers_and_message_id_survive_the_trip(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    headers = {"x-workspace": "ws-1", "attempt": 2, "urgent": True}
    await broker.transport.publish(
        [Message(b"{}", routing_key="work", headers=headers, message_id="wamid.123")]
    )
    inbox = Inbox(ack)
    await broker.transport.consume("work", inbox)
    delivery = await inbox.next()
    assert delivery.message_id == "wamid.123"
    assert {k: delivery.headers[k] for k in headers} == headers


async def test_publishing_to_an_undeclared_exchange_is_invalid_input_naming_it(broker: Broker) -> None:
    with pytest.raises(InvalidInput, match="nowhere"):
        await broker.transport.publish([Message(b"{}", routing_key="k", exchange="nowhere")])
    # The transport is still usable afterwards.
    await broker.queue(Queue("work"))
    await broker.transport.publish(to_queue("work", "still here"))
    inbox = Inbox(ack)
    await broker.transport.consume("work", inbox)
    assert text(await inbox.next()) == "still here"


async def test_consuming_an_undeclared_queue_is_invalid_input_naming_it(broker: Broker) -> None:
    with pytest.raises(InvalidInput, match="ghost"):
        await broker.transport.consume("ghost", Inbox())


async def test_ping_succeeds_while_the_broker_is_up(broker: Broker) -> None:
    await broker.transport.ping()


async def test_ping_fails_once_the_transport_is_closed(broker: Broker) -> None:
    await broker.transport.close()
    with pytest.raises(BrokerUnavailable):
        await broker.transport.ping()


async def test_a_message_past_its_time_to_live_goes_to_the_dead_letter_queue(broker: Broker) -> None:
    await broker.queue(Queue("follow-ups", message_ttl_ms=50))
    dead = Inbox(ack)
    await broker.transport.consume("follow-ups.dlq", dead)
    await broker.transport.publish(to_queue("follow-ups", "recordatorio"))
    assert text(await dead.next()) == "recordatorio"


async def test_the_application_topology_routes_a_sender_to_its_ingest_partition(broker: Broker) -> None:
    await broker.declare(app_topology(4) + workspace_topology("ws-1") + agent_topology("agent-1"))
    key = ingest_routing_key("phone-number-id-1", "wa-5215512345678", 4)
    inbox = Inbox(ack)
    await broker.transport.consume(key, inbox)
    await broker.transport.publish([Message(b"{}", routing_key=key, exchange=INGEST_EXCHANGE)])
    assert (await inbox.next()).routing_key == key


async def test_open_transport_gives_the_embedded_broker_for_memory_urls() -> None:
    transport = await open_transport(Settings(broker_url="memory://"))
    try:
        assert isinstance(transport, InMemoryTransport)
    finally:
        await transport.close()


async def test_open_transport_refuses_an_unknown_scheme_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        await open_transport(Settings(broker_url="kafka://127.0.0.1:9092"))
    assert caught.value.field == "broker_url"


@pytest.mark.rabbitmq
async def test_open_transport_connects_to_rabbitmq_with_the_configured_prefix(
    rabbitmq_url: str, unique_prefix: str
) -> None:
    transport = await open_transport(Settings(broker_url=rabbitmq_url, broker_prefix=unique_prefix))
    try:
        assert isinstance(transport, RabbitMQTransport)
        assert transport.prefix == unique_prefix
        await transport.ping()
    finally:
        await transport.close()


# -- RabbitMQ only -------------------------------------------------------------------------------


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.rabbitmq
async def test_connecting_to_a_closed_port_is_broker_unavailable_naming_the_url_without_password() -> None:
    port = _free_loopback_port()
    with pytest.raises(BrokerUnavailable) as caught:
        await RabbitMQTransport.connect(f"amqp://guest:s3cret@127.0.0.1:{port}/", connect_attempts=2)
    expected = f"cannot reach RabbitMQ at amqp://guest@127.0.0.1:{port}/: connection refused"
    assert caught.value.message == expected
    assert "s3cret" not in str(caught.value)


@pytest.mark.rabbitmq
async def test_durable_queues_are_quorum_queues_and_their_dead_letter_queues_classic_durable(
    rabbitmq_url: str, unique_prefix: str
) -> None:
    transport = await RabbitMQTransport.connect(rabbitmq_url, prefix=unique_prefix)
    topology = Topology(
        queues=(
            Queue("ingest.0", single_active_consumer=True, delivery_limit=5),
            Queue(
                "agent.x",
                single_active_consumer=True,
                replicated=False,
                dead_letter=False,
                delivery_limit=None,
            ),
        )
    )
    name = unique_prefix + "ingest.0"
    quorum = {
        name: {
            "x-queue-type": "quorum",
            "x-single-active-consumer": True,
            "x-delivery-limit": 5,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": name + ".dlq",
        },
    }
    classic = {
        name + ".dlq": {},
        unique_prefix + "agent.x": {"x-single-active-consumer": True},
    }
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        await transport.declare(topology)
        for queue, arguments in quorum.items():
            # RabbitMQ accepts a redeclaration only when type and arguments are equivalent...
            channel = await connection.channel()
            await channel.declare_queue(queue, durable=True, arguments=arguments)
            # ...and refuses the same queue as a classic one.
            with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="x-queue-type"):
                await channel.declare_queue(
                    queue, durable=True, arguments={**arguments, "x-queue-type": "classic"}
                )
        for queue, arguments in classic.items():
            channel = await connection.channel()
            await channel.declare_queue(queue, durable=True, arguments=arguments)
            with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="x-queue-type"):
                await channel.declare_queue(
                    queue, durable=True, arguments={**arguments, "x-queue-type": "quorum"}
                )
    finally:
        await connection.close()
        await transport.delete_topology(topology)
        await transport.close()


async def _until_ping_succeeds(transport: RabbitMQTransport) -> None:
    retrying = AsyncRetrying(
        stop=stop_after_delay(TIMEOUT),
        wait=wait_fixed(0.1),
        retry=retry_if_exception_type(BrokerUnavailable),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            await transport.ping()


@pytest.mark.rabbitmq
async def test_ping_follows_an_outage_and_consumers_resume_after_reconnection(
    rabbitmq_url: str, unique_prefix: str
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    url = rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    transport = await RabbitMQTransport.connect(url, prefix=unique_prefix, reconnect_interval_s=0.2)
    topology = Topology(queues=(Queue("work"),))
    try:
        await transport.declare(topology)
        inbox = Inbox(ack)
        await transport.consume("work", inbox)
        await transport.ping()

        await proxy.cut()
        started = asyncio.get_running_loop().time()
        with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{proxy.port}"):
            await transport.ping()
        assert asyncio.get_running_loop().time() - started <= 2.5
        with pytest.raises(BrokerUnavailable):
            await transport.publish(to_queue("work", "lost"))

        await proxy.restore()
        await _until_ping_succeeds(transport)
        await transport.publish(to_queue("work", "after the outage"))
        assert text(await inbox.next()) == "after the outage"
    finally:
        await transport.close()
        await proxy.cut()
        cleaner = await RabbitMQTransport.connect(rabbitmq_url, prefix=unique_prefix)
        await cleaner.delete_topology(topology)
        await cleaner.close()


@pytest.mark.rabbitmq
async def test_a_transport_opened_from_settings_honours_quorum_and_ephemeral(
    rabbitmq_url: str, unique_prefix: str
) -> None:
    from broker.factory import open_transport
    from core.settings import Settings

    settings = Settings(
        broker_url=rabbitmq_url, broker_prefix=unique_prefix, broker_quorum=False, broker_ephemeral=True
    )
    transport = await open_transport(settings)
    assert transport.quorum_enabled is False
    assert transport.delete_on_close is True
    await transport.declare(Topology(queues=(Queue("gone"),)))
    await transport.close()
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await channel.declare_queue(unique_prefix + "gone", passive=True)
    finally:
        await connection.close()


async def _through_proxy(rabbitmq_url: str, unique_prefix: str) -> tuple[TcpProxy, RabbitMQTransport]:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    url = rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    return proxy, await RabbitMQTransport.connect(url, prefix=unique_prefix, reconnect_interval_s=0.2)


async def _cleanup_after_proxy(rabbitmq_url: str, unique_prefix: str, topology: Topology) -> None:
    cleaner = await RabbitMQTransport.connect(rabbitmq_url, prefix=unique_prefix)
    await cleaner.delete_topology(topology)
    await cleaner.close()


@pytest.mark.rabbitmq
async def test_settling_a_delivery_whose_connection_died_is_a_quiet_no_op_and_it_comes_again(
    rabbitmq_url: str, unique_prefix: str
) -> None:
    proxy, transport = await _through_proxy(rabbitmq_url, unique_prefix)
    topology = Topology(queues=(Queue("work"),))
    try:
        await transport.declare(topology)
        inbox = Inbox()  # holds its deliveries unsettled, like a pipeline batch in flight
        await transport.consume("work", inbox)
        await transport.publish(to_queue("work", "in flight"))
        held = await inbox.next()

        await proxy.cut()
        await _until_ping_fails(transport)
        await held.requeue()  # the channel is gone: nothing to do, nothing raised
        assert held.settled

        await proxy.restore()
        again = await inbox.next()
        assert (text(again), again.redelivered) == ("in flight", True)
        await again.ack()
    finally:
        await transport.close()
        await proxy.cut()
        await _cleanup_after_proxy(rabbitmq_url, unique_prefix, topology)


@pytest.mark.rabbitmq
async def test_every_call_during_an_outage_is_broker_unavailable_and_all_resume_after_repeated_outages(
    rabbitmq_url: str, unique_prefix: str
) -> None:
    proxy, transport = await _through_proxy(rabbitmq_url, unique_prefix)
    topology = Topology(queues=(Queue("work"), Queue("other", single_active_consumer=True)))
    try:
        await transport.declare(topology)
        work, other = Inbox(ack), Inbox(ack)
        await transport.consume("work", work)
        await transport.consume("other", other)
        for round_ in range(3):
            await proxy.cut()
            # Hammer every entry point while the connection dies and comes back: only
            # BrokerUnavailable may come out, never aio-pika's RuntimeErrors.
            for _ in range(20):
                for call in (
                    lambda: transport.publish(to_queue("work", "during")),
                    lambda: transport.ping(),
                    lambda: transport.declare(topology),
                ):
                    try:
                        await call()
                    except BrokerUnavailable:
                        pass
                await asyncio.sleep(0)
            await proxy.restore()
            await _until_ping_succeeds(transport)
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(TIMEOUT),
                wait=wait_fixed(0.1),
                retry=retry_if_exception_type(BrokerUnavailable),
                reraise=True,
            ):
                with attempt:
                    await transport.publish(
                        to_queue("work", f"after {round_}") + to_queue("other", f"after {round_}")
                    )
            # At least once: an ack the cut swallowed brings an earlier message again first.
            for inbox in (work, other):
                while text(await inbox.next()) != f"after {round_}":
                    pass
            assert transport.detached_consumers() == []
    finally:
        await transport.close()
        await proxy.cut()
        await _cleanup_after_proxy(rabbitmq_url, unique_prefix, topology)


async def _until_ping_fails(transport: RabbitMQTransport) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            try:
                await transport.ping()
            except BrokerUnavailable:
                return
            await asyncio.sleep(0.05)
