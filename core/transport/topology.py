r"""The application's broker layout as pure data (see DESIGN.md, "The pipeline").

- ``ingest`` (direct): ``ingest.<p>`` partition queues, quorum, single-active-consumer, with a
  dead-letter queue.  The ingress picks the partition with ``partition_for`` over
  (channel account, sender), so one customer's messages stay in order.
- ``route`` (direct): ``route.<workspace_id>`` queues, single-active-consumer (one live router
  per workspace, hot standbys waiting).
- ``agents`` (direct): ``agent.<agent_id>`` queues read by the gateway holding the agent's socket.
- ``events`` (topic): dashboards, metrics and outgoing webhooks bind their own queues.  Every
  key starts with its workspace, ``ws.<workspace_id>.``: ``ws.<id>.queue.stats``,
  ``ws.<id>.alert.<kind>``, ``ws.<id>.config.changed``; so a pattern ``ws.<id>.#`` is one
  tenant's events, ``ws.*.queue.stats`` every tenant's statistics, and a RabbitMQ topic
  permission ``^ws\.<id>\.`` confines a tenant's user to its own (docs/rabbitmq-events.md).
- ``outbound``: the sending worker's queue, fed through the default exchange.

Every queue is bound with its own name as routing key, so ``<exchange>, <queue name>`` is the
address of a queue.  Names live here and nowhere else.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from core.errors import InvalidInput
from core.transport.protocol import Binding, Exchange, Queue, Topology

__all__ = [
    "AGENTS_EXCHANGE",
    "ALL_ALERTS",
    "ALL_CONFIG_CHANGES",
    "ALL_QUEUE_STATS",
    "EVENTS_EXCHANGE",
    "INGEST_EXCHANGE",
    "OUTBOUND_QUEUE",
    "ROUTE_EXCHANGE",
    "agent_queue",
    "agent_topology",
    "alert_key",
    "app_topology",
    "config_changed_key",
    "events_subscription",
    "ingest_queue",
    "ingest_routing_key",
    "partition_for",
    "queue_stats_key",
    "route_queue",
    "workspace_events",
    "workspace_key_prefix",
    "workspace_topology",
]

INGEST_EXCHANGE = "ingest"
ROUTE_EXCHANGE = "route"
AGENTS_EXCHANGE = "agents"
EVENTS_EXCHANGE = "events"
OUTBOUND_QUEUE = "outbound"

_INGEST_PREFIX = "ingest."
_ROUTE_PREFIX = "route."
_AGENT_PREFIX = "agent."
_WORKSPACE_KEY = "ws."

# Patterns over every workspace (an in-cluster consumer with the engine's credentials).
ALL_QUEUE_STATS = "ws.*.queue.stats"
ALL_ALERTS = "ws.*.alert.*"
ALL_CONFIG_CHANGES = "ws.*.config.changed"


def partition_for(key: str, partitions: int) -> int:
    """A stable partition in ``range(partitions)`` for ``key`` (CRC-32: same in every process)."""
    if partitions < 1:
        raise InvalidInput("partitions must be at least 1", field="partitions")
    return zlib.crc32(key.encode("utf-8")) % partitions


def ingest_queue(partition: int) -> str:
    return f"{_INGEST_PREFIX}{partition}"


def ingest_routing_key(channel_account: str, sender: str, partitions: int) -> str:
    """Routing key on ``ingest`` for one sender of one channel account (keeps their order)."""
    return ingest_queue(partition_for(f"{channel_account}\x1f{sender}", partitions))


def route_queue(workspace_id: str) -> str:
    return f"{_ROUTE_PREFIX}{workspace_id}"


def agent_queue(agent_id: str) -> str:
    return f"{_AGENT_PREFIX}{agent_id}"


def _word(value: str, field: str) -> str:
    """One word of a topic key: no ``.`` (it would shift the words), no ``*`` or ``#``."""
    if not value or any(c in value for c in ".*#"):
        raise InvalidInput(f"{value!r} cannot be one word of a routing key", field=field)
    return value


def workspace_key_prefix(workspace_id: str) -> str:
    """What every ``events`` key of the workspace starts with: ``ws.<workspace_id>.``."""
    return f"{_WORKSPACE_KEY}{_word(workspace_id, 'workspace_id')}."


def workspace_events(workspace_id: str) -> str:
    """The pattern of all the workspace's events (``ws.<workspace_id>.#``)."""
    return f"{workspace_key_prefix(workspace_id)}#"


def alert_key(workspace_id: str, kind: str = "sla_breach") -> str:
    """Routing key on ``events`` for a workspace's alerts (``ws.<ws>.alert.<kind>``)."""
    return f"{workspace_key_prefix(workspace_id)}alert.{_word(kind, 'kind')}"


def queue_stats_key(workspace_id: str) -> str:
    """Routing key on ``events`` for a workspace's queue statistics (``ws.<ws>.queue.stats``)."""
    return f"{workspace_key_prefix(workspace_id)}queue.stats"


def config_changed_key(workspace_id: str) -> str:
    """Routing key on ``events`` announcing that a workspace's configuration changed."""
    return f"{workspace_key_prefix(workspace_id)}config.changed"


def app_topology(partitions: int, *, max_backlog: int | None = None) -> Topology:
    """Exchanges, ingest partitions and the outbound queue: what every process declares at start.

    ``max_backlog`` bounds each ingest partition (``Queue.max_length``): past it the ingress's
    publish is refused (``Overloaded``) and webhooks answer 503 so the provider retries later.
    """
    if partitions < 1:
        raise InvalidInput("partitions must be at least 1", field="partitions")
    ingest = [
        Queue(ingest_queue(p), single_active_consumer=True, max_length=max_backlog) for p in range(partitions)
    ]
    return Topology(
        exchanges=(
            Exchange(INGEST_EXCHANGE, "direct"),
            Exchange(ROUTE_EXCHANGE, "direct"),
            Exchange(AGENTS_EXCHANGE, "direct"),
            Exchange(EVENTS_EXCHANGE, "topic"),
        ),
        queues=(*ingest, Queue(OUTBOUND_QUEUE)),
        bindings=tuple(Binding(q.name, INGEST_EXCHANGE, q.name) for q in ingest),
    )


def workspace_topology(workspace_id: str) -> Topology:
    """The workspace's routing queue: one active router, standbys take over."""
    name = route_queue(workspace_id)
    return Topology(
        queues=(Queue(name, single_active_consumer=True),),
        bindings=(Binding(name, ROUTE_EXCHANGE, name),),
    )


def agent_topology(agent_id: str) -> Topology:
    """The agent's queue of offers and conversation updates, read by one gateway at a time."""
    name = agent_queue(agent_id)
    # Classic, not quorum: pushes are re-derivable from the database (an offer lost with a
    # broker node times out and is re-routed), and each agent must not cost a Raft group.
    return Topology(
        queues=(
            Queue(
                name, single_active_consumer=True, replicated=False, dead_letter=False, delivery_limit=None
            ),
        ),
        bindings=(Binding(name, AGENTS_EXCHANGE, name),),
    )


def events_subscription(queue_name: str, patterns: Sequence[str]) -> Topology:
    """A transient queue owned by one connection, bound to ``events`` with topic patterns."""
    return Topology(
        queues=(Queue(queue_name, durable=False, exclusive=True, dead_letter=False, delivery_limit=None),),
        bindings=tuple(Binding(queue_name, EVENTS_EXCHANGE, pattern) for pattern in patterns),
    )
