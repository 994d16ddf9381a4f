"""``centralita audit [--workspace SLUG] [--from TIME] [--to TIME] [filters] [--format table|csv|jsonl]``.

Prints the audit trail's entries, oldest first — the filters of ``GET /api/audit``:
``--conversation ID``, ``--customer ID``, ``--agent ID``, ``--action NAME`` (repeatable or a
comma list; ``offer.*`` is every action starting with ``offer.``), ``--from`` (inclusive) and
``--to`` (exclusive) as ISO 8601 times (a bare date is its midnight UTC).  ``--format``:
``table`` (the default: time, actor, action, subject, details), ``csv`` (the columns of
``GET /api/audit/export?format=csv``) or ``jsonl`` (its JSON Lines).  Without ``--workspace``
every workspace's entries are printed, and those of no workspace (a refused sign-in of an email
no agent has).  Reading the trail is not itself recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from typing import Any, TextIO

from centralita.commands.ingest import _settings, workspace_by_slug
from centralita.schemas.audit import CSV_COLUMNS, AuditEntry, csv_row
from core.audit import AuditEntry as AuditRecord
from core.audit import parse_query
from storage.audit import batches
from storage.database import Database

__all__ = ["register"]

_FLAGS = {
    "conversation": "--conversation",
    "customer": "--customer",
    "agent": "--agent",
    "action": "--action",
    "from": "--from",
    "to": "--to",
}
_DETAILS_CHARS = 100


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("audit", help="print the audit trail (oldest first)")
    parser.add_argument("--workspace", default=None, metavar="SLUG")
    parser.add_argument("--from", dest="since", default=None, metavar="TIME", help="ISO 8601, inclusive")
    parser.add_argument("--to", dest="until", default=None, metavar="TIME", help="ISO 8601, exclusive")
    parser.add_argument("--conversation", default=None, metavar="ID")
    parser.add_argument("--customer", default=None, metavar="ID")
    parser.add_argument("--agent", default=None, metavar="ID")
    parser.add_argument(
        "--action", action="append", default=[], metavar="NAME", help="e.g. offer.made, token.*"
    )
    parser.add_argument("--format", choices=("table", "csv", "jsonl"), default="table")
    parser.set_defaults(func=cmd_audit)


def _table_line(e: AuditRecord) -> str:
    details = json.dumps(
        dict(e.details), ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
    )
    if len(details) > _DETAILS_CHARS:
        details = details[: _DETAILS_CHARS - 1] + "…"
    subject = f"{e.subject_type}:{e.subject_id}"
    return f"{e.at.isoformat(timespec='seconds')}  {e.actor:<44}  {e.action:<26}  {subject:<50}  {details}"


def _write(out: TextIO, kind: str, entries: list[AuditRecord], writer: Any) -> None:
    for e in entries:
        if kind == "csv":
            writer.writerow(csv_row(AuditEntry.of(e)))
        elif kind == "jsonl":
            out.write(json.dumps(AuditEntry.of(e).model_dump(mode="json"), ensure_ascii=False) + "\n")
        else:
            out.write(_table_line(e) + "\n")


def cmd_audit(args: argparse.Namespace) -> int:
    query = parse_query(
        conversation=args.conversation,
        customer=args.customer,
        agent=args.agent,
        action=args.action,
        since=args.since,
        until=args.until,
        names=_FLAGS,
    )
    settings = _settings()
    out = sys.stdout

    async def work() -> int:
        database = Database(settings.database_url)
        count = 0
        try:
            ws = await workspace_by_slug(database, args.workspace) if args.workspace else None
            writer = csv.writer(out, lineterminator="\n")
            if args.format == "csv":
                writer.writerow(CSV_COLUMNS)
            async for batch in batches(database, ws, query):
                _write(out, args.format, batch, writer)
                count += len(batch)
        finally:
            await database.dispose()
        return count

    count = asyncio.run(work())
    print(f"{count} entries", file=sys.stderr)
    return 0
