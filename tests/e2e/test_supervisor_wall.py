"""The supervisors' wall socket (``/ws/supervisor``): a snapshot on connect, then the queues'
figures, the agents and the alerts as they change — the token's own workspace only, no broker
credentials — through the live router with a hand-moved clock.

Runs on the embedded backend (SQLite + in-process broker) and on PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import ClientWebSocketResponse, WSMsgType, WSServerHandshakeError

from centralita.gateway import TOKEN_REFUSED
from centralita.schemas.wall import parse_wall_server_frame
from channels.meta.peer import GraphPeer
from core.settings import Settings
from router.service import ManualClock
from router.wire import ConversationNudge
from storage.tables import ApiTokenRow
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352255077"
WA_TOKEN = "EAA-wall"
# Monday 2026-11-23, 10:00 in Mexico City (UTC-6).
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: muro
campaign: {{name: ventas, display_name: Ventas, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 2077"
      waba_id: "300000000000077"
      app_id: "400000000000077"
      app_secret_env: WALL_WA_SECRET
      access_token_env: WALL_WA_TOKEN
      verify_token_env: WALL_WA_VERIFY
      default_queue: ventas
skills:
  - name: ventas
queues:
  - name: ventas
    display_name: Ventas nacionales
    required_skills: {{ventas: 5}}
    channels: [whatsapp]
    sla: {{answer_within_s: 60, target_pct: 80}}
agents:
  - {{email: ana@muro.example, name: Ana, skills: {{ventas: 9}}, capacity: {{whatsapp: 3}}}}
"""


