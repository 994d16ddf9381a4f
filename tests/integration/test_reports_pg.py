"""On PostgreSQL the reports are added up in SQL (``storage.reports_pg``); ``core.reports`` is
their definition.  Both paths give the same reports, every report and grouping, on the same
rows: 3,000 conversations of the benchmark's month plus rows made to hit the rules' edges
(a second campaign in another zone, a queue without an SLA, amounts that are not decimals,
promises marked kept and broken, a customer back on another campaign, two conversations of one
customer at the same instant, first messages with accents, capitals and digits)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bench.reports import MonthOfTraffic, load_month
from centralita.reports import ReportKind, ReportQuery, read_report
from centralita.schemas.reports import DispositionsReport, MeasuresReport, TopicsReport
from core.ids import new_id
from core.reports import Dimension
from storage.database import Database
from storage.tables import CampaignRow, ConversationReportRow, QueueRow
from tests.support.schema import migrated

pytestmark = pytest.mark.postgres

REPORT = ConversationReportRow.__table__  # type: ignore[attr-defined]
GROUPINGS: tuple[tuple[Dimension, ...], ...] = (
    (),
    (Dimension.DAY,),
    (Dimension.HOUR, Dimension.CHANNEL),
    (Dimension.CAMPAIGN, Dimension.QUEUE),
    (Dimension.AGENT,),
)


class Loaded:
    def __init__(self, database: Database, month: MonthOfTraffic) -> None:
        self.database = database
        self.month = month


@pytest.fixture
async def loaded(postgres_url: str) -> AsyncIterator[Loaded]:
    await migrated(postgres_url)
    month = MonthOfTraffic(
        workspace_id=new_id(),
        campaign_id=new_id(),
        queues=[new_id() for _ in range(3)],
        agents=[new_id() for _ in range(8)],
        conversations=3000,
    )
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    await load_month(dsn, month, audit=False)
    database = Database(postgres_url)
    await _edges(database, month)
    try:
        yield Loaded(database, month)
    finally:
        await database.dispose()


async def _edges(db: Database, month: MonthOfTraffic) -> None:
    madrid, open_queue = new_id(), new_id()
    t = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Madrid changes to summer time at 01:00 UTC
    customer = new_id()
    rows: list[dict[str, Any]] = []

    def row(**values: Any) -> None:
        base = {
            "conversation_id": new_id(),
            "workspace_id": month.workspace_id,
            "campaign_id": madrid,
            "customer_id": customer,
            "channel": "email",
            "opened_at": t,
            "queue_id": open_queue,
        }
        rows.append(base | values)

    row(
        enqueued_at=t,
        assigned_at=t + timedelta(seconds=5),
        agent_id=month.agents[0],
        first_text="Pagó 2x1, ¡PAGO!",
    )
    row(enqueued_at=t, closed_at=t + timedelta(seconds=9), close_reason="abandoned", first_text="pagó pago")
    row(
        opened_at=t + timedelta(hours=1),
        campaign_id=month.campaign_id,
        queue_id=month.queues[0],
        enqueued_at=t + timedelta(hours=1),
        assigned_at=t + timedelta(hours=1, seconds=70),
        agent_id=month.agents[1],
        closed_at=t + timedelta(hours=2),
        close_reason="agent",
        disposition_code="promesa_de_pago",
        disposition_amount="abc",
        disposition_date="2026-04-01",
        promise_outcome="broken",
        paid_amount=" 300.25 ",
        survey_kind="nps",
        survey_sent_at=t + timedelta(hours=3),
        survey_score=6,
    )
    for frt_s in (60, 14400):  # the FRT buckets' bounds: 1–5 min and ≥ 4 h (lower bound included)
        row(
            opened_at=t + timedelta(hours=2),
            enqueued_at=t + timedelta(hours=2),
            assigned_at=t + timedelta(hours=2, seconds=10),
            agent_id=month.agents[2],
            first_response_at=t + timedelta(hours=2, seconds=frt_s),
        )
    row(
        opened_at=t + timedelta(hours=2),
        disposition_code="pago_realizado",
        disposition_amount=" 1500.50 ",
        closed_at=t + timedelta(hours=3),
        close_reason="agent",
    )
    row(  # a promise kept with an amount paid that is no decimal
        opened_at=t + timedelta(hours=3),
        campaign_id=month.campaign_id,
        disposition_code="promesa_de_pago",
        disposition_amount="2000",
        disposition_date="2026-04-02",
        promise_outcome="kept",
        paid_amount="dos mil",
        closed_at=t + timedelta(hours=4),
        close_reason="agent",
    )
    async with db.transaction() as session:
        await session.execute(
            sa.insert(CampaignRow.__table__).values(  # type: ignore[attr-defined]
                id=madrid,
                workspace_id=month.workspace_id,
                name="madrid",
                display_name="Madrid",
                timezone="Europe/Madrid",
                language="es",
                manifest={},
                version=1,
                applied_at=t,
            )
        )
        await session.execute(
            sa.insert(QueueRow.__table__).values(  # type: ignore[attr-defined]
                id=open_queue, workspace_id=month.workspace_id, campaign_id=madrid, name="sin_sla", config={}
            )
        )
        for r in rows:
            await session.execute(sa.insert(REPORT).values(**r))


def _same(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, where
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), (where, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


@pytest.mark.parametrize("campaigns", [("cobranzas",), ("cobranzas", "madrid"), ()])
async def test_sql_and_the_core_give_the_same_reports(loaded: Loaded, campaigns: tuple[str, ...]) -> None:
    for kind in ReportKind:
        for group_by in GROUPINGS:
            query = ReportQuery(kind, date(2026, 3, 1), date(2026, 3, 31), campaigns, group_by)
            in_sql = await read_report(loaded.database, loaded.month.workspace_id, query, in_sql=True)
            in_core = await read_report(loaded.database, loaded.month.workspace_id, query, in_sql=False)
            assert in_core.rows, (kind, group_by)
            _same(in_sql.model_dump(mode="json"), in_core.model_dump(mode="json"), f"{kind}{group_by}")


async def test_the_edges_are_in_the_reports(loaded: Loaded) -> None:
    query = ReportQuery(
        ReportKind.TOPICS, date(2026, 3, 29), date(2026, 3, 29), ("madrid",), (Dimension.HOUR,)
    )
    report = await read_report(loaded.database, loaded.month.workspace_id, query)
    assert isinstance(report, TopicsReport)
    words = {r.group["hour"]: [(w.key, w.count) for w in r.top_words] for r in report.rows}
    assert words["01"] == [("pago", 2)]  # "2x1" is no word; pago and pagó are one, tied: "pago"
    assert set(words) == {"01", "04"}  # 00:30 UTC is 01:30 CET, 02:30 UTC is 04:30 CEST


async def test_promises_marked_by_a_crm_are_counted_alike_in_sql_and_in_the_core(loaded: Loaded) -> None:
    # The edges' 01:30 and 03:30 UTC on 29 March are the 28th in the campaign's zone.
    query = ReportQuery(ReportKind.DISPOSITIONS, date(2026, 3, 28), date(2026, 3, 29), ("cobranzas",))
    for in_sql in (True, False):
        report = await read_report(loaded.database, loaded.month.workspace_id, query, in_sql=in_sql)
        assert isinstance(report, DispositionsReport)
        (row,) = report.rows
        assert (row.kept, row.broken) == (1, 1), in_sql
        assert row.pending == row.promises - 2
        assert row.paid_amount == "300.25"  # "dos mil" is no decimal


async def test_the_frt_buckets_hold_their_lower_bound_in_sql_as_in_the_core(loaded: Loaded) -> None:
    query = ReportQuery(ReportKind.AGENTS, date(2026, 3, 29), date(2026, 3, 29), ("madrid",))
    for in_sql in (True, False):
        report = await read_report(loaded.database, loaded.month.workspace_id, query, in_sql=in_sql)
        assert isinstance(report, MeasuresReport)
        rows = {r.group["agent"]: r for r in report.rows}
        (third,) = [r for r in rows.values() if r.answered == 2]
        assert [(b.bucket, b.count) for b in third.frt_histogram if b.count] == [("1_5m", 1), ("ge_4h", 1)]
