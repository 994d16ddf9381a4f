"""Domain records read back from storage (not tables, not wire schemas)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.ids import (
    AgentId,
    CampaignId,
    ChannelAccountId,
    ConversationId,
    CustomerId,
    IdentityId,
    MessageId,
    QueueId,
    WorkspaceId,
)
from core.states import ConversationStatus

__all__ = [
    "ConversationRecord",
    "MediaRef",
    "OpenConversation",
    "ResolvedSender",
    "StatusApplied",
    "TimelineEntry",
]


@dataclass(frozen=True, slots=True)
class ResolvedSender:
    customer_id: CustomerId
    identifier_id: IdentityId
    created: bool


@dataclass(frozen=True, slots=True)
class OpenConversation:
    """A customer's open conversation as the pipeline sees it on a new message."""

    id: ConversationId
    status: ConversationStatus
    triage_attempts: int = 0
    agent_id: AgentId | None = None  # the agent it is assigned to (their desk hears of the message)
    channel: str | None = None  # the channel the customer last wrote on (its reply window's)
    customer_wrote_at: datetime | None = None  # the customer's last message, before this one


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One attachment of a timeline entry as the media store holds it."""

    id: uuid.UUID
    position: int
    status: str  # a core.states.MediaStatus
    mime_type: str | None
    size: int | None
    sha256: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class StatusApplied:
    """A delivery status that moved one of our messages on: which, in which conversation, and
    the agent holding that conversation (if any)."""

    message_id: MessageId
    conversation_id: ConversationId | None
    agent_id: AgentId | None
    state: str
    errors: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: ConversationId
    workspace_id: WorkspaceId
    campaign_id: CampaignId | None
    customer_id: CustomerId
    queue_id: QueueId | None
    agent_id: AgentId | None
    status: ConversationStatus
    channel: str
    channel_account_id: ChannelAccountId | None
    identifier_id: IdentityId | None
    priority: int
    opened_at: datetime
    enqueued_at: datetime | None
    last_customer_message_at: datetime | None
    closed_at: datetime | None
    disposition: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    id: MessageId
    conversation_id: ConversationId | None
    customer_id: CustomerId | None
    direction: str
    kind: str
    channel: str
    external_id: str | None
    text: str | None
    agent_id: AgentId | None
    delivery_state: str | None
    created_at: datetime
    payload: dict[str, Any]
    # Why an outbound message is failed or unknown ({code, message, ...}), for the agent.
    delivery_error: dict[str, Any] | None = None
    # The attachments fetched (or being fetched) into the media store, by their position.
    media: tuple[MediaRef, ...] = ()
