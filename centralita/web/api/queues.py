"""``GET /api/queues/stats``: each queue of the workspace right now, and its day so far.

Computed from the database, so any server answers (the API server need not be the workspace's
active router).  Per active queue:

- ``waiting``, ``offered``: conversations in the queue now; ``longest_wait_s``: since the oldest
  of them entered it (``enqueued_at``).
- ``agents``: agents eligible for the queue (its required skills at the loosest expansion step,
  capacity on one of its channels) by presence — ``available`` (nothing in hand), ``busy``
  (available with work or a pending offer, or in wrap-up), ``away``, ``offline`` — presence as
  the live router stored it (``agent.presence``).
- ``answered_today``: conversations of the queue first assigned since the start of the queue's
  local day (its business-hours time zone, else its campaign's, else UTC);
  ``answered_within_sla_today``: of those, assigned within the SLA's ``answer_within_s`` of
  entering the queue, counting only the time the queue was open (its business hours);
  ``sla_pct_today``: their percentage (``null`` before the first answer).
- ``not_offered``: why its waiting conversations are not being offered (``why_not_offered``:
  queue closed, no eligible agent, none signed in, none available, all at capacity), or ``null``.
- ``open``, ``next_change_at``: open now by its business hours, and when that next changes.

The live router publishes the same figures (``QueueStats``) on the ``events`` topic exchange with
routing key ``ws.<workspace_id>.queue.stats`` every few seconds, for dashboards (docs/api.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from centralita.schemas.queues import NotOfferedNow, QueueAgents, QueueStats, QueueStatsList
from centralita.web.api._json import respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import InvalidInput
from core.ids import WorkspaceId
from core.states import Presence
from router.policy import AgentFacts, BusinessHours, NotOffered, from_epoch, to_epoch, why_not_offered
from router.service.config import business_hours
from storage.work import AgentRecord, AnsweredConversation, QueueLive, QueueRecord, WorkStore

__all__ = ["eligible", "not_offered", "queue_day", "queue_hours", "read_queue_stats", "routes"]

routes = web.RouteTableDef()


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def queue_day(queue: QueueRecord, now: datetime) -> tuple[ZoneInfo, datetime]:
    """The queue's time zone and the start of its current local day (UTC)."""
    hours = queue.config.get("business_hours")
    name = hours.get("timezone") if isinstance(hours, Mapping) else None
    zone = _zone(name or queue.campaign_timezone)
    local = now.astimezone(zone)
    return zone, datetime.combine(local.date(), time(0, 0), tzinfo=zone).astimezone(UTC)


def queue_hours(queue: QueueRecord) -> BusinessHours | None:
    """The queue's business hours as the router keeps them (``None``: open around the clock)."""
    try:
        return business_hours(queue.config.get("business_hours"), queue.campaign_timezone or "UTC")
    except (InvalidInput, ValueError):
        return None  # the router skips such a queue too (router.queue_skipped)


def eligible(agent: AgentRecord, queue: QueueRecord) -> bool:
    """Could the agent ever serve the queue: required skills at the loosest expansion step and
    capacity on one of its channels."""
    if not _skilled(agent, queue):
        return False
    channels = [str(c) for c in queue.config.get("channels") or []]
    return not channels or any(agent.capacity.get(c, 0) > 0 for c in channels)


def _skilled(agent: AgentRecord, queue: QueueRecord) -> bool:
    if not agent.active:
        return False
    required = queue.config.get("required_skills") or {}
    steps = [s.get("min_proficiency") for s in queue.config.get("expansion") or [] if isinstance(s, Mapping)]
    loosest = min((int(s) for s in steps if s is not None), default=None)
    for skill, level in dict(required).items():
        need = int(level) if loosest is None else min(int(level), loosest)
        if agent.skills.get(str(skill), 0) < need:
            return False
    return True


def not_offered(
    queue: QueueRecord, agents: Sequence[AgentRecord], waiting_channels: frozenset[str], now: datetime
) -> NotOffered | None:
    """Why the queue's conversations waiting on ``waiting_channels`` are not offered at ``now``:
    the facts from the database, the reading by the router's ``why_not_offered``."""
    if not waiting_channels:
        return None
    hours = queue_hours(queue)
    is_open, next_change = hours.state_at(to_epoch(now)) if hours is not None else (True, None)
    facts = [
        AgentFacts(
            presence=a.presence,
            connected=a.connected,
            capacity=a.capacity,
            load=a.load,
            pending_offers=a.pending_offers,
        )
        for a in agents
        if _skilled(a, queue)
    ]
    return why_not_offered(
        waiting_channels=waiting_channels, open=is_open, next_opening=next_change, agents=facts
    )