class Wall:
    """A supervisor's wall board: the socket and every frame it received, each checked against
    the wall's frame models."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == WSMsgType.TEXT:
                frame = parse_wall_server_frame(message.data)  # a frame no model describes fails here
                assert frame.model_dump(mode="json") == json.loads(message.data)
                async with self._arrived:
                    self.frames.append(json.loads(message.data))
                    self._arrived.notify_all()

    async def next(
        self, kind: str, where: Callable[[dict[str, Any]], bool] = lambda _f: True, within_s: float = 10.0
    ) -> dict[str, Any]:
        """The first frame of ``kind`` for which ``where`` holds (waits for it)."""

        def find() -> dict[str, Any] | None:
            return next((f for f in self.frames if f["type"] == kind and where(f)), None)

        async with asyncio.timeout(within_s), self._arrived:
            await self._arrived.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


OpenWall = Callable[..., Awaitable[Wall]]


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALL_WA_SECRET", "wall-secret")
    monkeypatch.setenv("WALL_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("WALL_WA_VERIFY", "wall-verify")


@pytest.fixture
async def scene(
    backend_settings: Settings, start_routing_scene: StartRoutingScene
) -> AsyncIterator[RoutingScene]:
    settings = backend_settings.model_copy(
        update={"wall_push_s": 0.2, "token_recheck_s": 0.2, "offer_timeout_s": 30.0, "config_poll_s": 3600.0}
    )
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as graph:
        yield await start_routing_scene(
            settings, MANIFEST, ManualClock(MONDAY_10), workspace="muro", graph_base_url=graph.base_url
        )


@pytest.fixture
async def open_wall(scene: RoutingScene) -> AsyncIterator[OpenWall]:
    walls: list[Wall] = []

    async def open_(role: str = "supervisor") -> Wall:
        token = await issue_token(scene.database, scene.workspace, role)
        wall = Wall(await scene.client.ws_connect("/ws/supervisor", params={"access_token": token}))
        walls.append(wall)
        return wall

    yield open_
    for wall in walls:
        await wall.close()


def _queue(frame: dict[str, Any]) -> dict[str, Any]:
    (queue,) = frame["queues"]["queues"]
    return queue


async def test_a_wall_gets_the_floor_on_connect_then_each_arrival_and_each_agent_as_it_changes(
    scene: RoutingScene, open_wall: OpenWall
) -> None:
    wall = await open_wall()
    snapshot = await wall.next("wall")
    assert _queue(snapshot)["display_name"] == "Ventas nacionales" and _queue(snapshot)["waiting"] == 0
    assert [(a["name"], a["presence"]) for a in snapshot["agents"]] == [("Ana", "offline")]
    assert snapshot["alerts"] == []

    conversation = await scene.conversation(queue="ventas")
    await scene.input_handled(
        lambda i: isinstance(i, ConversationNudge) and i.conversation_id == conversation
    )
    waiting = await wall.next("queue_stats", lambda f: _queue(f)["waiting"] == 1, within_s=2.0)
    assert _queue(waiting)["longest_wait_s"] >= 0 and waiting["queues"]["workspace_id"] == str(
        scene.workspace_id
    )

    ana = await scene.connect("ana@muro.example")
    await wall.next("agents", lambda f: f["agents"][0]["presence"] == "available", within_s=2.0)
    await ana.next("offer")
    offered = await wall.next("queue_stats", lambda f: _queue(f)["offered"] == 1, within_s=2.0)
    assert _queue(offered)["waiting"] == 0


async def test_an_unanswered_conversation_past_its_sla_appears_in_the_walls_alert_feed_once(
    scene: RoutingScene, open_wall: OpenWall
) -> None:
    wall = await open_wall()
    await wall.next("wall")
    conversation = await scene.conversation(queue="ventas")  # nobody is signed in to take it
    await scene.input_handled(
        lambda i: isinstance(i, ConversationNudge) and i.conversation_id == conversation
    )
    await scene.advance(61)
    frame = await wall.next("alert")
    alert = frame["alert"]
    assert (alert["kind"], alert["conversation_id"]) == ("sla_breach", str(conversation))
    assert (alert["queue_name"], alert["sla_threshold_s"]) == ("Ventas nacionales", 60.0)
    assert alert["waited_s"] >= 60 and alert["raised_at"].startswith("2026-11-23T16:01")

    # Listed by the API, and in the snapshot of a wall that connects later.
    supervisor = await issue_token(scene.database, scene.workspace, "supervisor")
    response = await scene.client.get("/api/alerts", headers={"Authorization": f"Bearer {supervisor}"})
    assert response.status == 200
    assert [a["id"] for a in (await response.json())["items"]] == [alert["id"]]
    later = await open_wall()
    assert [a["id"] for a in (await later.next("wall"))["alerts"]] == [alert["id"]]
    await scene.advance(120)
    await asyncio.sleep(0.6)  # three rounds of the wall's feed
    assert len(wall.of("alert")) == 1 and later.of("alert") == []


async def test_agents_cannot_open_the_wall_and_bad_frames_are_answered_with_an_error(
    scene: RoutingScene, open_wall: OpenWall
) -> None:
    agent = await issue_token(scene.database, scene.workspace, "agent", scene.agents["ana@muro.example"])
    with pytest.raises(WSServerHandshakeError) as refused:
        await scene.client.ws_connect("/ws/supervisor", params={"access_token": agent})
    assert refused.value.status == 403
    with pytest.raises(WSServerHandshakeError) as anonymous:
        await scene.client.ws_connect("/ws/supervisor")
    assert anonymous.value.status == 401

    wall = await open_wall()
    await wall.ws.send_json({"type": "ping"})
    await wall.next("pong")
    await wall.ws.send_json({"type": "presence", "presence": "away"})
    error = await wall.next("error")
    assert error["error"]["field"] == "type" and "expected ping" in error["error"]["message"]


async def test_a_wall_whose_token_is_revoked_is_closed_within_seconds(
    scene: RoutingScene, open_wall: OpenWall
) -> None:
    wall = await open_wall()
    await wall.next("wall")
    async with scene.database.transaction() as session:
        await session.execute(
            sa.update(ApiTokenRow)
            .where(ApiTokenRow.workspace_id == scene.workspace_id, ApiTokenRow.role == "supervisor")
            .values(revoked_at=datetime(2026, 11, 23, 15, 0, tzinfo=UTC))
        )
    async with asyncio.timeout(5):
        await wall._reader
    assert wall.ws.close_code == TOKEN_REFUSED
