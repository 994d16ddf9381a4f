"""The campaign service: validate → plan against the running configuration → apply → announce.

The CLI (``centralita campaign …``) and the admin API (``/api/campaigns/…``) both go through here.

- The *running configuration* of a campaign is the manifest it was last applied with (stored in
  canonical form), so ``plan`` compares like with like and ``export`` round-trips exactly.
- ``apply_manifest`` plans and writes inside one transaction: the plan it returns is the one it
  applied.  An empty plan writes nothing (no new version), so applying twice is harmless.
  ``expected_version`` guards the plan a person reviewed: if another apply landed meanwhile the
  apply is a ``Conflict`` and nothing is written.
- ``apply_live`` also announces the new version (``centralita.config_watch``), so every running
  server reloads its channel directory and runs its reload hooks.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from centralita.config_watch import ConfigChange, announce
from centralita.integrations import check_destinations
from centralita.runtime import Runtime
from core.campaign import (
    Manifest,
    Plan,
    Severity,
    ValidationResult,
    dump_manifest,
    normalize,
    plan,
    validate_text,
)
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import CampaignId, WorkspaceId
from core.logging import get_logger
from storage.campaigns import CampaignStore, StoredCampaign
from storage.database import Database

__all__ = [
    "ApplyResult",
    "PlanResult",
    "apply_live",
    "apply_manifest",
    "export_manifest",
    "export_manifest_in",
    "export_yaml",
    "plan_manifest",
    "validate_manifest",
]

log = get_logger("centralita.campaigns")


@dataclass(frozen=True)
class PlanResult:
    """What applying would change; ``current_version`` is None when the campaign is new."""

    plan: Plan
    current_version: int | None
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApplyResult:
    """The plan that was applied.  ``applied`` is False when there was nothing to change."""

    plan: Plan
    applied: bool
    workspace_id: WorkspaceId | None
    campaign_id: CampaignId | None
    version: int
    announced: bool | None = None  # apply_live: whether the broker took the announcement

    def change(self) -> ConfigChange | None:
        if not self.applied or self.workspace_id is None or self.campaign_id is None:
            return None
        return ConfigChange(self.workspace_id, self.campaign_id, self.plan.campaign, self.version)


def validate_manifest(
    text: str,
    filename: str = "<manifest>",
    *,
    env: Mapping[str, str] | None = None,
    missing_env: Severity = "error",
) -> ValidationResult:
    """Every problem of the manifest text, secrets' variables checked against ``env`` (os.environ):
    an unset one is an error for plan and apply, a warning (``missing_env="warning"``) for validate."""
    return validate_text(text, filename, env=env, missing_env=missing_env)


def _summary(result: Plan) -> dict[str, Any]:
    return {
        "workspace": result.workspace,
        "added": len(result.added),
        "changed": len(result.changed),
        "removed": len(result.removed),
        "changes": [{"action": c.action, "kind": c.kind, "key": c.key} for c in result.changes],
    }


async def plan_manifest(db: Database, manifest: Manifest) -> PlanResult:
    """The diff of ``manifest`` against the campaign as running now (all additions when new)."""
    async with db.session() as session:
        store = CampaignStore(session)
        stored = await store.stored(manifest.workspace, manifest.campaign.name)
        conflicts = await store.ownership_conflicts(manifest)
    current = stored.to_manifest() if stored is not None else None
    return PlanResult(plan(manifest, current), stored.version if stored else None, tuple(conflicts))


async def apply_manifest(
    db: Database,
    manifest: Manifest,
    *,
    actor: str,
    now: datetime,
    expected_version: int | None = None,
    allow_private: bool = False,
) -> ApplyResult:
    """Plan and apply in one transaction.  ``expected_version`` (0: must be new) guards a reviewed
    plan; a webhook URL that is not https on a public address is refused unless ``allow_private``
    (``CENTRALITA_WEBHOOKS_ALLOW_PRIVATE``)."""
    await check_destinations(manifest, allow_private=allow_private)
    async with db.transaction() as session:
        store = CampaignStore(session)
        previous = await store.stored(manifest.workspace, manifest.campaign.name, lock=True)
        have = previous.version if previous is not None else 0
        if expected_version is not None and expected_version != have:
            raise Conflict(
                f"campaign {manifest.campaign.name!r} is at version {have}, not {expected_version}: "
                "it changed since the plan was made; plan again",
                field="campaign.name",
            )
        result = plan(manifest, previous.to_manifest() if previous is not None else None)
        if result.is_empty:
            assert previous is not None
            return ApplyResult(result, False, previous.workspace_id, previous.campaign_id, previous.version)
        applied = await store.apply(
            manifest, actor=actor, now=now, summary=_summary(result), previous=previous
        )
    log.info(
        "campaign_applied",
        workspace_id=str(applied.workspace_id),
        campaign=manifest.campaign.name,
        version=applied.version,
        added=len(result.added),
        changed=len(result.changed),
        removed=len(result.removed),
        actor=actor,
    )
    return ApplyResult(result, True, applied.workspace_id, applied.campaign_id, applied.version)


async def apply_live(
    runtime: Runtime, manifest: Manifest, *, actor: str, expected_version: int | None = None
) -> ApplyResult:
    """``apply_manifest`` then, if something changed, reload here and announce to every server."""
    result = await apply_manifest(
        runtime.database,
        manifest,
        actor=actor,
        now=runtime.clock(),
        expected_version=expected_version,
        allow_private=runtime.settings.webhooks_allow_private,
    )
    change = result.change()
    if change is None:
        return result
    announced = await announce(runtime, change)
    return ApplyResult(
        result.plan, True, result.workspace_id, result.campaign_id, result.version, announced=announced
    )


async def _stored_by_name(store: CampaignStore, name: str, workspace: str | None) -> StoredCampaign:
    if workspace is None:
        owners = await store.workspaces_with(name)
        if not owners:
            raise NotFound(f"no campaign named {name!r}", field="name")
        if len(owners) > 1:
            raise InvalidInput(
                f"campaign {name!r} exists in several workspaces ({', '.join(owners)}): pass --workspace",
                field="workspace",
            )
        workspace = owners[0]
    stored = await store.stored(workspace, name)
    if stored is None:
        raise NotFound(f"no campaign named {name!r} in workspace {workspace!r}", field="name")
    return stored


async def export_manifest(db: Database, name: str, workspace: str | None = None) -> Manifest:
    """The manifest campaign ``name`` runs with (``workspace`` slug needed when the name is not unique)."""
    async with db.session() as session:
        stored = await _stored_by_name(CampaignStore(session), name, workspace)
    return stored.to_manifest()


async def export_manifest_in(db: Database, workspace_id: uuid.UUID, name: str) -> Manifest:
    """The manifest of campaign ``name`` within one workspace; another workspace's is ``NotFound``."""
    async with db.session() as session:
        stored = await CampaignStore(session).stored_in(workspace_id, name)
    return stored.to_manifest()


def export_yaml(manifest: Manifest) -> str:
    """The manifest as YAML in canonical order (round-trips through ``validate_text``)."""
    return dump_manifest(normalize(manifest))
