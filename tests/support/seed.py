"""Rows a test needs before traffic arrives (until campaign manifests are applied instead)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from core.ids import new_id
from storage.database import Database
from storage.tables import CampaignRow, ChannelAccountRow, WorkspaceRow


@dataclass(frozen=True)
class Seeded:
    workspace_id: uuid.UUID
    campaign_id: uuid.UUID
    accounts: dict[str, uuid.UUID]


async def seed_workspace(
    db: Database, slug: str, accounts: list[dict[str, Any]], campaign: str = "atencion"
) -> Seeded:
    """A workspace with one campaign and its channel accounts (dicts of ChannelAccountRow fields)."""
    ws = WorkspaceRow(id=new_id(), slug=slug, name=slug.title())
    camp = CampaignRow(id=new_id(), workspace_id=ws.id, name=campaign, display_name=campaign.title())
    rows = [ChannelAccountRow(workspace_id=ws.id, campaign_id=camp.id, **a) for a in accounts]
    async with db.transaction() as session:
        session.add(ws)
        await session.flush()
        session.add(camp)
        await session.flush()
        session.add_all(rows)
    return Seeded(ws.id, camp.id, {f"{r.channel}:{r.address}": r.id for r in rows})
