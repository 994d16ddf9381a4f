"""API bearer tokens: only a SHA-256 of each token is stored.

A token belongs to one workspace, has one role (and, for agents, one agent), an expiry and a
last-used time.  It is refused — ``Refusal`` — once revoked (``revoked_at`` set) or expired
(``expires_at`` reached).  Tokens issued before expiries existed have ``expires_at`` NULL and
keep working until they are revoked; every token issued now gets one.

A token's ``kind`` is ``api`` (a bearer token for scripts) or ``session`` (the console's
signed-in browser, carried in a cookie): a session is also refused once unused for the idle
timeout the caller passes to ``check``.

Every issue and revoke is appended to the audit trail in the same transaction
(``token.issued`` / ``token.revoked``, ``session.issued`` / ``session.revoked``: see
``core.audit.AccessAction``), with the ``actor`` the caller names (``agent:<id>``,
``token:<id>``, ``cli``; ``system`` by default).  A session refused for being idle is not an
event: nothing is written when ``check`` refuses it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import AccessAction
from core.errors import Conflict, InvalidInput
from core.ids import AgentId, WorkspaceId, new_id
from core.settings import Settings
from storage.audit import record
from storage.tables import AgentRow, ApiTokenRow, WorkspaceRow

__all__ = [
    "ROLES",
    "Checked",
    "Issued",
    "Principal",
    "Refusal",
    "TokenRecord",
    "TokenStore",
    "default_expiry",
    "expiry",
    "hash_token",
]

TOKEN = ApiTokenRow.__table__  # type: ignore[attr-defined]
AGENT = AgentRow.__table__  # type: ignore[attr-defined]
WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]
ROLES = ("agent", "supervisor", "admin")

# The lifetimes a caller without settings gets (core.settings' defaults, not the environment's):
# the CLI and the API pass the expiry their settings give.
_DEFAULTS = Settings.model_construct()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: one workspace, one role, and the agent when the role is ``agent``."""

    workspace_id: WorkspaceId
    role: str
    agent_id: AgentId | None
    token_id: str
    kind: str = "api"  # "session": the console's cookie (CSRF-checked on mutations)

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class Refusal(StrEnum):
    """Why a token is not accepted (any more)."""

    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"

    @property
    def message(self) -> str:
        return {
            Refusal.UNKNOWN: "unknown token",
            Refusal.REVOKED: "the token was revoked",
            Refusal.EXPIRED: "the token expired",
        }[self]


