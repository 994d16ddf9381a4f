"""The pipeline commits a partition's deliveries as one batch; a delivery whose data the database
refuses is parked on its own and its neighbours in the batch are stored (PostgreSQL enforces the
column sizes that make such a delivery)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from centralita.pipeline.worker import Pipeline
from centralita.runtime import open_runtime
from channels.whatsapp.testing import text_webhook_body
from core.settings import Settings
from storage.database import Database
from storage.tables import MessageRow, RawDeliveryRow
from tests.support.pipeline import one_batch
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

pytestmark = [pytest.mark.postgres]

PHONE_NUMBER_ID = "106540352242977"


def _webhook(wamid: str, wa_id: str) -> bytes:
    return text_webhook_body(PHONE_NUMBER_ID, wa_id, wamid, "Hola", name="Cliente", waba_id="1")


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
        batch = await one_batch(runtime, Pipeline(runtime), bodies)

        assert [d.outcome for d in batch] == ["ack", "park", "ack"]
        assert batch[1].reason == "refused_by_database:22001"  # string data right truncation
        async with runtime.database.session() as session:
            stored = set((await session.execute(sa.select(MessageRow.external_id))).scalars())
            raws = (
                await session.execute(sa.select(sa.func.count()).select_from(RawDeliveryRow))
            ).scalar_one()
        assert stored == {"wamid.first", "wamid.third"}
        assert raws == 2  # the refused one left nothing half-written
