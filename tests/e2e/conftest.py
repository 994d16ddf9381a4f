"""An engine running for real: HTTP on loopback, a database, a broker, the pipeline workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from centralita.envelope import RawEnvelope
from centralita.pipeline.worker import Outcome
from centralita.runtime import Clock, utc_now
from centralita.web.app import create_app
from centralita.web.keys import PIPELINE, RUNTIME
from core.settings import Settings
from router.service import ManualClock
from storage.database import Database
from tests.support.browser import ChromiumThread, chromium_path
from tests.support.log_scan import personal_data_stays_out_of_logs  # noqa: F401  (autouse: logs scanned)
from tests.support.routing import RoutingScene, start_scene
from tests.support.schema import migrated
from tests.support.work import WORK_SECRETS, WorkScene, Workspace, router_active, seed_workspace_of


@dataclass
class Engine:
    client: TestClient
    settings: Settings
    processed: asyncio.Queue[tuple[RawEnvelope, Outcome]] = field(default_factory=asyncio.Queue)

    @property
    def database(self) -> Database:
        return self.client.server.app[RUNTIME].database

    async def next_outcome(self, within_s: float = 10.0) -> Outcome:
        async with asyncio.timeout(within_s):
            return (await self.processed.get())[1]


StartEngine = Callable[..., Awaitable[Engine]]


@pytest.fixture(
    params=["embedded", pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.rabbitmq])]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend_settings(backend: str, request: pytest.FixtureRequest, unique_prefix: str) -> Settings:
    """The backend's services and nothing else: SQLite + the in-process broker, or PostgreSQL +
    RabbitMQ under the test's own prefix."""
    if backend == "embedded":
        return Settings(database_url=request.getfixturevalue("sqlite_url"), broker_url="memory://")
    return Settings(
        database_url=request.getfixturevalue("postgres_url"),
        broker_url=request.getfixturevalue("rabbitmq_url"),
        broker_prefix=unique_prefix,
    )


@pytest.fixture
async def start_engine(backend: str, backend_settings: Settings) -> AsyncIterator[StartEngine]:
    """``await start_engine(seed=coroutine(db), clock=...)``: migrate, seed, then serve on loopback."""
    settings = backend_settings
    if backend != "embedded":
        settings = settings.model_copy(
            update={
                "broker_ephemeral": True,
                "broker_quorum": False,  # see broker/rabbitmq.py: quorum churn wedges RabbitMQ 3.10
                "ingest_partitions": 2,
            }
        )
    clients: list[TestClient] = []

    async def start(
        seed: Callable[[Database], Awaitable[Any]] | None = None, *, clock: Clock = utc_now, **overrides: Any
    ) -> Engine:
        s = settings.model_copy(update=overrides) if overrides else settings
        await migrated(s.database_url)
        if seed is not None:
            db = Database(s.database_url)
            try:
                await seed(db)
            finally:
                await db.dispose()
        client = TestClient(TestServer(create_app(s, clock=clock)))
        await client.start_server()
        clients.append(client)
        engine = Engine(client, s)
        client.server.app[PIPELINE].observers.append(lambda env, out: engine.processed.put_nowait((env, out)))
        return engine

    yield start
    for client in clients:
        await client.close()


# -- work scenes: workspaces applied from tests.support.work's manifest, their routers active ------

StartWorkspaces = Callable[..., Awaitable[tuple[Engine, dict[str, Workspace]]]]
StartWorkScene = Callable[..., Awaitable[WorkScene]]


@pytest.fixture
def work_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The secrets the work manifest's WhatsApp account names, in the environment."""
    for name, value in WORK_SECRETS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def start_workspaces(start_engine: StartEngine, work_secrets: None) -> StartWorkspaces:
    """``await start_workspaces({slug: phone_number_id, ...}, clock=...)``: apply each workspace,
    serve them, and wait until every workspace's router is active."""

    async def start(
        phone_numbers: Mapping[str, str], *, clock: Clock = utc_now
    ) -> tuple[Engine, dict[str, Workspace]]:
        seeded: dict[str, Workspace] = {}

        async def seed(db: Database) -> None:
            for slug, phone_number_id in phone_numbers.items():
                seeded[slug] = await seed_workspace_of(db, slug, phone_number_id)

        engine = await start_engine(seed=seed, clock=clock)
        for ws in seeded.values():
            await router_active(engine, ws.id)
        return engine, seeded

    return start


@pytest.fixture
def start_work_scene(start_workspaces: StartWorkspaces) -> StartWorkScene:
    """``await start_work_scene(slug, phone_number_id, now=..., who=...)``: one workspace on a
    hand-moved clock that starts at ``now``; requests go as ``who`` by default."""

    async def start(slug: str, phone_number_id: str, *, now: datetime, who: str = "ana") -> WorkScene:
        clock = ManualClock(now)
        engine, seeded = await start_workspaces({slug: phone_number_id}, clock=clock)
        return WorkScene(engine, clock, seeded[slug], who=who)

    return start


# -- routing scenes: a campaign applied from YAML, agents on real WebSockets ----------------------

StartRoutingScene = Callable[..., Awaitable[RoutingScene]]


@pytest.fixture
async def start_routing_scene() -> AsyncIterator[StartRoutingScene]:
    """``await start_routing_scene(settings, manifest, clock, workspace=..., **overrides)``: a
    ``tests.support.routing`` scene, stopped (sockets, server, broker state) when the test ends."""
    started: list[RoutingScene] = []

    async def start(settings: Settings, manifest: str, clock: ManualClock, **kwargs: Any) -> RoutingScene:
        found = await start_scene(settings, manifest, clock, **kwargs)
        started.append(found)
        return found

    yield start
    for found in started:
        await found.stop()


# -- the console in a real browser ------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[ChromiumThread]:
    """Debian's Chromium, headless, shared by every browser test of the session.  Missing, it
    fails the test (``make test`` installs it): browser tests never skip."""
    executable = chromium_path()
    if executable is None:
        pytest.fail("chromium is not installed: `make test` installs Debian's chromium and chromium-driver")
    browser = ChromiumThread(executable)
    yield browser
    browser.close()
