"""A token's life through the real paths: issued, used (last-used recorded, once a minute at
most), expired, revoked through the CLI and the admin API, rotated — and an agent's WebSocket
opened with it closed within seconds of its end.  Another workspace's tokens are 404.  On the
embedded backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import ClientWebSocketResponse, WSMsgType
from structlog.testing import capture_logs

from centralita.gateway import TOKEN_REFUSED
from core.settings import Settings
from router.service import ManualClock
from storage.database import Database
from storage.tables import ApiTokenRow
from storage.tokens import TokenStore
from tests.e2e.conftest import Engine, StartEngine
from tests.support.tcpproxy import TcpProxy
from tests.support.work import Workspace, router_active, seed_workspace_of
from tests.support.ws_frames import unmodelled

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
RECHECK_S = 0.2
CLOSED_WITHIN_S = 2.0


class Socket:
    """An agent's browser on ``/ws/agent``: the frames it got (each checked against the frame
    models) and how the server closed it."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.unmodelled: list[str] = []
        self._arrived = asyncio.Condition()
        self.closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message.type == WSMsgType.TEXT:
                if (problem := unmodelled(message.data)) is not None:
                    self.unmodelled.append(problem)
                async with self._arrived:
                    self.frames.append(json.loads(message.data))
                    self._arrived.notify_all()
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                self.closed.set_result((self.ws.close_code, str(message.extra or "")))
                return

    async def pong(self) -> None:
        """The socket answers: a ping gets its pong."""
        seen = len(self.frames)
        await self.ws.send_json({"type": "ping"})
        async with asyncio.timeout(5), self._arrived:
            await self._arrived.wait_for(lambda: any(f["type"] == "pong" for f in self.frames[seen:]))

    async def close_of_server(self, within_s: float = CLOSED_WITHIN_S) -> tuple[int | None, str]:
        async with asyncio.timeout(within_s):
            return await asyncio.shield(self.closed)

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)
        assert not self.unmodelled, self.unmodelled


