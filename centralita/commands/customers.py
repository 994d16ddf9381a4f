"""``centralita customers export [--workspace SLUG]``: one JSON object per customer.

Each line: ``id``, ``workspace`` (slug), ``identifiers`` (``[{kind, value}]``, oldest first),
``conversations`` (count) and ``suggestions`` — the pending ones, each with the other customer
id (``null`` when the other identifier has not written yet), the other identifier and the
evidence (source, the identifier it came from and the one it points at, message reference,
time).  Live customers only; merged-away ids are part of their survivor.
"""

from __future__ import annotations

import argparse
import asyncio

import sqlalchemy as sa

from centralita.commands.ingest import WORKSPACE, _settings, workspace_by_slug
from centralita.directory import load_directory
from centralita.pipeline.identity import identity_policy
from centralita.schemas.customers import CustomerExport
from core.ids import WorkspaceId
from core.settings import Settings
from identity import IdentityGraph
from storage.database import Database
from storage.identity_store import IdentityStore

__all__ = ["export_customers", "register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("customers", help="customer records (identity)")
    actions = parser.add_subparsers(dest="customers_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="print one JSON object per customer")
    export.add_argument("--workspace", default=None, metavar="SLUG")
    export.set_defaults(func=cmd_export)


async def export_customers(database: Database, workspace: str | None) -> list[CustomerExport]:
    if workspace is not None:
        workspaces = [(await workspace_by_slug(database, workspace), workspace)]
    else:
        async with database.session() as session:
            rows = await session.execute(
                sa.select(WORKSPACE.c.id, WORKSPACE.c.slug).order_by(WORKSPACE.c.slug)
            )
            workspaces = [(WorkspaceId(i), s) for i, s in rows]
    accounts = await load_directory(database, env={})
    out: list[CustomerExport] = []
    for ws, slug in workspaces:
        policy = identity_policy(a for a in accounts if a.workspace_id == ws)
        async with database.session() as session:
            store = IdentityStore(session)
            graph = IdentityGraph.from_rows(ws, await store.load_workspace(ws), policy)
            customers = graph.customers()
            counts = await store.conversation_counts(ws, customers)
        out += [CustomerExport.of(cid, slug, graph, counts.get(cid, 0)) for cid in customers]
    return out


async def _export(settings: Settings, workspace: str | None) -> int:
    database = Database(settings.database_url)
    try:
        await database.ping()
        for customer in await export_customers(database, workspace):
            print(customer.line())
    finally:
        await database.dispose()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    return asyncio.run(_export(_settings(), args.workspace))
