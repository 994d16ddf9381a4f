"""The engine's series (``centralita.metrics``) and the Grafana dashboard that reads them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from centralita.metrics import Metrics, partition_of
from core.ids import AgentId, ConversationId, OfferId, QueueId, WorkspaceId, new_id
from router.policy.commands import Assigned, Decision, Offer, WithdrawOffer
from router.service import BatchReport
from storage.queue_now import QueueNow
from tests.support.metrics import Scrape

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "centralita.json"
NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
SERIES = re.compile(r"\bcentralita_[a-z_]+")


def _read(metrics: Metrics) -> Scrape:
    text = generate_latest(metrics.registry).decode()
    return Scrape(tuple(s for f in text_string_to_metric_families(text) for s in f.samples))


def _offer(ws: WorkspaceId) -> Offer:
    conversation, queue, agent = ConversationId(new_id()), QueueId(new_id()), AgentId(new_id())
    decision = Decision(
        conversation_id=conversation,
        queue_id=queue,
        workspace_id=ws,
        at=0.0,
        trigger="arrival",
        step=0,
        min_proficiency=None,
        detail="minimal",
        considered=1,
        candidates=(),
        filtered=(),
        filtered_counts=(),
        winner=agent,
    )
    return Offer(
        offer_id=OfferId(new_id()),
        conversation_id=conversation,
        agent_id=agent,
        queue_id=queue,
        channel="whatsapp",
        expires_at=30.0,
        decision=decision,
    )


def test_a_delivery_is_counted_under_its_ingest_partition() -> None:
    assert partition_of("ingest.3") == "3"
    assert partition_of("something-else") == "unknown"


def test_a_router_round_counts_its_offers_assignments_and_timeouts_and_its_time() -> None:
    metrics = Metrics()
    ws = WorkspaceId(new_id())
    offer = _offer(ws)
    commands = (
        offer,
        WithdrawOffer(
            offer_id=offer.offer_id,
            conversation_id=offer.conversation_id,
            agent_id=offer.agent_id,
            reason="timeout",
        ),
        WithdrawOffer(
            offer_id=offer.offer_id,
            conversation_id=offer.conversation_id,
            agent_id=offer.agent_id,
            reason="agent_away",
        ),
        Assigned(
            conversation_id=offer.conversation_id,
            agent_id=offer.agent_id,
            queue_id=offer.queue_id,
            channel="whatsapp",
            offer_id=None,
            waited_s=3.0,
            forced=True,
        ),
    )
    metrics.router_report(BatchReport(ws, 0.0, (), commands, round_s=0.02))
    metrics.router_report(BatchReport(ws, 0.0, (), (), activated=True))  # the catch-up: not a round
    found = _read(metrics)
    assert found.value("centralita_router_offers_total", workspace_id=str(ws)) == 1
    assert found.value("centralita_router_offer_timeouts_total", workspace_id=str(ws)) == 1
    assert found.value("centralita_router_assignments_total", workspace_id=str(ws), forced="true") == 1
    assert found.value("centralita_router_round_seconds_count", workspace_id=str(ws)) == 1
    assert found.value("centralita_router_round_seconds_sum", workspace_id=str(ws)) == 0.02


def test_a_pipeline_batch_records_its_size_and_the_lag_of_its_oldest_delivery_per_partition() -> None:
    metrics = Metrics()
    metrics.pipeline_batch(
        {"0": [NOW - timedelta(seconds=4), NOW - timedelta(seconds=1)], "1": [NOW], "2": []}, NOW
    )
    found = _read(metrics)
    assert found.value("centralita_pipeline_batch_size_sum", partition="0") == 2
    assert found.value("centralita_pipeline_lag_seconds_sum", partition="0") == 4
    assert found.value("centralita_pipeline_batch_size_count", partition="1") == 1
    assert found.value("centralita_pipeline_batch_size_count", partition="2") == 0


def test_a_failed_send_carries_its_error_code_and_the_providers() -> None:
    metrics = Metrics()
    metrics.outbound_send("whatsapp", "failed", code="channel_permanent", provider_code=131047)
    metrics.outbound_send("whatsapp", "sent")
    found = _read(metrics)
    assert (
        found.value(
            "centralita_outbound_sends_total",
            channel="whatsapp",
            result="failed",
            code="channel_permanent",
            provider_code="131047",
        )
        == 1
    )
    assert found.value("centralita_outbound_sends_total", result="sent", code="", provider_code="") == 1


def test_the_queue_gauges_are_the_last_reading_and_the_wait_is_measured_at_its_time() -> None:
    metrics = Metrics()
    ws = new_id()
    metrics.set_queues(
        [QueueNow(ws, "cobranza", 2, 1, NOW - timedelta(seconds=90)), QueueNow(ws, "ventas")], NOW
    )
    found = _read(metrics)
    cobranza = {"workspace_id": str(ws), "queue": "cobranza"}
    assert found.value("centralita_queue_waiting", **cobranza) == 2
    assert found.value("centralita_queue_offered", **cobranza) == 1
    assert found.value("centralita_queue_longest_wait_seconds", **cobranza) == 90
    assert found.value("centralita_queue_longest_wait_seconds", workspace_id=str(ws), queue="ventas") == 0
    metrics.set_queues([], NOW)
    assert _read(metrics).value("centralita_queue_waiting", **cobranza) == 0


def test_webhook_deliveries_count_by_result_and_status_and_the_backlog_is_the_last_reading() -> None:
    metrics = Metrics()
    metrics.event_delivery("retry", 503)
    metrics.event_delivery("retry", None)  # no answer: a timeout, a refused connection
    metrics.event_delivery("delivered", 200)
    ws = new_id()
    metrics.set_backlog({ws: 4})
    found = _read(metrics)
    assert found.value("centralita_event_deliveries_total", result="retry", status_code="503") == 1
    assert found.value("centralita_event_deliveries_total", result="retry", status_code="") == 1
    assert found.value("centralita_event_deliveries_total", result="delivered", status_code="200") == 1
    assert found.value("centralita_event_delivery_backlog", workspace_id=str(ws)) == 4
    metrics.set_backlog({})
    assert _read(metrics).value("centralita_event_delivery_backlog") == 0


def test_each_runtime_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.webhook_accepted("whatsapp")
    assert _read(first).value("centralita_webhooks_accepted_total") == 1
    assert _read(second).value("centralita_webhooks_accepted_total") == 0


def test_the_dashboard_queries_only_series_the_engine_exposes_and_every_family_has_a_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exposed = Metrics().series()
    queried: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(SERIES.findall(target["expr"]))
            assert names, f"{panel['title']}: {target['expr']}"
            assert names <= exposed, f"{panel['title']}: {sorted(names - exposed)} are not exposed"
            queried |= names
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert set(SERIES.findall(variable["definition"])) <= exposed
    families = {family.name for family in Metrics().registry.collect()}
    unread = {f for f in families if not any(q == f or q.startswith(f"{f}_") for q in queried)}
    assert unread == set(), "give these series a panel in examples/grafana/centralita.json"
