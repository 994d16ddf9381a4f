"""``GET /api/reports/…`` over HTTP: a supervisor reads each report as JSON and CSV, bad dates,
dimensions and campaigns are 400s naming the parameter, and an agent is refused.  The facts of
two conversations are appended through ``FactLog``, as the engine appends them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.facts import CloseReason, Fact, WorkAction
from core.ids import new_id
from storage.facts import FactLog
from tests.e2e.conftest import StartWorkScene
from tests.support.work import WorkScene

PHONE_NUMBER_ID = "113829475016399"
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in Bogotá
DAY = "2026-03-10"
REPORTS = ("summary", "queues", "agents", "channels", "dispositions", "surveys", "topics")


@pytest.fixture
async def scene(start_work_scene: StartWorkScene) -> WorkScene:
    scene = await start_work_scene("rep", PHONE_NUMBER_ID, now=NOW, who="carla")
    ws = scene.ws
    ana = ws.agents["ana"]
    facts: list[Fact] = []
    texts = {}
    for i, answered in enumerate((True, False)):
        conv, customer = new_id(), await ws.add_customer(scene.engine.database)
        texts[conv] = "quiero pagar mi deuda"
        common: dict[str, Any] = {
            "workspace_id": ws.id,
            "conversation_id": conv,
            "customer_id": customer,
            "campaign_id": ws.campaign_id,
            "queue_id": ws.queues["mora"],
        }
        t = NOW - timedelta(hours=2 - i)
        facts.append(Fact(WorkAction.OPENED, t, "customer", details={"channel": "whatsapp"}, **common))
        if answered:
            promise = {"code": "promesa_de_pago", "amount": "80000", "date": "2026-03-15"}
            facts += [
                Fact(WorkAction.ASSIGNED, t + timedelta(seconds=20), "router", agent_id=ana,
                     details={"waited_s": 20.0}, **common),
                Fact(WorkAction.REPLIED, t + timedelta(seconds=50), f"agent:{ana}", agent_id=ana, **common),
                Fact(WorkAction.CLOSED, t + timedelta(seconds=600), f"agent:{ana}", agent_id=ana,
                     details={"reason": CloseReason.AGENT, "disposition": promise}, **common),
                Fact(WorkAction.SURVEY_SENT, t + timedelta(seconds=700), "system", details={"kind": "csat"},
                     **common),
                Fact(WorkAction.SURVEY_ANSWERED, t + timedelta(seconds=800), "customer",
                     details={"kind": "csat", "score": 4}, **common),
            ]  # fmt: skip
        else:
            facts.append(
                Fact(WorkAction.CLOSED, t + timedelta(seconds=90), "system",
                     details={"reason": CloseReason.ABANDONED}, **common)
            )  # fmt: skip
    async with scene.engine.database.transaction() as session:
        await FactLog(session).append(facts, first_texts=texts)
    return scene


async def test_a_supervisor_reads_the_summary_as_json(scene: WorkScene) -> None:
    status, body = await scene.get("/api/reports/summary", **{"from": DAY, "to": DAY})
    assert status == 200, body
    assert body["timezone"] == "America/Bogota" and body["campaigns"] == ["cobranza-rep"]
    (row,) = body["rows"]
    assert (row["offered"], row["answered"], row["abandoned"]) == (2, 1, 1)
    assert (row["frt_p50_s"], row["sla_pct_of_answered"], row["sla_pct_of_offered"]) == (50.0, 100.0, 50.0)


async def test_every_report_answers_json_and_csv(scene: WorkScene) -> None:
    for report in REPORTS:
        status, body = await scene.get(f"/api/reports/{report}", **{"from": DAY, "to": DAY})
        assert status == 200, (report, body)
        assert body["report"] == report and body["rows"], report
        response = await scene.engine.client.get(
            f"/api/reports/{report}",
            headers=scene.ws.auth("carla"),
            params={"from": DAY, "to": DAY, "format": "csv"},
        )
        assert response.status == 200 and response.content_type == "text/csv", report
        lines = list(csv.reader(io.StringIO(await response.text())))
        assert len(lines) >= 2, report


async def test_the_queues_csv_has_a_column_per_dimension_then_the_measures(scene: WorkScene) -> None:
    response = await scene.engine.client.get(
        "/api/reports/queues",
        headers=scene.ws.auth("carla"),
        params={"from": DAY, "to": DAY, "group_by": "day", "format": "csv", "campaign": "cobranza-rep"},
    )
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["queue"], r["day"], r["offered"], r["sla_met"]) for r in rows] == [("mora", DAY, "2", "1")]
    # one line per group: the FRT distribution is a column per bucket (the reply came at 50 s)
    assert [(r["frt_lt_1m"], r["frt_1_5m"], r["frt_ge_4h"]) for r in rows] == [("1", "0", "0")]
    assert "frt_histogram" not in rows[0]


async def test_the_dispositions_report_lists_the_promises(scene: WorkScene) -> None:
    _, body = await scene.get("/api/reports/dispositions", **{"from": DAY, "to": DAY})
    (row,) = body["rows"]
    assert row["mix"] == [{"code": "promesa_de_pago", "label": "Promesa de pago", "count": 1, "share": 1.0}]
    assert row["by_date"] == [{"date": "2026-03-15", "count": 1, "amount": "80000"}]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01", "to": DAY}, "from"),
        ({"from": DAY}, "to"),
        ({"from": DAY, "to": "2026-03-01"}, "to"),
        ({"from": DAY, "to": DAY, "group_by": "week"}, "group_by"),
        ({"from": DAY, "to": DAY, "format": "xml"}, "format"),
        ({"from": DAY, "to": DAY, "campaign": "nope"}, "campaign"),
    ],
)
async def test_bad_parameters_are_refused_naming_them(
    scene: WorkScene, params: dict[str, str], field: str
) -> None:
    status, body = await scene.get("/api/reports/summary", **params)
    assert status == 400 and body["error"]["field"] == field, body


async def test_an_agent_may_not_read_reports(scene: WorkScene) -> None:
    status, body = await scene.get("/api/reports/summary", who="ana", **{"from": DAY, "to": DAY})
    assert status == 403, body
