"""Webhook subscriptions and the event outbox in the database (storage.webhooks), on both
backends: what an apply writes, what a fact's transaction queues, the order a worker may claim
in, and a subscription paused with an alert after failing for hours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from core.errors import Conflict, InvalidInput
from core.facts import CloseReason, Fact, WorkAction
from core.webhooks import DeliveryOutcome
from storage.database import Database
from storage.facts import FactLog
from storage.tables import AlertRow
from storage.webhooks import OUTBOX, SUBSCRIPTION, Attempt, Subscription, WebhookStore
from tests.e2e.test_webhooks_out import manifest
from tests.support.campaigns import apply_text

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def _two_hooks(events_a: str = '["conversation.*"]') -> str:
    text = manifest("https://crm.example.com/a", events_a)
    return text + (
        '    - {name: erp, url: "https://erp.example.com/b", events: ["disposition.recorded"],'
        " secret_env: ERP_SECRET}\n"
    )


async def _conversation(db: Database, workspace_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A customer and a conversation's ids (facts carry ids; they need no rows)."""
    return uuid.uuid4(), uuid.uuid4()


def _facts(workspace_id: uuid.UUID, conversation_id: uuid.UUID, customer_id: uuid.UUID) -> list[Fact]:
    base = {"workspace_id": workspace_id, "conversation_id": conversation_id, "customer_id": customer_id}
    return [
        Fact(
            WorkAction.OPENED,
            NOW,
            "customer",
            details={"channel": "whatsapp"},
            dedupe=f"{conversation_id}:opened",
            **base,  # type: ignore[arg-type]
        ),
        Fact(
            WorkAction.CLOSED,
            NOW + timedelta(minutes=5),
            "agent:x",
            details={
                "reason": CloseReason.AGENT,
                "disposition": {"code": "promesa", "amount": "10", "date": None},
            },
            dedupe=f"{conversation_id}:closed",
            **base,  # type: ignore[arg-type]
        ),
    ]


async def _workspace(db: Database) -> uuid.UUID:
    result = await apply_text(db, _two_hooks())
    assert result.workspace_id is not None
    return result.workspace_id


async def test_an_apply_writes_the_subscriptions_and_a_removed_one_becomes_inactive(
    database: Database,
) -> None:
    await _workspace(database)
    async with database.session() as session:
        rows = {r.name: r for r in (await session.execute(sa.select(SUBSCRIPTION))).all()}
    assert {n: (r.active, r.secret_env, r.events) for n, r in rows.items()} == {
        "crm": (True, "HOOKS_SIGNING_SECRET", ["conversation.*"]),
        "erp": (True, "ERP_SECRET", ["disposition.recorded"]),
    }
    await apply_text(database, manifest("https://crm.example.com/a", '["*"]'))
    async with database.session() as session:
        rows = {r.name: r for r in (await session.execute(sa.select(SUBSCRIPTION))).all()}
    assert (rows["crm"].active, rows["crm"].events, rows["erp"].active) == (True, ["*"], False)


async def test_an_apply_refuses_a_private_destination_without_the_setting(database: Database) -> None:
    with pytest.raises(InvalidInput) as refused:
        await apply_text(database, manifest("https://192.168.1.20/hooks"), allow_private=False)
    assert refused.value.field == "integrations.webhooks[0].url"
    assert "private address" in refused.value.message
    with pytest.raises(InvalidInput, match="must be https"):
        await apply_text(database, manifest("http://crm.example.com/hooks"), allow_private=False)
    async with database.session() as session:
        assert (await session.execute(sa.select(sa.func.count()).select_from(SUBSCRIPTION))).scalar_one() == 0


async def test_a_facts_transaction_queues_its_events_for_the_subscriptions_that_want_them(
    database: Database,
) -> None:
    workspace_id = await _workspace(database)
    customer_id, conversation_id = await _conversation(database, workspace_id)
    facts = _facts(workspace_id, conversation_id, customer_id)
    async with database.transaction() as session:
        await FactLog(session).append(facts)
    async with database.transaction() as session:
        await FactLog(session).append(facts)  # recorded already: nothing queued twice
    async with database.session() as session:
        queued = (
            await session.execute(
                sa.select(SUBSCRIPTION.c.name, OUTBOX.c.type)
                .join(SUBSCRIPTION, SUBSCRIPTION.c.id == OUTBOX.c.subscription_id)
                .order_by(OUTBOX.c.seq)
            )
        ).all()
    assert sorted(map(tuple, queued)) == [
        ("crm", "conversation.closed"),
        ("crm", "conversation.opened"),
        ("erp", "disposition.recorded"),
    ]

    async with database.session() as session:
        assert await WebhookStore(session).backlog() == 3  # what the metrics report as waiting

    # A worker gets one event of a conversation at a time, per subscription, oldest first.
    async with database.transaction() as session:
        claimed = await WebhookStore(session).claim(NOW + timedelta(hours=1), lease=LEASE, limit=10)
    assert sorted((c.subscription.name, c.type) for c in claimed) == [
        ("crm", "conversation.opened"),
        ("erp", "disposition.recorded"),
    ]
    async with database.transaction() as session:
        assert await WebhookStore(session).claim(NOW + timedelta(hours=1), lease=LEASE, limit=10) == []
    opened = next(c for c in claimed if c.type == "conversation.opened")
    async with database.transaction() as session:
        await WebhookStore(session).record(
            opened,
            Attempt(DeliveryOutcome.DELIVERED, 200, 3.0),
            NOW + timedelta(hours=1),
            retry_in=timedelta(seconds=5),
            give_up_after=timedelta(hours=24),
            pause_after=timedelta(hours=6),
        )
        nxt = await WebhookStore(session).claim(NOW + timedelta(hours=1), lease=LEASE, limit=10)
    assert [c.type for c in nxt] == ["conversation.closed"]


