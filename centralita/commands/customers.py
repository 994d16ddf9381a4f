"""``centralita customers export [--workspace SLUG]``: one JSON object per customer.

Each line: ``id``, ``workspace`` (slug), ``identifiers`` (``[{kind, value}]``, oldest first),
``conversations`` (count) and ``suggestions`` — the pending ones, each with the other customer
id (``null`` when the other identifier has not written yet), the other identifier and the
evidence (source, the identifier it came from and the one it points at, message reference,
time).  Live customers only; merged-away ids are part of their survivor.

``centralita customers export-one --workspace SLUG (--customer ID | --identifier KEY) [--out DIR]``:
everything the workspace holds about one person, the ``CustomerBundle`` of ``GET
/api/customers/{id}/export`` — printed, or written to ``DIR/customer-<id>.json`` (the live id);
recorded in the audit trail as ``customer.export`` by ``cli``.
``--identifier`` reads a key (``phone:+52…``, ``email:…``) or a phone or address as typed
(``--region`` for national numbers).

``centralita customers erase --workspace SLUG --customer ID --reason TEXT``: erase the person (the
record and every record merged into it; ``storage.erasure`` says what goes and what stays) and
print the ``Erasure`` of ``POST /api/customers/{id}/erase``.  ``centralita customers legal-hold
--workspace SLUG --customer ID (--reason TEXT | --clear)`` sets or clears the hold that refuses
it.  Both act as ``cli`` in the audit trail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from pathlib import Path

import sqlalchemy as sa

from centralita.commands.ingest import WORKSPACE, _settings, workspace_by_slug
from centralita.directory import load_directory
from centralita.pipeline.identity import identity_policy
from centralita.runtime import utc_now
from centralita.schemas.customers import CustomerExport
from centralita.schemas.erasure import Erasure, LegalHold
from centralita.schemas.export import CustomerBundle
from core.errors import InvalidInput, NotFound
from core.ids import WorkspaceId
from core.settings import Settings
from identity import IdentityGraph
from storage.database import Database
from storage.erasure import ErasureStore, erase_customer
from storage.export import ExportStore, export_customer
from storage.identity_store import IdentityStore
from storage.media_files import DirectoryMediaStore

__all__ = ["export_customers", "register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("customers", help="customer records (identity)")
    actions = parser.add_subparsers(dest="customers_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="print one JSON object per customer")
    export.add_argument("--workspace", default=None, metavar="SLUG")
    export.set_defaults(func=cmd_export)
    _register_export_one(actions)
    _register_erasure(actions)


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


# ------------------------------------------------------------------------------------ erasure


CLI_ACTOR = "cli"  # who erased or held, in the audit trail, when it was done from the command line


def _register_erasure(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``customers erase`` and ``customers legal-hold`` (``storage.erasure`` says what is erased)."""
    erase = actions.add_parser(
        "erase", help="erase a person's data (the record and every one merged into it)"
    )
    erase.add_argument("--workspace", required=True, metavar="SLUG")
    erase.add_argument(
        "--customer",
        required=True,
        metavar="ID",
        help="the customer id (a merged-away id erases its survivor)",
    )
    erase.add_argument(
        "--reason", required=True, metavar="TEXT", help="why, e.g. the person's request reference"
    )
    erase.set_defaults(func=cmd_erase)
    hold = actions.add_parser("legal-hold", help="set or clear a customer's legal hold (it refuses erasure)")
    hold.add_argument("--workspace", required=True, metavar="SLUG")
    hold.add_argument("--customer", required=True, metavar="ID")
    which = hold.add_mutually_exclusive_group(required=True)
    which.add_argument("--reason", metavar="TEXT", help="set (or replace) the hold, e.g. a case number")
    which.add_argument("--clear", action="store_true", help="clear the hold")
    hold.set_defaults(func=cmd_legal_hold)


def _customer_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise InvalidInput(f"not a customer id: {raw!r}", field="--customer") from None


def _text(raw: str, name: str) -> str:
    text = raw.strip()
    if not text or len(text) > 500:
        raise InvalidInput(f"{name} must be 1 to 500 characters", field=name)
    return text


async def _erase(settings: Settings, workspace: str, customer: uuid.UUID, reason: str) -> Erasure:
    database = Database(settings.database_url)
    try:
        ws = await workspace_by_slug(database, workspace)
        result = await erase_customer(database, ws, customer, reason, actor=CLI_ACTOR, now=utc_now())
    finally:
        await database.dispose()
    return Erasure.of(result)


