"""The router's mutable working state: agents, queues, waiting conversations, offers, pools.

Private to the policy package (``RouterState`` owns every instance).  Indexes, all lazy heaps
whose entries carry the version of their object at push time (an entry is live only while the
version still matches), compacted when they grow past twice their live bound:

- ``QueueRt.pools[step][channel]``: agents eligible for the queue at that bullseye step who can
  take one more conversation of that channel now, ordered by (−score, selection key, id).
- ``QueueRt.ready[step][channel]``: waiting conversations that reached that step, ordered by
  the time-invariant priority key (see ``RouterState``), so aging needs no re-sorting.
- ``QueueRt.age_heap``: waiting conversations by original arrival (longest wait).
"""

from __future__ import annotations

from datetime import date

from core.ids import AgentId, ConversationId, CustomerId, OfferId, WorkspaceId
from core.states import ConversationStatus, Presence
from router.policy.config import AgentProfile, BullseyeStep, QueueConfig

__all__ = ["AgentRt", "ConvRt", "OfferRt", "Pool", "QueueRt"]

WAITING = 0
OFFERED = 1
ASSIGNED = 2
CLOSED = 3
STATUS_NAMES = (  # by the numbers above
    ConversationStatus.WAITING,
    ConversationStatus.OFFERED,
    ConversationStatus.ASSIGNED,
    ConversationStatus.CLOSED,
)

AgentEntry = tuple[int, float, float, int, int, "AgentRt"]  # (-score, key1, key2, tie, version, agent)
ConvEntry = tuple[float, float, int, int, "ConvRt"]  # (primary, enqueued_at, seq, version, conv)
ConvKey = tuple[float, float, int]


class AgentRt:
    __slots__ = (
        "assigned",
        "cap_units",
        "connected",
        "grace_token",
        "id",
        "idle_since",
        "layout",
        "load",
        "memberships",
        "next_offer_at",
        "offers",
        "pending",
        "presence",
        "profile",
        "ramp_until",
        "reserved",
        "targets",
        "throttle_token",
        "tie",
        "total_load",
        "version",
        "wrap_token",
        "wrap_until",
        "ws",
    )

    def __init__(self, profile: AgentProfile, now: float) -> None:
        self.id: AgentId = profile.id
        self.ws: WorkspaceId = profile.workspace_id
        self.tie = profile.id.int
        self.profile = profile
        self.cap_units = 1
        self.set_profile(profile)
        self.presence = Presence.OFFLINE
        self.connected = True
        self.load: dict[str, int] = {}
        self.total_load = 0
        self.pending = 0
        self.offers: dict[OfferId, OfferRt] = {}
        self.assigned: dict[ConversationId, ConvRt] = {}
        self.reserved: dict[ConversationId, ConvRt] = {}
        self.idle_since = now
        self.ramp_until = 0.0
        self.next_offer_at = 0.0
        self.version = 0
        self.memberships: list[tuple[QueueRt, int, int]] = []  # (queue, first eligible step, score)
        # The pools of its memberships by channel: [(channel, [(pool, -score, eligible), …]), …],
        # as of the router's layout ``layout`` (RouterState._lay_out).
        self.targets: list[tuple[str, list[tuple[Pool, int, set[AgentRt]]]]] = []
        self.layout = -1
        self.wrap_until: float | None = None
        self.wrap_token = 0
        self.grace_token = 0
        self.throttle_token = 0

    def set_profile(self, profile: AgentProfile) -> None:
        self.profile = profile
        total = profile.total_capacity
        self.cap_units = max(1, total if total is not None else sum(profile.capacity.values()))

    def free(self, channel: str) -> bool:
        """Can take one more conversation of ``channel`` without exceeding any capacity."""
        profile = self.profile
        units = profile.weights.get(channel, 1)
        if self.load.get(channel, 0) + units > profile.capacity.get(channel, 0):
            return False
        total = profile.total_capacity
        return total is None or self.total_load + units <= total

    def load_share(self) -> float:
        return self.total_load / self.cap_units

    def take(self, channel: str, units: int) -> None:
        self.load[channel] = self.load.get(channel, 0) + units
        self.total_load += units

    def give_back(self, channel: str, units: int) -> None:
        self.load[channel] -= units
        self.total_load -= units


class Pool:
    __slots__ = ("heap", "members")

    def __init__(self) -> None:
        self.heap: list[AgentEntry] = []
        self.members: set[AgentRt] = set()


