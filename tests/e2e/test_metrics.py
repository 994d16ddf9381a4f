"""``GET /metrics``: the series move with real traffic, and only an allowed scraper reads them.

A signed WhatsApp webhook → pipeline → router (an offer that times out, another that is
accepted) → the agent's reply through the loopback Graph peer; a webhook with a bad signature
is refused.  Scraped before and after, on the embedded backend and on PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from centralita.web.keys import OUTBOUND
from channels.meta.peer import GraphPeer
from core.settings import Settings
from router.service import ManualClock
from tests.e2e.conftest import Engine, StartEngine, StartRoutingScene
from tests.support.campaigns import issue_token, signed, whatsapp_text
from tests.support.metrics import scrape
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352266017"
SECRET = "metrics-app-secret"
WA_TOKEN = "EAA-metrics"
TOKEN = "scrape-me-2026"
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: metricas
campaign: {{name: admisiones, display_name: Admisiones, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 2099"
      waba_id: "300000000000017"
      app_id: "400000000000017"
      app_secret_env: METRICS_WA_SECRET
      access_token_env: METRICS_WA_TOKEN
      verify_token_env: METRICS_WA_VERIFY
      default_queue: informes
skills:
  - name: maestrias
queues:
  - name: informes
    required_skills: {{maestrias: 5}}
    channels: [whatsapp]
agents:
  - {{email: ana@metricas.example, name: Ana, skills: {{maestrias: 9}}, capacity: {{whatsapp: 3}}}}
  - {{email: beto@metricas.example, name: Beto, skills: {{maestrias: 6}}, capacity: {{whatsapp: 3}}}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_WA_SECRET", SECRET)
    monkeypatch.setenv("METRICS_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("METRICS_WA_VERIFY", "metrics-verify")


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


@pytest.fixture
async def scene(
    backend_settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> RoutingScene:
    return await start_routing_scene(
        backend_settings,
        MANIFEST,
        ManualClock(MONDAY_10),
        workspace="metricas",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        offer_timeout_s=30.0,
        metrics_token=SecretStr(TOKEN),
    )


async def test_the_series_move_with_a_conversation_from_webhook_to_reply(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    ws = str(scene.workspace_id)
    queue = {"workspace_id": ws, "queue": "informes"}
    before = await scrape(scene.client, TOKEN)
    assert before.value("centralita_queue_waiting", **queue) == 0  # an empty queue reads 0, not nothing

    forged = whatsapp_text(PHONE_NUMBER_ID, "5215512340017", "wamid.forged", "hola")
    refused = await scene.client.post(
        "/webhooks/whatsapp", data=forged, headers=signed(forged, "not-the-secret")
    )
    assert refused.status == 401

    ana = await scene.connect("ana@metricas.example")
    beto = await scene.connect("beto@metricas.example")
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, "5215512340017", "Quiero informes")
    await ana.next("offer", conversation_id=conversation)
    offered = await scrape(scene.client, TOKEN)
    assert offered.value("centralita_queue_offered", **queue) == 1
    assert offered.value("centralita_queue_longest_wait_seconds", **queue) == 0

    await scene.advance(31)  # Ana lets the offer lapse; Beto gets it
    offer = await beto.next("offer", conversation_id=conversation)
    lapsed = await scrape(scene.client, TOKEN)
    assert lapsed.value("centralita_queue_longest_wait_seconds", **queue) == 31  # by the engine's clock
    await beto.answer(offer)
    await beto.next("assigned", conversation_id=conversation)

    sent = asyncio.Event()  # the worker records a send before it tells its observers
    app = scene.client.app
    assert app is not None
    app[OUTBOUND].observers.append(lambda o: sent.set() if o.state == "sent" else None)
    token = await issue_token(scene.database, "metricas", "agent", beto.agent_id)
    reply = await scene.client.post(
        f"/api/conversations/{conversation}/messages",
        json={"text": "Con gusto."},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status == 202, await reply.text()
    await graph.wait_for(1, within_s=10)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    async with asyncio.timeout(10):
        await sent.wait()
    after = await scrape(scene.client, TOKEN)
    assert moved("centralita_webhooks_accepted_total", channel="whatsapp") == 1
    assert moved("centralita_webhooks_refused_total", channel="whatsapp", reason="invalid_signature") == 1
    assert moved("centralita_pipeline_batch_size_count") >= 1
    assert moved("centralita_pipeline_batch_size_sum") >= 1
    assert moved("centralita_pipeline_lag_seconds_count") >= 1
    assert moved("centralita_router_offers_total", workspace_id=ws) == 2
    assert moved("centralita_router_offer_timeouts_total", workspace_id=ws) == 1
    assert moved("centralita_router_assignments_total", workspace_id=ws, forced="false") == 1
    assert moved("centralita_router_round_seconds_count", workspace_id=ws) >= 3
    assert moved("centralita_outbound_sends_total", channel="whatsapp", result="sent", code="") == 1
    assert moved("centralita_http_requests_total", route="/webhooks/{channel}", status="200") == 1
    assert moved("centralita_http_requests_total", route="/webhooks/{channel}", status="401") == 1
    assert (
        moved(
            "centralita_http_requests_total",
            method="POST",
            route="/api/conversations/{conversation_id}/messages",
            status="202",
        )
        == 1
    )
    assert moved("centralita_http_request_duration_seconds_count", route="/webhooks/{channel}") == 2
    assert after.value("centralita_queue_waiting", **queue) == 0
    assert after.value("centralita_queue_offered", **queue) == 0
    labels = after.labels()
    assert str(conversation) not in labels and not any("5215512340017" in v for v in labels)


# -- who may scrape, and what the request counter is labelled with ------------------------------


@pytest.fixture
async def engine(start_engine: StartEngine) -> Engine:
    return await start_engine(metrics_token=SecretStr(TOKEN))


async def test_metrics_are_not_served_without_a_token_unless_declared_public(
    start_engine: StartEngine,
) -> None:
    hidden = await start_engine()
    response = await hidden.client.get("/metrics")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    public = await start_engine(metrics_public=True)
    assert (await public.client.get("/healthz")).status == 200
    assert (await scrape(public.client)).value("centralita_http_requests_total", route="/healthz") == 1


async def test_with_a_token_only_a_request_bearing_it_is_answered(engine: Engine) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = await engine.client.get("/metrics", headers=headers)
        assert response.status == 401, headers
        assert (await response.json())["error"]["code"] == "unauthenticated"
    await scrape(engine.client, TOKEN)


async def test_requests_are_counted_under_their_route_template_never_their_ids(engine: Engine) -> None:
    conversation = uuid.uuid4()
    assert (await engine.client.get(f"/api/conversations/{conversation}")).status == 401
    assert (await engine.client.get(f"/nowhere/{conversation}")).status == 404
    assert (await engine.client.get("/healthz")).status == 200
    assert (await engine.client.post(f"/webhooks/{conversation}", data=b"{}")).status == 404
    found = await scrape(engine.client, TOKEN)
    assert found.value("centralita_webhooks_refused_total", channel="unknown", reason="unknown_channel") == 1
    assert (
        found.value(
            "centralita_http_requests_total",
            method="GET",
            route="/api/conversations/{conversation_id}",
            status="401",
        )
        == 1
    )
    assert found.value("centralita_http_requests_total", route="unmatched", status="404") == 1
    assert found.value("centralita_http_requests_total", route="/healthz", status="200") == 1
    assert found.value("centralita_http_requests_total", route="/metrics", status="401") == 0
    assert not any(str(conversation) in v or "/nowhere" in v for v in found.labels())


async def test_two_apps_in_one_process_count_apart(start_engine: StartEngine) -> None:
    first = await start_engine(metrics_public=True)
    second = await start_engine(metrics_public=True)
    assert (await first.client.get("/healthz")).status == 200
    assert (await scrape(first.client)).value("centralita_http_requests_total", route="/healthz") == 1
    assert (await scrape(second.client)).value("centralita_http_requests_total", route="/healthz") == 0
