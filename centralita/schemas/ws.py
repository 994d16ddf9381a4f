"""The agent's WebSocket (``/ws/agent``): one model per frame, each named by its ``type``.

``ServerFrame`` is what the server sends: the router's pushes for the agent (``offer``,
``offer_withdrawn``, ``assigned``, ``unassigned``, ``window_warning``, ``window_closed``) and
the pipeline's (``message``, ``message_status``), built from the broker's ``router.wire``
models with each frame's ``of``, and the answers to the agent's own frames (``pong``, ``error``).
``ClientFrame`` is what an agent may send (``presence``, ``offer_answer``, ``ping``); the gateway
parses it with ``parse_client_frame`` and turns it into the router's input with
``router_input``.  These are not the broker's models: a field added on the broker reaches the
socket only once a frame here declares it.

The frames' JSON Schema is published at ``docs/ws.schema.json``; a unit test fails when the
committed file differs from ``frames_json_schema()`` — regenerate it with
``write_frames_json_schema("docs/ws.schema.json")``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, WithJsonSchema

from core.errors import CentralitaError
from core.states import Presence
from router.wire import (
    AgentPush,
    AssignedPush,
    MessagePush,
    MessageStatusPush,
    OfferAnswer,
    OfferPush,
    OfferWithdrawnPush,
    PresenceInput,
    UnassignedPush,
    WindowClosedPush,
    WindowWarningPush,
)

__all__ = [
    "CLIENT_FRAME_TYPES",
    "SERVER_FRAME_TYPES",
    "AssignedFrame",
    "ClientFrame",
    "ErrorFrame",
    "FrameError",
    "MessageFrame",
    "MessageStatusFrame",
    "OfferAnswerFrame",
    "OfferFrame",
    "OfferPreview",
    "OfferWithdrawnFrame",
    "PingFrame",
    "PongFrame",
    "PresenceFrame",
    "PushFrame",
    "ServerFrame",
    "UnassignedFrame",
    "WindowClosedFrame",
    "WindowWarningFrame",
    "frame_of_push",
    "frames_json_schema",
    "parse_client_frame",
    "parse_server_frame",
    "render_frames_json_schema",
    "write_frames_json_schema",
]


class _Sent(BaseModel):
    """A frame the server sends: exactly the fields declared, every one of them on the wire."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class _Received(BaseModel):
    """A frame an agent sends: fields the server does not read are ignored, as they always were."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# ------------------------------------------------------------------------- server → agent


class OfferPreview(_Sent):
    queue: str | None = Field(description="The queue's name.")
    trigger: str = Field(
        description="Why the router offered it now (arrival, agent_available, transfer, requeue, …)."
    )
    customer_name: str | None = Field(default=None, description="The name the customer goes by, if known.")
    text: str | None = Field(
        default=None,
        description="The first words (up to 140 characters) of the customer's last message; null "
        "when it has no text (an image, a location) or nothing was written yet.",
    )
    message_kind: str | None = Field(
        default=None, description="The kind of the customer's last entry (message, postback, …)."
    )
    attachments: list[str] = Field(
        default_factory=list, description="The kinds of its attachments (image, audio, document, …)."
    )


class OfferFrame(_Sent):
    """A conversation offered to the agent: answer before ``expires_at``, or it is withdrawn and
    routed elsewhere."""

    type: Literal["offer"] = "offer"
    offer_id: UUID
    conversation_id: UUID
    queue_id: UUID
    channel: str
    expires_at: datetime
    customer_id: UUID | None
    preview: OfferPreview

    @classmethod
    def of(cls, push: OfferPush) -> OfferFrame:
        return cls(
            offer_id=push.offer_id,
            conversation_id=push.conversation_id,
            queue_id=push.queue_id,
            channel=push.channel,
            expires_at=push.expires_at,
            customer_id=push.customer_id,
            preview=OfferPreview.model_validate(push.preview),
        )


class OfferWithdrawnFrame(_Sent):
    """The offer is gone: too late, or the conversation moved."""

    type: Literal["offer_withdrawn"] = "offer_withdrawn"
    offer_id: UUID
    conversation_id: UUID
    reason: str = Field(description="timeout, agent_away, agent_offline, conversation_closed, failover, …")

    @classmethod
    def of(cls, push: OfferWithdrawnPush) -> OfferWithdrawnFrame:
        return cls(offer_id=push.offer_id, conversation_id=push.conversation_id, reason=push.reason)


class AssignedFrame(_Sent):
    """The conversation is the agent's now: an accepted offer, a forced assignment, a transfer.
    Sent again when a new router takes over (a client takes one it already holds as a no-op)."""

    type: Literal["assigned"] = "assigned"
    conversation_id: UUID
    queue_id: UUID | None
    channel: str
    forced: bool

    @classmethod
    def of(cls, push: AssignedPush) -> AssignedFrame:
        return cls(
            conversation_id=push.conversation_id,
            queue_id=push.queue_id,
            channel=push.channel,
            forced=push.forced,
        )


class UnassignedFrame(_Sent):
    """The conversation left the agent (requeued, transferred, the agent went offline or was
    removed)."""

    type: Literal["unassigned"] = "unassigned"
    conversation_id: UUID
    reason: str = Field(description="supervisor, transfer, agent_offline, agent_away, agent_removed, …")

    @classmethod
    def of(cls, push: UnassignedPush) -> UnassignedFrame:
        return cls(conversation_id=push.conversation_id, reason=push.reason)


class MessageFrame(_Sent):
    """A new entry in the timeline of one of the agent's conversations — a customer's message,
    reaction, edit or deletion.  The entry itself (attachments included) is read from
    ``GET /api/conversations/{conversation_id}``; this frame says that there is one, and its
    first words."""

    type: Literal["message"] = "message"
    conversation_id: UUID
    message_id: UUID
    direction: str = Field(description="in (from the customer), out, note.")
    kind: str = Field(description="message, postback (a button or menu answer), reaction, deleted, system, …")
    channel: str
    text: str | None
    attachments: list[str] = Field(
        description="The kinds of its attachments, in order: image, audio, voice, video, document, "
        "sticker, location, contacts, …"
    )
    created_at: datetime

    @classmethod
    def of(cls, push: MessagePush) -> MessageFrame:
        return cls(
            conversation_id=push.conversation_id,
            message_id=push.message_id,
            direction=push.direction,
            kind=push.kind,
            channel=push.channel,
            text=push.text,
            attachments=push.attachments,
            created_at=push.created_at,
        )


class MessageStatusFrame(_Sent):
    """One of our messages in the agent's conversation moved on: its delivery tick."""

    type: Literal["message_status"] = "message_status"
    conversation_id: UUID
    message_id: UUID
    delivery_state: str = Field(description="sent, delivered, read, failed.")
    errors: list[dict[str, Any]] = Field(description="The provider's errors, when it failed.")

    @classmethod
    def of(cls, push: MessageStatusPush) -> MessageStatusFrame:
        return cls(
            conversation_id=push.conversation_id,
            message_id=push.message_id,
            delivery_state=push.delivery_state,
            errors=push.errors,
        )


