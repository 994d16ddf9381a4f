"""The HTTP application: liveness, readiness with the real services, JSON errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from centralita.web.app import create_app
from core.ids import WorkspaceId
from core.settings import Settings
from storage.database import Database
from storage.tokens import TokenStore
from tests.support.schema import migrated
from tests.support.seed import seed_workspace
from tests.support.tcpproxy import TcpProxy


async def _client(settings: Settings) -> TestClient:
    await migrated(settings.database_url)
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    return client


@pytest.fixture
async def embedded(sqlite_url: str) -> AsyncIterator[TestClient]:
    client = await _client(Settings(database_url=sqlite_url, broker_url="memory://"))
    yield client
    await client.close()


async def test_healthz_says_the_process_is_alive(embedded: TestClient) -> None:
    response = await embedded.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_is_ready_on_the_embedded_default(embedded: TestClient) -> None:
    response = await embedded.get("/readyz")
    assert response.status == 200
    assert (await response.json())["checks"] == {
        "database": "ok",
        "broker": "ok",
        "workers": "ok",
        "consumers": "ok",
    }


async def test_an_unknown_route_answers_a_json_404(embedded: TestClient) -> None:
    response = await embedded.get("/nope")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_a_webhook_for_an_unknown_channel_names_the_field(embedded: TestClient) -> None:
    response = await embedded.post("/webhooks/whatsap", data=b"{}")
    body = await response.json()
    assert response.status == 404
    assert body["error"]["field"] == "channel"
    assert "did you mean 'whatsapp'" in body["error"]["message"]


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_readyz_names_the_broker_while_rabbitmq_is_down_and_recovers_without_restart(
    postgres_url: str, unique_prefix: str
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    settings = Settings(
        database_url=postgres_url,
        broker_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
        broker_prefix=unique_prefix,
        broker_ephemeral=True,
        broker_quorum=False,
        ingest_partitions=1,
    )
    client = await _client(settings)
    try:
        assert (await client.get("/readyz")).status == 200

        await proxy.cut()
        down = await client.get("/readyz")
        body = await down.json()
        assert down.status == 503
        assert body["checks"]["database"] == "ok"
        assert "RabbitMQ" in body["checks"]["broker"]
        assert "broker" in body["error"]["message"]

        await proxy.restore()
        async with asyncio.timeout(30):
            while (await client.get("/readyz")).status != 200:  # noqa: ASYNC110 - polling a server we do not own
                await asyncio.sleep(0.2)
    finally:
        await client.close()
        await proxy.cut()


@pytest.mark.postgres
async def test_an_api_call_while_postgresql_is_unreachable_answers_503_naming_the_database(
    postgres_url: str,
) -> None:
    await migrated(postgres_url)
    db = Database(postgres_url)
    try:
        seeded = await seed_workspace(db, "caida", [])
        async with db.transaction() as session:
            token = await TokenStore(session).issue(
                WorkspaceId(seeded.workspace_id), "supervisor", None, "wall", datetime.now(UTC)
            )
    finally:
        await db.dispose()
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    settings = Settings(
        database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        broker_url="memory://",
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    auth = {"Authorization": f"Bearer {token}"}
    try:
        assert (await client.get("/api/queues/stats", headers=auth)).status == 200
        await proxy.cut()
        down = await client.get("/api/queues/stats", headers=auth)
        body = await down.json()
        assert down.status == 503, body
        assert body["error"]["code"] == "database_unavailable"
        assert down.headers["Retry-After"]
        await proxy.restore()
        async with asyncio.timeout(30):
            while (await client.get("/api/queues/stats", headers=auth)).status != 200:  # noqa: ASYNC110 - polling a server we do not own
                await asyncio.sleep(0.2)
    finally:
        await client.close()
        await proxy.cut()
