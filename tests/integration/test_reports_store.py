"""Reports read what the facts folded: the facts of three conversations appended through
``FactLog``, the traffic counted, and every report read back through storage and the core."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from centralita.reports import ReportKind, ReportQuery, read_report
from centralita.schemas.reports import DispositionsReport, MeasuresReport, SurveysReport, TopicsReport
from core.facts import CloseReason, Fact, WorkAction
from core.ids import new_id
from core.reports import Dimension
from storage.database import Database
from storage.facts import FactLog, count_traffic, traffic
from storage.tables import AgentRow, CampaignRow, QueueRow, WorkspaceRow

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 09:00 in Bogotá


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


class World:
    def __init__(self) -> None:
        self.ws, self.campaign, self.queue, self.agent = new_id(), new_id(), new_id(), new_id()

    async def create(self, db: Database) -> None:
        async with db.transaction() as session:
            for table, values in (
                (WorkspaceRow, {"id": self.ws, "slug": f"w{self.ws.hex[:8]}", "name": "W", "created_at": T0}),
                (
                    CampaignRow,
                    {
                        "id": self.campaign,
                        "workspace_id": self.ws,
                        "name": "cobranzas",
                        "display_name": "Cobranzas",
                        "timezone": "America/Bogota",
                        "language": "es",
                        "manifest": {},
                        "version": 1,
                        "applied_at": T0,
                    },
                ),
                (
                    QueueRow,
                    {
                        "id": self.queue,
                        "workspace_id": self.ws,
                        "campaign_id": self.campaign,
                        "name": "pagos",
                        "priority": 5,
                        "config": {"sla": {"answer_within_s": 60, "target_pct": 80}},
                        "active": True,
                    },
                ),
                (
                    AgentRow,
                    {
                        "id": self.agent,
                        "workspace_id": self.ws,
                        "email": "ana@example.com",
                        "name": "Ana",
                        "role": "agent",
                        "skills": {},
                        "capacity": {},
                        "active": True,
                        "created_at": T0,
                    },
                ),
            ):
                await session.execute(sa.insert(table.__table__).values(**values))  # type: ignore[union-attr]

    def facts(self, conv: uuid.UUID, customer: uuid.UUID, start: float, *, answered: bool) -> list[Fact]:
        common: dict[str, Any] = {
            "workspace_id": self.ws,
            "conversation_id": conv,
            "customer_id": customer,
            "campaign_id": self.campaign,
            "queue_id": self.queue,
        }
        out = [
            Fact(WorkAction.OPENED, at(start), "customer", details={"channel": "whatsapp"}, **common),
        ]
        if answered:
            out += [
                Fact(
                    WorkAction.ASSIGNED,
                    at(start + 40),
                    "router",
                    agent_id=self.agent,
                    details={"how": "offer", "waited_s": 40.0},
                    **common,
                ),
                Fact(
                    WorkAction.REPLIED, at(start + 100), f"agent:{self.agent}", agent_id=self.agent, **common
                ),
                Fact(
                    WorkAction.ASSIGNMENT_ENDED,
                    at(start + 400),
                    "router",
                    agent_id=self.agent,
                    details={"active_s": 360.0},
                    **common,
                ),
                Fact(
                    WorkAction.CLOSED,
                    at(start + 400),
                    f"agent:{self.agent}",
                    agent_id=self.agent,
                    details={
                        "reason": CloseReason.AGENT,
                        "disposition": {"code": "promesa", "amount": "150000", "date": "2026-03-10"},
                    },
                    **common,
                ),
                Fact(WorkAction.SURVEY_SENT, at(start + 500), "system", details={"kind": "csat"}, **common),
                Fact(
                    WorkAction.SURVEY_ANSWERED,
                    at(start + 600),
                    "customer",
                    details={"kind": "csat", "score": 5},
                    **common,
                ),
            ]
        else:
            out.append(
                Fact(
                    WorkAction.CLOSED,
                    at(start + 300),
                    "system",
                    details={"reason": CloseReason.ABANDONED},
                    **common,
                )
            )
        return out


async def _loaded(db: Database) -> World:
    world = World()
    await world.create(db)
    k1, k2 = new_id(), new_id()
    a, b, c = new_id(), new_id(), new_id()
    async with db.transaction() as session:
        log = FactLog(session)
        await log.append(
            world.facts(a, k1, 0, answered=True)
            + world.facts(b, k1, 3600, answered=False)
            + world.facts(c, k2, 7200, answered=True),
            first_texts={a: "Quiero pagar la deuda", b: "¿Dónde pago?", c: "pago de la deuda"},
        )
        await count_traffic(
            session,
            [traffic(world.ws, world.campaign, "whatsapp", "in", at(m * 60)) for m in range(5)]
            + [traffic(world.ws, world.campaign, "whatsapp", "out", at(30))],
        )
    return world


def query(report: ReportKind, *group_by: Dimension) -> ReportQuery:
    return ReportQuery(report, date(2026, 3, 2), date(2026, 3, 2), ("cobranzas",), tuple(group_by))


async def test_the_summary_of_folded_facts(database: Database) -> None:
    world = await _loaded(database)
    report = await read_report(database, world.ws, query(ReportKind.SUMMARY))
    assert isinstance(report, MeasuresReport) and report.timezone == "America/Bogota"
    (row,) = report.rows
    assert (row.conversations, row.offered, row.answered, row.abandoned) == (3, 3, 2, 1)
    assert (row.frt_p50_s, row.asa_s, row.aht_s, row.active_mean_s) == (100.0, 40.0, 360.0, 360.0)
    assert (row.sla_met, row.sla_pct_of_answered, row.sla_pct_of_offered) == (2, 100.0, 200 / 3)
    assert (row.repeat_24h, row.repeat_7d) == (1, 1)  # b: the same customer an hour after a
    assert (row.messages_in, row.messages_out) == (5, 1)


async def test_the_queues_and_agents_reports_name_their_groups(database: Database) -> None:
    world = await _loaded(database)
    queues = await read_report(database, world.ws, query(ReportKind.QUEUES, Dimension.HOUR))
    assert isinstance(queues, MeasuresReport)
    assert [(r.group, r.conversations) for r in queues.rows] == [
        ({"queue": "pagos", "hour": "09"}, 1),
        ({"queue": "pagos", "hour": "10"}, 1),
        ({"queue": "pagos", "hour": "11"}, 1),
    ]
    agents = await read_report(database, world.ws, query(ReportKind.AGENTS))
    assert isinstance(agents, MeasuresReport)
    assert [(r.group, r.answered) for r in agents.rows] == [({"agent": "Ana"}, 2)]


async def test_dispositions_surveys_and_topics(database: Database) -> None:
    world = await _loaded(database)
    dispositions = await read_report(database, world.ws, query(ReportKind.DISPOSITIONS))
    assert isinstance(dispositions, DispositionsReport)
    (d,) = dispositions.rows
    assert (d.promises, d.promised_amount) == (2, "300000")
    assert [(p.date, p.count) for p in d.by_date] == [("2026-03-10", 2)]
    surveys = await read_report(database, world.ws, query(ReportKind.SURVEYS))
    assert isinstance(surveys, SurveysReport)
    (s,) = surveys.rows
    assert (s.group, s.kind, s.sent, s.answered, s.csat_pct) == (
        {"campaign": "cobranzas"},
        "csat",
        2,
        2,
        100.0,
    )
    topics = await read_report(database, world.ws, query(ReportKind.TOPICS))
    assert isinstance(topics, TopicsReport)
    (t,) = topics.rows
    assert [(w.key, w.count) for w in t.top_words] == [("deuda", 2), ("pago", 2), ("pagar", 1)]


async def test_a_day_outside_the_range_reads_nothing(database: Database) -> None:
    world = await _loaded(database)
    q = ReportQuery(ReportKind.SUMMARY, date(2026, 3, 3), date(2026, 3, 4), ("cobranzas",))
    report = await read_report(database, world.ws, q)
    assert isinstance(report, MeasuresReport)
    assert [(r.conversations, r.messages_in) for r in report.rows] == [(0, 0)]
