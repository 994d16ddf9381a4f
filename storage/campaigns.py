"""Campaign configuration in the database: write a manifest's rows, read the applied manifest back.

``CampaignStore`` works inside the caller's transaction (``Database.transaction()``); one apply
is one transaction, so the running configuration never shows half a manifest.

What one apply writes, for the manifest's workspace (created by slug when new) and campaign:

- ``campaign``: the manifest in canonical form (``core.campaign.canonical``) and ``version``
  bumped.  The stored manifest is what ``export`` returns, so export round-trips exactly.
- ``channel_account``: one row per account of each channel section (a WhatsApp
  ``phone_number_id``, an Instagram ``account_id``, a mailbox ``address``, …: what the channel's
  account model gives as its ``AccountEntry``); ``*_env`` columns hold variable *names*;
  ``settings`` the rest.  An
  address owned by another workspace, or by another campaign of this one, is a ``Conflict``.
- ``queue``: one row per queue, ``config`` = the queue's canonical form.  A name used by another
  active campaign of the workspace is a ``Conflict``.
- ``skill`` and ``agent`` belong to the workspace and may be shared by its campaigns: the rows
  are the union of every campaign's manifest (an agent declared by two campaigns gets, per skill
  and per channel, the higher proficiency and capacity; ``supervisor`` wins over ``agent``).
- Removals never delete rows with history: accounts, queues and agents get ``active=false``
  (an agent removed keeps the conversations assigned to them until they close); skills, a
  catalogue nothing references, are deleted when no campaign declares them.
- ``webhook_subscription``: the manifest's ``integrations.webhooks`` (``storage.webhooks``).
- ``audit_log``: one row per apply with the actor and the plan's summary.

Group members without an ``email_pattern`` are stored under their roster key
(``group:<name>:<n>``) in the ``email`` column, so they too are upserted by a stable key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.campaign import Manifest, RosterAgent, canonical, expand_agents
from core.errors import Conflict, NotFound
from core.ids import CampaignId, WorkspaceId, new_id
from storage.tables import (
    AgentRow,
    AuditRow,
    CampaignRow,
    ChannelAccountRow,
    QueueRow,
    SkillRow,
    WorkspaceRow,
)
from storage.webhooks import WebhookStore

__all__ = ["AppliedCampaign", "CampaignStore", "CampaignVersion", "StoredCampaign", "account_rows"]

WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]
CAMPAIGN = CampaignRow.__table__  # type: ignore[attr-defined]
ACCOUNT = ChannelAccountRow.__table__  # type: ignore[attr-defined]
QUEUE = QueueRow.__table__  # type: ignore[attr-defined]
SKILL = SkillRow.__table__  # type: ignore[attr-defined]
AGENT = AgentRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]

_ROLE_RANK = {"agent": 0, "supervisor": 1}


@dataclass(frozen=True)
class StoredCampaign:
    """A campaign as last applied: its canonical manifest data and version."""

    workspace_id: WorkspaceId
    workspace: str
    campaign_id: CampaignId
    name: str
    version: int
    applied_at: datetime
    manifest: Mapping[str, Any]

    def to_manifest(self) -> Manifest:
        return Manifest.model_validate(dict(self.manifest))


@dataclass(frozen=True)
class CampaignVersion:
    """What the configuration watcher compares: one campaign's current version."""

    workspace_id: WorkspaceId
    campaign_id: CampaignId
    name: str
    version: int


@dataclass(frozen=True)
class AppliedCampaign:
    workspace_id: WorkspaceId
    campaign_id: CampaignId
    version: int


@dataclass(frozen=True)
class _AccountRow:
    channel: str
    address: str
    label: str  # how a conflict names the address ("WhatsApp phone_number_id")
    values: dict[str, Any]