async def test_an_endpoint_failing_for_hours_is_paused_with_an_alert_and_left_alone(
    database: Database,
) -> None:
    workspace_id = await _workspace(database)
    customer_id, conversation_id = await _conversation(database, workspace_id)
    async with database.transaction() as session:
        await FactLog(session).append(_facts(workspace_id, conversation_id, customer_id)[1:])
    at = NOW + timedelta(minutes=10)
    outcomes = []
    while True:
        async with database.transaction() as session:
            store = WebhookStore(session)
            claimed = [
                c for c in await store.claim(at, lease=LEASE, limit=10) if c.subscription.name == "erp"
            ]
            if not claimed:
                break
            outcomes.append(
                await store.record(
                    claimed[0],
                    Attempt(DeliveryOutcome.RETRY, 503, 2.0, "HTTP 503"),
                    at,
                    retry_in=timedelta(minutes=30),
                    give_up_after=timedelta(hours=24),
                    pause_after=timedelta(hours=2),
                )
            )
        at += timedelta(minutes=30)
    assert outcomes == [DeliveryOutcome.RETRY] * 5  # failing since the first: paused 2 h later
    async with database.session() as session:
        erp = (await session.execute(sa.select(SUBSCRIPTION).where(SUBSCRIPTION.c.name == "erp"))).one()
        alerts = (await session.execute(sa.select(AlertRow))).scalars().all()
        store = WebhookStore(session)
        log = await store.deliveries(erp.id, limit=100)
        later = await store.claim(at + timedelta(days=1), lease=LEASE, limit=10)
        assert [c for c in later if c.subscription.name == "erp"] == []  # paused: not hammered
    assert erp.paused_at is not None
    assert [(a.kind, a.details["webhook"]) for a in alerts] == [("webhook_paused", "erp")]
    assert [(d.status_code, d.outcome) for d in log] == [(503, "retry")] * 5

    subscription = await _subscription(database, workspace_id, "erp")
    async with database.transaction() as session:
        assert await WebhookStore(session).redeliver(subscription, log[0].event_id, at)
    async with database.transaction() as session:
        again = await WebhookStore(session).claim(at, lease=LEASE, limit=10)
    assert ("erp", log[0].event_id) in [(c.subscription.name, c.event_id) for c in again]


async def _subscription(db: Database, workspace_id: uuid.UUID, name: str) -> Subscription:
    async with db.session() as session:
        found = await WebhookStore(session).subscription(workspace_id, name)
    assert found is not None
    return found


async def test_a_manifest_apply_manages_only_its_own_subscriptions_and_the_api_only_its_own(
    database: Database,
) -> None:
    workspace_id = await _workspace(database)  # the manifest's crm and erp
    async with database.transaction() as session:
        made = await WebhookStore(session).create(
            workspace_id,
            name="bi",
            url="https://bi.example.com/hooks",
            events=["*"],
            secret_env="BI_SECRET",
            active=True,
            now=NOW,
        )
    await apply_text(database, manifest("https://crm.example.com/a", '["*"]'))  # erp removed
    async with database.session() as session:
        rows = {s.name: s for s in await WebhookStore(session).subscriptions(workspace_id)}
    assert {n: (s.source, s.active) for n, s in rows.items()} == {
        "bi": ("api", True),  # not the manifest's: an apply leaves it alone
        "crm": ("manifest", True),
        "erp": ("manifest", False),
    }
    async with database.transaction() as session:
        with pytest.raises(Conflict) as theirs:
            await WebhookStore(session).change(rows["crm"], {"active": False}, NOW)
    assert theirs.value.field == "name"
    async with database.transaction() as session:
        changed = await WebhookStore(session).change(made, {"events": ["alert.*"], "active": False}, NOW)
    assert (changed.events, changed.active) == (("alert.*",), False)

    text = manifest("https://crm.example.com/a", '["*"]').replace("name: crm", "name: bi")
    with pytest.raises(Conflict) as named:
        await apply_text(database, text)
    assert named.value.field == "integrations.webhooks[0].name"