@dataclass
class Scene:
    engine: Engine
    clock: ManualClock
    a: Workspace
    b: Workspace
    sockets: list[Socket] = field(default_factory=list)

    async def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        response = await self.engine.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        return response.status, await response.json()

    async def admin(self, method: str, path: str, body: Any = None, ws: Workspace | None = None) -> Any:
        status, answer = await self.call(method, path, (ws or self.a).tokens["admin"], body)
        assert status < 300, (status, answer)
        return answer

    async def issue(self, **body: Any) -> dict[str, Any]:
        return dict(await self.admin("POST", "/api/admin/tokens", body))

    async def listed(self, token_id: str) -> dict[str, Any]:
        items = (await self.admin("GET", "/api/admin/tokens"))["items"]
        return next(item for item in items if item["id"] == token_id)

    async def connect(self, token: str) -> Socket:
        ws = await self.engine.client.ws_connect("/ws/agent", headers={"Authorization": f"Bearer {token}"})
        socket = Socket(ws)
        self.sockets.append(socket)
        await socket.pong()
        return socket

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """``centralita`` as an operator runs it, against this engine's database (no broker)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
        env.update(
            CENTRALITA_DATABASE_URL=self.engine.settings.database_url,
            CENTRALITA_LOG_FORMAT="json",
            CENTRALITA_LOG_LEVEL="WARNING",
            PYTHONPATH=str(REPO),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "centralita.cli", *args, env=env, stdout=-1, stderr=-1
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def scene(start_engine: StartEngine, work_secrets: None) -> AsyncIterator[Scene]:
    seeded: dict[str, Workspace] = {}

    async def seed(db: Any) -> None:
        seeded["alfa"] = await seed_workspace_of(db, "alfa", "113829475016341")
        seeded["beta"] = await seed_workspace_of(db, "beta", "113829475016342")

    clock = ManualClock(NOW)
    engine = await start_engine(seed=seed, clock=clock, token_recheck_s=RECHECK_S)
    for ws in seeded.values():
        await router_active(engine, ws.id)
    found = Scene(engine, clock, seeded["alfa"], seeded["beta"])
    yield found
    for socket in found.sockets:
        await socket.close()


def _refused(status: int, body: dict[str, Any], why: str) -> None:
    assert status == 401, body
    assert body["error"]["field"] == "Authorization" and body["error"]["message"] == why, body


async def test_an_issued_token_expires_at_its_lifetime_and_its_open_socket_is_closed(scene: Scene) -> None:
    issued = await scene.issue(role="agent", agent_id=str(scene.a.agents["ana"]), name="ana", expires_in="1h")
    token, item = issued["token"], issued["item"]
    assert item["expires_at"] == (NOW + timedelta(hours=1)).isoformat() and item["status"] == "active"
    assert (await scene.call("GET", "/api/me", token))[0] == 200
    socket = await scene.connect(token)

    scene.clock.advance(3600)
    code, reason = await socket.close_of_server()
    assert (code, reason) == (TOKEN_REFUSED, "token expired")
    _refused(*await scene.call("GET", "/api/me", token), "the token expired")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await scene.engine.client.ws_connect("/ws/agent", params={"access_token": token})
    assert refused.value.status == 401
    assert (await scene.listed(item["id"]))["status"] == "expired"


async def test_a_token_without_expiry_from_before_expiries_keeps_working(scene: Scene) -> None:
    issued = await scene.issue(role="supervisor", name="wall board")
    async with scene.engine.database.transaction() as session:
        await session.execute(
            sa.update(ApiTokenRow)
            .where(ApiTokenRow.id == uuid.UUID(issued["item"]["id"]))
            .values(expires_at=None)
        )
    assert (await scene.listed(issued["item"]["id"]))["expires_at"] is None
    scene.clock.advance(3 * 365 * 86400)
    assert (await scene.call("GET", "/api/agents", issued["token"]))[0] == 200
    _refused(*await scene.call("GET", "/api/me", scene.a.tokens["admin"]), "the token expired")


async def test_revoking_through_the_api_refuses_the_next_request_and_closes_the_socket(scene: Scene) -> None:
    with capture_logs() as logs:
        issued = await scene.issue(role="agent", agent_id=str(scene.a.agents["ana"]), name="ana desk")
        token = issued["token"]
        socket = await scene.connect(token)
        started = asyncio.get_running_loop().time()
        revoked = await scene.admin("POST", f"/api/admin/tokens/{issued['item']['id']}/revoke")
        assert revoked["status"] == "revoked" and revoked["revoked_at"] == NOW.isoformat()
        _refused(*await scene.call("GET", "/api/me", token), "the token was revoked")
        code, reason = await socket.close_of_server()
        took = asyncio.get_running_loop().time() - started
    assert (code, reason) == (TOKEN_REFUSED, "token revoked")
    assert took < CLOSED_WITHIN_S
    assert token not in repr(logs) and token[4:] not in repr(logs)
    refusal = next(e for e in logs if e["event"] == "gateway.token_refused")
    assert refusal["token_id"] == issued["item"]["id"] and refusal["reason"] == "revoked"
    # Revoking again changes nothing: the first revocation's time stays.
    scene.clock.advance(10)
    again = await scene.admin("POST", f"/api/admin/tokens/{issued['item']['id']}/revoke")
    assert again["revoked_at"] == NOW.isoformat()


async def test_revoking_through_the_cli_closes_the_open_socket_within_seconds(scene: Scene) -> None:
    issued = await scene.issue(role="agent", agent_id=str(scene.a.agents["beto"]), name="beto desk")
    other = await scene.connect(scene.a.tokens["ana"])  # another agent's socket stays open
    socket = await scene.connect(issued["token"])
    code, out, err = await scene.cli("token", "revoke", issued["item"]["id"])
    done = asyncio.get_running_loop().time()
    assert code == 0, err
    assert json.loads(out)["status"] == "revoked" and issued["token"] not in out + err
    assert await socket.close_of_server() == (TOKEN_REFUSED, "token revoked")
    assert asyncio.get_running_loop().time() - done < CLOSED_WITHIN_S
    _refused(*await scene.call("GET", "/api/me", issued["token"]), "the token was revoked")
    await asyncio.sleep(3 * RECHECK_S)
    assert not other.closed.done()
    await other.pong()


async def test_rotating_refuses_the_old_token_and_the_new_one_acts_as_it(scene: Scene) -> None:
    issued = await scene.issue(role="agent", agent_id=str(scene.a.agents["ana"]), name="ana laptop")
    old_id = issued["item"]["id"]
    socket = await scene.connect(issued["token"])
    rotated = await scene.admin("POST", f"/api/admin/tokens/{old_id}/rotate")
    new = rotated["token"]
    assert rotated["replaces"] == old_id and new != issued["token"]
    assert {k: rotated["item"][k] for k in ("role", "agent_id", "name")} == {
        "role": "agent",
        "agent_id": str(scene.a.agents["ana"]),
        "name": "ana laptop",
    }
    assert rotated["item"]["expires_at"] == (NOW + timedelta(days=30)).isoformat()
    _refused(*await scene.call("GET", "/api/me", issued["token"]), "the token was revoked")
    status, me = await scene.call("GET", "/api/me", new)
    assert status == 200 and me["token_id"] == rotated["item"]["id"]
    assert me["agent"]["id"] == str(scene.a.agents["ana"])
    assert await socket.close_of_server() == (TOKEN_REFUSED, "token revoked")
    await scene.connect(new)
    # A revoked token is not rotated again (that would undo its revocation).
    status, body = await scene.call("POST", f"/api/admin/tokens/{old_id}/rotate", scene.a.tokens["admin"], {})
    assert status == 409 and body["error"]["field"] == "token_id"
    # The CLI rotates too; its 12h lifetime is the new token's.
    code, out, err = await scene.cli("token", "rotate", rotated["item"]["id"], "--expires-in", "12h")
    assert code == 0, err
    newest = out.strip()
    assert newest.startswith("ctl_")
    _refused(*await scene.call("GET", "/api/me", new), "the token was revoked")
    assert (await scene.call("GET", "/api/me", newest))[0] == 200


async def test_the_list_shows_last_use_written_at_most_once_a_minute(scene: Scene) -> None:
    issued = await scene.issue(role="supervisor", name="wall board")
    token, token_id = issued["token"], issued["item"]["id"]
    assert issued["item"]["last_used_at"] is None
    assert (await scene.listed(token_id))["last_used_at"] is None
    assert (await scene.call("GET", "/api/agents", token))[0] == 200
    assert (await scene.listed(token_id))["last_used_at"] == NOW.isoformat()
    scene.clock.advance(30)
    assert (await scene.call("GET", "/api/agents", token))[0] == 200
    assert (await scene.listed(token_id))["last_used_at"] == NOW.isoformat()  # within the minute
    scene.clock.advance(31)
    assert (await scene.call("GET", "/api/agents", token))[0] == 200
    used = (NOW + timedelta(seconds=61)).isoformat()
    assert (await scene.listed(token_id))["last_used_at"] == used
    code, out, err = await scene.cli("token", "list", "--workspace", "alfa")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert next(line for line in lines if line["id"] == token_id)["last_used_at"] == used
    assert {line["workspace"] for line in lines} == {"alfa"} and len(lines) == 5  # 4 seeded + 1
    assert token not in out and "sha256" not in out and "token_sha256" not in out


async def test_an_open_socket_records_its_tokens_use(scene: Scene) -> None:
    issued = await scene.issue(role="agent", agent_id=str(scene.a.agents["ana"]))
    await scene.connect(issued["token"])
    scene.clock.advance(120)
    used = (NOW + timedelta(seconds=120)).isoformat()
    for _ in range(50):  # the socket's next re-check records it
        if (await scene.listed(issued["item"]["id"]))["last_used_at"] == used:
            break
        await asyncio.sleep(RECHECK_S / 2)
    else:
        pytest.fail("the open socket's token was not recorded as used")


async def test_another_workspaces_tokens_are_404_and_never_listed(scene: Scene) -> None:
    beta_items = (await scene.admin("GET", "/api/admin/tokens", ws=scene.b))["items"]
    beta_id = next(item["id"] for item in beta_items if item["role"] == "admin")
    admin = scene.a.tokens["admin"]
    for action in ("revoke", "rotate"):
        status, body = await scene.call("POST", f"/api/admin/tokens/{beta_id}/{action}", admin, {})
        assert status == 404 and body["error"]["field"] == "token_id", body
    alfa_items = (await scene.admin("GET", "/api/admin/tokens"))["items"]
    assert beta_id not in {item["id"] for item in alfa_items}
    assert {item["workspace"] for item in alfa_items} == {"alfa"}
    status, body = await scene.call(
        "POST", "/api/admin/tokens", admin, {"role": "agent", "agent_id": str(scene.b.agents["ana"])}
    )
    assert status == 404 and body["error"]["field"] == "agent_id", body
    assert (await scene.call("GET", "/api/agents", scene.b.tokens["admin"]))[0] == 200  # untouched


BAD_REQUESTS: list[tuple[dict[str, Any], str, str]] = [
    ({"role": "agent"}, "agent_id", "an agent token needs agent_id"),
    ({"role": "admin", "expires_in": "12x"}, "expires_in", "is not a duration"),
    ({"role": "admin", "expires_in": "0h"}, "expires_in", "longer than 0 seconds"),
    ({"role": "admin", "expires_in": "400d"}, "expires_in", "at most 366 days"),
    ({"role": "root"}, "role", "role"),
    ({"role": "admin", "token": "ctl_mine"}, "token", "unknown field 'token'"),
]


async def test_a_bad_token_request_is_400_naming_the_field(scene: Scene) -> None:
    for body, where, message in BAD_REQUESTS:
        status, answer = await scene.call("POST", "/api/admin/tokens", scene.a.tokens["admin"], body)
        assert status == 400 and answer["error"]["field"] == where, (body, answer)
        assert message in answer["error"]["message"], (body, answer)


async def test_only_an_admin_manages_tokens(scene: Scene) -> None:
    for who in ("ana", "carla"):
        status, body = await scene.call("GET", "/api/admin/tokens", scene.a.tokens[who])
        assert status == 403, body
    status, body = await scene.call("POST", "/api/admin/tokens/not-a-uuid/revoke", scene.a.tokens["admin"])
    assert status == 400 and body["error"]["field"] == "token_id"


@pytest.mark.parametrize(
    "backend", [pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.rabbitmq])], indirect=True
)
async def test_with_the_database_unreachable_sockets_stay_open_and_close_once_it_is_back(
    start_engine: StartEngine, backend_settings: Settings, work_secrets: None
) -> None:
    """The re-check fails open: an outage does not disconnect every agent, and the first check
    that reads the database again closes the socket of a token revoked meanwhile."""
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    real_url = backend_settings.database_url
    proxied = real_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    assert proxied != real_url
    seeded: dict[str, Workspace] = {}

    async def seed(db: Any) -> None:
        seeded["alfa"] = await seed_workspace_of(db, "alfa", "113829475016343")

    clock = ManualClock(NOW)
    engine = await start_engine(seed=seed, clock=clock, token_recheck_s=RECHECK_S, database_url=proxied)
    scene = Scene(engine, clock, seeded["alfa"], seeded["alfa"])
    try:
        await router_active(engine, scene.a.id)
        issued = await scene.issue(role="agent", agent_id=str(scene.a.agents["ana"]))
        socket = await scene.connect(issued["token"])
        with capture_logs() as logs:
            await proxy.cut()
            direct = Database(real_url)
            try:
                async with direct.transaction() as session:
                    await TokenStore(session).revoke(uuid.UUID(issued["item"]["id"]), NOW)
            finally:
                await direct.dispose()
            await asyncio.sleep(5 * RECHECK_S)
            assert not socket.closed.done()
            await socket.pong()
            await proxy.restore()
            assert await socket.close_of_server(within_s=5) == (TOKEN_REFUSED, "token revoked")
        assert any(e["event"] == "gateway.tokens_not_rechecked" for e in logs)
    finally:
        for found in scene.sockets:
            await found.close()
        await proxy.cut()
