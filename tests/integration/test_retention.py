"""Retention on both databases: one pass at a fixed clock purges exactly what is due.

A campaign keeps raw bodies 30 days and the content of closed conversations 90 days.  Seeded at
several ages around those limits, one pass deletes the due raw deliveries, clears the due
messages' text and payload and the disposition note, and leaves everything else — an open
conversation, a reply still in the outbox, another campaign without retention, what reports
count — as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from structlog.testing import capture_logs

from centralita.retention import RetentionJob, RetentionPass, run_retention
from centralita.runtime import open_runtime
from centralita.workers import start_workers
from core.facts import Fact, WorkAction
from core.ids import new_id
from core.settings import Settings
from storage.database import Database
from storage.facts import AUDIT, REPORT, FactLog
from storage.tables import (
    CampaignRow,
    ConversationRow,
    CustomerRow,
    MessageRow,
    RawDeliveryRow,
    WorkspaceRow,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RETENTION = {"raw_deliveries_days": 30, "closed_conversations_days": 90}
MSG = MessageRow.__table__  # type: ignore[attr-defined]
RAW = RawDeliveryRow.__table__  # type: ignore[attr-defined]
CONV = ConversationRow.__table__  # type: ignore[attr-defined]


@dataclass
class Seed:
    now: datetime
    rows: list[Any] = field(default_factory=list)
    due_raw: set[Any] = field(default_factory=set)
    kept_raw: set[Any] = field(default_factory=set)
    due_content: set[Any] = field(default_factory=set)
    kept_content: set[Any] = field(default_factory=set)

    def ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    def raw(self, workspace_id: Any, age_days: float, *, due: bool, workspace: bool = True) -> Any:
        raw_id = new_id()
        body = f'{{"entry": "{raw_id}"}}'.encode()
        self.rows.append(
            RawDeliveryRow(
                id=raw_id,
                workspace_id=workspace_id if workspace else None,
                channel="whatsapp",
                received_at=self.ago(age_days),
                headers={"x-hub-signature-256": "sha256=0"},
                body=body,
                body_sha256=hashlib.sha256(body).hexdigest(),
            )
        )
        (self.due_raw if due else self.kept_raw).add(raw_id)
        return raw_id

    def message(
        self,
        conversation: ConversationRow,
        age_days: float,
        *,
        due: bool,
        raw_id: Any = None,
        direction: str = "in",
        delivery_state: str | None = None,
    ) -> Any:
        message_id = new_id()
        self.rows.append(
            MessageRow(
                id=message_id,
                workspace_id=conversation.workspace_id,
                conversation_id=conversation.id,
                customer_id=conversation.customer_id,
                direction=direction,
                kind="message",
                channel="whatsapp",
                text="Mi número es 55 1234 5678",
                payload={"attachments": [{"type": "image", "media_id": "m-1"}]},
                delivery_state=delivery_state,
                created_at=self.ago(age_days),
                stored_at=self.ago(age_days),
                raw_delivery_id=raw_id,
            )
        )
        (self.due_content if due else self.kept_content).add(message_id)
        return message_id


@dataclass
class Floor:
    workspace_id: Any
    campaign_id: Any
    other_campaign_id: Any
    seed: Seed
    old_closed: Any
    recent_closed: Any
    open_conversation: Any


def _conversation(workspace_id: Any, campaign_id: Any, customer_id: Any, **values: Any) -> ConversationRow:
    return ConversationRow(
        id=new_id(),
        workspace_id=workspace_id,
        campaign_id=campaign_id,
        customer_id=customer_id,
        channel="whatsapp",
        **values,
    )


async def seed_floor(
    database: Database, retention: dict[str, Any] | None = RETENTION, *, now: datetime = NOW
) -> Floor:
    """The floor described above, its ages counted back from ``now``."""
    seed = Seed(now)
    days_ago = seed.ago
    workspace_id, campaign_id, other_id, customer_id = new_id(), new_id(), new_id(), new_id()
    manifest = {"retention": retention} if retention is not None else {}
    head: list[Any] = [
        WorkspaceRow(id=workspace_id, slug="demo", name="Demo"),
        CampaignRow(
            id=campaign_id, workspace_id=workspace_id, name="ventas", display_name="V", manifest=manifest
        ),
        CampaignRow(id=other_id, workspace_id=workspace_id, name="soporte", display_name="S", manifest={}),
        CustomerRow(id=customer_id, workspace_id=workspace_id),
    ]
    closed = {"status": "closed"}
    old_closed = _conversation(
        workspace_id,
        campaign_id,
        customer_id,
        opened_at=days_ago(201),
        closed_at=days_ago(200),
        disposition={"code": "promesa_de_pago", "amount": 1200, "note": "su esposa está enferma"},
        **closed,
    )
    recent_closed = _conversation(
        workspace_id,
        campaign_id,
        customer_id,
        opened_at=days_ago(61),
        closed_at=days_ago(10),
        disposition={"code": "venta", "note": "llamar el lunes"},
        **closed,
    )
    open_conversation = _conversation(
        workspace_id, campaign_id, customer_id, opened_at=days_ago(300), status="assigned"
    )
    other = _conversation(
        workspace_id,
        other_id,
        customer_id,
        opened_at=days_ago(501),
        closed_at=days_ago(500),
        disposition={"code": "x", "note": "otra campaña"},
        **closed,
    )
    # closed 200 days ago: content, note and raw bodies are due
    seed.message(old_closed, 201, due=True, raw_id=seed.raw(workspace_id, 201, due=True))
    seed.message(old_closed, 201, due=True, raw_id=seed.raw(workspace_id, 201, due=True))
    seed.message(old_closed, 200.5, due=True, direction="out", delivery_state="read")
    seed.message(old_closed, 200.5, due=False, direction="out", delivery_state="queued")  # in the outbox
    # closed 10 days ago: content kept; a raw body 60 days old is due, one 11 days old is not
    seed.message(recent_closed, 60, due=False, raw_id=seed.raw(workspace_id, 60, due=True))
    seed.message(recent_closed, 11, due=False, raw_id=seed.raw(workspace_id, 11, due=False))
    # open for 300 days: never touched
    seed.message(open_conversation, 300, due=False, raw_id=seed.raw(workspace_id, 300, due=False))
    # another campaign of the workspace, without retention: kept forever
    seed.message(other, 500, due=False, raw_id=seed.raw(workspace_id, 500, due=False))
    # raw deliveries no message points at (statuses): the workspace's shortest raw period
    seed.raw(workspace_id, 40, due=True)
    seed.raw(workspace_id, 5, due=False)
    seed.raw(workspace_id, 400, due=False, workspace=False)  # unroutable: no workspace, kept
    async with database.transaction() as session:
        for row in head:  # parents first: the rows have no ORM relationships to order them
            session.add(row)
            await session.flush()
        session.add_all([old_closed, recent_closed, open_conversation, other])
        await session.flush()
        session.add_all([r for r in seed.rows if isinstance(r, RawDeliveryRow)])
        await session.flush()
        session.add_all([r for r in seed.rows if isinstance(r, MessageRow)])
        await session.flush()
        # what the reports and the trail hold of the two closed conversations: their figures,
        # and the customer's words (the first message, a survey's comment) and the agent's note
        for conv in (old_closed, recent_closed):
            assert conv.closed_at is not None
            common = {"workspace_id": workspace_id, "conversation_id": conv.id, "customer_id": customer_id}
            await FactLog(session).append(
                [
                    Fact(
                        WorkAction.OPENED,
                        conv.opened_at,
                        "customer",
                        details={"channel": "whatsapp"},
                        **common,
                    ),
                    Fact(
                        WorkAction.CLOSED,
                        conv.closed_at,
                        "agent:x",
                        details={"reason": "agent", "disposition": conv.disposition},
                        **common,
                    ),
                    Fact(
                        WorkAction.SURVEY_ANSWERED,
                        conv.closed_at + timedelta(minutes=5),
                        "customer",
                        details={"kind": "csat", "score": 4, "comment": "gracias, Ana"},
                        **common,
                    ),
                ],
                first_texts={conv.id: "Hola, mi esposa está enferma y no puedo pagar"},
            )
    return Floor(
        workspace_id, campaign_id, other_id, seed, old_closed.id, recent_closed.id, open_conversation.id
    )


async def snapshot(database: Database) -> dict[str, Any]:
    async with database.session() as session:
        raws = set((await session.execute(sa.select(RAW.c.id))).scalars())
        messages = {
            row.id: (row.text, row.payload, row.raw_delivery_id)
            for row in (
                await session.execute(sa.select(MSG.c.id, MSG.c.text, MSG.c.payload, MSG.c.raw_delivery_id))
            )
        }
        conversations = {
            row.id: (row.status, row.closed_at, row.disposition)
            for row in await session.execute(
                sa.select(CONV.c.id, CONV.c.status, CONV.c.closed_at, CONV.c.disposition)
            )
        }
        reports = {
            row.conversation_id: (row.first_text, row.survey_comment, row.survey_score, row.disposition_code)
            for row in await session.execute(sa.select(REPORT))
        }
        trail = {
            (row.conversation_id, row.action): row.details
            for row in await session.execute(
                sa.select(AUDIT.c.conversation_id, AUDIT.c.action, AUDIT.c.details)
            )
        }
        per_conversation: dict[Any, int] = dict(
            (
                await session.execute(
                    sa.select(MSG.c.conversation_id, sa.func.count()).group_by(MSG.c.conversation_id)
                )
            ).all()
        )
    return {
        "raw": raws,
        "messages": messages,
        "conversations": conversations,
        "counts": per_conversation,
        "reports": reports,
        "trail": trail,
    }


async def test_one_pass_purges_exactly_what_is_due_and_keeps_what_reports_count(database: Database) -> None:
    floor = await seed_floor(database)
    seed = floor.seed
    before = await snapshot(database)

    result = await run_retention(database, NOW, batch=2)

    after = await snapshot(database)
    assert after["raw"] == before["raw"] - seed.due_raw
    assert seed.kept_raw <= after["raw"]
    for message_id in seed.due_content:
        assert after["messages"][message_id][:2] == (None, {})
    for message_id in seed.kept_content:
        assert after["messages"][message_id][:2] == before["messages"][message_id][:2]
    # a message whose raw body went keeps its content unless its conversation's content is due
    assert all(after["messages"][m][2] not in seed.due_raw for m in after["messages"])
    # reports: the same conversations, states, times and message counts; the note alone goes
    assert after["counts"] == before["counts"]
    assert after["conversations"].keys() == before["conversations"].keys()
    for conversation_id, (status, closed_at, disposition) in before["conversations"].items():
        now_status, now_closed, now_disposition = after["conversations"][conversation_id]
        assert (now_status, now_closed) == (status, closed_at)
        if conversation_id == floor.old_closed:
            assert now_disposition == {"code": "promesa_de_pago", "amount": 1200}
        else:
            assert now_disposition == disposition
    # the reports keep their figures and the trail its entries; the words of the due one go
    assert after["reports"][floor.old_closed] == (None, None, 4, "promesa_de_pago")
    assert after["reports"][floor.recent_closed] == before["reports"][floor.recent_closed]
    assert after["trail"][(floor.old_closed, WorkAction.SURVEY_ANSWERED)] == {
        "kind": "csat",
        "score": 4,
        "comment": None,
    }
    assert after["trail"][(floor.old_closed, WorkAction.CLOSED)]["disposition"] == {
        "code": "promesa_de_pago",
        "amount": 1200,
    }
    assert after["trail"].keys() == before["trail"].keys()
    for key, details in before["trail"].items():
        if key[0] != floor.old_closed:
            assert after["trail"][key] == details
    [ventas] = [c for c in result.campaigns if c.campaign == "ventas"]
    assert (ventas.raw_deliveries, ventas.message_contents, ventas.disposition_notes) == (3, 3, 1)
    assert ventas.report_texts == 1
    assert result.workspace_raw_deliveries == {"demo": 1}
    assert [c.campaign for c in result.campaigns] == ["ventas"]  # soporte keeps forever


async def test_a_dry_run_counts_the_same_and_changes_nothing(database: Database) -> None:
    await seed_floor(database)
    before = await snapshot(database)

    dry = await run_retention(database, NOW, batch=2, dry_run=True)

    assert await snapshot(database) == before
    [ventas] = dry.campaigns
    assert (ventas.raw_deliveries, ventas.message_contents, ventas.disposition_notes) == (3, 3, 1)
    assert dry.workspace_raw_deliveries == {"demo": 1}
    applied = await run_retention(database, NOW, batch=2)
    assert applied.total == dry.total == 9


async def test_a_second_pass_finds_nothing_left(database: Database) -> None:
    await seed_floor(database)
    await run_retention(database, NOW, batch=100)
    again = await run_retention(database, NOW, batch=100)
    assert again.total == 0


async def test_a_campaign_without_retention_keeps_everything(database: Database) -> None:
    await seed_floor(database, retention=None)
    before = await snapshot(database)
    result = await run_retention(database, NOW + timedelta(days=10_000), batch=10)
    assert (result.campaigns, result.total) == ([], 0)
    assert await snapshot(database) == before


async def test_the_retention_role_runs_the_job_on_its_interval(database: Database, database_url: str) -> None:
    floor = await seed_floor(database)
    settings = Settings(
        database_url=database_url, broker_url="memory://", roles="retention", retention_interval_s=0.05
    )
    passes: list[RetentionPass] = []
    repeated = asyncio.Event()

    def seen(result: RetentionPass) -> None:
        passes.append(result)
        if len(passes) >= 2:  # it keeps running, every interval
            repeated.set()

    async with (
        open_runtime(settings, clock=lambda: NOW) as runtime,
        start_workers(runtime, ["retention"], listen=False) as workers,
    ):
        job = workers.retention
        assert isinstance(job, RetentionJob)
        job.observers.append(seen)
        async with asyncio.timeout(10):
            await repeated.wait()
    assert passes[-1].total == 0  # the first pass purged everything due
    after = await snapshot(database)
    assert not floor.seed.due_raw & after["raw"]
    assert all(after["messages"][m][:2] == (None, {}) for m in floor.seed.due_content)


async def test_each_campaign_s_purge_is_logged_with_ids_and_counts_only(database: Database) -> None:
    floor = await seed_floor(database)
    with capture_logs() as logs:
        await run_retention(database, NOW, batch=50)
    purged = [entry for entry in logs if entry["event"] == "retention.purged"]
    assert {k: v for k, v in purged[0].items() if k != "log_level"} == {
        "event": "retention.purged",
        "workspace_id": str(floor.workspace_id),
        "campaign_id": str(floor.campaign_id),
        "raw_deliveries": 3,
        "message_contents": 3,
        "disposition_notes": 1,
        "report_texts": 1,
        "dry_run": False,
    }
    assert purged[1]["raw_deliveries"] == 1 and "campaign_id" not in purged[1]  # the workspace's own
    assert "5678" not in repr(logs) and "esposa" not in repr(logs)
