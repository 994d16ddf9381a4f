"""From stored configuration to the policy's types: settings → ``RouterConfig``, a campaign's
canonical queue → ``QueueConfig``, an agent row → ``AgentProfile``.

Manifest → policy, for a queue:

- ``required_skills`` are the minimums from the first second; ``expansion`` steps relax them
  (``after_s`` → ``min_proficiency``).  The policy's queue minimums are the loosest ones (each
  skill's own level capped by the last step), and its bullseye starts with a step at 0 s holding
  the manifest's level (the lowest of the required levels when several skills differ: the policy
  has one proficiency per step).
- ``preferred_skills`` weigh 1 each; ``priority`` 1–10 is the queue's priority points.
- ``sla`` → ``SlaTarget``; ``business_hours`` (local ``HH:MM-HH:MM`` per weekday, end exclusive,
  ``24:00`` allowed) → ``BusinessHours`` in the queue's or the campaign's time zone.
- ``overflow.to`` names a queue of the same workspace.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time
from typing import Any

from core.campaign.fields import WEEKDAYS, parse_interval_minutes
from core.errors import InvalidInput
from core.ids import QueueId
from core.settings import Settings
from router.policy import (
    AgentProfile,
    BullseyeStep,
    BusinessHours,
    Overflow,
    QueueConfig,
    RouterConfig,
    Selection,
    SlaTarget,
    WeeklyInterval,
)
from storage.routing import AgentRecord, QueueRecord

__all__ = ["agent_profile", "business_hours", "queue_config", "router_config"]


def router_config(settings: Settings) -> RouterConfig:
    return RouterConfig(
        selection=Selection(settings.router_selection),
        offer_timeout_s=settings.offer_timeout_s,
        ramp_period_s=settings.router_ramp_period_s,
        ramp_interval_s=settings.router_ramp_interval_s,
        wrap_up_s=settings.router_wrap_up_s,
        disconnect_grace_s=settings.router_disconnect_grace_s,
        requeue_open_on_offline=settings.router_requeue_on_offline,
        sticky_wait_s=settings.router_sticky_wait_s,
        transfer_wait_s=settings.router_transfer_wait_s,
        window_warning_s=settings.window_warning_s,
    )


def _levels(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, int] = {}
    for key, value in raw.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[str(key)] = max(1, min(10, int(value)))
    return out


def _units(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(k): max(0, int(v))
        for k, v in raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _clock(minutes: int) -> time:
    return time(0, 0) if minutes >= 24 * 60 else time(minutes // 60, minutes % 60)


def business_hours(raw: Any, default_timezone: str) -> BusinessHours | None:
    """A canonical queue's ``business_hours`` as the policy's ``BusinessHours`` (``None``: open
    around the clock)."""
    if not isinstance(raw, Mapping):
        return None
    intervals: list[WeeklyInterval] = []
    weekly = raw.get("weekly") or {}
    for weekday, name in enumerate(WEEKDAYS):
        for text in weekly.get(name, []) or []:
            start, end = parse_interval_minutes(str(text))
            if end <= start:
                continue
            intervals.append(WeeklyInterval(weekday, _clock(start), _clock(end)))
    holidays = frozenset(date.fromisoformat(str(d)) for d in raw.get("holidays") or [])
    return BusinessHours(
        timezone=str(raw.get("timezone") or default_timezone),
        intervals=tuple(intervals),
        holidays=holidays,
    )


def _bullseye(required: dict[str, int], raw: Any) -> tuple[dict[str, int], tuple[BullseyeStep, ...]]:
    steps = [s for s in (raw or []) if isinstance(s, Mapping)]
    if not steps or not required:
        return required, ()
    first = min(required.values())
    out = [BullseyeStep(0.0, first)]
    floor = first
    for step in sorted(steps, key=lambda s: float(s.get("after_s", 0))):
        after = float(step.get("after_s", 0))
        level = max(1, min(floor, int(step.get("min_proficiency", floor))))
        if after <= out[-1].after_s:
            continue
        out.append(BullseyeStep(after, level))
        floor = level
    loosest = {skill: min(level, floor) for skill, level in required.items()}
    return loosest, tuple(out)


def queue_config(record: QueueRecord, ids_by_name: Mapping[str, QueueId]) -> QueueConfig:
    """The policy's view of a stored queue; ``ids_by_name``: the workspace's queues (overflow)."""
    raw = record.config
    required, bullseye = _bullseye(_levels(raw.get("required_skills")), raw.get("expansion"))
    preferred = {str(skill): 1 for skill in raw.get("preferred_skills") or []}
    sla_raw = raw.get("sla")
    sla = (
        SlaTarget(
            fraction=float(sla_raw.get("target_pct", 80)) / 100.0,
            threshold_s=float(sla_raw.get("answer_within_s", 60)),
        )
        if isinstance(sla_raw, Mapping)
        else None
    )
    overflow = None
    over_raw = raw.get("overflow")
    if isinstance(over_raw, Mapping):
        target = ids_by_name.get(str(over_raw.get("to")))
        if target is not None and target != record.id:
            after = over_raw.get("after_s")
            overflow = Overflow(
                to_queue_id=target,
                after_s=float(after) if after is not None else None,
                when_no_eligible_agents=bool(over_raw.get("when_no_agents", False)),
            )
    priority = raw.get("priority", 5)
    try:
        return QueueConfig(
            id=record.id,
            workspace_id=record.workspace_id,
            name=record.name,
            required_skills=required,
            preferred_skills=preferred,
            priority=int(priority) if isinstance(priority, int) else 5,
            sla=sla,
            hours=business_hours(raw.get("business_hours"), record.timezone),
            overflow=overflow,
            bullseye=bullseye,
        )
    except (InvalidInput, ValueError) as exc:
        raise InvalidInput(f"queue {record.name!r} cannot be routed: {exc}", field="queues") from exc


def agent_profile(record: AgentRecord) -> AgentProfile:
    return AgentProfile(
        id=record.id,
        workspace_id=record.workspace_id,
        skills=_levels(record.skills),
        capacity=_units(record.capacity),
    )