class WindowWarningFrame(_Sent):
    """The reply window of one of the agent's conversations closes soon: sent
    ``CENTRALITA_WINDOW_WARNING_S`` (3600 s) before ``closes_at``, once per window (a new message
    from the customer opens a new one), or when the agent takes a conversation inside that time."""

    type: Literal["window_warning"] = "window_warning"
    conversation_id: UUID
    closes_at: datetime = Field(description="When free-form replies stop being possible.")

    @classmethod
    def of(cls, push: WindowWarningPush) -> WindowWarningFrame:
        return cls(conversation_id=push.conversation_id, closes_at=push.closes_at)


class WindowClosedFrame(_Sent):
    """The reply window of one of the agent's conversations has closed: from now on only what
    the channel allows outside it (approved templates on WhatsApp); ``GET
    /api/conversations/{conversation_id}`` and ``…/options`` say what."""

    type: Literal["window_closed"] = "window_closed"
    conversation_id: UUID
    closed_at: datetime

    @classmethod
    def of(cls, push: WindowClosedPush) -> WindowClosedFrame:
        return cls(conversation_id=push.conversation_id, closed_at=push.closed_at)


class PongFrame(_Sent):
    """The answer to ``ping``."""

    type: Literal["pong"] = "pong"


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # absent on the wire, not null


class FrameError(_Sent):
    code: str = Field(examples=["invalid_input"])
    message: str
    # Absent, never null, when there is nothing to say (as ``CentralitaError.to_dict`` writes it).
    field: Annotated[str | None, WithJsonSchema({"type": "string"})] = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The frame's field at fault, if one.",
        json_schema_extra=_no_default,
    )
    details: Annotated[dict[str, Any] | None, WithJsonSchema({"type": "object"})] = Field(
        default=None, exclude_if=lambda v: not v, json_schema_extra=_no_default
    )


class ErrorFrame(_Sent):
    """The answer to a frame the server could not take (malformed, or the broker is down); the
    socket stays open."""

    type: Literal["error"] = "error"
    error: FrameError

    @classmethod
    def of(cls, exc: CentralitaError) -> ErrorFrame:
        return cls(
            error=FrameError(code=exc.code, message=exc.message, field=exc.field, details=exc.details or None)
        )


