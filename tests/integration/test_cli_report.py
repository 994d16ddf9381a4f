"""``centralita report …`` prints the API's reports as a table, CSV or JSON, on both backends."""

from __future__ import annotations

import csv
import io
import json

from storage.database import Database
from tests.integration.test_cli import _run
from tests.integration.test_reports_store import _loaded

RANGE = ("--from", "2026-03-02", "--to", "2026-03-02")


async def test_the_summary_as_json_is_the_apis_body(database: Database, database_url: str) -> None:
    await _loaded(database)
    result = _run("report", "summary", "--campaign", "cobranzas", *RANGE, "--format", "json",
                  CENTRALITA_DATABASE_URL=database_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["report"] == "summary" and body["timezone"] == "America/Bogota"
    (row,) = body["rows"]
    assert (row["offered"], row["answered"], row["abandoned"], row["repeat_24h"]) == (3, 2, 1, 1)


async def test_the_queues_report_by_day_as_csv(database: Database, database_url: str) -> None:
    await _loaded(database)
    result = _run("report", "queues", "--campaign", "cobranzas", *RANGE, "--group-by", "day",
                  "--format", "csv", CENTRALITA_DATABASE_URL=database_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["queue"], r["day"], r["offered"], r["sla_met"]) for r in rows] == [
        ("pagos", "2026-03-02", "3", "2")
    ]


async def test_the_dispositions_table_lines_up_its_columns(database: Database, database_url: str) -> None:
    await _loaded(database)
    result = _run(
        "report", "dispositions", "--campaign", "cobranzas", *RANGE, CENTRALITA_DATABASE_URL=database_url
    )
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["section", "key", "count", "share", "amount"]
    assert lines[0].split() == ["mix", "promesa", "2", "1.0"]
    assert lines[1].split() == ["promise_date", "2026-03-10", "2", "300000"]


async def test_an_unknown_campaign_or_dimension_is_one_line_and_exit_2(
    database: Database, database_url: str
) -> None:
    await _loaded(database)
    unknown = _run("report", "summary", "--campaign", "nope", *RANGE, CENTRALITA_DATABASE_URL=database_url)
    assert unknown.returncode != 0 and "nope" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = _run("report", "summary", "--campaign", "cobranzas", *RANGE, "--group-by", "week",
               CENTRALITA_DATABASE_URL=database_url)  # fmt: skip
    assert bad.returncode == 2 and "week" in bad.stderr and "Traceback" not in bad.stderr
