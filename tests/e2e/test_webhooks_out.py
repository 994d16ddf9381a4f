"""Events out as signed webhooks that lose nothing, through the real path on both backends.

A signed WhatsApp webhook in → the pipeline → the router offers to Ana on her WebSocket → she
closes with a promise to pay through the API; the facts of each step write their events to the
outbox in their own transaction, and the delivery worker POSTs them to a loopback receiver that
checks every signature as docs/integrations.md tells a receiver to.  The receiver answering 503
for a while gets the event once it recovers (once answered 2xx per id); a delivery worker
process SIGKILLed while a request is in flight leaves the event to its successor; a webhook on a
private address is refused when the manifest is applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web

from channels.meta.peer import GraphPeer
from core.ids import ConversationId
from core.settings import Settings
from router.service import ManualClock
from router.wire import ConversationClosedInput
from storage.facts import AUDIT
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token
from tests.support.metrics import Scrape, scrape
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352277017"
SECRET = "hooks-app-secret"
WA_TOKEN = "EAA-hooks"
SIGNING_SECRET = "whsec-cobranza-17"
DEADLINE_S = 20.0


def manifest(url: str | None, events: str = '["*"]') -> str:
    """The campaign, with a webhook ``crm`` at ``url`` (None: no webhook)."""
    hooks = (
        ""
        if url is None
        else f"""\
integrations:
  webhooks:
    - name: crm
      url: "{url}"
      events: {events}
      secret_env: HOOKS_SIGNING_SECRET
"""
    )
    return f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: ganchos
campaign: {{name: cobranza, display_name: Cobranza, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 2017"
      waba_id: "300000000000017"
      app_id: "400000000000017"
      app_secret_env: HOOKS_WA_SECRET
      access_token_env: HOOKS_WA_TOKEN
      verify_token_env: HOOKS_WA_VERIFY
      default_queue: cobranza
skills:
  - name: cobranza
queues:
  - name: cobranza
    required_skills: {{cobranza: 5}}
    channels: [whatsapp]
agents:
  - {{email: ana@ganchos.example, name: Ana, skills: {{cobranza: 9}}, capacity: {{whatsapp: 3}}}}
dispositions:
  - {{code: promesa, label: Promesa de pago, requires: [amount, date]}}
{hooks}"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKS_WA_SECRET", SECRET)
    monkeypatch.setenv("HOOKS_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("HOOKS_WA_VERIFY", "hooks-verify")
    monkeypatch.setenv("HOOKS_SIGNING_SECRET", SIGNING_SECRET)


# ------------------------------------------------------------------ the receiver


@dataclass
class Received:
    headers: dict[str, str]
    event: dict[str, Any]
    answered: int | None  # None: held, never answered


@dataclass
class Receiver:
    """A CRM's endpoint on loopback: verifies each signature, answers ``answers`` first, then 200."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    holding: bool = False
    received: list[Received] = field(default_factory=list)
    refused_signatures: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        timestamp = request.headers["Centralita-Timestamp"]
        expected = hmac.new(
            SIGNING_SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(request.headers["Centralita-Signature"], f"v1={expected}"):
            self.refused_signatures += 1
            return web.Response(status=401)
        event = json.loads(raw)
        assert event["id"] == request.headers["Centralita-Event-Id"]
        assert event["type"] == request.headers["Centralita-Event-Type"]
        seen = Received(dict(request.headers), event, None)
        self.received.append(seen)
        if self.holding:
            await asyncio.sleep(3600)  # the sender dies while this request is in flight
        seen.answered = self.answers.pop(0) if self.answers else 200
        return web.Response(status=seen.answered)

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.event["type"] == event_type]

    def delivered(self, event_type: str) -> list[Received]:
        return [r for r in self.of_type(event_type) if r.answered is not None and 200 <= r.answered < 300]

    async def until(
        self, done: Callable[[], bool], *, advance: Callable[[float], Any] | None = None, step_s: float = 3.0
    ) -> None:
        deadline = asyncio.get_running_loop().time() + DEADLINE_S
        while not done():
            assert asyncio.get_running_loop().time() < deadline, f"receiver got {self.received}"
            if advance is not None:
                await advance(step_s)  # retries are due on the engine's clock
            await asyncio.sleep(0.1)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/centralita", found.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hooks/centralita"
    yield found
    await runner.cleanup()


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


async def _scene(
    start: StartRoutingScene, settings: Settings, text: str, graph: GraphPeer, **overrides: Any
) -> RoutingScene:
    return await start(
        settings,
        text,
        ManualClock(datetime.now(UTC)),
        workspace="ganchos",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        webhooks_allow_private=True,
        webhook_poll_s=0.05,
        webhook_retry_initial_s=1.0,
        webhook_retry_max_s=2.0,
        **overrides,
    )