def refusal_of(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> Refusal | None:
    if revoked_at is not None:
        return Refusal.REVOKED
    if expires_at is not None and expires_at <= now:
        return Refusal.EXPIRED
    return None


@dataclass(frozen=True, slots=True)
class Checked:
    """An accepted token: the principal, and when the token was last recorded as used."""

    principal: Principal
    last_used_at: datetime | None

    def stale(self, now: datetime, every: timedelta) -> bool:
        """Whether its last-used time is due to be written again (at most once per ``every``)."""
        return self.last_used_at is None or self.last_used_at <= now - every


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as an admin sees it: never the token nor its hash."""

    id: uuid.UUID
    workspace_id: WorkspaceId
    workspace: str
    role: str
    agent_id: AgentId | None
    agent_email: str | None
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    kind: str = "api"

    def refusal(self, now: datetime) -> Refusal | None:
        return refusal_of(self.revoked_at, self.expires_at, now)


@dataclass(frozen=True, slots=True)
class Issued:
    """A token just issued: the secret (shown once, never stored) and its record."""

    token: str
    record: TokenRecord


def default_expiry(role: str, now: datetime, settings: Settings | None = None) -> datetime:
    """When a token of ``role`` issued at ``now`` expires by default (the role's lifetime)."""
    return now + (settings or _DEFAULTS).token_lifetime(role)


def expiry(
    settings: Settings, role: str, now: datetime, lifetime: timedelta | None, *, field: str
) -> datetime:
    """When a token issued at ``now`` expires: after ``lifetime``, or its role's by default; a
    lifetime longer than ``token_max_lifetime_s`` is refused (``InvalidInput`` naming ``field``)."""
    if lifetime is None:
        return default_expiry(role, now, settings)
    longest = timedelta(seconds=settings.token_max_lifetime_s)
    if lifetime > longest:
        raise InvalidInput(
            f"{field}: at most {longest.total_seconds() / 86400:g} days (CENTRALITA_TOKEN_MAX_LIFETIME_S)",
            field=field,
        )
    return now + lifetime


def _as_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class TokenStore:
    def __init__(self, session: AsyncSession):
        self.session = session

    # -- issuing ----------------------------------------------------------------------------
    async def issue(
        self,
        workspace_id: WorkspaceId,
        role: str,
        agent_id: AgentId | None,
        name: str | None,
        now: datetime,
        *,
        expires_at: datetime | None = None,
        actor: str = "system",
    ) -> str:
        """A new token (the secret); it expires at ``expires_at``, by default its role's lifetime."""
        issued = await self.create(
            workspace_id, role, agent_id, name, now, expires_at=expires_at, actor=actor
        )
        return issued.token

    async def create(
        self,
        workspace_id: WorkspaceId,
        role: str,
        agent_id: AgentId | None,
        name: str | None,
        now: datetime,
        *,
        expires_at: datetime | None = None,
        kind: str = "api",
        actor: str = "system",
        replaces: uuid.UUID | None = None,
    ) -> Issued:
        if role not in ROLES:
            raise InvalidInput(f"unknown role {role!r}; expected {', '.join(ROLES)}", field="role")
        if expires_at is None:
            expires_at = default_expiry(role, now)
        if expires_at <= now:
            raise InvalidInput("a token must expire after it is issued", field="expires_in")
        token = "ctl_" + secrets.token_urlsafe(32)
        token_id = new_id()
        await self.session.execute(
            sa.insert(TOKEN).values(
                id=token_id,
                workspace_id=workspace_id,
                agent_id=agent_id,
                role=role,
                token_sha256=hash_token(token),
                name=name,
                created_at=now,
                expires_at=expires_at,
                kind=kind,
            )
        )
        found = await self.get(token_id)
        assert found is not None  # just inserted in this transaction
        details: dict[str, Any] = {"kind": kind, "role": role, "name": name, "expires_at": expires_at}
        if replaces is not None:
            details["replaces"] = replaces
        await record(
            self.session,
            AccessAction.SESSION_ISSUED if kind == "session" else AccessAction.TOKEN_ISSUED,
            workspace_id=workspace_id,
            at=now,
            actor=actor,
            subject_type="token",
            subject_id=str(token_id),
            agent_id=agent_id,
            details=details,
        )
        return Issued(token, found)

    async def _revoked(
        self, records: Iterable[TokenRecord], now: datetime, actor: str, details: dict[str, Any]
    ) -> None:
        """The audit entries of tokens just revoked at ``now``."""
        for r in records:
            await record(
                self.session,
                AccessAction.SESSION_REVOKED if r.kind == "session" else AccessAction.TOKEN_REVOKED,
                workspace_id=r.workspace_id,
                at=now,
                actor=actor,
                subject_type="token",
                subject_id=str(r.id),
                agent_id=r.agent_id,
                details={
                    "kind": r.kind,
                    "before": {"revoked_at": None},
                    "after": {"revoked_at": now},
                    **details,
                },
            )

    async def agent_in(
        self, workspace_id: WorkspaceId, *, agent_id: uuid.UUID | None = None, email: str | None = None
    ) -> AgentId | None:
        """The agent of ``workspace_id`` with this id or email (``None``: not one of its agents)."""
        query = sa.select(AGENT.c.id).where(AGENT.c.workspace_id == workspace_id)
        if agent_id is not None:
            query = query.where(AGENT.c.id == agent_id)
        if email is not None:
            query = query.where(AGENT.c.email == email.strip().lower())
        found = (await self.session.execute(query)).scalar()
        return AgentId(found) if found is not None else None

    # -- authenticating ---------------------------------------------------------------------
    async def check(self, token: str, now: datetime, *, idle: timedelta | None = None) -> Checked | Refusal:
        """The principal of ``token`` at ``now``, or why it is refused.  ``idle``: a session
        token unused for that long is refused as expired."""
        row = (
            await self.session.execute(
                sa.select(
                    TOKEN.c.id,
                    TOKEN.c.workspace_id,
                    TOKEN.c.role,
                    TOKEN.c.agent_id,
                    TOKEN.c.revoked_at,
                    TOKEN.c.expires_at,
                    TOKEN.c.last_used_at,
                    TOKEN.c.created_at,
                    TOKEN.c.kind,
                ).where(TOKEN.c.token_sha256 == hash_token(token))
            )
        ).first()
        if row is None:
            return Refusal.UNKNOWN
        refused = refusal_of(row.revoked_at, row.expires_at, now)
        if refused is not None:
            return refused
        if row.kind == "session" and idle is not None and (row.last_used_at or row.created_at) <= now - idle:
            return Refusal.EXPIRED
        principal = Principal(
            WorkspaceId(row.workspace_id),
            row.role,
            AgentId(row.agent_id) if row.agent_id else None,
            str(row.id),
            row.kind,
        )
        return Checked(principal, row.last_used_at)

    async def principal(self, token: str, now: datetime | None = None) -> Principal | None:
        """The principal of a token accepted at ``now`` (default: the wall clock), else ``None``."""
        found = await self.check(token, now or datetime.now(UTC))
        return found.principal if isinstance(found, Checked) else None

    async def refusals(self, token_ids: Iterable[str], now: datetime) -> dict[str, Refusal]:
        """Which of these tokens are refused at ``now``, and why — one query for all of them (a
        gateway's open sockets).  The ids not listed are accepted."""
        wanted = {token_id: _as_uuid(token_id) for token_id in token_ids}
        out = {token_id: Refusal.UNKNOWN for token_id, parsed in wanted.items() if parsed is None}
        ids = sorted({parsed for parsed in wanted.values() if parsed is not None})
        if not ids:
            return out
        rows = (
            await self.session.execute(
                sa.select(TOKEN.c.id, TOKEN.c.revoked_at, TOKEN.c.expires_at).where(TOKEN.c.id.in_(ids))
            )
        ).all()
        found = {row.id: refusal_of(row.revoked_at, row.expires_at, now) for row in rows}
        for token_id, parsed in wanted.items():
            if parsed is None:
                continue
            if parsed not in found:
                out[token_id] = Refusal.UNKNOWN
            elif (why := found[parsed]) is not None:
                out[token_id] = why
        return out

    async def touch(self, token_ids: Iterable[str], now: datetime, every: timedelta) -> int:
        """Record these tokens as used at ``now``, those not recorded within ``every`` (so a busy
        token costs one write per ``every``, not one per request); how many were written."""
        ids = sorted({parsed for t in token_ids if (parsed := _as_uuid(t)) is not None})
        if not ids:
            return 0
        result = await self.session.execute(
            sa.update(TOKEN)
            .where(
                TOKEN.c.id.in_(ids),
                sa.or_(TOKEN.c.last_used_at.is_(None), TOKEN.c.last_used_at <= now - every),
            )
            .values(last_used_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- administering ----------------------------------------------------------------------
    def _records(self) -> sa.Select[Any]:
        return (
            sa.select(
                TOKEN.c.id,
                TOKEN.c.workspace_id,
                WORKSPACE.c.slug,
                TOKEN.c.role,
                TOKEN.c.agent_id,
                AGENT.c.email,
                TOKEN.c.name,
                TOKEN.c.created_at,
                TOKEN.c.expires_at,
                TOKEN.c.last_used_at,
                TOKEN.c.revoked_at,
                TOKEN.c.kind,
            )
            .select_from(TOKEN)
            .join(WORKSPACE, WORKSPACE.c.id == TOKEN.c.workspace_id)
            .outerjoin(AGENT, AGENT.c.id == TOKEN.c.agent_id)
        )

    @staticmethod
    def _record(row: sa.Row[Any]) -> TokenRecord:
        m = row._mapping
        return TokenRecord(
            id=m[TOKEN.c.id],
            workspace_id=WorkspaceId(m[TOKEN.c.workspace_id]),
            workspace=m[WORKSPACE.c.slug],
            role=m[TOKEN.c.role],
            agent_id=AgentId(m[TOKEN.c.agent_id]) if m[TOKEN.c.agent_id] else None,
            agent_email=m[AGENT.c.email],
            name=m[TOKEN.c.name],
            created_at=m[TOKEN.c.created_at],
            expires_at=m[TOKEN.c.expires_at],
            last_used_at=m[TOKEN.c.last_used_at],
            revoked_at=m[TOKEN.c.revoked_at],
            kind=m[TOKEN.c.kind],
        )

    async def list(self, workspace_id: WorkspaceId | None = None) -> list[TokenRecord]:
        """The tokens of one workspace (or all), newest first."""
        query = self._records().order_by(TOKEN.c.created_at.desc(), TOKEN.c.id.desc())
        if workspace_id is not None:
            query = query.where(TOKEN.c.workspace_id == workspace_id)
        return [self._record(row) for row in (await self.session.execute(query)).all()]

    async def get(
        self, token_id: uuid.UUID, workspace_id: WorkspaceId | None = None, *, lock: bool = False
    ) -> TokenRecord | None:
        """One token, looked up within ``workspace_id`` when given (another's is ``None``)."""
        query = self._records().where(TOKEN.c.id == token_id)
        if workspace_id is not None:
            query = query.where(TOKEN.c.workspace_id == workspace_id)
        if lock:
            query = query.with_for_update(of=TOKEN)
        row = (await self.session.execute(query)).first()
        return self._record(row) if row is not None else None

    async def revoke(
        self,
        token_id: uuid.UUID,
        now: datetime,
        workspace_id: WorkspaceId | None = None,
        *,
        actor: str = "system",
        reason: str | None = None,
        replaced_by: uuid.UUID | None = None,
    ) -> TokenRecord | None:
        """Revoke a token from ``now`` on (a revoked one keeps its first ``revoked_at``, and
        revoking it again records nothing); ``None``: no such token (in ``workspace_id``)."""
        query = sa.update(TOKEN).where(TOKEN.c.id == token_id, TOKEN.c.revoked_at.is_(None))
        if workspace_id is not None:
            query = query.where(TOKEN.c.workspace_id == workspace_id)
        changed = (await self.session.execute(query.values(revoked_at=now).returning(TOKEN.c.id))).first()
        found = await self.get(token_id, workspace_id)
        if changed is not None and found is not None:
            details: dict[str, Any] = {}
            if reason is not None:
                details["reason"] = reason
            if replaced_by is not None:
                details["replaced_by"] = replaced_by
            await self._revoked([found], now, actor, details)
        return found

    async def revoke_sessions(
        self, agent_id: AgentId, now: datetime, *, actor: str = "system", reason: str = "sign_out_everywhere"
    ) -> tuple[str, ...]:
        """Sign an agent out everywhere: revoke every open session token of the agent (not its
        API tokens); the ids revoked."""
        result = await self.session.execute(
            sa.update(TOKEN)
            .where(TOKEN.c.agent_id == agent_id, TOKEN.c.kind == "session", TOKEN.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(TOKEN.c.id)
        )
        ended = sorted(result.scalars())
        records = [r for token_id in ended if (r := await self.get(token_id)) is not None]
        await self._revoked(records, now, actor, {"reason": reason})
        return tuple(str(token_id) for token_id in ended)

    async def rotate(
        self,
        token_id: uuid.UUID,
        now: datetime,
        *,
        expires_at: datetime | None = None,
        workspace_id: WorkspaceId | None = None,
        actor: str = "system",
    ) -> tuple[Issued, TokenRecord] | None:
        """A new token with the old one's role, agent and name, and the old one revoked (in the
        caller's transaction: both or neither).  ``None``: no such token; a revoked one is a
        ``Conflict`` (create a new token instead)."""
        old = await self.get(token_id, workspace_id, lock=True)
        if old is None:
            return None
        if old.revoked_at is not None:
            raise Conflict(
                f"token {token_id} was revoked at {old.revoked_at.isoformat()}: create a new one instead",
                field="token_id",
            )
        issued = await self.create(
            old.workspace_id,
            old.role,
            old.agent_id,
            old.name,
            now,
            expires_at=expires_at,
            actor=actor,
            replaces=token_id,
        )
        revoked = await self.revoke(
            token_id, now, workspace_id, actor=actor, reason="rotated", replaced_by=issued.record.id
        )
        assert revoked is not None
        return issued, revoked
