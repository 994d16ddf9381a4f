"""The admin's dead-letter API and ingest backpressure, on the embedded broker and on RabbitMQ.

The engine runs without workers here, so nothing drains the ingest partition but the test: a
full partition answers 503 with Retry-After (Meta retries later), and once drained, 200 again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from centralita.web.app import create_app
from centralita.web.keys import RUNTIME
from channels.meta.signature import sign_body
from channels.whatsapp.testing import text_webhook_body
from core.ids import AgentId, WorkspaceId, new_id
from core.settings import Settings
from core.transport import Delivery
from core.transport.deadletters import parked_copy
from core.transport.topology import ingest_queue
from storage.database import Database
from storage.tables import AgentRow
from storage.tokens import TokenStore
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

SECRET = "dlq-app-secret"
PHONE_NUMBER_ID = "106540352248888"
StartServer = Callable[..., Awaitable[TestClient]]


def _delivery(wamid: str) -> bytes:
    return text_webhook_body(
        PHONE_NUMBER_ID,
        "5215512349999",
        wamid,
        "Hola",
        name="Ana",
        display_phone_number="15550788888",
        waba_id="1",
    )


def _signed(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign_body(body, SECRET), "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLQ_SECRET", SECRET)


async def _seed(db: Database, tokens: dict[str, str]) -> None:
    seeded = await seed_workspace(
        db,
        "muerta",
        [
            {
                "channel": "whatsapp",
                "address": PHONE_NUMBER_ID,
                "app_id": "app-d",
                "app_secret_env": "DLQ_SECRET",
            }
        ],
    )
    async with db.transaction() as session:
        agent = AgentRow(
            id=new_id(), workspace_id=seeded.workspace_id, email="a@x.example", name="a", role="agent"
        )
        session.add(agent)
        await session.flush()
        store = TokenStore(session)
        ws = WorkspaceId(seeded.workspace_id)
        tokens["agent"] = await store.issue(ws, "agent", AgentId(agent.id), "a", agent.created_at)
        tokens["admin"] = await store.issue(ws, "admin", None, "root", agent.created_at)


@pytest.fixture
async def start_server(backend: str, backend_settings: Settings) -> AsyncIterator[StartServer]:
    """The HTTP app with no workers (nothing consumes the ingest partition but the test)."""
    clients: list[TestClient] = []

    async def start(tokens: dict[str, str], **overrides: Any) -> TestClient:
        update: dict[str, Any] = {"run_workers": False, "ingest_partitions": 1, **overrides}
        if backend != "embedded":
            update |= {"broker_ephemeral": True, "broker_quorum": False}
        settings = backend_settings.model_copy(update=update)
        await migrated(settings.database_url)
        db = Database(settings.database_url)
        try:
            await _seed(db, tokens)
        finally:
            await db.dispose()
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_full_ingest_partition_answers_503_with_retry_after_and_200_once_drained(
    start_server: StartServer,
) -> None:
    client = await start_server({}, ingest_max_backlog=2, retry_after_s=7)
    answers = []
    for n in range(4):
        body = _delivery(f"wamid.bp{n}")
        response = await client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
        answers.append(response.status)
        if response.status == 503:
            assert response.headers["Retry-After"] == "7"
            assert (await response.json())["error"]["code"] == "overloaded"
            break
    assert answers == [200, 200, 503]

    drained: asyncio.Queue[Delivery] = asyncio.Queue()

    async def take(delivery: Delivery) -> None:
        await delivery.ack()
        await drained.put(delivery)

    await client.server.app[RUNTIME].transport.consume(ingest_queue(0), take)
    for _ in range(2):
        await asyncio.wait_for(drained.get(), 10)
    body = _delivery("wamid.after")
    response = await client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
    assert response.status == 200, await response.text()


async def test_an_admin_lists_reads_and_replays_the_workspaces_parked_deliveries_only(
    start_server: StartServer,
) -> None:
    tokens: dict[str, str] = {}
    client = await start_server(tokens)
    transport = client.server.app[RUNTIME].transport
    raw = _delivery("wamid.parked")
    # Another tenant's delivery in the same (engine-wide) partition: not this admin's to read.
    foreign = _delivery("wamid.foreign").replace(PHONE_NUMBER_ID.encode(), b"999000111222333")
    await transport.publish(
        [
            parked_copy(
                queue=ingest_queue(0),
                body=body,
                routing_key=ingest_queue(0),
                headers={"channel": "whatsapp"},
                message_id=message_id,
                content_type="application/json",
                reason="database refused: NUL in text",
            )
            for body, message_id in ((raw, "m-1"), (foreign, "m-2"))
        ]
    )

    forbidden = await client.get("/api/admin/dlq", headers=_auth(tokens["agent"]))
    assert forbidden.status == 403

    listed = await client.get("/api/admin/dlq", headers=_auth(tokens["admin"]))
    assert listed.status == 200
    [item] = (await listed.json())["items"]
    assert (item["id"], item["queue"], item["reason"], item["size"]) == (
        "m-1",
        "ingest.0",
        "database refused: NUL in text",
        len(raw),
    )
    assert item["parked_at"] and "body" not in item and "headers" not in item

    shown = await client.get("/api/admin/dlq/m-1", headers=_auth(tokens["admin"]))
    detail = await shown.json()
    assert (detail["body"], detail["body_encoding"], detail["headers"]["channel"]) == (
        raw.decode(),
        "utf-8",
        "whatsapp",
    )
    missing = await client.get("/api/admin/dlq/nope", headers=_auth(tokens["admin"]))
    assert missing.status == 404 and (await missing.json())["error"]["field"] == "id"
    for method in ("GET", "POST"):
        path = "/api/admin/dlq/m-2" + ("/replay" if method == "POST" else "")
        other = await client.request(method, path, headers=_auth(tokens["admin"]))
        assert other.status == 404, f"{method} {path}: another workspace's parked delivery"
    assert (await client.post("/api/admin/dlq/m-1/replay", headers=_auth(tokens["agent"]))).status == 403

    replayed = await client.post("/api/admin/dlq/m-1/replay", headers=_auth(tokens["admin"]))
    assert replayed.status == 200
    assert [r["id"] for r in (await replayed.json())["replayed"]] == ["m-1"]
    after = await client.get("/api/admin/dlq", headers=_auth(tokens["admin"]))
    assert (await after.json())["items"] == []  # m-2 is still parked, for the operator's CLI

    back: asyncio.Queue[Delivery] = asyncio.Queue()

    async def take(delivery: Delivery) -> None:
        await delivery.ack()
        await back.put(delivery)

    await transport.consume(ingest_queue(0), take)
    delivery = await asyncio.wait_for(back.get(), 10)
    assert (delivery.body, delivery.message_id) == (raw, "m-1")