def _waited_for_sla(hours: BusinessHours | None, answer: AnsweredConversation) -> float:
    """The wait the SLA counts: from entering routing to the assignment, while the queue was open."""
    if hours is None:
        return (answer.assigned_at - answer.enqueued_at).total_seconds()
    return hours.open_seconds(to_epoch(answer.enqueued_at), to_epoch(answer.assigned_at))


def _agent_counts(agents: Sequence[AgentRecord]) -> QueueAgents:
    available = [a for a in agents if a.presence == Presence.AVAILABLE]
    return QueueAgents(
        available=sum(1 for a in available if not a.open_conversations and not a.pending_offers),
        busy=sum(1 for a in available if a.open_conversations or a.pending_offers)
        + sum(1 for a in agents if a.presence == Presence.WRAP_UP),
        away=sum(1 for a in agents if a.presence == Presence.AWAY),
        offline=sum(1 for a in agents if a.presence == Presence.OFFLINE),
    )


def _queue_stats(
    queue: QueueRecord,
    live: QueueLive,
    answered: Sequence[AnsweredConversation],
    agents: Sequence[AgentRecord],
    now: datetime,
) -> QueueStats:
    zone, day_start = queue_day(queue, now)
    sla = queue.config.get("sla") if isinstance(queue.config.get("sla"), Mapping) else None
    threshold = float(sla["answer_within_s"]) if sla and sla.get("answer_within_s") is not None else None
    today = [a for a in answered if a.queue_id == queue.id and a.assigned_at >= day_start]
    hours = queue_hours(queue) if threshold is not None else None
    within = (
        sum(1 for a in today if _waited_for_sla(hours, a) <= threshold) if threshold is not None else None
    )
    oldest = live.oldest_enqueued_at
    business = queue_hours(queue)
    is_open, change = business.state_at(to_epoch(now)) if business is not None else (True, None)
    return QueueStats(
        queue_id=queue.id,
        name=queue.name,
        display_name=queue.config.get("display_name"),
        campaign_id=queue.campaign_id,
        priority=queue.priority,
        waiting=live.waiting,
        offered=live.offered,
        longest_wait_s=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
        agents=_agent_counts([a for a in agents if eligible(a, queue)]),
        day=now.astimezone(zone).date(),
        timezone=zone.key,
        answered_today=len(today),
        answered_within_sla_today=within,
        sla_pct_today=round(100.0 * within / len(today), 2) if within is not None and today else None,
        sla_target_pct=float(sla["target_pct"]) if sla and sla.get("target_pct") is not None else None,
        sla_threshold_s=threshold,
        not_offered=NotOfferedNow.of(not_offered(queue, agents, live.waiting_channels, now)),
        open=is_open,
        next_change_at=from_epoch(change) if change is not None else None,
    )


@routes.get("/api/queues/stats")
@documented("supervisor", {200: ("Every active queue.", QueueStatsList)})
async def queue_stats(request: web.Request) -> web.Response:
    """Live statistics per queue: waiting, longest wait, agents, answered and SLA % today."""
    principal = await require(request, "supervisor")
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        stats, _agents = await read_queue_stats(WorkStore(session), principal.workspace_id, runtime.clock())
    return respond(stats)


async def read_queue_stats(
    store: WorkStore, workspace_id: WorkspaceId, now: datetime
) -> tuple[QueueStatsList, Sequence[AgentRecord]]:
    """The workspace's queue statistics at ``now``, and the agents they were counted from (the
    wall's socket sends both)."""
    queues = await store.queues(workspace_id)
    live = await store.queue_live(workspace_id)
    agents = await store.agents(workspace_id)
    since = min((queue_day(q, now)[1] for q in queues), default=now)
    answered = await store.answered_since(workspace_id, since)
    stats = QueueStatsList(
        workspace_id=workspace_id,
        at=now,
        queues=[_queue_stats(q, live.get(q.id, QueueLive()), answered, agents, now) for q in queues],
    )
    return stats, agents
