"""The dead-letter contract: park, list, replay and queue length bounds, in memory and on RabbitMQ.

Same harness as ``test_transport_contract.py``: every test runs against ``InMemoryTransport`` and
against ``RabbitMQTransport`` (marker ``rabbitmq``, a unique prefix, quorum queues as in
production, everything deleted afterwards).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from core.errors import InvalidInput, Overloaded
from core.transport import Delivery, Exchange, Message, Queue, Topology
from core.transport.deadletters import PARKED_FROM, PARKED_REASON, DeadLetters, Parked
from core.transport.protocol import Binding
from tests.contract.test_transport_contract import TIMEOUT, Broker, Inbox, ack, broker, text, to_queue

__all__ = ["broker"]  # the parametrized fixture, shared with the transport contract


def dead_letters(b: Broker) -> DeadLetters:
    assert isinstance(b.transport, DeadLetters)
    return b.transport


async def park_next(b: Broker, queue: str, reason: str) -> Delivery:
    """Consume one delivery of ``queue``, park it with ``reason`` (confirmed), and return it."""
    parked: asyncio.Queue[Delivery] = asyncio.Queue()
    done: list[Delivery] = []

    async def park(delivery: Delivery) -> None:
        if parked.empty() and not done:
            done.append(delivery)
            await delivery.park(reason)
            await parked.put(delivery)
        # Any later delivery stays unsettled: the cancel below gives it back to the queue.

    consumer = await b.transport.consume(queue, park, prefetch=1)
    delivery = await asyncio.wait_for(parked.get(), TIMEOUT)
    await consumer.cancel()
    return delivery


async def test_a_parked_delivery_is_listed_with_its_reason_and_left_in_place(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    before = datetime.now(UTC) - timedelta(seconds=5)
    await broker.transport.publish(
        [Message(body=b'{"n": 1}', routing_key="work", message_id="m-1", headers={"trace": "t1"})]
    )
    await park_next(broker, "work", "database refused: NUL in text")

    listed = await dead_letters(broker).parked("work")
    again = await dead_letters(broker).parked("work")

    assert [p.id for p in listed] == ["m-1"] == [p.id for p in again]
    entry = listed[0]
    assert (entry.queue, entry.reason, entry.routing_key, entry.message_id, entry.size) == (
        "work",
        "database refused: NUL in text",
        "work",
        "m-1",
        len(b'{"n": 1}'),
    )
    assert entry.parked_at is not None and entry.parked_at >= before
    assert entry.headers["trace"] == "t1" and entry.headers[PARKED_FROM] == "work"
    assert entry.body == b'{"n": 1}'


async def test_a_parked_delivery_is_acked_in_its_queue(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    await broker.transport.publish(to_queue("work", "poison", "next"))
    await park_next(broker, "work", "refused")
    inbox = Inbox(ack)
    await broker.transport.consume("work", inbox)
    assert text(await inbox.next()) == "next"
    assert [p.body for p in await dead_letters(broker).parked("work")] == [b"poison"]


async def eventually_parked(b: Broker, queue: str, count: int) -> list[Parked]:
    """The DLQ of ``queue`` once it holds ``count`` deliveries (the broker dead-letters async)."""
    found: list[Parked] = []
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(TIMEOUT),
        wait=wait_fixed(0.05),
        retry=retry_if_exception_type(AssertionError),
        reraise=True,
    ):
        with attempt:
            found = await dead_letters(b).parked(queue)
            assert len(found) >= count, f"{len(found)} of {count} dead-lettered so far"
    return found


async def test_deliveries_dead_lettered_by_the_broker_are_listed_with_its_reason(broker: Broker) -> None:
    await broker.queue(Queue("work", delivery_limit=1))
    await broker.transport.publish(
        [
            Message(body=b"bad", routing_key="work", message_id="r-1"),
            Message(body=b"loop", routing_key="work", message_id="l-1"),
        ]
    )

    async def settle(delivery: Delivery) -> None:
        await (delivery.reject() if delivery.body == b"bad" else delivery.requeue())

    inbox = Inbox(settle)
    consumer = await broker.transport.consume("work", inbox)
    await inbox.take(3)  # "bad" once, "loop" twice: a limit of one return
    parked = await eventually_parked(broker, "work", 2)
    await consumer.cancel()

    assert {p.id: (p.reason, p.queue) for p in parked} == {
        "r-1": ("rejected", "work"),
        "l-1": ("delivery_limit", "work"),
    }


async def test_replay_by_id_puts_the_delivery_back_in_its_queue_and_out_of_the_dlq(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    await broker.transport.publish(
        [
            Message(body=b"one", routing_key="work", message_id="a"),
            Message(body=b"two", routing_key="work", message_id="b"),
        ]
    )
    await park_next(broker, "work", "refused")
    await park_next(broker, "work", "refused")

    replayed = await dead_letters(broker).replay("work", {"a"})

    assert [p.id for p in replayed] == ["a"]
    assert [p.id for p in await dead_letters(broker).parked("work")] == ["b"]
    inbox = Inbox(ack)
    await broker.transport.consume("work", inbox)
    delivery = await inbox.next()
    assert (delivery.body, delivery.message_id) == (b"one", "a")
    assert PARKED_REASON not in delivery.headers


async def test_replay_of_all_empties_the_dlq_in_order(broker: Broker) -> None:
    await broker.queue(Queue("work"))
    await broker.transport.publish(to_queue("work", "1", "2", "3"))
    for _ in range(3):
        await park_next(broker, "work", "refused")

    replayed = await dead_letters(broker).replay("work")

    assert [p.body for p in replayed] == [b"1", b"2", b"3"]
    assert await dead_letters(broker).parked("work") == []
    inbox = Inbox(ack)
    await broker.transport.consume("work", inbox)
    assert [text(d) for d in await inbox.take(3)] == ["1", "2", "3"]


async def test_listing_a_queue_without_dead_letters_is_empty(broker: Broker) -> None:
    await broker.queue(Queue("plain", dead_letter=False, delivery_limit=None))
    assert await dead_letters(broker).parked("plain") == []
    assert await dead_letters(broker).parked("never-declared") == []
    assert await dead_letters(broker).replay("never-declared") == []


async def test_parking_where_there_is_no_dlq_is_invalid_input_and_leaves_it_unsettled(broker: Broker) -> None:
    await broker.queue(Queue("plain", dead_letter=False, delivery_limit=None))
    await broker.transport.publish(to_queue("plain", "x"))
    failures: asyncio.Queue[tuple[Exception, bool]] = asyncio.Queue()

    async def park(delivery: Delivery) -> None:
        try:
            await delivery.park("refused")
        except InvalidInput as exc:
            await failures.put((exc, delivery.settled))

    consumer = await broker.transport.consume("plain", park)
    error, settled = await asyncio.wait_for(failures.get(), TIMEOUT)
    assert error.field == "queue" and not settled
    await consumer.cancel()

    inbox = Inbox(ack)
    await broker.transport.consume("plain", inbox)
    again = await inbox.next()
    assert text(again) == "x" and again.redelivered  # back in its queue, not lost


async def fill(b: Broker, message: Message, *, up_to: int) -> int:
    """Publish ``message`` until the queue refuses one (``Overloaded``); how many it took."""
    for accepted in range(up_to):
        try:
            await b.transport.publish([message])
        except Overloaded:
            return accepted
    raise AssertionError(f"{up_to} messages accepted: the bound was not enforced")


async def test_a_full_bounded_queue_refuses_a_publish_as_overloaded_until_it_drains(broker: Broker) -> None:
    await broker.declare(
        Topology(
            exchanges=(Exchange("in", "direct"),),
            queues=(Queue("bounded", max_length=2),),
            bindings=(Binding("bounded", "in", "bounded"),),
        )
    )
    accepted = await fill(broker, Message(body=b"old", routing_key="bounded", exchange="in"), up_to=10)
    # RabbitMQ's quorum queues check the bound after each enqueue: they may take one more.
    assert accepted in (2, 3)

    inbox = Inbox(ack)
    consumer = await broker.transport.consume("bounded", inbox)
    assert [text(d) for d in await inbox.take(accepted)] == ["old"] * accepted
    await consumer.cancel()
    await broker.transport.publish([Message(body=b"new", routing_key="bounded", exchange="in")])
    second = Inbox(ack)
    await broker.transport.consume("bounded", second)
    assert text(await second.next()) == "new"


async def test_a_replay_into_a_full_queue_is_overloaded_and_stays_parked(broker: Broker) -> None:
    await broker.queue(Queue("bounded", max_length=1))
    await broker.transport.publish(to_queue("bounded", "poison"))
    await park_next(broker, "bounded", "refused")
    await fill(broker, Message(body=b"filler", routing_key="bounded"), up_to=10)

    with pytest.raises(Overloaded):
        await dead_letters(broker).replay("bounded")

    assert [p.body for p in await dead_letters(broker).parked("bounded")] == [b"poison"]
