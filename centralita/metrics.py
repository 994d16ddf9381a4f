"""The engine's Prometheus series, one ``CollectorRegistry`` per ``Runtime``.

Each runtime owns its registry (never prometheus-client's global one), so several apps in one
process — the tests — count apart.  The workers record what they did through the methods below;
``GET /metrics`` (``centralita.web.metrics``) refreshes the queue gauges and the event-delivery
backlog from the database and
renders the registry in the Prometheus text format.  docs/metrics.md lists every series.

Labels never carry customer data: routes are the aiohttp route's template (no ids), channels and
error codes come from bounded sets (an unknown channel is ``unknown``), workspaces are their ids
and queues their configured names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from router.policy.commands import Assigned, Offer, WithdrawOffer
from router.service import BatchReport
from storage.queue_now import QueueNow

__all__ = ["HTTP_METHODS", "Metrics", "partition_of"]

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Seconds: requests and router rounds are milliseconds when well; lag can reach minutes in an outage.
_FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def partition_of(routing_key: str) -> str:
    """The ingest partition a delivery came through (``ingest.<n>`` → ``n``)."""
    tail = routing_key.rsplit(".", 1)[-1]
    return tail if tail.isdigit() else "unknown"


class _QueueCollector(Collector):
    """The queue gauges and the event-delivery backlog of the last refresh (``Metrics.set_queues``,
    ``Metrics.set_backlog``), rendered at each scrape."""

    def __init__(self) -> None:
        self.queues: list[QueueNow] = []
        self.now: datetime | None = None
        self.backlog: dict[str, int] = {}  # workspace id → pending events

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> Iterator[Metric]:
        labels = ["workspace_id", "queue"]
        waiting = GaugeMetricFamily(
            "centralita_queue_waiting", "Conversations waiting in the queue for an agent.", labels=labels
        )
        offered = GaugeMetricFamily(
            "centralita_queue_offered",
            "Conversations of the queue with a live offer to an agent.",
            labels=labels,
        )
        longest = GaugeMetricFamily(
            "centralita_queue_longest_wait_seconds",
            "Since the oldest waiting or offered conversation entered the queue (0 when none).",
            labels=labels,
        )
        backlog = GaugeMetricFamily(
            "centralita_event_delivery_backlog",
            "Webhook events waiting to be delivered (pending in the outbox: due, retrying or paused).",
            labels=["workspace_id"],
        )
        for workspace_id, pending in sorted(self.backlog.items()):
            backlog.add_metric([workspace_id], pending)
        for q in self.queues:
            key = [str(q.workspace_id), q.queue]
            waiting.add_metric(key, q.waiting)
            offered.add_metric(key, q.offered)
            wait = 0.0
            if q.oldest_enqueued_at is not None and self.now is not None:
                wait = max(0.0, (self.now - q.oldest_enqueued_at).total_seconds())
            longest.add_metric(key, wait)
        yield from (waiting, offered, longest, backlog)


class Metrics:
    """The series of one runtime, and how the workers record into them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "centralita_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "centralita_http_request_duration_seconds",
            "Time to answer an HTTP request (a WebSocket's: its lifetime), by route template.",
            ["method", "route"],
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.webhooks_accepted = Counter(
            "centralita_webhooks_accepted",
            "Provider webhook deliveries verified and durably queued.",
            ["channel"],
            registry=r,
        )
        self.webhooks_refused = Counter(
            "centralita_webhooks_refused",
            "Provider webhook deliveries refused, by the error code answered.",
            ["channel", "reason"],
            registry=r,
        )
        self.pipeline_batch_size = Histogram(
            "centralita_pipeline_batch_size",
            "Deliveries of one ingest partition in one pipeline batch (count: batches).",
            ["partition"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.pipeline_lag = Histogram(
            "centralita_pipeline_lag_seconds",
            "At each batch: now minus the oldest delivery's received time, per ingest partition.",
            ["partition"],
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.router_round = Histogram(
            "centralita_router_round_seconds",
            "One committed router round: read, decide, commit and publish.",
            ["workspace_id"],
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.router_offers = Counter(
            "centralita_router_offers", "Offers made to agents.", ["workspace_id"], registry=r
        )
        self.router_assignments = Counter(
            "centralita_router_assignments",
            "Conversations assigned to an agent (accepted offers and forced assignments).",
            ["workspace_id", "forced"],
            registry=r,
        )
        self.router_offer_timeouts = Counter(
            "centralita_router_offer_timeouts",
            "Offers withdrawn because the agent did not answer in time.",
            ["workspace_id"],
            registry=r,
        )
        self.outbound_sends = Counter(
            "centralita_outbound_sends",
            "Outbound send attempts by channel and result (sent, retry, failed), with the error "
            "code and the provider's error code of a failure.",
            ["channel", "result", "code", "provider_code"],
            registry=r,
        )
        self.event_deliveries = Counter(
            "centralita_event_deliveries",
            "Webhook delivery attempts by result (delivered, retry, failed: given up or refused for "
            "good) and the endpoint's HTTP status (empty: no answer).",
            ["result", "status_code"],
            registry=r,
        )
        self._queues = _QueueCollector()
        r.register(self._queues)

    # ------------------------------------------------------------------ recording

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        verb = method if method in HTTP_METHODS else "other"
        self.http_requests.labels(verb, route, str(status)).inc()
        self.http_duration.labels(verb, route).observe(seconds)

    def webhook_accepted(self, channel: str) -> None:
        self.webhooks_accepted.labels(channel).inc()

    def webhook_refused(self, channel: str, reason: str) -> None:
        self.webhooks_refused.labels(channel, reason).inc()

    def pipeline_batch(self, received: Mapping[str, Iterable[datetime]], now: datetime) -> None:
        """One batch: for each partition, the received times of its deliveries."""
        for partition, times in received.items():
            stamps = list(times)
            if not stamps:
                continue
            self.pipeline_batch_size.labels(partition).observe(len(stamps))
            self.pipeline_lag.labels(partition).observe(max(0.0, (now - min(stamps)).total_seconds()))

    def router_report(self, report: BatchReport) -> None:
        """A router's committed round (a ``RouterSupervisor`` observer)."""
        ws = str(report.workspace_id)
        if report.round_s is not None:
            self.router_round.labels(ws).observe(report.round_s)
        for command in report.commands:
            if isinstance(command, Offer):
                self.router_offers.labels(ws).inc()
            elif isinstance(command, Assigned):
                self.router_assignments.labels(ws, str(command.forced).lower()).inc()
            elif isinstance(command, WithdrawOffer) and command.reason == "timeout":
                self.router_offer_timeouts.labels(ws).inc()

    def outbound_send(
        self, channel: str, result: str, *, code: str | None = None, provider_code: object = None
    ) -> None:
        self.outbound_sends.labels(
            channel, result, code or "", "" if provider_code is None else str(provider_code)
        ).inc()

    def event_delivery(self, result: str, status_code: int | None) -> None:
        """One attempt of the webhook delivery worker, by the event's outcome."""
        self.event_deliveries.labels(result, "" if status_code is None else str(status_code)).inc()

    def set_backlog(self, pending: Mapping[uuid.UUID, int]) -> None:
        """The events pending per workspace as read now (``GET /metrics``)."""
        self._queues.backlog = {str(k): int(v) for k, v in pending.items()}

    def set_queues(self, queues: Iterable[QueueNow], now: datetime) -> None:
        """The queue gauges as read now (``GET /metrics`` calls it before rendering)."""
        self._queues.queues = list(queues)
        self._queues.now = now

    # ------------------------------------------------------------------ reading

    def series(self) -> frozenset[str]:
        """Every series name the registry exposes (``_total``, ``_bucket``…): what a dashboard may query."""
        names: set[str] = set()
        for family in self.registry.collect():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
        return frozenset(names)