async def _legal_hold(
    settings: Settings, workspace: str, customer: uuid.UUID, reason: str | None
) -> LegalHold:
    database = Database(settings.database_url)
    try:
        ws = await workspace_by_slug(database, workspace)
        async with database.transaction() as session:
            store = ErasureStore(session)
            if reason is None:
                result = await store.clear_legal_hold(ws, customer, actor=CLI_ACTOR, now=utc_now())
            else:
                result = await store.set_legal_hold(ws, customer, reason, actor=CLI_ACTOR, now=utc_now())
    finally:
        await database.dispose()
    return LegalHold.of(result)


def cmd_erase(args: argparse.Namespace) -> int:
    """Print the erasure (ids, time, counts) as one JSON object."""
    erased = asyncio.run(
        _erase(_settings(), args.workspace, _customer_id(args.customer), _text(args.reason, "--reason"))
    )
    print(erased.model_dump_json())
    return 0


def cmd_legal_hold(args: argparse.Namespace) -> int:
    """Print the hold as set or cleared as one JSON object."""
    reason = None if args.clear else _text(args.reason, "--reason")
    held = asyncio.run(_legal_hold(_settings(), args.workspace, _customer_id(args.customer), reason))
    print(held.model_dump_json())
    return 0


# ------------------------------------------------------------------------------------ export-one


def _register_export_one(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    one = actions.add_parser("export-one", help="everything the workspace holds about one person, as JSON")
    one.add_argument("--workspace", required=True, metavar="SLUG")
    who = one.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--customer", metavar="ID", help="a customer id (a merged-away id stands for its survivor)"
    )
    who.add_argument(
        "--identifier", metavar="KEY", help="phone:+52…, email:…, or a phone or address as typed"
    )
    one.add_argument("--region", default=None, metavar="CC", help="region of numbers in national format")
    one.add_argument(
        "--out", default=None, metavar="DIR", help="write DIR/customer-<id>.json instead of printing"
    )
    one.set_defaults(func=cmd_export_one)


async def export_one(
    database: Database, workspace: str, *, customer: str | None, identifier: str | None, region: str
) -> CustomerBundle:
    """The bundle of one customer, found by id or by one of its identifiers."""
    from centralita.web.api.customers import parse_identifier  # read as the API reads it

    ws = await workspace_by_slug(database, workspace)
    if identifier is not None:
        key = parse_identifier(identifier, region.upper()).key
        async with database.session() as session:
            found = await ExportStore(session).customer_of_key(ws, key)
        if found is None:
            raise NotFound(
                f"no customer with the identifier {key} in workspace {workspace!r}", field="--identifier"
            )
        requested: uuid.UUID = found
    else:
        try:
            requested = uuid.UUID(str(customer).strip())
        except ValueError:
            raise InvalidInput(f"not a customer id: {customer!r}", field="--customer") from None
    try:
        export = await export_customer(database, ws, requested, actor=CLI_ACTOR, clock=utc_now)
    except NotFound:
        raise NotFound(f"no customer {requested} in workspace {workspace!r}", field="--customer") from None
    return CustomerBundle.of(export)


async def _export_one(settings: Settings, args: argparse.Namespace) -> CustomerBundle:
    database = Database(settings.database_url)
    try:
        await database.ping()
        return await export_one(
            database,
            args.workspace,
            customer=args.customer,
            identifier=args.identifier,
            region=args.region or settings.identity_default_region,
        )
    finally:
        await database.dispose()


def cmd_export_one(args: argparse.Namespace) -> int:
    """Print the bundle, or write it under ``--out`` with the person's media files beside it in
    ``media/`` (and print the bundle's path)."""
    settings = _settings()
    bundle = asyncio.run(_export_one(settings, args))
    if args.out is None:
        print(json.dumps(bundle.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = DirectoryMediaStore(settings.media_dir)
    for media in bundle.media:
        if media.status != "stored":
            continue
        data = asyncio.run(store.get(media.id.hex))
        if data is None:
            continue
        (out / "media").mkdir(exist_ok=True)
        (out / "media" / str(media.id)).write_bytes(data)
        media.file = f"media/{media.id}"
    text = json.dumps(bundle.model_dump(mode="json"), ensure_ascii=False, indent=2)
    path = out / bundle.file_name()
    path.write_text(text + "\n", encoding="utf-8")
    print(path)
    return 0