ServerFrame: TypeAlias = Annotated[
    OfferFrame
    | OfferWithdrawnFrame
    | AssignedFrame
    | UnassignedFrame
    | MessageFrame
    | MessageStatusFrame
    | WindowWarningFrame
    | WindowClosedFrame
    | PongFrame
    | ErrorFrame,
    Field(discriminator="type"),
]


PushFrame: TypeAlias = (
    OfferFrame
    | OfferWithdrawnFrame
    | AssignedFrame
    | UnassignedFrame
    | MessageFrame
    | MessageStatusFrame
    | WindowWarningFrame
    | WindowClosedFrame
)


def frame_of_push(push: AgentPush) -> PushFrame | None:
    """The frame for a push from ``agent.<id>`` (``None``: a push no frame carries); raises
    ``ValidationError`` when the push does not fit its frame."""
    if isinstance(push, OfferPush):
        return OfferFrame.of(push)
    if isinstance(push, OfferWithdrawnPush):
        return OfferWithdrawnFrame.of(push)
    if isinstance(push, AssignedPush):
        return AssignedFrame.of(push)
    if isinstance(push, UnassignedPush):
        return UnassignedFrame.of(push)
    if isinstance(push, MessagePush):
        return MessageFrame.of(push)
    if isinstance(push, MessageStatusPush):
        return MessageStatusFrame.of(push)
    if isinstance(push, WindowWarningPush):
        return WindowWarningFrame.of(push)
    if isinstance(push, WindowClosedPush):
        return WindowClosedFrame.of(push)
    return None


# ------------------------------------------------------------------------- agent → server


class PresenceFrame(_Received):
    """The agent's presence (``until``: the end of a wrap-up)."""

    type: Literal["presence"]
    presence: Presence
    until: datetime | None = None

    def router_input(self, agent_id: UUID) -> PresenceInput:
        return PresenceInput(agent_id=agent_id, presence=self.presence, until=self.until)


class OfferAnswerFrame(_Received):
    """The agent accepts or declines an offer."""

    type: Literal["offer_answer"]
    # Before offer_id: a bad ``accepted`` is the error reported first, as it always was.
    accepted: StrictBool
    offer_id: UUID

    def router_input(self, agent_id: UUID) -> OfferAnswer:
        return OfferAnswer(agent_id=agent_id, offer_id=self.offer_id, accepted=self.accepted)


class PingFrame(_Received):
    """Answered with ``pong``."""

    type: Literal["ping"]


ClientFrame: TypeAlias = Annotated[PresenceFrame | OfferAnswerFrame | PingFrame, Field(discriminator="type")]


def _types(union: Any) -> tuple[str, ...]:
    """The ``type`` of each frame of a union, in its order."""
    models: tuple[type[BaseModel], ...] = get_args(get_args(union)[0])
    return tuple(get_args(m.model_fields["type"].annotation)[0] for m in models)


SERVER_FRAME_TYPES: tuple[str, ...] = _types(ServerFrame)
CLIENT_FRAME_TYPES: tuple[str, ...] = _types(ClientFrame)

_CLIENT: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
_SERVER: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


def parse_client_frame(data: object) -> PresenceFrame | OfferAnswerFrame | PingFrame:
    """An agent's decoded frame as its model (or ``ValidationError``)."""
    return _CLIENT.validate_python(data)


def parse_server_frame(text: str | bytes) -> ServerFrame:
    """A frame the server sent, as its model (or ``ValidationError``): what a client (and the
    e2e suite) reads."""
    return _SERVER.validate_json(text)


# ------------------------------------------------------------------------- the JSON Schema


def frames_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the frames: ``ServerFrame`` and ``ClientFrame``."""
    server = _SERVER.json_schema(mode="serialization", ref_template="#/$defs/{model}")
    client = _CLIENT.json_schema(mode="validation", ref_template="#/$defs/{model}")
    defs = {**server.pop("$defs"), **client.pop("$defs")}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Centralita agent WebSocket frames (/ws/agent)",
        "description": (
            "One JSON object per text frame. ServerFrame: what the server sends the agent; "
            "ClientFrame: what the agent may send."
        ),
        "$defs": dict(sorted({**defs, "ServerFrame": server, "ClientFrame": client}.items())),
        "oneOf": [{"$ref": "#/$defs/ServerFrame"}, {"$ref": "#/$defs/ClientFrame"}],
    }


def render_frames_json_schema() -> str:
    return json.dumps(frames_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_frames_json_schema(path: str | Path) -> None:
    """Write the schema to ``path`` (normally ``docs/ws.schema.json``)."""
    Path(path).write_text(render_frames_json_schema(), encoding="utf-8")
