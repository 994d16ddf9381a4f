"""What the router is told: agents' profiles, queues, and the router's own settings.

All frozen dataclasses.  Channel names are plain strings taken from configuration (whatever
channel adapters exist); the policy never special-cases one.  Proficiency is 1–10.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise

from core.errors import InvalidInput
from core.ids import AgentId, QueueId, WorkspaceId
from core.states import Presence
from router.policy.hours import BusinessHours

__all__ = [
    "AgentProfile",
    "BullseyeStep",
    "ExplainDetail",
    "Overflow",
    "Presence",
    "QueueConfig",
    "RouterConfig",
    "Selection",
    "SlaTarget",
]

MIN_PROFICIENCY = 1
MAX_PROFICIENCY = 10


class Selection(StrEnum):
    """Second criterion after the skill score."""

    LEAST_LOADED = "least_loaded"  # lowest share of capacity in use (pending offers count)
    LONGEST_IDLE = "longest_idle"  # longest since the last offer, or since becoming available


class ExplainDetail(StrEnum):
    """How much of each decision is recorded (see ``Decision``)."""

    AUTO = "auto"  # FULL when the workspace has at most ``explain_full_max_agents`` agents, else SUMMARY
    FULL = "full"  # every agent of the workspace, each with its reason or its score
    SUMMARY = "summary"  # the top-k scored candidates and counts of the filtered by reason
    MINIMAL = "minimal"  # the winner and the step only; no ``Explained`` commands (simulation)


def _check_proficiencies(skills: Mapping[str, int], name: str) -> None:
    for skill, level in skills.items():
        if not MIN_PROFICIENCY <= level <= MAX_PROFICIENCY:
            raise InvalidInput(f"proficiency of {skill!r} must be 1..10, got {level}", field=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentProfile:
    """An agent's skills and capacity.  ``capacity`` is in units per channel; a conversation of a
    channel uses ``weights.get(channel, 1)`` units; ``total_capacity`` optionally caps the sum over
    channels (e.g. 10 units shared, a chat 2, an email 1).  A channel absent from ``capacity`` is
    one the agent does not take."""

    id: AgentId
    workspace_id: WorkspaceId
    skills: Mapping[str, int] = field(default_factory=dict)
    capacity: Mapping[str, int] = field(default_factory=dict)
    weights: Mapping[str, int] = field(default_factory=dict)
    total_capacity: int | None = None

    def __post_init__(self) -> None:
        _check_proficiencies(self.skills, "skills")
        if any(units < 0 for units in self.capacity.values()):
            raise InvalidInput("capacity cannot be negative", field="capacity")
        if any(units < 1 for units in self.weights.values()):
            raise InvalidInput("a weight is at least 1 unit", field="weights")
        if self.total_capacity is not None and self.total_capacity < 0:
            raise InvalidInput("total_capacity cannot be negative", field="total_capacity")

    def weight(self, channel: str) -> int:
        return self.weights.get(channel, 1)


@dataclass(frozen=True, slots=True)
class BullseyeStep:
    """From ``after_s`` seconds of waiting, required skills need at least ``min_proficiency``
    (never below the queue's own minimum); ``None`` = the queue's own minimums only."""

    after_s: float
    min_proficiency: int | None


@dataclass(frozen=True, slots=True)
class SlaTarget:
    """``fraction`` of conversations answered (offer accepted) within ``threshold_s`` of arriving."""

    fraction: float = 0.8
    threshold_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Overflow:
    """Move waiting conversations to ``to_queue_id`` after ``after_s`` seconds in this queue, and/or
    as soon as they enter it when no agent eligible for it is logged in (not offline)."""

    to_queue_id: QueueId
    after_s: float | None = None
    when_no_eligible_agents: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """A routing target.  Score of an agent for this queue: the sum of its proficiencies in the
    required skills plus, for each preferred skill, ``weight × proficiency``."""

    id: QueueId
    workspace_id: WorkspaceId
    name: str = ""
    required_skills: Mapping[str, int] = field(default_factory=dict)
    preferred_skills: Mapping[str, int] = field(default_factory=dict)
    priority: int = 0
    sla: SlaTarget | None = field(default_factory=SlaTarget)
    hours: BusinessHours | None = None
    overflow: Overflow | None = None
    bullseye: tuple[BullseyeStep, ...] = ()
    offer_timeout_s: float | None = None  # None: the router's default

    def __post_init__(self) -> None:
        _check_proficiencies(self.required_skills, "required_skills")
        if any(weight < 0 for weight in self.preferred_skills.values()):
            raise InvalidInput("preferred skill weights cannot be negative", field="preferred_skills")
        steps = self.bullseye
        if steps:
            if steps[0].after_s != 0:
                raise InvalidInput("the first bullseye step starts at after_s=0", field="bullseye")
            for before, after in pairwise(steps):
                if after.after_s <= before.after_s:
                    raise InvalidInput("bullseye steps must have increasing after_s", field="bullseye")
                if before.min_proficiency is None or (
                    after.min_proficiency is not None and after.min_proficiency > before.min_proficiency
                ):
                    raise InvalidInput("bullseye steps can only relax requirements", field="bullseye")
            for step in steps:
                if step.min_proficiency is not None and not 1 <= step.min_proficiency <= 10:
                    raise InvalidInput("bullseye min_proficiency must be 1..10", field="bullseye")

    @property
    def steps(self) -> tuple[BullseyeStep, ...]:
        """The bullseye steps, or one step with the queue's own requirements."""
        return self.bullseye or (BullseyeStep(0.0, None),)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterConfig:
    """The router's settings (one per workspace partition; the simulator's ``policy``)."""

    selection: Selection = Selection.LONGEST_IDLE
    offer_timeout_s: float = 30.0
    # Fairness: never more than this many unanswered offers per agent at once ...
    max_pending_offers_per_agent: int = 1
    # ... and for ``ramp_period_s`` after coming back (from offline or away), at most one new offer
    # every ``ramp_interval_s``, so an agent back from a break is not flooded.
    ramp_period_s: float = 120.0
    ramp_interval_s: float = 20.0
    # After closing a conversation the agent is in wrap-up this long (0: no wrap-up).
    wrap_up_s: float = 0.0
    # A lost connection is forgiven this long; beyond it the agent is offline.
    disconnect_grace_s: float = 60.0
    requeue_open_on_offline: bool = True
    # A returning customer waits this long for their previous agent, a transfer for its target agent.
    sticky_wait_s: float = 30.0
    transfer_wait_s: float = 30.0
    # Aging: one priority point is worth this many seconds of waiting (None: strict priority, then age).
    aging_s_per_priority_point: float | None = 60.0
    # A conversation whose reply window closes within ``window_margin_s`` gains ``window_priority_boost``.
    window_margin_s: float = 3600.0
    window_priority_boost: int = 5
    # The agent holding a conversation is warned this long before its reply window closes
    # (``WindowClosing``), and told when it has closed (``WindowClosed``); 0: no warning.
    window_warning_s: float = 3600.0
    max_overflow_hops: int = 3
    explain: ExplainDetail = ExplainDetail.AUTO
    explain_full_max_agents: int = 50
    explain_top_k: int = 5

    def __post_init__(self) -> None:
        if self.offer_timeout_s <= 0:
            raise InvalidInput("offer_timeout_s must be positive", field="offer_timeout_s")
        if self.max_pending_offers_per_agent < 1:
            raise InvalidInput(
                "max_pending_offers_per_agent must be at least 1", field="max_pending_offers_per_agent"
            )
        if self.aging_s_per_priority_point is not None and self.aging_s_per_priority_point <= 0:
            raise InvalidInput(
                "aging_s_per_priority_point must be positive or None", field="aging_s_per_priority_point"
            )
        for name in (
            "ramp_period_s",
            "ramp_interval_s",
            "wrap_up_s",
            "disconnect_grace_s",
            "sticky_wait_s",
            "transfer_wait_s",
            "window_margin_s",
            "window_warning_s",
        ):
            if getattr(self, name) < 0:
                raise InvalidInput(f"{name} cannot be negative", field=name)
        if self.explain_top_k < 1:
            raise InvalidInput("explain_top_k must be at least 1", field="explain_top_k")