def account_rows(manifest: Manifest) -> list[_AccountRow]:
    """The ``channel_account`` rows a manifest declares (without ids and workspace)."""
    rows: list[_AccountRow] = []
    for spec, _, account in manifest.channels.all_accounts():
        entry = account.entry()
        values: dict[str, Any] = {
            "name": account.name,
            "app_id": entry.app_id,
            "app_secret_env": entry.app_secret_env,
            "access_token_env": entry.access_token_env,
            "verify_token_env": entry.verify_token_env,
            "settings": {k: v for k, v in entry.settings.items() if v is not None},
        }
        rows.append(_AccountRow(spec.name, entry.address, spec.section.owner_label or spec.name, values))
    return rows


def _merge_agents(rosters: Iterable[list[RosterAgent]]) -> dict[str, dict[str, Any]]:
    """One agent row per key across the workspace's campaigns."""
    merged: dict[str, dict[str, Any]] = {}
    for roster in rosters:
        for agent in roster:
            row = merged.get(agent.key)
            if row is None:
                merged[agent.key] = {
                    "name": agent.name,
                    "role": agent.role,
                    "skills": dict(agent.skills),
                    "capacity": dict(agent.capacity),
                }
                continue
            if _ROLE_RANK.get(agent.role, 0) > _ROLE_RANK.get(row["role"], 0):
                row["role"] = agent.role
            for skill, level in agent.skills.items():
                row["skills"][skill] = max(level, row["skills"].get(skill, 0))
            for channel, slots in agent.capacity.items():
                row["capacity"][channel] = max(slots, row["capacity"].get(channel, 0))
    for row in merged.values():
        row["skills"] = dict(sorted(row["skills"].items()))
        row["capacity"] = dict(sorted(row["capacity"].items()))
    return merged


class CampaignStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    # ------------------------------------------------------------------ reads

    async def workspace_id(self, slug: str) -> WorkspaceId | None:
        found = (
            await self.session.execute(sa.select(WORKSPACE.c.id).where(WORKSPACE.c.slug == slug))
        ).scalar()
        return WorkspaceId(found) if found is not None else None

    async def workspace_slug(self, workspace_id: uuid.UUID) -> str | None:
        query = sa.select(WORKSPACE.c.slug).where(WORKSPACE.c.id == workspace_id)
        found = (await self.session.execute(query)).scalar()
        return str(found) if found is not None else None

    async def stored(self, workspace: str, name: str, *, lock: bool = False) -> StoredCampaign | None:
        """The campaign ``name`` of the workspace with slug ``workspace``, as last applied."""
        query = (
            sa.select(CAMPAIGN, WORKSPACE.c.slug)
            .join(WORKSPACE, WORKSPACE.c.id == CAMPAIGN.c.workspace_id)
            .where(WORKSPACE.c.slug == workspace, CAMPAIGN.c.name == name)
        )
        if lock:
            query = query.with_for_update(of=CAMPAIGN)
        row = (await self.session.execute(query)).first()
        return _stored(row) if row is not None else None

    async def stored_in(self, workspace_id: uuid.UUID, name: str) -> StoredCampaign:
        """The campaign ``name`` within ``workspace_id``; another workspace's campaign is ``NotFound``."""
        query = (
            sa.select(CAMPAIGN, WORKSPACE.c.slug)
            .join(WORKSPACE, WORKSPACE.c.id == CAMPAIGN.c.workspace_id)
            .where(CAMPAIGN.c.workspace_id == workspace_id, CAMPAIGN.c.name == name)
        )
        row = (await self.session.execute(query)).first()
        if row is None:
            raise NotFound(f"no campaign named {name!r} in this workspace", field="name")
        return _stored(row)

    async def list_in(self, workspace_id: uuid.UUID) -> list[StoredCampaign]:
        query = (
            sa.select(CAMPAIGN, WORKSPACE.c.slug)
            .join(WORKSPACE, WORKSPACE.c.id == CAMPAIGN.c.workspace_id)
            .where(CAMPAIGN.c.workspace_id == workspace_id)
            .order_by(CAMPAIGN.c.name)
        )
        return [_stored(row) for row in (await self.session.execute(query)).all()]

    async def workspaces_with(self, name: str) -> list[str]:
        """Slugs of the workspaces that have a campaign called ``name``."""
        query = (
            sa.select(WORKSPACE.c.slug)
            .join(CAMPAIGN, CAMPAIGN.c.workspace_id == WORKSPACE.c.id)
            .where(CAMPAIGN.c.name == name)
            .order_by(WORKSPACE.c.slug)
        )
        return [str(s) for s in (await self.session.execute(query)).scalars().all()]

    async def versions(self) -> list[CampaignVersion]:
        query = sa.select(CAMPAIGN.c.workspace_id, CAMPAIGN.c.id, CAMPAIGN.c.name, CAMPAIGN.c.version)
        return [
            CampaignVersion(WorkspaceId(r.workspace_id), CampaignId(r.id), r.name, int(r.version))
            for r in (await self.session.execute(query)).all()
        ]

    async def ownership_conflicts(self, manifest: Manifest) -> list[str]:
        """Why the manifest's channel addresses or queue names cannot be taken, one line each."""
        workspace_id = await self.workspace_id(manifest.workspace)
        campaign_id: uuid.UUID | None = None
        if workspace_id is not None:
            query = sa.select(CAMPAIGN.c.id).where(
                CAMPAIGN.c.workspace_id == workspace_id, CAMPAIGN.c.name == manifest.campaign.name
            )
            campaign_id = (await self.session.execute(query)).scalar()
        problems: list[str] = []
        for account in account_rows(manifest):
            owner = (
                await self.session.execute(
                    sa.select(ACCOUNT.c.workspace_id, ACCOUNT.c.campaign_id, ACCOUNT.c.active).where(
                        ACCOUNT.c.channel == account.channel, ACCOUNT.c.address == account.address
                    )
                )
            ).first()
            if owner is None:
                continue
            what = f"{account.label} {account.address}"
            if owner.workspace_id != workspace_id:
                problems.append(
                    f"{what} already belongs to another workspace; a channel account serves one "
                    "workspace only (remove it there, or use another number/address)"
                )
            elif owner.active and owner.campaign_id not in (None, campaign_id):
                other = await self._campaign_name(owner.campaign_id)
                problems.append(
                    f"{what} is already used by campaign {other!r} of workspace {manifest.workspace!r}; "
                    "remove it from that campaign first"
                )
        if workspace_id is not None:
            names = [q.name for q in manifest.queues]
            taken = (
                await self.session.execute(
                    sa.select(QUEUE.c.name, QUEUE.c.campaign_id).where(
                        QUEUE.c.workspace_id == workspace_id,
                        QUEUE.c.name.in_(names),
                        QUEUE.c.active.is_(True),
                        QUEUE.c.campaign_id.is_not(None),
                        QUEUE.c.campaign_id != campaign_id if campaign_id is not None else sa.true(),
                    )
                )
            ).all()
            for row in taken:
                other = await self._campaign_name(row.campaign_id)
                problems.append(
                    f"queue {row.name!r} is already used by campaign {other!r} of workspace "
                    f"{manifest.workspace!r}; queue names are unique within a workspace"
                )
        return problems

    async def _campaign_name(self, campaign_id: uuid.UUID) -> str:
        query = sa.select(CAMPAIGN.c.name).where(CAMPAIGN.c.id == campaign_id)
        return str((await self.session.execute(query)).scalar() or campaign_id)

    # ------------------------------------------------------------------ apply

    async def apply(
        self,
        manifest: Manifest,
        *,
        actor: str,
        now: datetime,
        summary: Mapping[str, Any],
        previous: StoredCampaign | None,
    ) -> AppliedCampaign:
        """Write every row of ``manifest``; ``previous`` is the stored campaign read (locked) first."""
        conflicts = await self.ownership_conflicts(manifest)
        if conflicts:
            raise Conflict("; ".join(conflicts), field="channels" if "account" in conflicts[0] else "queues")
        workspace_id = await self._workspace(manifest.workspace, now)
        campaign_id, version = await self._campaign(workspace_id, manifest, now, previous)
        await self._accounts(workspace_id, campaign_id, manifest)
        await self._queues(workspace_id, campaign_id, manifest)
        others = [s.to_manifest() for s in await self.list_in(workspace_id) if s.campaign_id != campaign_id]
        before = previous.to_manifest() if previous is not None else None
        await self._skills(workspace_id, manifest, others, before)
        await self._agents(workspace_id, manifest, others, before, now)
        await WebhookStore(self.session).apply(workspace_id, campaign_id, manifest, now)
        await self.session.execute(
            sa.insert(AUDIT).values(
                id=new_id(),
                workspace_id=workspace_id,
                at=now,
                actor=actor,
                action="campaign.apply",
                subject_type="campaign",
                subject_id=str(campaign_id),
                details={"campaign": manifest.campaign.name, "version": version, **summary},
            )
        )
        return AppliedCampaign(workspace_id, campaign_id, version)

    async def _workspace(self, slug: str, now: datetime) -> WorkspaceId:
        found = await self.workspace_id(slug)
        if found is not None:
            return found
        workspace_id = WorkspaceId(new_id())
        await self._insert(WORKSPACE, {"id": workspace_id, "slug": slug, "name": slug, "created_at": now})
        return workspace_id

    async def _campaign(
        self, workspace_id: WorkspaceId, manifest: Manifest, now: datetime, previous: StoredCampaign | None
    ) -> tuple[CampaignId, int]:
        settings = manifest.campaign
        values = {
            "display_name": settings.display_name,
            "timezone": settings.timezone,
            "language": settings.language,
            "manifest": canonical(manifest),
            "applied_at": now,
        }
        if previous is None:
            campaign_id = CampaignId(new_id())
            await self._insert(
                CAMPAIGN,
                {
                    "id": campaign_id,
                    "workspace_id": workspace_id,
                    "name": settings.name,
                    "version": 1,
                    **values,
                },
            )
            return campaign_id, 1
        version = previous.version + 1
        result = await self.session.execute(
            sa.update(CAMPAIGN)
            .where(CAMPAIGN.c.id == previous.campaign_id, CAMPAIGN.c.version == previous.version)
            .values(version=version, **values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"campaign {settings.name!r} was changed by another apply meanwhile; plan again",
                field="campaign.name",
            )
        return previous.campaign_id, version

    async def _accounts(self, workspace_id: WorkspaceId, campaign_id: CampaignId, manifest: Manifest) -> None:
        wanted = account_rows(manifest)
        for account in wanted:
            existing = (
                await self.session.execute(
                    sa.select(ACCOUNT.c.id).where(
                        ACCOUNT.c.channel == account.channel, ACCOUNT.c.address == account.address
                    )
                )
            ).scalar()
            values = {**account.values, "campaign_id": campaign_id, "active": True}
            if existing is None:
                await self._insert(
                    ACCOUNT,
                    {
                        "id": new_id(),
                        "workspace_id": workspace_id,
                        "channel": account.channel,
                        "address": account.address,
                        **values,
                    },
                )
            else:
                await self.session.execute(
                    sa.update(ACCOUNT).where(ACCOUNT.c.id == existing).values(**values)
                )
        keep = [sa.and_(ACCOUNT.c.channel == a.channel, ACCOUNT.c.address == a.address) for a in wanted]
        await self.session.execute(
            sa.update(ACCOUNT)
            .where(ACCOUNT.c.campaign_id == campaign_id, ACCOUNT.c.active.is_(True))
            .where(sa.not_(sa.or_(*keep)) if keep else sa.true())
            .values(active=False)
        )

    async def _queues(self, workspace_id: WorkspaceId, campaign_id: CampaignId, manifest: Manifest) -> None:
        data = canonical(manifest)
        for queue in data["queues"]:
            existing = (
                await self.session.execute(
                    sa.select(QUEUE.c.id).where(
                        QUEUE.c.workspace_id == workspace_id, QUEUE.c.name == queue["name"]
                    )
                )
            ).scalar()
            values = {
                "campaign_id": campaign_id,
                "priority": queue["priority"],
                "config": queue,
                "active": True,
            }
            if existing is None:
                await self._insert(
                    QUEUE, {"id": new_id(), "workspace_id": workspace_id, "name": queue["name"], **values}
                )
            else:
                await self.session.execute(sa.update(QUEUE).where(QUEUE.c.id == existing).values(**values))
        names = [q["name"] for q in data["queues"]]
        await self.session.execute(
            sa.update(QUEUE)
            .where(QUEUE.c.campaign_id == campaign_id, QUEUE.c.active.is_(True), QUEUE.c.name.not_in(names))
            .values(active=False)
        )

    async def _skills(
        self, workspace_id: WorkspaceId, manifest: Manifest, others: list[Manifest], before: Manifest | None
    ) -> None:
        wanted: dict[str, str | None] = {}
        for m in [*others, manifest]:  # this manifest last: its descriptions win
            for skill in m.skills:
                wanted[skill.name] = skill.description
        rows = (
            await self.session.execute(
                sa.select(SKILL.c.id, SKILL.c.name, SKILL.c.description).where(
                    SKILL.c.workspace_id == workspace_id
                )
            )
        ).all()
        have = {r.name: r for r in rows}
        for name, description in wanted.items():
            row = have.get(name)
            if row is None:
                await self._insert(
                    SKILL,
                    {"id": new_id(), "workspace_id": workspace_id, "name": name, "description": description},
                )
            elif row.description != description:
                await self.session.execute(
                    sa.update(SKILL).where(SKILL.c.id == row.id).values(description=description)
                )
        dropped = {s.name for s in before.skills} - wanted.keys() if before is not None else set()
        if dropped:
            await self.session.execute(
                sa.delete(SKILL).where(
                    SKILL.c.workspace_id == workspace_id, SKILL.c.name.in_(sorted(dropped))
                )
            )

    async def _agents(
        self,
        workspace_id: WorkspaceId,
        manifest: Manifest,
        others: list[Manifest],
        before: Manifest | None,
        now: datetime,
    ) -> None:
        wanted = _merge_agents(expand_agents(m) for m in [*others, manifest])
        dropped = {a.key for a in expand_agents(before)} - wanted.keys() if before is not None else set()
        # The lock order (storage/routing.py): the agents this apply updates are locked first,
        # in one statement by id, not one by one in manifest order.
        rows = (
            await self.session.execute(
                sa.select(AGENT.c.id, AGENT.c.email)
                .where(
                    AGENT.c.workspace_id == workspace_id, AGENT.c.email.in_(sorted(wanted.keys() | dropped))
                )
                .order_by(AGENT.c.id)
                .with_for_update(key_share=True)
            )
        ).all()
        have = {r.email: r.id for r in rows}
        for key, values in wanted.items():
            agent_id = have.get(key)
            if agent_id is None:
                await self._insert(
                    AGENT,
                    {
                        "id": new_id(),
                        "workspace_id": workspace_id,
                        "email": key,
                        "active": True,
                        "created_at": now,
                        **values,
                    },
                )
            else:
                await self.session.execute(
                    sa.update(AGENT).where(AGENT.c.id == agent_id).values(active=True, **values)
                )
        if dropped:
            await self.session.execute(
                sa.update(AGENT)
                .where(AGENT.c.workspace_id == workspace_id, AGENT.c.email.in_(sorted(dropped)))
                .values(active=False)
            )

    async def _insert(self, table: sa.Table, values: Mapping[str, Any]) -> None:
        try:
            async with self.session.begin_nested():
                await self.session.execute(sa.insert(table).values(**values))
        except IntegrityError as exc:
            raise Conflict(
                f"another apply created the same {table.name} meanwhile; plan and apply again"
            ) from exc


def _stored(row: Any) -> StoredCampaign:
    return StoredCampaign(
        workspace_id=WorkspaceId(row.workspace_id),
        workspace=str(row.slug),
        campaign_id=CampaignId(row.id),
        name=str(row.name),
        version=int(row.version),
        applied_at=row.applied_at,
        manifest=dict(row.manifest),
    )
