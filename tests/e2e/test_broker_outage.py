"""The engine outlives its broker and its own workers' crashes without being restarted by hand.

The engine (HTTP, pipeline, router, gateway, outbound, config watch) reaches RabbitMQ through a
loopback proxy: ``cut()`` drops every connection like a broker that died, ``restore()`` brings
it back.  A Meta-like sender posts signed WhatsApp webhooks all along and retries any non-200.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from centralita.web.keys import RUNTIME
from core.ids import new_id
from core.settings import Settings
from router.service import ManualClock
from storage.tables import MessageRow
from tests.support.campaigns import signed, whatsapp_text
from tests.support.routing import AgentSocket, RoutingScene, start_scene
from tests.support.tcpproxy import TcpProxy

PHONE_NUMBER_ID = "106540352266077"
SECRET = "outage-app-secret"
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: apagon
campaign: {{name: soporte, display_name: Soporte, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 2077"
      waba_id: "300000000000077"
      app_id: "400000000000077"
      app_secret_env: OUTAGE_WA_SECRET
      access_token_env: OUTAGE_WA_TOKEN
      verify_token_env: OUTAGE_WA_VERIFY
      default_queue: general
skills:
  - name: soporte
queues:
  - name: general
    required_skills: {{soporte: 1}}
    channels: [whatsapp]
agents:
  - {{email: ana@apagon.example, name: Ana, skills: {{soporte: 9}}, capacity: {{whatsapp: 100}}}}
  - {{email: beto@apagon.example, name: Beto, skills: {{soporte: 9}}, capacity: {{whatsapp: 100}}}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTAGE_WA_SECRET", SECRET)
    monkeypatch.setenv("OUTAGE_WA_TOKEN", "EAA-outage")
    monkeypatch.setenv("OUTAGE_WA_VERIFY", "outage-verify")


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    found = TcpProxy("127.0.0.1", 5672)
    await found.start()
    yield found
    await found.cut()


@pytest.fixture
async def scene(
    postgres_url: str, rabbitmq_url: str, unique_prefix: str, proxy: TcpProxy
) -> AsyncIterator[RoutingScene]:
    settings = Settings(
        database_url=postgres_url,
        broker_url=rabbitmq_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}"),
        broker_prefix=unique_prefix,
        broker_ephemeral=True,
        broker_quorum=False,  # see broker/rabbitmq.py: quorum churn wedges RabbitMQ 3.10
        ingest_partitions=2,
    )
    found = await start_scene(
        settings,
        MANIFEST,
        ManualClock(MONDAY_10),
        workspace="apagon",
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        graph_base_url="http://127.0.0.1:9",
        router_resync_s=1.0,  # the router's heartbeat meets the outage: it restarts as a standby
    )
    yield found
    if proxy._server is None:  # cut by the test: the cleanup needs the broker back
        await proxy.restore()
        if not found.client.server.closed:
            await _until_ready(found.client, within_s=30)
    await found.stop()


class MetaSender:
    """One new customer's message every ``interval_s``; a non-200 is sent again until it is 200."""

    def __init__(self, client: TestClient, clock: ManualClock, interval_s: float = 0.02) -> None:
        self.client = client
        self.clock = clock
        self.interval_s = interval_s
        self.answers: list[int] = []
        self.accepted: set[str] = set()  # wamids answered 200
        self._sent = 0
        self._inflight: set[asyncio.Task[None]] = set()

    def body(self) -> tuple[str, bytes]:
        self._sent += 1
        wamid = f"wamid.{new_id().hex}"
        data = json.loads(whatsapp_text(PHONE_NUMBER_ID, f"52155{self._sent:08d}", wamid, "Hola"))
        data["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(
            int(self.clock().timestamp())
        )
        return wamid, json.dumps(data).encode()

    async def deliver(self, wamid: str, body: bytes) -> None:
        while True:
            response = await self.client.post("/webhooks/whatsapp", data=body, headers=signed(body, SECRET))
            self.answers.append(response.status)
            if response.status == 200:
                self.accepted.add(wamid)
                return
            await asyncio.sleep(0.2)  # Meta's retry, sped up

    async def run(self, until: asyncio.Event) -> None:
        while not until.is_set():
            task = asyncio.create_task(self.deliver(*self.body()))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), self.interval_s)

    async def drained(self) -> None:
        await asyncio.gather(*self._inflight)


class AcceptingAgent:
    """An agent's console that accepts every offer, and answers again an offer still unassigned
    after ``retry_s`` (its answer may have died with the broker): the router takes one offer per
    agent at a time, so an agent who never answers is offered one conversation, ever."""

    def __init__(self, socket: AgentSocket, retry_s: float = 2.0) -> None:
        self.socket = socket
        self.retry_s = retry_s
        self._answered: dict[str, float] = {}  # offer id → loop time of its last answer

    def offered(self) -> set[str]:
        return {o["conversation_id"] for o in self.socket.received("offer")}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            assigned = {a["conversation_id"] for a in self.socket.received("assigned")}
            withdrawn = {w["offer_id"] for w in self.socket.received("offer_withdrawn")}
            for offer in self.socket.received("offer"):
                offer_id = offer["offer_id"]
                if offer["conversation_id"] in assigned or offer_id in withdrawn:
                    continue
                last = self._answered.get(offer_id)
                if last is None or loop.time() - last > self.retry_s:
                    self._answered[offer_id] = loop.time()
                    with contextlib.suppress(ConnectionError):
                        await self.socket.answer(offer)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2), self.socket._arrived:
                    await self.socket._arrived.wait()


