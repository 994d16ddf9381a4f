"""``centralita ingest PATH... [--channel C] [--workspace SLUG]``: raw bodies through the pipeline.

Each file is one raw delivery — a webhook body (``.json``) or a mail (``.eml``) — fed through
the same pipeline as the live endpoints (parse → dedupe → identity → conversation → timeline),
without a signature.  The channel is detected from the content (mail-shaped adapters first for
``.eml``) unless ``--channel`` names it; ``--workspace`` only accepts traffic for that
workspace's channel accounts.  One summary line per file; a file that fails gets one error line
naming it and the others go on (exit code 1 when any failed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import sqlalchemy as sa

from centralita.envelope import RawEnvelope
from centralita.pipeline.worker import Outcome, Pipeline
from centralita.runtime import Runtime, open_runtime
from centralita.workers import start_workers
from core.errors import CentralitaError, InvalidInput, NotFound
from core.ids import RawDeliveryId, WorkspaceId, new_id
from core.settings import Settings
from storage.database import Database
from storage.tables import WorkspaceRow

__all__ = ["register", "workspace_by_slug"]

WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "ingest", help="feed raw webhook bodies (.json) and mails (.eml) through the pipeline"
    )
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--channel", default=None, help="skip detection (whatsapp, instagram, email, ...)")
    parser.add_argument("--workspace", default=None, metavar="SLUG", help="only this workspace's accounts")
    parser.set_defaults(func=cmd_ingest)


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise InvalidInput(f"bad CENTRALITA_* environment: {str(exc).splitlines()[0]}") from exc


async def workspace_by_slug(database: Database, slug: str) -> WorkspaceId:
    async with database.session() as session:
        found = (await session.execute(sa.select(WORKSPACE.c.id).where(WORKSPACE.c.slug == slug))).scalar()
    if found is None:
        raise NotFound(f"no workspace {slug!r}", field="workspace")
    return WorkspaceId(found)


def _channel_of(runtime: Runtime, path: Path, body: bytes, channel: str | None) -> str:
    from centralita.cli import _detect_channel  # the same detection as `centralita normalize`

    registry = runtime.adapters
    if channel:
        registry.get(channel)  # UnknownChannel, with close names
        return channel
    names = registry.names()
    if path.suffix.lower() == ".eml":
        names.sort(key=lambda n: not registry.get(n).capabilities.threading)
    return _detect_channel(path, body, names, dict(registry.items()))


def _summary(path: Path, channel: str, outcome: Outcome) -> str:
    if outcome.duplicate:
        return f"{path}: {channel}: already ingested (same body), nothing changed"
    return (
        f"{path}: {channel}: stored={outcome.stored_messages} duplicates={outcome.duplicates} "
        f"statuses={outcome.statuses} unknown_accounts={outcome.unknown_accounts} "
        f"conversations_nudged={len(outcome.nudges)}"
    )


async def _ingest_file(runtime: Runtime, pipeline: Pipeline, path: Path, channel: str | None) -> bool:
    """One file through the pipeline: its summary line, or one error line (False)."""
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        print(f"{path}: error: cannot read: {exc.strerror}", file=sys.stderr)
        return False
    try:
        chosen = _channel_of(runtime, path, body, channel)
        envelope = RawEnvelope(RawDeliveryId(new_id()), chosen, runtime.clock(), body)
        outcome = await pipeline.process(envelope)
    except CentralitaError as exc:
        print(f"{path}: error: {exc.message}", file=sys.stderr)
        return False
    print(_summary(path, chosen, outcome), flush=True)
    return True


async def ingest(settings: Settings, paths: list[str], channel: str | None, workspace: str | None) -> int:
    failures = 0
    async with open_runtime(settings) as runtime:
        if workspace is not None:
            ws = await workspace_by_slug(runtime.database, workspace)
            runtime.directory.replace([a for a in runtime.directory.all() if a.workspace_id == ws])
        # No role and no listener: the files go through the pipeline in this process only.
        async with start_workers(runtime, roles=(), listen=False) as workers:
            for name in paths:
                if not await _ingest_file(runtime, workers.pipeline, Path(name), channel):
                    failures += 1
    return 1 if failures else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    return asyncio.run(ingest(_settings(), list(args.paths), args.channel, args.workspace))
