"""Shared fixtures: real PostgreSQL and RabbitMQ, never skipped.

``PG_ADMIN_URL`` / ``RABBITMQ_URL`` point at the local servers (defaults: 127.0.0.1, trust auth,
guest/guest).  A test that needs a server it cannot reach fails with a message saying so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import secrets
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import asyncpg
import hypothesis
import pytest
import structlog

from storage.database import Database
from tests.support.schema import migrated

PG_HOST = os.environ.get("PGHOST_TEST", "127.0.0.1")
PG_PORT = int(os.environ.get("PGPORT_TEST", "5432"))
PG_USER = os.environ.get("PGUSER_TEST", "postgres")
T = TypeVar("T")

# Every engine a test starts deletes the queues it declared, and declares durable queues as
# classic ones: RabbitMQ 3.10's Raft segment writer wedges under hundreds of short-lived quorum
# queues a minute (seen on this machine).  tests/contract/test_transport_contract.py still
# declares and checks real quorum queues.  A test that sets these explicitly wins.
os.environ.setdefault("CENTRALITA_BROKER_EPHEMERAL", "true")
os.environ.setdefault("CENTRALITA_BROKER_QUORUM", "false")
# Every JSON response any test receives is checked against the OpenAPI document of its route and
# status (centralita/web/response_check.py); see ``responses_match_the_openapi_document`` below.
os.environ.setdefault("CENTRALITA_CHECK_RESPONSES", "true")

# Two shared cores and several services: wall-clock deadlines would only measure the neighbours.
hypothesis.settings.register_profile("default", deadline=None)
hypothesis.settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _pg_admin_dsn(database: str = "postgres") -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _create_database() -> str:
    name = f"centralita_t_{secrets.token_hex(6)}"
    try:
        conn = await asyncpg.connect(_pg_admin_dsn(), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required at {PG_HOST}:{PG_PORT} and is unreachable: {exc}", pytrace=False)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(_pg_admin_dsn(), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _run_aside(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop in a thread (callable from inside a loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = _run_aside(_create_database())
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _run_aside(_drop_database(name))


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/centralita.db"  # type: ignore[str-bytes-safe]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend: the same test runs on SQLite and on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database (``alembic upgrade head``) on each backend."""
    await migrated(database_url)
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def rabbitmq_url() -> str:
    return RABBITMQ_URL


@pytest.fixture
def unique_prefix() -> str:
    """A name prefix that keeps this test's exchanges and queues apart from any other run."""
    return f"t{secrets.token_hex(4)}."


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say plainly which tests ran against the real servers (they never skip)."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") != "call" and outcome != "error":
                continue
            for marker in ("postgres", "rabbitmq"):
                if marker in getattr(report, "keywords", {}):
                    counts.setdefault(marker, {}).setdefault(outcome, 0)
                    counts[marker][outcome] += 1
    terminalreporter.section("real services")
    for marker, label in (("postgres", "PostgreSQL"), ("rabbitmq", "RabbitMQ")):
        got = counts.get(marker, {})
        terminalreporter.write_line(
            f"{label}: {got.get('passed', 0)} passed, {got.get('failed', 0) + got.get('error', 0)} failed"
        )


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """A test that runs the CLI in this process configures logging (the CLI's level, e.g.
    WARNING): the next test gets the configuration back as it was, so ``capture_logs`` sees its
    INFO events whatever ran before."""
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    if was_configured:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()


@pytest.fixture(autouse=True)
def responses_match_the_openapi_document() -> Iterator[None]:
    """A test fails when the server answered it with a body or status its OpenAPI document lacks."""
    from centralita.web.response_check import MISMATCHES

    MISMATCHES.clear()
    yield
    found = [str(m) for m in MISMATCHES]
    MISMATCHES.clear()
    assert not found, "responses that do not match the OpenAPI document:\n" + "\n".join(found)
