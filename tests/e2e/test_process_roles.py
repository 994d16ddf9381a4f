"""A deployment on more than one core runs the workers in separate processes
(``CENTRALITA_ROLES``): here the HTTP server with the pipeline, and beside it a router-only
server, on the same PostgreSQL and RabbitMQ.  A customer's message reaches an agent connected
to the first server through the router of the second."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from centralita.web.app import create_app
from centralita.web.keys import PIPELINE, RUNTIME
from core.ids import new_id
from core.settings import Settings
from storage.database import Database
from storage.tables import AgentRow
from tests.e2e.test_routing_flow import MANIFEST, PHONE_NUMBER_ID, SECRET, _secrets  # noqa: F401
from tests.support.campaigns import apply_text, issue_token, signed, whatsapp_text
from tests.support.routing import AgentSocket, delete_broker_state
from tests.support.schema import migrated

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


@pytest.fixture
def settings(postgres_url: str, rabbitmq_url: str, unique_prefix: str) -> Settings:
    return Settings(
        database_url=postgres_url,
        broker_url=rabbitmq_url,
        broker_prefix=unique_prefix,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        graph_base_url="http://127.0.0.1:9",
    )


@pytest.fixture
async def servers(settings: Settings) -> AsyncIterator[tuple[TestClient, TestClient]]:
    await migrated(settings.database_url)
    db = Database(settings.database_url)
    try:
        await apply_text(db, MANIFEST)
    finally:
        await db.dispose()
    front = TestClient(
        TestServer(create_app(settings.model_copy(update={"roles": "pipeline,outbound,followups,config"})))
    )
    routing = TestClient(TestServer(create_app(settings.model_copy(update={"roles": "router,config"}))))
    await routing.start_server()
    await front.start_server()
    yield front, routing
    await front.close()
    await routing.close()


async def test_the_pipeline_and_the_router_can_run_in_separate_processes(
    servers: tuple[TestClient, TestClient], settings: Settings
) -> None:
    front, routing = servers
    assert PIPELINE in front.server.app and PIPELINE not in routing.server.app
    assert front.server.app[RUNTIME].routers is None
    supervisor = routing.server.app[RUNTIME].routers
    assert supervisor is not None

    db = front.server.app[RUNTIME].database
    async with db.session() as session:
        ana = (
            await session.execute(select(AgentRow.id).where(AgentRow.email == "ana@flujo.example"))
        ).scalar_one()
    token = await issue_token(db, "flujo", "agent", ana)
    socket = AgentSocket(await front.ws_connect("/ws/agent", params={"access_token": token}), ana)
    try:
        await socket.send({"type": "presence", "presence": "available"})
        body = whatsapp_text(PHONE_NUMBER_ID, "5215512349077", f"wamid.{new_id().hex}", "Quiero informes")
        data = json.loads(body)
        data["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(
            int(datetime.now(UTC).timestamp())
        )
        body = json.dumps(data).encode()
        response = await front.post("/webhooks/whatsapp", data=body, headers=signed(body, SECRET))
        assert response.status == 200, await response.text()
        offer = await socket.next("offer", within_s=20)
        await socket.answer(offer)
        assigned = await socket.next("assigned", within_s=20, conversation_id=offer["conversation_id"])
        assert assigned["channel"] == "whatsapp"
    finally:
        await socket.close()
        workspaces = list(supervisor.services)
        await delete_broker_state(settings, workspaces, [ana])


def test_a_role_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        Settings(roles="pipeline,routr")
    assert not Settings(roles="router,config").runs("pipeline")
    assert Settings().runs("router") and not Settings(run_workers=False).runs("router")
