"""A pipeline batch records the facts of what it wrote in a handful of statements, whatever its
size: each conversation it opens (``conversation.opened``, with the first message's text for the
topics report), the previous conversation of a customer back within 24 hours
(``conversation.reopened``) and the customers' messages in the traffic counters — on both
databases."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from centralita.pipeline.worker import Pipeline
from centralita.runtime import open_runtime
from channels.whatsapp.testing import text_webhook_body
from core.facts import WorkAction
from core.ids import ConversationId
from core.settings import Settings
from storage.database import Database
from storage.facts import AUDIT, REPORT, TRAFFIC
from storage.tables import ConversationRow, MessageRow
from tests.support.pipeline import one_batch
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

PHONE_NUMBER_ID = "106540352242916"
SENT_AT = 1763720000  # the messages' own time (the webhook's timestamp)
AT = datetime.fromtimestamp(SENT_AT, UTC)
MSG = MessageRow.__table__  # type: ignore[attr-defined]


def _text(wa_id: str, wamid: str, text: str = "Hola") -> bytes:
    return text_webhook_body(PHONE_NUMBER_ID, wa_id, wamid, text, waba_id="1", timestamp=SENT_AT)


async def _conversation_of(db: Database, wamid: str) -> ConversationId:
    async with db.session() as session:
        found = (
            await session.execute(sa.select(MSG.c.conversation_id).where(MSG.c.external_id == wamid))
        ).scalar_one()
    return ConversationId(found)


async def _close(db: Database, conversation: ConversationId, at: datetime) -> None:
    async with db.transaction() as session:
        await session.execute(
            sa.update(ConversationRow)
            .where(ConversationRow.id == conversation)  # type: ignore[arg-type]
            .values(status="closed", closed_at=at)
        )


async def test_a_batch_records_its_openings_reopens_and_traffic_in_a_few_statements(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, broker_url="memory://", ingest_partitions=1)
    await migrated(database_url)
    db = Database(database_url)
    seeded = await seed_workspace(
        db, "hechos", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}]
    )
    back, late = "5215512340301", "5215512340302"
    async with open_runtime(settings) as runtime:
        pipeline = Pipeline(runtime)
        await one_batch(runtime, pipeline, [_text(back, "wamid.back-1"), _text(late, "wamid.late-1")])
        earlier = await _conversation_of(runtime.database, "wamid.back-1")
        older = await _conversation_of(runtime.database, "wamid.late-1")
        await _close(runtime.database, earlier, AT - timedelta(hours=2))  # closed 2 h before
        await _close(runtime.database, older, AT - timedelta(hours=30))  # more than a day before

        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        engine = runtime.database.engine.sync_engine
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            new = [f"52155123404{n:02d}" for n in range(20)]
            await one_batch(
                runtime,
                pipeline,
                [
                    *(_text(wa_id, f"wamid.new-{wa_id}", f"Quiero pagar {i}") for i, wa_id in enumerate(new)),
                    _text(back, "wamid.back-2", "Sigo con la duda"),
                    _text(late, "wamid.late-2", "Regreso"),
                    _text(new[0], "wamid.again", "Otra cosa"),  # a second message, same conversation
                ],
            )
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)

        def touching(table: str) -> Counter[str]:
            return Counter(s.split()[0].upper() for s in statements if table in s)

        assert touching("audit_log") == Counter({"INSERT": 1})
        assert touching("conversation_report") == Counter({"INSERT": 1, "UPDATE": 1})  # the reopen
        assert touching("traffic_hour") == Counter({"INSERT": 1})

        again = await _conversation_of(runtime.database, "wamid.back-2")
        twice = await _conversation_of(runtime.database, "wamid.again")
        async with runtime.database.session() as session:
            trail = (
                (
                    await session.execute(
                        sa.select(
                            AUDIT.c.action, AUDIT.c.conversation_id, AUDIT.c.actor, AUDIT.c.details
                        ).where(AUDIT.c.workspace_id == seeded.workspace_id)
                    )
                )
                .mappings()
                .all()
            )
            reports = {
                r.conversation_id: r
                for r in await session.execute(
                    sa.select(REPORT.c.conversation_id, REPORT.c.first_text, REPORT.c.reopened_at)
                )
            }
            counted = (await session.execute(sa.select(sa.func.sum(TRAFFIC.c.messages)))).scalar()
    await db.dispose()

    assert Counter(r["action"] for r in trail) == Counter({WorkAction.OPENED: 24, WorkAction.REOPENED: 1})
    (reopened,) = [r for r in trail if r["action"] == WorkAction.REOPENED]
    assert (reopened["conversation_id"], reopened["actor"], reopened["details"]) == (
        earlier,
        "customer",
        {"conversation_id": str(again)},
    )
    assert reports[earlier].reopened_at.astimezone(UTC) == AT
    assert reports[older].reopened_at is None
    assert reports[again].first_text == "Sigo con la duda"
    assert reports[twice].first_text == "Quiero pagar 0"  # its first message, not its second
    assert counted == 2 + 23
