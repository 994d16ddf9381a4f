"""``centralita report summary|queues|agents|channels|dispositions|surveys|topics``: the reports
of ``GET /api/reports/…`` from the command line, against ``CENTRALITA_DATABASE_URL``.

``--campaign NAME`` (repeatable or comma-separated; the first names the workspace, ``--workspace
SLUG`` when several have it), ``--from`` / ``--to`` (ISO dates, local days in the campaign's
zone with ``--to`` included, or datetimes), ``--group-by DIMS`` (campaign, queue, agent,
channel, hour, day), ``--format table|csv|json`` (table by default: the CSV's columns aligned,
or one block per row when they would not fit in 160 characters).  docs/reports.md defines the
measures.  Exit codes: 0 success; 2 bad input (one-line error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from centralita.reports import ReportKind, ReportQuery, parse_when, read_report
from centralita.schemas.reports import AnyReport, csv_table, csv_text
from core.errors import InvalidInput
from core.reports import parse_dimensions
from core.settings import Settings
from storage.database import Database
from storage.reports import workspace_of

__all__ = ["register", "render_table"]

WIDE = 160


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("report", help="print a report (summary, queues, agents, channels, …)")
    parser.add_argument("report", choices=[k.value for k in ReportKind], metavar="REPORT")
    parser.add_argument("--campaign", action="append", required=True, metavar="NAME")
    parser.add_argument("--workspace", default=None, metavar="SLUG", help="needed if NAME is in several")
    parser.add_argument("--from", dest="start", required=True, metavar="DATE")
    parser.add_argument("--to", dest="end", required=True, metavar="DATE")
    parser.add_argument(
        "--group-by", default=None, metavar="DIMS", help="campaign,queue,agent,channel,hour,day"
    )
    parser.add_argument("--format", default="table", choices=["table", "csv", "json"])
    parser.set_defaults(func=cmd_report)


def render_table(report: AnyReport) -> str:
    header, lines = csv_table(report)
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)
    ]
    if sum(widths) + 2 * len(widths) <= WIDE:
        rows = [header, *lines]
        return (
            "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
            + "\n"
        )
    label = max(len(h) for h in header)
    blocks = [
        "\n".join(f"{h.ljust(label)}  {c}" for h, c in zip(header, line, strict=True)) for line in lines
    ]
    return "\n\n".join(blocks) + "\n"


def _settings() -> Settings:
    from centralita.cli import _settings as from_env

    return from_env()


async def _report(settings: Settings, args: argparse.Namespace) -> AnyReport:
    campaigns = tuple(n.strip() for raw in args.campaign for n in raw.split(",") if n.strip())
    if not campaigns:
        raise InvalidInput("--campaign needs a name", field="campaign")
    query = ReportQuery(
        ReportKind(args.report),
        parse_when(args.start, "from"),
        parse_when(args.end, "to"),
        campaigns,
        parse_dimensions(args.group_by, "group-by"),
    )
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            workspace_id = await workspace_of(session, campaigns[0], args.workspace)
        return await read_report(database, workspace_id, query)
    finally:
        await database.dispose()


def cmd_report(args: argparse.Namespace) -> int:
    report = asyncio.run(_report(_settings(), args))
    if args.format == "json":
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n")
    elif args.format == "csv":
        sys.stdout.write(csv_text(report))
    else:
        sys.stdout.write(render_table(report))
    return 0