async def _stored(scene: RoutingScene) -> set[str]:
    async with scene.database.session() as session:
        rows = await session.execute(sa.select(MessageRow.external_id).where(MessageRow.direction == "in"))
        return {r for r in rows.scalars() if r is not None}


async def _conversations_of(scene: RoutingScene, wamids: set[str]) -> set[str]:
    async with scene.database.session() as session:
        rows = await session.execute(
            sa.select(MessageRow.conversation_id).where(MessageRow.external_id.in_(sorted(wamids)))
        )
        return {str(c) for c in rows.scalars() if c is not None}


async def _readyz(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json()


async def _until_ready(client: TestClient, within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while (await _readyz(client))[0] != 200:  # noqa: ASYNC110 - polling a server we do not own
            await asyncio.sleep(0.2)


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_storing_and_offering_resume_by_themselves_after_the_broker_was_down_for_seconds(
    scene: RoutingScene, proxy: TcpProxy
) -> None:
    agents = [
        AcceptingAgent(await scene.connect("ana@apagon.example")),
        AcceptingAgent(await scene.connect("beto@apagon.example")),
    ]
    answering = [asyncio.create_task(a.run()) for a in agents]
    sender = MetaSender(scene.client, scene.clock, interval_s=0.1)
    stop = asyncio.Event()
    traffic = asyncio.create_task(sender.run(stop))
    try:
        async with asyncio.timeout(20):
            while len(sender.accepted) < 20:  # noqa: ASYNC110 - the sender is a loopback client
                await asyncio.sleep(0.05)
        before = set(sender.accepted)

        await proxy.cut()  # the broker dies with deliveries in flight in the pipeline and router
        async with asyncio.timeout(10):
            while 503 not in sender.answers:  # noqa: ASYNC110 - waiting for the ingress to say so
                await asyncio.sleep(0.05)
        status, body = await _readyz(scene.client)
        assert status == 503 and "broker" in body["error"]["message"]
        await asyncio.sleep(3)  # the outage lasts a few seconds on purpose: not a wait for a condition
        await proxy.restore()

        await _until_ready(scene.client, within_s=30)
        after_restore = len(sender._inflight) + len(sender.accepted)
        async with asyncio.timeout(30):
            while len(sender.accepted) < after_restore + 20:  # noqa: ASYNC110 - loopback client
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await traffic
    async with asyncio.timeout(30):
        await sender.drained()
    accepted = sender.accepted
    assert before < accepted

    async with asyncio.timeout(60):
        while not accepted <= await _stored(scene):  # noqa: ASYNC110 - the pipeline commits on its own
            await asyncio.sleep(0.2)
    conversations = await _conversations_of(scene, accepted)
    try:
        async with asyncio.timeout(60):
            while not conversations <= {c for a in agents for c in a.offered()}:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    finally:
        for task in answering:
            task.cancel()
        await asyncio.gather(*answering, return_exceptions=True)

    assert set(sender.answers) <= {200, 503}  # never a 500 while the broker was away
    assert sender.answers.count(503) > 0
    status, body = await _readyz(scene.client)
    assert status == 200, body


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_a_webhook_while_the_broker_is_down_is_answered_503_never_500(
    scene: RoutingScene, proxy: TcpProxy
) -> None:
    sender = MetaSender(scene.client, scene.clock)
    await proxy.cut()
    answers = []
    for _ in range(20):  # across the moments of the connection dying and reconnecting
        _wamid, body = sender.body()
        response = await scene.client.post("/webhooks/whatsapp", data=body, headers=signed(body, SECRET))
        answers.append((response.status, (await response.json())["error"]["code"]))
    assert set(answers) == {(503, "broker_unavailable")}


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_the_engine_shuts_down_cleanly_while_the_broker_is_away(
    scene: RoutingScene, proxy: TcpProxy
) -> None:
    await proxy.cut()
    await scene.client.close()  # its queues are left to the next cleanup, its connection is closed
    assert scene.client.server.closed


async def test_readyz_names_a_crashed_worker_and_is_ready_again_once_it_was_restarted(
    backend_settings: Settings,
) -> None:
    scene = await start_scene(
        backend_settings.model_copy(update={"broker_ephemeral": True, "broker_quorum": False}),
        MANIFEST,
        ManualClock(MONDAY_10),
        workspace="apagon",
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        graph_base_url="http://127.0.0.1:9",
    )
    try:
        await _until_ready(scene.client, within_s=10)
        supervisor = scene.client.server.app[RUNTIME].routers
        assert supervisor is not None
        router = supervisor.services[scene.workspace_id]
        broken = True
        original = router._sleep

        async def crash() -> None:
            if broken:
                raise RuntimeError("a bug in the router loop")
            await original()

        router._sleep = crash  # type: ignore[method-assign]
        router.nudge()
        name = f"router.{scene.workspace_id}"
        async with asyncio.timeout(10):
            while (found := await _readyz(scene.client))[0] != 503:  # noqa: ASYNC110 - a server we do not own
                await asyncio.sleep(0.05)
        _status, body = found
        assert f"worker {name}" in body["error"]["message"]
        assert body["workers"][name]["last_error"] == "RuntimeError"
        assert body["workers"][name]["state"] == "restarting"

        broken = False
        await _until_ready(scene.client, within_s=15)
        _status, body = await _readyz(scene.client)
        assert body["workers"][name]["state"] == "running" and body["workers"][name]["restarts"] >= 1
    finally:
        await scene.stop()