async def _promise_to_pay(scene: RoutingScene, wa_id: str = "5215512340017") -> ConversationId:
    """A customer writes; Ana takes the conversation and closes it with a promise to pay."""
    ana = await scene.connect("ana@ganchos.example")
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, wa_id, "Quiero pagar mi deuda")
    offer = await ana.next("offer", conversation_id=conversation)
    await ana.answer(offer)
    await ana.next("assigned", conversation_id=conversation)
    token = await issue_token(scene.database, "ganchos", "agent", scene.agents["ana@ganchos.example"])
    closed = await scene.client.post(
        f"/api/conversations/{conversation}/close",
        json={"disposition": {"code": "promesa", "amount": "1500.50", "date": "2026-12-15"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert closed.status == 200, await closed.text()
    await scene.input_handled(
        lambda i: isinstance(i, ConversationClosedInput) and i.conversation_id == conversation
    )
    return conversation


async def _scraped(scene: RoutingScene, ready: Callable[[Scrape], bool]) -> Scrape:
    """``GET /metrics`` once ``ready`` holds (an attempt's outcome is recorded after its answer)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not ready(found := await scrape(scene.client)):
        assert asyncio.get_running_loop().time() < deadline, "the metrics never got there"
        await asyncio.sleep(0.05)
    return found


async def _admin(scene: RoutingScene) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token(scene.database, 'ganchos', 'admin')}"}


# ------------------------------------------------------------------ the tests


async def test_a_promise_to_pay_reaches_the_crm_as_a_signed_disposition_recorded(
    backend_settings: Settings, receiver: Receiver, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> None:
    scene = await _scene(start_routing_scene, backend_settings, manifest(receiver.url), graph)
    conversation = await _promise_to_pay(scene)

    await receiver.until(lambda: bool(receiver.delivered("disposition.recorded")))
    (promise,) = receiver.delivered("disposition.recorded")
    event = promise.event
    assert event["version"] == 1 and event["workspace_id"] == str(scene.workspace_id)
    data = event["data"]
    assert data["conversation_id"] == str(conversation)
    assert data["agent_id"] == str(scene.agents["ana@ganchos.example"])
    assert (data["code"], data["label"], data["amount"], data["date"]) == (
        "promesa",
        "Promesa de pago",
        "1500.50",
        "2026-12-15",
    )
    assert receiver.refused_signatures == 0

    # The conversation's events come in the order of its life, each once.
    await receiver.until(lambda: bool(receiver.delivered("conversation.closed")))
    types = [
        r.event["type"] for r in receiver.received if r.event["data"]["conversation_id"] == str(conversation)
    ]
    assert types == [
        "conversation.opened",
        "message.received",
        "conversation.assigned",
        "conversation.closed",
        "disposition.recorded",
    ]
    assert len({r.event["id"] for r in receiver.received}) == len(receiver.received)


async def test_an_endpoint_down_for_a_while_gets_the_event_once_it_recovers_and_the_log_shows_why(
    backend_settings: Settings, receiver: Receiver, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> None:
    scene = await _scene(
        start_routing_scene,
        backend_settings,
        manifest(receiver.url, '["disposition.recorded"]'),
        graph,
        metrics_public=True,
    )
    receiver.answers = [503, 503, 503]
    await _promise_to_pay(scene)

    # Refused once, the event waits (its retry is due on the engine's clock): /metrics shows it.
    workspace = str(scene.workspace_id)
    waiting = await _scraped(
        scene, lambda m: m.value("centralita_event_deliveries_total", result="retry") == 1
    )
    assert waiting.value("centralita_event_deliveries_total", result="retry", status_code="503") == 1
    assert waiting.value("centralita_event_delivery_backlog", workspace_id=workspace) == 1

    await receiver.until(lambda: bool(receiver.delivered("disposition.recorded")), advance=scene.advance)
    attempts = receiver.of_type("disposition.recorded")
    assert [r.answered for r in attempts] == [503, 503, 503, 200]
    done = await _scraped(
        scene, lambda m: m.value("centralita_event_deliveries_total", result="delivered") == 1
    )
    assert done.value("centralita_event_deliveries_total", result="delivered", status_code="200") == 1
    assert done.value("centralita_event_deliveries_total", result="retry", status_code="503") == 3
    assert done.value("centralita_event_delivery_backlog", workspace_id=workspace) == 0
    assert len({r.event["id"] for r in attempts}) == 1  # one event, one idempotency key
    await asyncio.sleep(0.5)
    assert len(receiver.delivered("disposition.recorded")) == 1  # delivered: not sent again

    admin = await _admin(scene)
    log = await scene.client.get("/api/admin/webhooks/crm/deliveries", headers=admin)
    assert log.status == 200, await log.text()
    body = await log.json()
    assert body["paused"] is False
    assert [(i["status_code"], i["outcome"]) for i in body["items"]] == [
        (200, "delivered"),
        (503, "retry"),
        (503, "retry"),
        (503, "retry"),
    ]
    assert all(i["latency_ms"] is not None and i["type"] == "disposition.recorded" for i in body["items"])

    event_id = attempts[0].event["id"]
    again = await scene.client.post(f"/api/admin/webhooks/crm/deliveries/{event_id}/redeliver", headers=admin)
    assert again.status == 202, await again.text()
    await receiver.until(lambda: len(receiver.delivered("disposition.recorded")) == 2)
    assert receiver.delivered("disposition.recorded")[1].event == attempts[0].event  # the same event
    missing = await scene.client.get("/api/admin/webhooks/erp/deliveries", headers=admin)
    assert missing.status == 404


async def test_an_endpoint_refusing_with_a_4xx_is_not_retried(
    backend_settings: Settings, receiver: Receiver, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> None:
    scene = await _scene(
        start_routing_scene, backend_settings, manifest(receiver.url, '["disposition.recorded"]'), graph
    )
    receiver.answers = [422]
    await _promise_to_pay(scene)
    await receiver.until(lambda: bool(receiver.of_type("disposition.recorded")))
    for _ in range(5):
        await scene.advance(10)
        await asyncio.sleep(0.1)
    assert [r.answered for r in receiver.of_type("disposition.recorded")] == [422]
    log = await (
        await scene.client.get("/api/admin/webhooks/crm/deliveries", headers=await _admin(scene))
    ).json()
    assert [(i["status_code"], i["outcome"]) for i in log["items"]] == [(422, "failed")]


@contextmanager
def _delivery_process(settings: Settings) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """``centralita serve`` with only the outbound role (the delivery worker), on the scene's
    database and broker."""
    env = {**os.environ}
    worker = settings.model_copy(
        update={"roles": "outbound", "port": 0, "webhook_poll_s": 0.1, "webhook_lease_s": 1.0}
    )
    for name, value in worker.model_dump().items():
        if value is not None:
            env[f"CENTRALITA_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env["CENTRALITA_BROKER_EPHEMERAL"] = "false"
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "centralita.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        return process

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


async def test_an_event_committed_but_not_delivered_when_its_worker_is_killed_arrives_after_a_restart(
    backend_settings: Settings, receiver: Receiver, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> None:
    # The scene commits the facts but delivers nothing: the delivery worker is a process of its own.
    scene = await _scene(
        start_routing_scene,
        backend_settings,
        manifest(receiver.url, '["conversation.opened"]'),
        graph,
        roles="pipeline,router,config,followups",
    )
    receiver.holding = True
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512340018", "Hola")
    with _delivery_process(scene.settings) as start_worker:
        first = start_worker()
        await receiver.until(lambda: bool(receiver.of_type("conversation.opened")))
        first.send_signal(signal.SIGKILL)  # the request is in flight, its answer never recorded
        await asyncio.to_thread(first.wait, DEADLINE_S)
        receiver.holding = False

        start_worker()  # its lease lapsed: the next worker delivers it
        await receiver.until(lambda: bool(receiver.delivered("conversation.opened")))
    first_try, delivered = receiver.of_type("conversation.opened")
    assert first_try.answered is None
    assert delivered.event == first_try.event  # the same id: the receiver's idempotency key
    assert delivered.event["data"]["conversation_id"] == str(conversation)


async def test_a_webhook_on_a_private_address_is_refused_when_the_manifest_is_applied(
    backend_settings: Settings, receiver: Receiver, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> None:
    scene = await start_routing_scene(  # without CENTRALITA_WEBHOOKS_ALLOW_PRIVATE
        backend_settings,
        manifest(None),
        ManualClock(datetime.now(UTC)),
        workspace="ganchos",
        graph_base_url=graph.base_url,
        config_poll_s=3600.0,
    )
    admin = await _admin(scene)
    for url, why in (
        ("https://10.20.30.40/hooks", "private address"),
        ("https://127.0.0.1:8443/hooks", "loopback address"),
        ("https://169.254.169.254/latest", "link-local address"),
        (receiver.url, "must be https"),
    ):
        text = manifest(url, '["disposition.recorded"]')
        response = await scene.client.post(
            "/api/campaigns/apply", data=text, headers={**admin, "Content-Type": "application/yaml"}
        )
        assert response.status == 422, await response.text()
        (problem,) = (await response.json())["problems"]
        assert problem["code"] == "webhook_destination" and why in problem["message"]
        assert problem["path"] == "integrations.webhooks[0].url"
        assert problem["line"] == text.splitlines().index(f'      url: "{url}"') + 1


async def test_an_admin_subscribes_through_the_api_and_manages_only_what_the_api_made(
    backend_settings: Settings, receiver: Receiver, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> None:
    scene = await _scene(
        start_routing_scene, backend_settings, manifest(receiver.url, '["disposition.recorded"]'), graph
    )
    admin = await _admin(scene)
    made = await scene.client.post(
        "/api/admin/webhooks",
        json={
            "name": "crm-api",
            "url": receiver.url,
            "events": ["message.received"],
            "secret_env": "HOOKS_SIGNING_SECRET",
        },
        headers=admin,
    )
    assert made.status == 201, await made.text()
    assert (await made.json())["source"] == "api"

    # The customer's message reaches it, with its ids but never its text.
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512340019", "Mi NIP es 4321")
    await receiver.until(lambda: bool(receiver.delivered("message.received")))
    (received,) = receiver.delivered("message.received")
    data = received.event["data"]
    assert data["conversation_id"] == str(conversation)
    assert (data["channel"], data["kind"]) == ("whatsapp", "message")
    assert "4321" not in json.dumps(received.event)

    listed = await (await scene.client.get("/api/admin/webhooks", headers=admin)).json()
    assert [(w["name"], w["source"], w["active"]) for w in listed["items"]] == [
        ("crm", "manifest", True),
        ("crm-api", "api", True),
    ]

    # Only what the API made is the API's; the manifest's is changed in the manifest.
    changed = await scene.client.patch(
        "/api/admin/webhooks/crm-api", json={"events": ["conversation.*"]}, headers=admin
    )
    assert changed.status == 200 and (await changed.json())["events"] == ["conversation.*"]
    theirs = await scene.client.patch("/api/admin/webhooks/crm", json={"active": False}, headers=admin)
    assert theirs.status == 409 and (await theirs.json())["error"]["field"] == "name"
    taken = await scene.client.post(
        "/api/admin/webhooks",
        json={"name": "crm", "url": receiver.url, "events": ["*"], "secret_env": "HOOKS_SIGNING_SECRET"},
        headers=admin,
    )
    assert taken.status == 409
    unknown = await scene.client.patch(
        "/api/admin/webhooks/crm-api", json={"events": ["nope.x"]}, headers=admin
    )
    assert unknown.status == 400 and "events" in (await unknown.json())["error"]["field"]
    unset = await scene.client.patch(
        "/api/admin/webhooks/crm-api", json={"secret_env": "NOT_SET_17"}, headers=admin
    )
    assert unset.status == 400 and (await unset.json())["error"]["field"] == "secret_env"

    deleted = await scene.client.delete("/api/admin/webhooks/crm-api", headers=admin)
    assert deleted.status == 200 and (await deleted.json())["active"] is False
    agent = await issue_token(scene.database, "ganchos", "agent", scene.agents["ana@ganchos.example"])
    forbidden = await scene.client.get("/api/admin/webhooks", headers={"Authorization": f"Bearer {agent}"})
    assert forbidden.status == 403

    # Each change is in the audit trail, subject the webhook.
    async with scene.database.session() as session:
        trail = (
            await session.execute(
                sa.select(AUDIT.c.action, AUDIT.c.subject_type, AUDIT.c.subject_id)
                .where(AUDIT.c.subject_type == "webhook")
                .order_by(AUDIT.c.at, AUDIT.c.action)
            )
        ).all()
    assert sorted(map(tuple, trail)) == [
        ("webhook.changed", "webhook", "crm-api"),
        ("webhook.created", "webhook", "crm-api"),
        ("webhook.deactivated", "webhook", "crm-api"),
    ]


async def test_the_api_refuses_a_private_destination_without_the_setting(
    backend_settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> None:
    scene = await start_routing_scene(
        backend_settings,
        manifest(None),
        ManualClock(datetime.now(UTC)),
        workspace="ganchos",
        graph_base_url=graph.base_url,
        config_poll_s=3600.0,
    )
    refused = await scene.client.post(
        "/api/admin/webhooks",
        json={
            "name": "interno",
            "url": "https://10.20.30.40/hooks",
            "events": ["*"],
            "secret_env": "HOOKS_SIGNING_SECRET",
        },
        headers=await _admin(scene),
    )
    assert refused.status == 400
    body = (await refused.json())["error"]
    assert body["field"] == "url" and "private address" in body["message"]
