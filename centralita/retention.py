"""The retention job: every campaign's ``retention`` applied in batches, on a schedule.

``RetentionJob`` runs in the processes with the ``retention`` role: every
``CENTRALITA_RETENTION_INTERVAL_S`` (3600 s) — or at once when ``poke()``d, or when an
``AdvancingClock`` (tests, replays) moves — it runs one pass (``run_once``) at
``runtime.clock()``.  A pass reads each campaign's retention from the manifest last applied and,
for each kind of data due (``core.campaign.retention``), purges at most
``CENTRALITA_RETENTION_BATCH`` rows per statement, one short transaction per batch, until none is
left.  Each campaign's outcome is logged as ``retention.purged`` with ids and counts only.

Two servers running the job at once do no harm: every purge is idempotent, and on PostgreSQL a
batch skips the rows another one holds.  ``centralita retention run [--workspace SLUG]
[--dry-run]`` runs one pass from the command line; a dry run only counts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from centralita.periodic import PeriodicJob
from centralita.runtime import Runtime
from core.campaign.retention import cutoffs
from core.ids import CampaignId, WorkspaceId
from core.logging import get_logger
from storage.database import Database
from storage.retention import CampaignRetention, RetentionStore

__all__ = ["CampaignPurge", "RetentionJob", "RetentionPass", "run_retention"]

log = get_logger("centralita.retention")


@dataclass
class CampaignPurge:
    """What one pass purged (or, in a dry run, would purge) for one campaign."""

    workspace_id: WorkspaceId
    workspace: str
    campaign_id: CampaignId
    campaign: str
    raw_deliveries: int = 0
    message_contents: int = 0
    disposition_notes: int = 0
    report_texts: int = 0  # conversations whose report row and trail lost the customer's words

    @property
    def total(self) -> int:
        return self.raw_deliveries + self.message_contents + self.disposition_notes + self.report_texts


@dataclass
class RetentionPass:
    at: datetime
    dry_run: bool
    campaigns: list[CampaignPurge] = field(default_factory=list)
    # raw deliveries no message points at (statuses, unparsable bodies), by workspace slug
    workspace_raw_deliveries: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.campaigns) + sum(self.workspace_raw_deliveries.values())


async def _batches(database: Database, step: Callable[[RetentionStore], Awaitable[int]]) -> int:
    """Run ``step`` in one short transaction at a time until a batch finds nothing."""
    total = 0
    while True:
        async with database.transaction() as session:
            done = await step(RetentionStore(session))
        if done == 0:
            return total
        total += done


async def _purge_campaign(
    database: Database, item: CampaignRetention, now: datetime, batch: int
) -> CampaignPurge:
    due = cutoffs(item.retention, now)
    outcome = CampaignPurge(item.workspace_id, item.workspace, item.campaign_id, item.campaign)
    if due.closed_before is not None:
        closed = due.closed_before
        outcome.disposition_notes = await _batches(
            database, lambda store: store.purge_notes(item.campaign_id, closed, limit=batch)
        )
        outcome.message_contents = await _batches(
            database, lambda store: store.purge_contents(item.campaign_id, closed, limit=batch)
        )
        outcome.report_texts = await _batches(
            database, lambda store: store.purge_report_texts(item.campaign_id, closed, limit=batch)
        )
    deleted = 0

    async def raw_step(store: RetentionStore) -> int:
        nonlocal deleted
        seen, removed = await store.purge_raw(
            item.campaign_id, due.raw_received_before, due.closed_before, limit=batch
        )
        deleted += removed
        return seen

    await _batches(database, raw_step)
    outcome.raw_deliveries = deleted
    return outcome


async def _count_campaign(database: Database, item: CampaignRetention, now: datetime) -> CampaignPurge:
    due = cutoffs(item.retention, now)
    outcome = CampaignPurge(item.workspace_id, item.workspace, item.campaign_id, item.campaign)
    async with database.session() as session:
        store = RetentionStore(session)
        if due.closed_before is not None:
            outcome.disposition_notes = await store.count_notes(item.campaign_id, due.closed_before)
            outcome.message_contents = await store.count_contents(item.campaign_id, due.closed_before)
            outcome.report_texts = await store.count_report_texts(item.campaign_id, due.closed_before)
        outcome.raw_deliveries = await store.count_raw(
            item.campaign_id, due.raw_received_before, due.closed_before
        )
    return outcome


def _orphan_cutoffs(
    campaigns: list[CampaignRetention], now: datetime
) -> dict[WorkspaceId, tuple[str, datetime]]:
    """Per workspace, the raw-body cutoff of its campaign with the shortest raw_deliveries_days."""
    found: dict[WorkspaceId, tuple[str, datetime]] = {}
    for item in campaigns:
        cutoff = cutoffs(item.retention, now).raw_received_before
        if cutoff is None:
            continue
        known = found.get(item.workspace_id)
        if known is None or cutoff > known[1]:
            found[item.workspace_id] = (item.workspace, cutoff)
    return found


def _orphan_step(
    workspace_id: WorkspaceId, cutoff: datetime, batch: int
) -> Callable[[RetentionStore], Awaitable[int]]:
    def step(store: RetentionStore) -> Awaitable[int]:
        return store.purge_orphan_raw(workspace_id, cutoff, limit=batch)

    return step


async def run_retention(
    database: Database, now: datetime, *, batch: int, workspace: str | None = None, dry_run: bool = False
) -> RetentionPass:
    """One pass over every campaign (of ``workspace``): purge what is due at ``now``, or with
    ``dry_run`` only count it.  Logs ``retention.purged`` per campaign that had something due."""
    async with database.session() as session:
        campaigns = [
            c for c in await RetentionStore(session).campaigns(workspace) if not c.retention.keeps_forever
        ]
    result = RetentionPass(now, dry_run)
    for item in campaigns:
        if dry_run:
            outcome = await _count_campaign(database, item, now)
        else:
            outcome = await _purge_campaign(database, item, now, batch)
        result.campaigns.append(outcome)
        if outcome.total:
            log.info(
                "retention.purged",
                workspace_id=str(item.workspace_id),
                campaign_id=str(item.campaign_id),
                raw_deliveries=outcome.raw_deliveries,
                message_contents=outcome.message_contents,
                disposition_notes=outcome.disposition_notes,
                report_texts=outcome.report_texts,
                dry_run=dry_run,
            )
    for workspace_id, (slug, cutoff) in _orphan_cutoffs(campaigns, now).items():
        if dry_run:
            async with database.session() as session:
                count = await RetentionStore(session).count_orphan_raw(workspace_id, cutoff)
        else:
            count = await _batches(database, _orphan_step(workspace_id, cutoff, batch))
        result.workspace_raw_deliveries[slug] = count
        if count:
            log.info(
                "retention.purged", workspace_id=str(workspace_id), raw_deliveries=count, dry_run=dry_run
            )
    return result


class RetentionJob(PeriodicJob):
    """Applies every campaign's retention every ``interval_s`` (see the module docstring).  A
    failed pass leaves nothing half done: each batch commits alone, and the next pass finds the
    rest."""

    task_name = "retention-job"
    started_event = "retention_started"
    failed_event = "retention_pass_failed"

    def __init__(self, runtime: Runtime, *, interval_s: float | None = None, batch: int | None = None):
        super().__init__(
            runtime,
            interval_s=interval_s if interval_s is not None else runtime.settings.retention_interval_s,
            log=log,
        )
        self.batch = batch if batch is not None else runtime.settings.retention_batch
        self.observers: list[Callable[[RetentionPass], None]] = []

    def started_fields(self) -> dict[str, Any]:
        return {"batch": self.batch}

    async def run_round(self) -> None:
        await self.run_once()

    async def run_once(self, *, workspace: str | None = None, dry_run: bool = False) -> RetentionPass:
        async with self._lock:
            result = await run_retention(
                self.runtime.database,
                self.runtime.clock(),
                batch=self.batch,
                workspace=workspace,
                dry_run=dry_run,
            )
        for observer in self.observers:
            observer(result)
        return result
