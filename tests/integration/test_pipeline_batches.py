"""The pipeline commits a partition's deliveries as one batch; a delivery whose data the database
refuses is parked on its own and its neighbours in the batch are stored (PostgreSQL enforces the
column sizes that make such a delivery)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from centralita.envelope import RawEnvelope
from centralita.pipeline.worker import Pipeline
from centralita.runtime import open_runtime
from channels.whatsapp.testing import text_webhook_body
from core.ids import RawDeliveryId, new_id
from core.settings import Settings
from core.transport.protocol import Delivery
from core.transport.topology import INGEST_EXCHANGE, ingest_queue
from storage.database import Database
from storage.tables import MessageRow, RawDeliveryRow
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

pytestmark = [pytest.mark.postgres]

PHONE_NUMBER_ID = "106540352242977"


def _webhook(wamid: str, wa_id: str) -> bytes:
    return text_webhook_body(PHONE_NUMBER_ID, wa_id, wamid, "Hola", name="Cliente", waba_id="1")


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


async def test_a_delivery_the_database_refuses_is_parked_and_its_batch_neighbours_are_stored(
    postgres_url: str,
) -> None:
    settings = Settings(database_url=postgres_url, broker_url="memory://", ingest_partitions=1)
    await migrated(postgres_url)
    db = Database(postgres_url)
    await seed_workspace(db, "lotes", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}])
    await db.dispose()
    bodies = [
        _webhook("wamid.first", "5215512340101"),
        _webhook("wamid." + "x" * 500, "5215512340102"),  # longer than the column allows
        _webhook("wamid.third", "5215512340103"),
    ]
    async with open_runtime(settings) as runtime:
        received: list[Delivery] = []
        arrived = asyncio.Event()

        async def collect(delivery: Delivery) -> None:
            received.append(delivery)
            if len(received) == len(bodies):
                arrived.set()

        consumer = await runtime.transport.consume(ingest_queue(0), collect, prefetch=10)
        now = datetime.now(UTC)
        await runtime.transport.publish(
            [
                RawEnvelope(RawDeliveryId(new_id()), "whatsapp", now, body).to_message(
                    INGEST_EXCHANGE, ingest_queue(0)
                )
                for body in bodies
            ]
        )
        async with asyncio.timeout(5):
            await arrived.wait()
        await consumer.cancel()
        batch = [Recorded(d) for d in received]
        await Pipeline(runtime).handle_batch(batch)  # type: ignore[arg-type]

        assert [d.outcome for d in batch] == ["ack", "park", "ack"]
        assert batch[1].reason == "refused_by_database:22001"  # string data right truncation
        async with runtime.database.session() as session:
            stored = set((await session.execute(sa.select(MessageRow.external_id))).scalars())
            raws = (
                await session.execute(sa.select(sa.func.count()).select_from(RawDeliveryRow))
            ).scalar_one()
        assert stored == {"wamid.first", "wamid.third"}
        assert raws == 2  # the refused one left nothing half-written
