"""Engine, sessions, readiness and schema upgrade for PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.errors import DatabaseConflict, DatabaseUnavailable, InvalidInput, ServiceUnavailable

__all__ = [
    "Database",
    "Failure",
    "WriterLock",
    "classify_failure",
    "redact_url",
    "sqlstate",
    "translate_failure",
    "upgrade_schema",
]

ROOT = Path(__file__).resolve().parents[1]


def redact_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Failure(StrEnum):
    """What a database error means for the caller, decided once here at the storage edge."""

    UNAVAILABLE = "unavailable"  # cannot reach it or it cannot work now: wait, then try again
    CONFLICT = "conflict"  # deadlock, serialization failure, lock timeout: run the transaction again
    REFUSED = "refused"  # the data itself is refused (22xxx, 23xxx, 54xxx): trying again changes nothing


# PostgreSQL SQLSTATEs: 40P01 deadlock_detected, 40001 serialization_failure, 55P03
# lock_not_available, 57014 query_canceled (statement or lock timeout).
_CONFLICT_SQLSTATES = frozenset({"40P01", "40001", "55P03", "57014"})
# Classes of SQLSTATE that refuse the row's content: 22 data exception (value too long, NUL in
# text, bad JSON), 23 integrity constraint violation, 54 program limit (a value too big to index).
_REFUSED_CLASSES = frozenset({"22", "23", "54"})
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of a driver error (asyncpg or psycopg), None when there is none."""
    orig = getattr(exc, "orig", None) or exc
    for candidate in (orig, getattr(orig, "__cause__", None)):
        for name in ("sqlstate", "pgcode"):
            code = getattr(candidate, name, None)
            if isinstance(code, str) and code:
                return code
    return None


def classify_failure(exc: BaseException) -> Failure:
    """Unavailable, transient conflict or refused-for-content.

    Connection-level failures (refused, lost, timed out, server shutting down, too many
    connections) are ``UNAVAILABLE``; so is any error this function does not know, so that an
    unknown failure pauses the caller instead of discarding data.  SQLite's ``database is
    locked`` (its busy timeout ran out) is a ``CONFLICT``, like a PostgreSQL deadlock.
    """
    if isinstance(exc, OSError | TimeoutError):
        return Failure.UNAVAILABLE
    if not isinstance(exc, DBAPIError):
        return Failure.UNAVAILABLE
    if exc.connection_invalidated:
        return Failure.UNAVAILABLE
    code = sqlstate(exc)
    if code is not None:
        if code in _CONFLICT_SQLSTATES:
            return Failure.CONFLICT
        if code[:2] in _REFUSED_CLASSES:
            return Failure.REFUSED
        return Failure.UNAVAILABLE  # 08 connection, 53 resources, 57P0x shutdown, 58 system, others
    if isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError):
        return Failure.REFUSED  # SQLite: UNIQUE/NOT NULL/CHECK constraint failed
    if any(busy in str(exc.orig).lower() for busy in _SQLITE_BUSY):
        return Failure.CONFLICT
    return Failure.UNAVAILABLE


# No schema yet: PostgreSQL 42P01 undefined_table, 3F000 invalid_schema_name; SQLite names it.
_NO_SCHEMA_SQLSTATES = frozenset({"42P01", "3F000"})


def _no_schema(exc: BaseException) -> bool:
    return sqlstate(exc) in _NO_SCHEMA_SQLSTATES or "no such table" in str(getattr(exc, "orig", "")).lower()


def translate_failure(exc: BaseException, doing: str | None = None) -> ServiceUnavailable:
    """The error tree's name for an unavailable or conflicting database (never for ``REFUSED``:
    the caller decides what refused data means).  Only the error's type is quoted: the driver's
    text may contain the data.  A database without its tables says how to build them."""
    kind = classify_failure(exc)
    name = type(getattr(exc, "orig", None) or exc).__name__
    prefix = f"{doing}: " if doing else ""
    if kind is Failure.CONFLICT:
        return DatabaseConflict(
            f"{prefix}the transaction met a conflict ({name})", details={"sqlstate": sqlstate(exc)}
        )
    if _no_schema(exc):
        return DatabaseUnavailable(
            f"{prefix}the database has no schema yet: run `centralita db upgrade`",
            details={"failure": kind.value},
        )
    return DatabaseUnavailable(
        f"{prefix}the database is unavailable ({name})", details={"failure": kind.value}
    )


@contextmanager
def _edge() -> Iterator[None]:
    """Foreign database failures leave as the error tree's: ``DatabaseUnavailable`` or
    ``DatabaseConflict`` (``raise … from exc``).  Refused content (SQLSTATE classes 22, 23, 54:
    ``IntegrityError``, ``DataError``) is left as it is: callers catch it on purpose (dedupe,
    idempotent inserts, isolating the delivery that carries it)."""
    try:
        yield
    except (OSError, DBAPIError) as exc:
        if isinstance(exc, DBAPIError) and classify_failure(exc) is Failure.REFUSED:
            raise
        raise translate_failure(exc) from exc


class WriterLock:
    """One writer at a time — SQLite's rule, kept in this process so that no writer of ours meets
    "database is locked" — with urgent writers first: a router's commit waiting for the lock takes
    it before the pipeline batches waiting with it (an offer is what a customer waits for)."""

    def __init__(self) -> None:
        self._locked = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @property
    def locked(self) -> bool:
        return self._locked

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._locked:
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter  # the releaser hands the lock over: it stays locked
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed over as it was cancelled
                self._release()
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def _release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._locked = False


class Database:
    """One async engine and its session factory; opened by the composition root."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10, lock_timeout_s: float = 30.0):
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise InvalidInput(f"not a database URL: {url!r}", field="database_url") from exc
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # hide_parameters: a database error's text never quotes bound values (bodies, phones, emails).
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # How long a SQLite writer waits for another process's lock before "database is locked".
            kwargs["connect_args"] = {"timeout": lock_timeout_s}
        else:
            # No pre-ping: it costs three round trips per checkout on every hot path.  A connection
            # that died (server restart) fails its first statement, SQLAlchemy invalidates the
            # pool on that disconnect error, and the caller's retry (pipeline requeue, router
            # restart from the database, HTTP 503) gets a fresh one.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(
                self.engine.sync_engine,
                "connect",
                functools.partial(_sqlite_pragmas, busy_timeout_ms=int(lock_timeout_s * 1000)),
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        # SQLite allows one writer: serialise our own writers instead of meeting "database is locked".
        self.write_lock = WriterLock() if self.is_sqlite else None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session (reads); a database failure inside it leaves as ``DatabaseUnavailable`` or
        ``DatabaseConflict``, refused content as the driver's error (see ``_edge``)."""
        with _edge():
            async with self.sessions() as session:
                yield session

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, committed on success, rolled back on error; failures
        inside it or on commit are translated like ``session``'s.  ``urgent`` (the router's
        rounds): on SQLite, it takes the single writer's turn before the others waiting."""
        with _edge():
            if self.write_lock is not None:
                async with self.write_lock.hold(urgent=urgent), self.sessions() as session, session.begin():
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, busy_timeout_ms: int = 30000) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
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
