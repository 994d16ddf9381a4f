"""Wire schemas on the broker around the router (JSON, one model per message type).

``route.<workspace>`` carries ``RouterInput`` to the workspace's active router service;
``agent.<agent_id>`` carries ``AgentPush`` to the gateway holding that agent's WebSocket.
These are not the policy's events and commands (``router.policy``) nor database rows: the
router service translates between them at its edge.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeAlias
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, TypeAdapter

from core.states import Presence

__all__ = [
    "AgentConnection",
    "AgentPush",
    "AlertEvent",
    "AssignedPush",
    "ConfigChanged",
    "ConversationClosedInput",
    "ConversationNudge",
    "ForceAssignInput",
    "MessagePush",
    "MessageStatusPush",
    "OfferAnswer",
    "OfferPush",
    "OfferWithdrawnPush",
    "PresenceInput",
    "QueueStatsEvent",
    "QueueStatsItem",
    "RequeueInput",
    "Resync",
    "RouterInput",
    "TransferInput",
    "UnassignedPush",
    "WindowClosedPush",
    "WindowWarningPush",
    "decode_agent_push",
    "decode_router_input",
]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


_Iso = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json")]


# ------------------------------------------------- for dashboards: the events exchange (topic)
class QueueStatsItem(_Wire):
    """One queue as the live router sees it (``router.policy.QueueStats``)."""

    queue_id: UUID
    name: str
    open: bool
    waiting: int
    offered: int
    longest_wait_s: float
    agents_available: int
    agents_busy: int
    agents_away: int
    agents_offline: int
    day: date
    answered: int
    answered_within_sla: int
    abandoned: int
    escalated: int
    sla_target: float | None
    sla_threshold_s: float | None
    sla_fraction: float | None


class QueueStatsEvent(_Wire):
    """``ws.<workspace_id>.queue.stats``: the router's view of the workspace's queues, every few seconds."""

    type: Literal["queue.stats"] = "queue.stats"
    workspace_id: UUID
    at: _Iso
    queues: list[QueueStatsItem]


class AlertEvent(_Wire):
    """``ws.<workspace_id>.alert.<kind>``: published once, when the router raises an alert."""

    type: Literal["alert"] = "alert"
    kind: str
    workspace_id: UUID
    conversation_id: UUID
    queue_id: UUID
    queue: str | None = Field(description="The queue's name.")
    waited_s: float
    at: _Iso


# ---------------------------------------------------------------- into the router: route.<ws>
class ConversationNudge(_Wire):
    """A conversation opened or got a new customer message: (re)read it from the database."""

    type: Literal["conversation"] = "conversation"
    conversation_id: UUID
    reason: str = "message"


class OfferAnswer(_Wire):
    type: Literal["offer_answer"] = "offer_answer"
    offer_id: UUID
    agent_id: UUID
    accepted: bool


class PresenceInput(_Wire):
    type: Literal["presence"] = "presence"
    agent_id: UUID
    presence: Presence
    until: datetime | None = None


class AgentConnection(_Wire):
    """The gateway saw the agent's socket open or close (grace periods are the router's)."""

    type: Literal["agent_connection"] = "agent_connection"
    agent_id: UUID
    connected: bool


class ConversationClosedInput(_Wire):
    type: Literal["conversation_closed"] = "conversation_closed"
    conversation_id: UUID


class TransferInput(_Wire):
    type: Literal["transfer"] = "transfer"
    conversation_id: UUID
    to_queue_id: UUID | None = None
    to_agent_id: UUID | None = None
    actor: str | None = None


class ForceAssignInput(_Wire):
    type: Literal["force_assign"] = "force_assign"
    conversation_id: UUID
    agent_id: UUID
    actor: str | None = None


class RequeueInput(_Wire):
    type: Literal["requeue"] = "requeue"
    conversation_id: UUID
    queue_id: UUID | None = None
    actor: str | None = None


class ConfigChanged(_Wire):
    """A campaign was applied: reload queues and agents."""

    type: Literal["config_changed"] = "config_changed"
    version: int | None = None


class Resync(_Wire):
    """Each router instance publishes one every ``router_resync_s``: the active router, whichever
    it is, re-reads the open conversations (catching lost nudges); a standby that receives one has
    just become active."""

    type: Literal["resync"] = "resync"
    sender: str | None = None


RouterInput: TypeAlias = Annotated[
    ConversationNudge
    | OfferAnswer
    | PresenceInput
    | AgentConnection
    | ConversationClosedInput
    | TransferInput
    | ForceAssignInput
    | RequeueInput
    | ConfigChanged
    | Resync,
    Field(discriminator="type"),
]

# ---------------------------------------------------------------- to an agent: agent.<id>


class OfferPush(_Wire):
    type: Literal["offer"] = "offer"
    offer_id: UUID
    conversation_id: UUID
    queue_id: UUID
    channel: str
    expires_at: datetime
    customer_id: UUID | None = None
    preview: dict[str, Any] = Field(default_factory=dict)  # customer name, last message kind, waited_s


class OfferWithdrawnPush(_Wire):
    type: Literal["offer_withdrawn"] = "offer_withdrawn"
    offer_id: UUID
    conversation_id: UUID
    reason: str


class AssignedPush(_Wire):
    type: Literal["assigned"] = "assigned"
    conversation_id: UUID
    queue_id: UUID | None = None
    channel: str
    forced: bool = False


class UnassignedPush(_Wire):
    """The conversation left the agent (requeued, transferred, the agent went offline)."""

    type: Literal["unassigned"] = "unassigned"
    conversation_id: UUID
    reason: str


class MessagePush(_Wire):
    """A new timeline entry in one of the agent's conversations."""

    type: Literal["message"] = "message"
    conversation_id: UUID
    message_id: UUID
    direction: str
    kind: str
    channel: str
    text: str | None = None
    attachments: list[str] = Field(default_factory=list)  # their kinds: image, audio, document, …
    created_at: datetime


class MessageStatusPush(_Wire):
    """One of our messages in the agent's conversation moved on (sent, delivered, read, failed)."""

    type: Literal["message_status"] = "message_status"
    conversation_id: UUID
    message_id: UUID
    delivery_state: str
    errors: list[dict[str, Any]] = Field(default_factory=list)


class WindowWarningPush(_Wire):
    """The reply window of one of the agent's conversations closes soon (once per window)."""

    type: Literal["window_warning"] = "window_warning"
    conversation_id: UUID
    closes_at: datetime


class WindowClosedPush(_Wire):
    """The reply window of one of the agent's conversations has closed: templates only now."""

    type: Literal["window_closed"] = "window_closed"
    conversation_id: UUID
    closed_at: datetime


AgentPush: TypeAlias = Annotated[
    OfferPush
    | OfferWithdrawnPush
    | AssignedPush
    | UnassignedPush
    | MessagePush
    | MessageStatusPush
    | WindowWarningPush
    | WindowClosedPush,
    Field(discriminator="type"),
]

_ROUTER_INPUT: TypeAdapter[Any] = TypeAdapter(RouterInput)
_AGENT_PUSH: TypeAdapter[Any] = TypeAdapter(AgentPush)


def decode_router_input(data: bytes | str) -> Any:
    return _ROUTER_INPUT.validate_json(data)


def decode_agent_push(data: bytes | str) -> Any:
    return _AGENT_PUSH.validate_json(data)
