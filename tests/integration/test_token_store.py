"""The token store on SQLite and PostgreSQL: refusals read in one query, last-used written at
most once per period, revocation kept, rotation in one transaction, workspaces apart."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from core.errors import Conflict
from core.ids import WorkspaceId, new_id
from storage.database import Database
from storage.tables import ApiTokenRow, WorkspaceRow
from storage.tokens import Checked, Refusal, TokenStore

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


async def _workspace(db: Database, slug: str) -> WorkspaceId:
    workspace_id = WorkspaceId(new_id())
    async with db.transaction() as session:
        session.add(WorkspaceRow(id=workspace_id, slug=slug, name=slug, created_at=NOW))
    return workspace_id


async def _issue(db: Database, ws: WorkspaceId, role: str = "admin", **kwargs: object) -> tuple[str, str]:
    async with db.transaction() as session:
        issued = await TokenStore(session).create(ws, role, None, "t", NOW, **kwargs)  # type: ignore[arg-type]
    return issued.token, str(issued.record.id)


async def _check(db: Database, token: str, at: datetime) -> Checked | Refusal:
    async with db.session() as session:
        return await TokenStore(session).check(token, at)


async def test_a_token_lives_until_its_expiry_or_its_revocation(database: Database) -> None:
    ws = await _workspace(database, "alfa")
    token, token_id = await _issue(database, ws, expires_at=NOW + timedelta(hours=1))
    assert isinstance(await _check(database, token, NOW + timedelta(minutes=59)), Checked)
    assert await _check(database, token, NOW + timedelta(hours=1)) is Refusal.EXPIRED
    assert await _check(database, "ctl_nope", NOW) is Refusal.UNKNOWN
    async with database.transaction() as session:
        await TokenStore(session).revoke(uuid.UUID(token_id), NOW)
    assert await _check(database, token, NOW) is Refusal.REVOKED


async def test_a_new_token_gets_its_roles_lifetime_and_a_null_expiry_never_ends(database: Database) -> None:
    ws = await _workspace(database, "alfa")
    async with database.transaction() as session:
        issued = await TokenStore(session).create(ws, "admin", None, None, NOW)
    assert issued.record.expires_at == NOW + timedelta(days=7)
    async with database.transaction() as session:
        await session.execute(sa.update(ApiTokenRow).values(expires_at=None))
    assert isinstance(await _check(database, issued.token, NOW + timedelta(days=3650)), Checked)


async def test_refusals_of_many_tokens_in_one_query(database: Database) -> None:
    ws = await _workspace(database, "alfa")
    _, live = await _issue(database, ws)
    _, expired = await _issue(database, ws, expires_at=NOW + timedelta(seconds=1))
    _, revoked = await _issue(database, ws)
    gone = str(new_id())
    async with database.transaction() as session:
        await TokenStore(session).revoke(uuid.UUID(revoked), NOW)
    statements: list[str] = []
    sa.event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    async with database.session() as session:
        found = await TokenStore(session).refusals([live, expired, revoked, gone, "test"], NOW + MINUTE)
    assert found == {
        expired: Refusal.EXPIRED,
        revoked: Refusal.REVOKED,
        gone: Refusal.UNKNOWN,
        "test": Refusal.UNKNOWN,
    }
    assert len([s for s in statements if "api_token" in s]) == 1


async def test_last_use_is_written_at_most_once_per_period(database: Database) -> None:
    ws = await _workspace(database, "alfa")
    token, token_id = await _issue(database, ws)
    written = []
    for at in (NOW, NOW + timedelta(seconds=30), NOW + timedelta(seconds=59), NOW + timedelta(seconds=61)):
        async with database.transaction() as session:
            written.append(await TokenStore(session).touch([token_id], at, MINUTE))
    assert written == [1, 0, 0, 1]
    found = await _check(database, token, NOW + timedelta(seconds=62))
    assert isinstance(found, Checked) and found.last_used_at == NOW + timedelta(seconds=61)
    assert not found.stale(NOW + timedelta(seconds=62), MINUTE)
    assert found.stale(NOW + timedelta(seconds=121), MINUTE)


async def test_revoking_twice_keeps_the_first_time_and_rotating_a_revoked_token_is_a_conflict(
    database: Database,
) -> None:
    ws = await _workspace(database, "alfa")
    _, token_id = await _issue(database, ws)
    for at in (NOW, NOW + MINUTE):
        async with database.transaction() as session:
            record = await TokenStore(session).revoke(uuid.UUID(token_id), at)
        assert record is not None and record.revoked_at == NOW
    with pytest.raises(Conflict):
        async with database.transaction() as session:
            await TokenStore(session).rotate(uuid.UUID(token_id), NOW)


async def test_rotation_issues_a_twin_and_revokes_the_original(database: Database) -> None:
    ws = await _workspace(database, "alfa")
    old_token, old_id = await _issue(database, ws, role="supervisor")
    async with database.transaction() as session:
        rotated = await TokenStore(session).rotate(uuid.UUID(old_id), NOW + MINUTE)
    assert rotated is not None
    issued, revoked = rotated
    assert revoked.revoked_at == NOW + MINUTE
    assert (issued.record.role, issued.record.name) == ("supervisor", "t")
    assert issued.record.expires_at == NOW + MINUTE + timedelta(days=30)
    assert await _check(database, old_token, NOW + MINUTE) is Refusal.REVOKED
    assert isinstance(await _check(database, issued.token, NOW + MINUTE), Checked)


async def test_another_workspaces_token_is_not_found(database: Database) -> None:
    alfa, beta = await _workspace(database, "alfa"), await _workspace(database, "beta")
    _, beta_token = await _issue(database, beta)
    await _issue(database, alfa)
    async with database.transaction() as session:
        store = TokenStore(session)
        assert await store.get(uuid.UUID(beta_token), alfa) is None
        assert await store.revoke(uuid.UUID(beta_token), NOW, alfa) is None
        assert await store.rotate(uuid.UUID(beta_token), NOW, workspace_id=alfa) is None
        assert [r.workspace for r in await store.list(alfa)] == ["alfa"]
        assert len(await store.list()) == 2
    async with database.session() as session:
        record = await TokenStore(session).get(uuid.UUID(beta_token))
    assert record is not None and record.revoked_at is None
