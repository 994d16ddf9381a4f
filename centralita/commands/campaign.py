"""``centralita campaign validate|plan|apply|export|schema``: campaigns as code from the command line.

``validate`` checks the file on its own (schema, references, rules): an environment variable a
secret names but that is not set here is a warning, so a manifest validates on a fresh clone or
in CI without secrets.  ``plan`` and ``apply`` refuse it: where the campaign is applied the
secrets must be there.  ``schema`` prints the manifest's JSON Schema with the channels installed
here (``docs/campaign.schema.json`` is the one with the built-in channels).

The others work against ``CENTRALITA_DATABASE_URL`` (the embedded SQLite default or PostgreSQL; run
``centralita db upgrade`` first).  ``apply`` announces the new version on the broker
(``CENTRALITA_BROKER_URL``) so running servers reload at once; with the embedded in-process
broker, or the broker down, servers pick it up by polling within ``CENTRALITA_CONFIG_POLL_S``.

Exit codes: 0 success; 1 the manifest has errors, or a conflict; 2 bad input (one-line error).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from broker.factory import open_transport
from centralita.campaigns import apply_manifest, export_manifest, export_yaml, plan_manifest
from centralita.config_watch import ConfigChange, publish_change
from centralita.runtime import utc_now
from core.campaign import Manifest, Severity, render_json_schema, render_plan, validate_file
from core.errors import CentralitaError, InvalidInput
from core.settings import Settings
from core.transport.protocol import Exchange, Topology
from core.transport.topology import EVENTS_EXCHANGE
from storage.database import Database

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("campaign", help="validate, plan, apply and export campaign manifests")
    actions = parser.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)

    validate = actions.add_parser(
        "validate", help="report every problem of a manifest (FILE:LINE:COL); unset secrets are warnings"
    )
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(func=cmd_validate)

    plan = actions.add_parser(
        "plan", help="show what applying FILE would change in the running configuration"
    )
    plan.add_argument("file", metavar="FILE")
    plan.set_defaults(func=cmd_plan)

    apply = actions.add_parser("apply", help="validate, show the plan and apply it in one transaction")
    apply.add_argument("file", metavar="FILE")
    apply.add_argument("--yes", "-y", action="store_true", help="apply without asking for confirmation")
    apply.set_defaults(func=cmd_apply)

    export = actions.add_parser("export", help="print the manifest a campaign runs with (YAML)")
    export.add_argument("name", metavar="NAME")
    export.add_argument("--workspace", default=None, metavar="SLUG", help="needed if NAME is in several")
    export.set_defaults(func=cmd_export)

    schema = actions.add_parser(
        "schema", help="print the manifest's JSON Schema, with the channel adapters installed here"
    )
    schema.add_argument("--output", "-o", default=None, metavar="FILE", help="write it to FILE instead")
    schema.set_defaults(func=cmd_schema)


def _settings() -> Settings:
    from centralita.cli import _settings as from_env

    return from_env()


def _validated(path: str, *, missing_env: Severity = "error") -> Manifest | None:
    """Validate FILE, print every problem (errors and warnings) on stderr; the manifest if no error."""
    if not Path(path).is_file():
        raise InvalidInput(f"{path}: no such file", field="FILE")
    result = validate_file(path, missing_env=missing_env)
    if result.problems:
        print(result.format(), file=sys.stderr)
    return result.manifest


def cmd_validate(args: argparse.Namespace) -> int:
    manifest = _validated(args.file, missing_env="warning")
    if manifest is None:
        return 1
    print(f"{args.file}: valid campaign {manifest.campaign.name!r} of workspace {manifest.workspace!r}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    manifest = _validated(args.file)
    if manifest is None:
        return 1
    return asyncio.run(_plan(_settings(), manifest))


async def _plan(settings: Settings, manifest: Manifest) -> int:
    database = Database(settings.database_url)
    try:
        result = await plan_manifest(database, manifest)
    finally:
        await database.dispose()
    print(render_plan(result.plan))
    for conflict in result.conflicts:
        print(f"conflict: {conflict}", file=sys.stderr)
    return 1 if result.conflicts else 0


def cmd_apply(args: argparse.Namespace) -> int:
    manifest = _validated(args.file)
    if manifest is None:
        return 1
    return asyncio.run(_apply(_settings(), manifest, confirmed=args.yes))


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise InvalidInput("not applied: no terminal to confirm on; pass --yes to apply", field="--yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes", "s", "si", "sí")


async def _apply(settings: Settings, manifest: Manifest, *, confirmed: bool) -> int:
    database = Database(settings.database_url)
    try:
        planned = await plan_manifest(database, manifest)
        print(render_plan(planned.plan))
        if planned.conflicts:
            for conflict in planned.conflicts:
                print(f"conflict: {conflict}", file=sys.stderr)
            return 1
        if planned.plan.is_empty:
            return 0
        if not confirmed and not _confirm("Apply these changes?"):
            print("Not applied.")
            return 1
        result = await apply_manifest(
            database,
            manifest,
            actor=f"cli:{getpass.getuser()}",
            now=utc_now(),
            expected_version=planned.current_version or 0,
            allow_private=settings.webhooks_allow_private,
        )
    finally:
        await database.dispose()
    print(
        f"Applied: campaign {manifest.campaign.name!r} of workspace {manifest.workspace!r} "
        f"is at version {result.version}."
    )
    change = result.change()
    if change is not None and not settings.uses_memory_broker:
        await _announce(settings, change)
    return 0


async def _announce(settings: Settings, change: ConfigChange) -> None:
    try:
        transport = await open_transport(settings)
    except CentralitaError as exc:
        print(f"warning: {exc.message}; running servers will pick the change up by polling", file=sys.stderr)
        return
    try:
        await transport.declare(Topology(exchanges=(Exchange(EVENTS_EXCHANGE, "topic"),)))
        if not await publish_change(transport, change):
            print("warning: the broker did not take the announcement; servers will poll", file=sys.stderr)
    finally:
        await transport.close()


def cmd_schema(args: argparse.Namespace) -> int:
    text = render_json_schema()
    if args.output is None:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    return asyncio.run(_export(_settings(), args.name, args.workspace))


async def _export(settings: Settings, name: str, workspace: str | None) -> int:
    database = Database(settings.database_url)
    try:
        manifest = await export_manifest(database, name, workspace)
    finally:
        await database.dispose()
    sys.stdout.write(export_yaml(manifest))
    return 0
