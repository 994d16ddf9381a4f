"""API bearer tokens: only a SHA-256 of each token is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import AgentId, WorkspaceId, new_id
from storage.tables import ApiTokenRow

__all__ = ["Principal", "TokenStore", "hash_token"]

TOKEN = ApiTokenRow.__table__  # type: ignore[attr-defined]
ROLES = ("agent", "supervisor", "admin")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: one workspace, one role, and the agent when the role is ``agent``."""

    workspace_id: WorkspaceId
    role: str
    agent_id: AgentId | None
    token_id: str

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class TokenStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def issue(
        self, workspace_id: WorkspaceId, role: str, agent_id: AgentId | None, name: str | None, now: datetime
    ) -> str:
        if role not in ROLES:
            raise ValueError(role)
        token = "ctl_" + secrets.token_urlsafe(32)
        await self.session.execute(
            sa.insert(TOKEN).values(
                id=new_id(),
                workspace_id=workspace_id,
                agent_id=agent_id,
                role=role,
                token_sha256=hash_token(token),
                name=name,
                created_at=now,
            )
        )
        return token

    async def principal(self, token: str) -> Principal | None:
        row = (
            await self.session.execute(
                sa.select(TOKEN.c.id, TOKEN.c.workspace_id, TOKEN.c.role, TOKEN.c.agent_id).where(
                    TOKEN.c.token_sha256 == hash_token(token), TOKEN.c.revoked_at.is_(None)
                )
            )
        ).first()
        if row is None:
            return None
        return Principal(
            WorkspaceId(row.workspace_id),
            row.role,
            AgentId(row.agent_id) if row.agent_id else None,
            str(row.id),
        )
