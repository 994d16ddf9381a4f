"""The events that are no conversation fact reach the outbox in the transaction of the change,
on both backends: a pipeline batch's customer messages and applied delivery statuses (in one
outbox statement with its facts' events), a follow-up put back in routing, a merge and its
unmerge, and an alert the router raises (once per alert, however often it is raised)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from centralita.pipeline.worker import Pipeline
from centralita.runtime import open_runtime
from channels.whatsapp.testing import text_webhook_body, webhook_body
from core.ids import ConversationId, QueueId, WorkspaceId, new_id
from core.settings import Settings
from core.states import AlertKind, ConversationStatus, DeliveryState, MessageDirection
from identity import Observation, email_identifier, phone_identifier
from storage.alerts import AlertDraft
from storage.database import Database
from storage.identity_store import IdentityStore
from storage.routing import RoutingWrites
from storage.tables import ConversationRow, CustomerRow, MessageRow, QueueRow
from storage.webhooks import OUTBOX, WebhookStore
from storage.work import WorkStore
from tests.support.pipeline import one_batch
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
PHONE_NUMBER_ID = "106540352242917"
SENT_AT = 1763720000
MSG = MessageRow.__table__  # type: ignore[attr-defined]
ANA = "5215512340901"


async def _subscribed(db: Database, workspace_id: uuid.UUID, events: list[str]) -> None:
    async with db.transaction() as session:
        await WebhookStore(session).create(
            workspace_id,
            name="crm",
            url="https://crm.example.com/hooks",
            events=events,
            secret_env="CRM_SECRET",
            active=True,
            now=NOW,
        )


async def _queued(db: Database) -> list[dict[str, Any]]:
    async with db.session() as session:
        rows = (await session.execute(sa.select(OUTBOX.c.body).order_by(OUTBOX.c.seq))).scalars().all()
    return [dict(r) for r in rows]


async def _customer_and_conversation(
    db: Database, workspace_id: uuid.UUID, campaign_id: uuid.UUID | None, **conversation: Any
) -> tuple[uuid.UUID, uuid.UUID]:
    customer, conv = new_id(), new_id()
    async with db.transaction() as session:
        session.add(CustomerRow(id=customer, workspace_id=workspace_id))
        await session.flush()
        session.add(
            ConversationRow(
                id=conv,
                workspace_id=workspace_id,
                campaign_id=campaign_id,
                customer_id=customer,
                channel="whatsapp",
                opened_at=NOW - timedelta(days=2),
                **conversation,
            )
        )
    return customer, conv


async def test_a_pipeline_batch_queues_its_messages_received_and_statuses_applied_in_one_statement(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, broker_url="memory://", ingest_partitions=1)
    await migrated(database_url)
    db = Database(database_url)
    seeded = await seed_workspace(
        db, "eventos", [{"channel": "whatsapp", "address": PHONE_NUMBER_ID, "app_id": "a"}]
    )
    await _subscribed(db, seeded.workspace_id, ["message.*"])
    async with open_runtime(settings) as runtime:
        pipeline = Pipeline(runtime)
        first = text_webhook_body(PHONE_NUMBER_ID, ANA, "wamid.in-1", "Mi NIP es 4321", waba_id="1")
        await one_batch(runtime, pipeline, [first])
        async with runtime.database.session() as session:
            conversation = (
                await session.execute(
                    sa.select(MSG.c.conversation_id).where(MSG.c.external_id == "wamid.in-1")
                )
            ).scalar_one()
        ours = new_id()  # an agent's reply the provider accepted
        async with runtime.database.transaction() as session:
            await session.execute(
                sa.insert(MSG).values(
                    id=ours,
                    workspace_id=seeded.workspace_id,
                    conversation_id=conversation,
                    direction=MessageDirection.OUT,
                    kind="text",
                    channel="whatsapp",
                    external_id="wamid.out-1",
                    text="Claro",
                    payload={},
                    delivery_state=DeliveryState.SENT,
                    created_at=NOW,
                    stored_at=NOW,
                )
            )

        def status(state: str, **extra: Any) -> dict[str, Any]:
            return {
                "id": "wamid.out-1",
                "status": state,
                "timestamp": str(SENT_AT + 5),
                "recipient_id": "5215512340901",
                **extra,
            }

        statements: list[str] = []
        engine = runtime.database.engine.sync_engine

        def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            await one_batch(
                runtime,
                pipeline,
                [
                    text_webhook_body(PHONE_NUMBER_ID, ANA, "wamid.in-2", "Ya pagué", waba_id="1"),
                    text_webhook_body(PHONE_NUMBER_ID, "5215512340902", "wamid.in-3", "Hola", waba_id="1"),
                    webhook_body(PHONE_NUMBER_ID, statuses=[status("delivered")], waba_id="1"),
                    webhook_body(PHONE_NUMBER_ID, statuses=[status("delivered")], waba_id="1"),  # again
                    webhook_body(
                        PHONE_NUMBER_ID,
                        statuses=[status("failed", errors=[{"code": 131047, "title": "Re-engagement"}])],
                        waba_id="1",
                    ),
                ],
            )
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        outbox_writes = Counter(s.split()[0].upper() for s in statements if "event_outbox" in s)
        subscriptions_read = [s for s in statements if "FROM webhook_subscription" in s]
    await db.dispose()

    assert outbox_writes == Counter({"INSERT": 1}) and len(subscriptions_read) == 1
    queued = await _queued(db)
    received = [e for e in queued if e["type"] == "message.received"]
    assert len(received) == 3 and len({e["id"] for e in received}) == 3
    assert {e["data"]["conversation_id"] for e in received[:2]} == {str(conversation)}
    assert all(e["data"]["channel"] == "whatsapp" and e["data"]["kind"] == "message" for e in received)
    assert not any("4321" in str(e) or "pagué" in str(e) for e in queued)  # never the text
    statuses = [e["data"] for e in queued if e["type"] == "message.delivery_status"]
    assert [(s["message_id"], s["status"], s["error_codes"]) for s in statuses] == [
        (str(ours), "delivered", []),
        (str(ours), "failed", ["131047"]),
    ]
    assert statuses[0]["conversation_id"] == str(conversation)


async def test_a_follow_up_put_back_in_routing_queues_followup_due(database: Database) -> None:
    seeded = await seed_workspace(database, "seguimiento", [])
    await _subscribed(database, seeded.workspace_id, ["followup.due"])
    due_at = NOW - timedelta(minutes=1)
    customer, closed = await _customer_and_conversation(
        database,
        seeded.workspace_id,
        seeded.campaign_id,
        status=ConversationStatus.CLOSED,
        closed_at=NOW - timedelta(days=1),
        follow_up_at=due_at,
        disposition={"code": "promesa", "label": "Promesa de pago", "follow_up": {}},
    )
    async with database.transaction() as session:
        store = WorkStore(session)
        (due,) = await store.due_follow_ups(NOW)
        opened = await store.open_follow_up(due, NOW)
    assert opened is not None
    async with database.transaction() as session:  # claimed: a second scheduler finds nothing
        assert await WorkStore(session).due_follow_ups(NOW) == []

    (event,) = await _queued(database)
    assert event["type"] == "followup.due" and event["occurred_at"] == NOW.isoformat()
    data = event["data"]
    assert (data["follow_up_of"], data["conversation_id"], data["customer_id"]) == (
        str(closed),
        str(opened.conversation_id),
        str(customer),
    )
    assert (data["disposition"], data["reopened"], data["due_at"]) == ("promesa", False, due_at.isoformat())


async def test_a_merge_and_its_unmerge_queue_customer_merged_and_unmerged(database: Database) -> None:
    ws = WorkspaceId((await seed_workspace(database, "identidades", [])).workspace_id)
    await _subscribed(database, ws, ["customer.*"])
    phone, mail = phone_identifier("+5215512345678"), email_identifier("ana.perez@gmail.com")
    async with database.transaction() as session:
        store = IdentityStore(session)
        a = (await store.resolve(ws, Observation(sender=phone), NOW)).customer_id
        b = (await store.resolve(ws, Observation(sender=mail), NOW + timedelta(seconds=1))).customer_id
    async with database.transaction() as session:
        merge, _ = await IdentityStore(session).run(
            ws, [phone.key, mail.key], lambda g: g.link(phone, mail, NOW, actor="agent-1"), now=NOW
        )
    async with database.transaction() as session:
        await IdentityStore(session).run(
            ws, [], lambda g: g.unmerge(merge.id, NOW, actor="supervisor-1"), now=NOW, audit_ids=[merge.id]
        )

    merged, unmerged = await _queued(database)
    assert (merged["type"], unmerged["type"]) == ("customer.merged", "customer.unmerged")
    assert set(merged["data"]["before"]) == {str(a), str(b)} and merged["data"]["after"] == [str(a)]
    assert merged["data"]["customer_id"] == str(a) and merged["data"]["actor"] == "agent-1"
    assert set(unmerged["data"]["after"]) == {str(a), str(b)} and unmerged["data"]["actor"] == "supervisor-1"


async def test_an_alert_the_router_raises_is_queued_once(database: Database) -> None:
    seeded = await seed_workspace(database, "alertas", [])
    await _subscribed(database, seeded.workspace_id, ["alert.*"])
    queue = QueueRow(workspace_id=seeded.workspace_id, campaign_id=seeded.campaign_id, name="cobranza")
    async with database.transaction() as session:
        session.add(queue)
    _, conversation = await _customer_and_conversation(
        database, seeded.workspace_id, seeded.campaign_id, queue_id=queue.id
    )
    breach = AlertDraft(
        AlertKind.SLA_BREACH,
        NOW,
        queue_id=QueueId(queue.id),
        conversation_id=ConversationId(conversation),
        details={"waited_s": 95.0},
    )
    for _ in range(2):  # a restarted router raises it again: one alert, one event
        async with database.transaction() as session:
            writes = RoutingWrites(session, WorkspaceId(seeded.workspace_id), {}, {})
            writes.alert(breach)
            await writes.flush()

    (event,) = await _queued(database)
    assert event["type"] == "alert.sla_breach"
    assert (event["data"]["conversation_id"], event["data"]["queue_id"]) == (str(conversation), str(queue.id))
    assert (event["data"]["kind"], event["data"]["details"]) == ("sla_breach", {"waited_s": 95.0})