class QueueRt:
    __slots__ = (
        "abandoned",
        "age_heap",
        "answered",
        "config",
        "day",
        "day_ends_at",
        "eligible",
        "escalated",
        "hours_token",
        "id",
        "mins",
        "next_change",
        "offered",
        "open",
        "pools",
        "presence_counts",
        "ready",
        "scores",
        "steps",
        "waiting",
        "within_sla",
        "ws",
        "ws_agents",
    )

    def __init__(self, config: QueueConfig) -> None:
        self.id = config.id
        self.ws = config.workspace_id
        self.config = config
        self.steps: tuple[BullseyeStep, ...] = ()
        self.mins: list[dict[str, int]] = []
        self.eligible: list[set[AgentRt]] = []
        self.presence_counts: list[dict[Presence, int]] = []
        self.pools: list[dict[str, Pool]] = []
        self.ready: list[dict[str, list[ConvEntry]]] = []
        self.scores: dict[AgentRt, int] = {}
        self.ws_agents: dict[AgentId, AgentRt] = {}  # the workspace's agents (RouterState sets it)
        self.reconfigure(config)
        self.waiting: dict[ConversationId, ConvRt] = {}
        self.age_heap: list[tuple[float, int, ConvRt]] = []
        self.offered = 0
        self.open = True
        self.next_change: float | None = None
        self.hours_token = 0
        self.day_ends_at = float("-inf")
        self.day = date.min
        self.answered = 0
        self.within_sla = 0
        self.abandoned = 0
        self.escalated = 0

    def reconfigure(self, config: QueueConfig) -> None:
        """New requirements: empty indexes sized for the new steps (the caller re-attaches)."""
        self.config = config
        self.steps = config.steps
        required = config.required_skills
        self.mins = [
            {
                skill: level if step.min_proficiency is None else max(level, step.min_proficiency)
                for skill, level in required.items()
            }
            for step in self.steps
        ]
        count = len(self.steps)
        self.eligible = [set() for _ in range(count)]
        self.presence_counts = [dict.fromkeys(Presence, 0) for _ in range(count)]
        self.pools = [{} for _ in range(count)]
        self.ready = [{} for _ in range(count)]
        self.scores = {}

    def first_eligible_step(self, profile: AgentProfile) -> int | None:
        skills = profile.skills
        for index, mins in enumerate(self.mins):
            if all(skills.get(skill, 0) >= level for skill, level in mins.items()):
                return index
        return None

    def score(self, profile: AgentProfile) -> int:
        skills = profile.skills
        total = sum(skills.get(skill, 0) for skill in self.config.required_skills)
        total += sum(weight * skills.get(skill, 0) for skill, weight in self.config.preferred_skills.items())
        return total


class OfferRt:
    __slots__ = ("agent", "channel", "conv", "expires_at", "id", "live", "units")

    def __init__(
        self, offer_id: OfferId, conv: ConvRt, agent: AgentRt, units: int, expires_at: float
    ) -> None:
        self.id = offer_id
        self.conv = conv
        self.agent = agent
        self.channel = conv.channel
        self.units = units
        self.expires_at = expires_at
        self.live = True


class ConvRt:
    __slots__ = (
        "agent",
        "answered",
        "auto_replied",
        "channel",
        "customer_id",
        "enqueued_at",
        "escalated",
        "hops",
        "id",
        "key",
        "notice_token",
        "offer",
        "priority",
        "queue",
        "queue_entered_at",
        "queue_epoch",
        "reserve_kind",
        "reserve_needs_skills",
        "reserve_token",
        "reserve_until",
        "reserved_for",
        "seq",
        "skip",
        "state",
        "step",
        "transferred",
        "units",
        "version",
        "warned_for",
        "window_closes_at",
        "window_token",
        "ws",
    )

    def __init__(
        self,
        conversation_id: ConversationId,
        ws: WorkspaceId,
        queue: QueueRt,
        channel: str,
        customer_id: CustomerId | None,
        priority: int,
        enqueued_at: float,
        seq: int,
        window_closes_at: float | None,
    ) -> None:
        self.id = conversation_id
        self.ws = ws
        self.queue = queue
        self.channel = channel
        self.customer_id = customer_id
        self.priority = priority
        self.enqueued_at = enqueued_at
        self.seq = seq
        self.window_closes_at = window_closes_at
        self.window_token = 0
        self.notice_token = 0  # window warning / closed timers
        self.warned_for: tuple[float, AgentId] | None = None  # (window closes_at, agent) warned
        self.state = WAITING
        self.version = 0
        self.key: ConvKey = (0.0, enqueued_at, seq)
        self.step = 0
        self.skip: dict[AgentId, str] = {}
        self.reserved_for: AgentRt | None = None
        self.reserve_until = 0.0
        self.reserve_needs_skills = True
        self.reserve_kind = "sticky"
        self.reserve_token = 0
        self.agent: AgentRt | None = None
        self.offer: OfferRt | None = None
        self.units = 0
        self.queue_entered_at = enqueued_at
        self.queue_epoch = 0
        self.hops = 0
        self.auto_replied = False
        self.escalated = False
        self.answered = False
        self.transferred = False  # transferred since its last assignment
