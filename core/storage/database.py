"""Engine, sessions, readiness and schema upgrade for PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.errors import DatabaseUnavailable, InvalidInput

__all__ = ["Database", "redact_url", "upgrade_schema"]

ROOT = Path(__file__).resolve().parents[2]


def redact_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Database:
    """One async engine and its session factory; opened by the composition root."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10):
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise InvalidInput(f"not a database URL: {url!r}", field="database_url") from exc
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # No pre-ping: it costs three round trips per checkout on every hot path.  A connection
            # that died (server restart) fails its first statement, SQLAlchemy invalidates the
            # pool on that disconnect error, and the caller's retry (pipeline requeue, router
            # restart from the database, HTTP 503) gets a fresh one.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        # SQLite allows one writer: serialise our own writers instead of meeting "database is locked".
        self.write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on success, rolled back on error."""
        if self.write_lock is not None:
            async with self.write_lock, self.sessions() as session, session.begin():
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    async def ping(self, limit_s: float = 2.0) -> None:
        try:
            async with asyncio.timeout(limit_s), self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (OSError, DBAPIError, OperationalError, TimeoutError) as exc:
            raise DatabaseUnavailable(
                f"cannot reach the database at {redact_url(self.url)}: {_reason(exc) or 'timed out'}"
            ) from exc

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade_schema(url: str, revision: str = "head") -> None:
    """``alembic upgrade head`` against ``url`` (sync entry point; run it in a thread from async code)."""
    from alembic import command

    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    try:
        command.upgrade(alembic_config(url), revision)
    except (OSError, DBAPIError, OperationalError) as exc:
        raise DatabaseUnavailable(f"cannot reach the database at {redact_url(url)}: {_reason(exc)}") from exc
