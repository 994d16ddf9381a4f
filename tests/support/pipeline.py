"""Deliveries for pipeline tests: handed to ``Pipeline.handle_batch`` as one batch, each
remembering how the pipeline settled it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from centralita.envelope import RawEnvelope
from centralita.pipeline.worker import Pipeline
from core.ids import RawDeliveryId, new_id
from core.transport.protocol import Delivery, Message
from core.transport.topology import INGEST_EXCHANGE, ingest_queue

__all__ = ["Recorded", "one_batch"]


class Recorded:
    """A delivery that remembers how it was settled."""

    def __init__(self, inner: Delivery) -> None:
        self.inner = inner
        self.outcome: str | None = None
        self.reason: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def ack(self) -> None:
        self.outcome = "ack"
        await self.inner.ack()

    async def reject(self) -> None:
        self.outcome = "reject"
        await self.inner.reject()

    async def requeue(self) -> None:
        self.outcome = "requeue"
        await self.inner.requeue()

    async def park(self, reason: str) -> None:
        self.outcome, self.reason = "park", reason
        await self.inner.park(reason)


async def one_batch(runtime: Any, pipeline: Pipeline, bodies: list[bytes | Message]) -> list[Recorded]:
    """The bodies as one partition's deliveries, in order, as the ingress would have published
    them (a ``Message`` as it is), handled as one batch; each delivery, with how it was settled."""
    received: list[Delivery] = []
    arrived = asyncio.Event()

    async def collect(delivery: Delivery) -> None:
        received.append(delivery)
        if len(received) == len(bodies):
            arrived.set()

    consumer = await runtime.transport.consume(ingest_queue(0), collect, prefetch=len(bodies))
    now = datetime.now(UTC)
    await runtime.transport.publish(
        [
            body
            if isinstance(body, Message)
            else RawEnvelope(RawDeliveryId(new_id()), "whatsapp", now, body).to_message(
                INGEST_EXCHANGE, ingest_queue(0)
            )
            for body in bodies
        ]
    )
    async with asyncio.timeout(5):
        await arrived.wait()
    batch = [Recorded(d) for d in received]
    await pipeline.handle_batch(batch)  # type: ignore[arg-type]
    await consumer.cancel()  # after the batch is settled: a cancel gives back what is not
    return batch
