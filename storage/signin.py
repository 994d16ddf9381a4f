"""The console's sign-in rows: agents' password hashes, invitations, refused sign-ins.

Passwords arrive here already hashed (argon2, ``centralita.passwords``); invitation secrets and
the rate limit's keys (an email, a client address) only as SHA-256 — nothing here can be read
back into a password, a link, an email or an address.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import AgentId, WorkspaceId, new_id
from storage.tables import AgentRow, InvitationRow, SignInFailureRow, WorkspaceRow

__all__ = [
    "Account",
    "InvitationIssued",
    "InvitationRefusal",
    "SignInStore",
    "rate_key",
]

AGENT = AgentRow.__table__  # type: ignore[attr-defined]
WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]
INVITATION = InvitationRow.__table__  # type: ignore[attr-defined]
FAILURE = SignInFailureRow.__table__  # type: ignore[attr-defined]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rate_key(kind: str, value: str) -> str:
    """The rate limit's key for an email (``kind="email"``) or a client address: a hash."""
    return _sha256(f"{kind}:{value.strip().lower()}")


@dataclass(frozen=True, slots=True)
class Account:
    """An agent who may sign in to the console (any role: agent, supervisor, admin)."""

    agent_id: AgentId
    workspace_id: WorkspaceId
    workspace: str
    email: str
    name: str
    role: str
    active: bool
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class InvitationIssued:
    """A new invitation: the secret (shown once, in the link) and when it stops working."""

    id: uuid.UUID
    secret: str
    account: Account
    expires_at: datetime


class InvitationRefusal(StrEnum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"

    @property
    def message(self) -> str:
        return {
            InvitationRefusal.UNKNOWN: "unknown invitation link",
            InvitationRefusal.USED: "this invitation link was used already; ask for a new one",
            InvitationRefusal.EXPIRED: "this invitation link expired; ask for a new one",
        }[self]


class SignInStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    def _accounts(self) -> sa.Select[tuple[object, ...]]:
        return sa.select(
            AGENT.c.id,
            AGENT.c.workspace_id,
            WORKSPACE.c.slug,
            AGENT.c.email,
            AGENT.c.name,
            AGENT.c.role,
            AGENT.c.active,
            AGENT.c.password_hash,
        ).join(WORKSPACE, WORKSPACE.c.id == AGENT.c.workspace_id)

    @staticmethod
    def _account(row: sa.Row[tuple[object, ...]]) -> Account:
        m = row._mapping
        return Account(
            agent_id=AgentId(m[AGENT.c.id]),
            workspace_id=WorkspaceId(m[AGENT.c.workspace_id]),
            workspace=m[WORKSPACE.c.slug],
            email=m[AGENT.c.email],
            name=m[AGENT.c.name],
            role=m[AGENT.c.role],
            active=bool(m[AGENT.c.active]),
            password_hash=m[AGENT.c.password_hash],
        )

    async def accounts(self, email: str, workspace: str | None = None) -> list[Account]:
        """The agents with this email (one per workspace at most), in ``workspace`` if given."""
        query = self._accounts().where(AGENT.c.email == email.strip().lower())
        if workspace is not None:
            query = query.where(WORKSPACE.c.slug == workspace.strip())
        rows = (await self.session.execute(query.order_by(WORKSPACE.c.slug))).all()
        return [self._account(row) for row in rows]

    async def account(self, agent_id: AgentId) -> Account | None:
        row = (await self.session.execute(self._accounts().where(AGENT.c.id == agent_id))).first()
        return self._account(row) if row is not None else None

    async def workspace_slug(self, workspace_id: WorkspaceId) -> str | None:
        found = (
            await self.session.execute(sa.select(WORKSPACE.c.slug).where(WORKSPACE.c.id == workspace_id))
        ).scalar()
        return str(found) if found is not None else None

    async def set_password(self, agent_id: AgentId, password_hash: str, now: datetime) -> None:
        await self.session.execute(
            sa.update(AGENT)
            .where(AGENT.c.id == agent_id)
            .values(password_hash=password_hash, password_set_at=now)
        )

    # -- the rate limit -----------------------------------------------------------------------
    async def failures(self, keys: Iterable[str], since: datetime) -> dict[str, int]:
        """Refused sign-ins per key since ``since``."""
        wanted = sorted(set(keys))
        rows = (
            await self.session.execute(
                sa.select(FAILURE.c.key_sha256, sa.func.count())
                .where(FAILURE.c.key_sha256.in_(wanted), FAILURE.c.at > since)
                .group_by(FAILURE.c.key_sha256)
            )
        ).all()
        return {str(key): int(count) for key, count in rows}

    async def oldest_failure(self, key: str, since: datetime) -> datetime | None:
        """The first refused sign-in of ``key`` still inside the window (it leaves it first)."""
        found = (
            await self.session.execute(
                sa.select(sa.func.min(FAILURE.c.at)).where(FAILURE.c.key_sha256 == key, FAILURE.c.at > since)
            )
        ).scalar()
        return found if isinstance(found, datetime) else None

    async def record_failure(self, keys: Iterable[str], now: datetime, *, forget_before: datetime) -> None:
        """A refused sign-in under each key; failures older than the window are dropped."""
        await self.session.execute(sa.delete(FAILURE).where(FAILURE.c.at <= forget_before))
        await self.session.execute(
            sa.insert(FAILURE), [{"id": new_id(), "key_sha256": key, "at": now} for key in sorted(set(keys))]
        )

    async def clear_failures(self, key: str) -> None:
        await self.session.execute(sa.delete(FAILURE).where(FAILURE.c.key_sha256 == key))

    # -- invitations --------------------------------------------------------------------------
    async def invite(
        self, account: Account, created_by: str, now: datetime, expires_at: datetime
    ) -> InvitationIssued:
        secret = "inv_" + secrets.token_urlsafe(32)
        invitation_id = new_id()
        await self.session.execute(
            sa.insert(INVITATION).values(
                id=invitation_id,
                workspace_id=account.workspace_id,
                agent_id=account.agent_id,
                secret_sha256=_sha256(secret),
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
            )
        )
        return InvitationIssued(invitation_id, secret, account, expires_at)

    async def redeem(self, secret: str, now: datetime) -> Account | InvitationRefusal:
        """Use an invitation (once): its agent, or why it is refused.  Two browsers racing on one
        link: the database lets one of them mark it used."""
        digest = _sha256(secret.strip())
        taken = (
            await self.session.execute(
                sa.update(INVITATION)
                .where(
                    INVITATION.c.secret_sha256 == digest,
                    INVITATION.c.used_at.is_(None),
                    INVITATION.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(INVITATION.c.agent_id)
            )
        ).scalar()
        if taken is not None:
            account = await self.account(AgentId(taken))
            return account if account is not None else InvitationRefusal.UNKNOWN
        row = (
            await self.session.execute(
                sa.select(INVITATION.c.used_at).where(INVITATION.c.secret_sha256 == digest)
            )
        ).first()
        if row is None:
            return InvitationRefusal.UNKNOWN
        return InvitationRefusal.USED if row.used_at is not None else InvitationRefusal.EXPIRED
