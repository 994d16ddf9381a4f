"""``centralita retention run [--workspace SLUG] [--dry-run]``: one retention pass, now.

The same pass the ``retention`` role's job runs every ``CENTRALITA_RETENTION_INTERVAL_S``
(``centralita.retention``), in batches of ``CENTRALITA_RETENTION_BATCH``.  It prints, per
campaign with a retention, what it purged — or with ``--dry-run`` what it would purge, changing
nothing.
"""

from __future__ import annotations

import argparse
import asyncio

from centralita.retention import RetentionPass, run_retention
from centralita.runtime import utc_now
from core.errors import NotFound
from core.settings import Settings
from storage.campaigns import CampaignStore
from storage.database import Database

__all__ = ["register", "render_pass"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("retention", help="apply the campaigns' retention (manifest 'retention:')")
    actions = parser.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="run one retention pass now and print what it purged")
    run.add_argument("--workspace", default=None, metavar="SLUG", help="only this workspace's campaigns")
    run.add_argument("--dry-run", action="store_true", help="count what is due, change nothing")
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from centralita.cli import _settings

    result = asyncio.run(_run(_settings(), args.workspace, args.dry_run))
    print(render_pass(result))
    return 0


async def _run(settings: Settings, workspace: str | None, dry_run: bool) -> RetentionPass:
    database = Database(settings.database_url)
    try:
        if workspace is not None:
            async with database.session() as session:
                if await CampaignStore(session).workspace_id(workspace) is None:
                    raise NotFound(f"no workspace {workspace!r}", field="--workspace")
        return await run_retention(
            database, utc_now(), batch=settings.retention_batch, workspace=workspace, dry_run=dry_run
        )
    finally:
        await database.dispose()


def render_pass(result: RetentionPass) -> str:
    """One line per campaign with a retention: ``ws/campaign: 12 raw deliveries, …``."""
    verb = "would purge" if result.dry_run else "purged"
    if not result.campaigns:
        return "No campaign sets a retention: everything is kept."
    mode = "dry run" if result.dry_run else "applied"
    lines = [f"Retention at {result.at.isoformat(timespec='seconds')} ({mode}):"]
    for item in result.campaigns:
        lines.append(
            f"{item.workspace}/{item.campaign}: {verb} {item.raw_deliveries} raw deliveries, "
            f"{item.message_contents} message contents, {item.disposition_notes} disposition notes, "
            f"{item.report_texts} report texts"
        )
    for slug, count in sorted(result.workspace_raw_deliveries.items()):
        lines.append(f"{slug} (no campaign's messages): {verb} {count} raw deliveries")
    lines.append(f"{result.total} in all.")
    return "\n".join(lines)
