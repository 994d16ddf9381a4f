"""SQLModel tables: the only module family that imports sqlmodel.

Tables are storage, not the wire format and not the domain: repositories (``storage.repos``)
convert rows to domain types.  Every row carries its workspace id (raw deliveries get theirs
once the pipeline knows the channel account).  Times are aware UTC (``storage.types.UtcDateTime``);
ids are UUIDs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

from core.ids import new_id
from core.states import ConversationStatus, MediaStatus, OfferStatus, Presence, RawDeliveryStatus
from identity.rows import SuggestionStatus
from storage.types import UtcDateTime

__all__ = [
    "AgentRow",
    "AlertRow",
    "ApiTokenRow",
    "AssignmentRow",
    "AuditRow",
    "CampaignRow",
    "ChannelAccountRow",
    "ConversationReportRow",
    "ConversationRow",
    "CustomerRow",
    "EventOutboxRow",
    "EvidenceRow",
    "IdentifierNameRow",
    "IdentifierRow",
    "IdentityAuditCustomerRow",
    "IdentityBlockRow",
    "MessageRow",
    "OfferRow",
    "QueueRow",
    "RawDeliveryRow",
    "RouterEpochRow",
    "RoutingDecisionRow",
    "SkillRow",
    "SuggestionRow",
    "TrafficHourRow",
    "WebhookDeliveryRow",
    "WebhookSubscriptionRow",
    "WorkspaceRow",
    "metadata",
]

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _id() -> uuid.UUID:
    return new_id()


def _json(nullable: bool = True, default: Any = None) -> Any:
    return sa.Column(JSONType, nullable=nullable, default=default)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return sa.Column(UtcDateTime(), nullable=nullable, index=index)


class WorkspaceRow(SQLModel, table=True):
    __tablename__ = "workspace"
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    slug: str = Field(max_length=100, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class CampaignRow(SQLModel, table=True):
    __tablename__ = "campaign"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_campaign_workspace_name"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    name: str = Field(max_length=100)
    display_name: str = Field(max_length=200)
    timezone: str = Field(max_length=64, default="UTC")
    language: str = Field(max_length=8, default="es")
    manifest: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    version: int = 1
    applied_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class ChannelAccountRow(SQLModel, table=True):
    __tablename__ = "channel_account"
    __table_args__ = (sa.UniqueConstraint("channel", "address", name="uq_channel_account_address"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    campaign_id: uuid.UUID | None = Field(default=None, foreign_key="campaign.id", index=True)
    channel: str = Field(max_length=40)
    address: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)
    app_id: str | None = Field(default=None, max_length=100)
    # Names of environment variables, never the secrets themselves.
    app_secret_env: str | None = Field(default=None, max_length=200)
    access_token_env: str | None = Field(default=None, max_length=200)
    verify_token_env: str | None = Field(default=None, max_length=200)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    active: bool = True


class RawDeliveryRow(SQLModel, table=True):
    """Exactly what a provider delivered, kept for audit and re-parsing."""

    __tablename__ = "raw_delivery"
    __table_args__ = (sa.UniqueConstraint("channel", "body_sha256", name="uq_raw_delivery_body"),)
    id: uuid.UUID = Field(primary_key=True)
    workspace_id: uuid.UUID | None = Field(default=None, foreign_key="workspace.id", index=True)
    channel: str = Field(max_length=40)
    received_at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    body: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    body_sha256: str = Field(max_length=64)  # a redelivered body is recognised and not stored twice
    status: str = Field(default=RawDeliveryStatus.ACCEPTED, max_length=20)  # a RawDeliveryStatus
    error: str | None = None


class CustomerRow(SQLModel, table=True):
    """A customer id: a connected component of the identity graph.  Never deleted; a merged-away
    customer points at the survivor (``merged_into``) and may be restored by an unmerge."""

    __tablename__ = "customer"
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    display_name: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    merged_into: uuid.UUID | None = Field(default=None, index=True)
    active: bool = True
    version: int = 0  # bumped by every identity change of the record (optimistic concurrency)
    legal_hold: str | None = Field(default=None, max_length=500)  # why their data may not be erased now
    erased_at: datetime | None = Field(default=None, sa_column=_ts())
    labels: list[str] | None = Field(default=None, sa_column=_json())  # set by a CRM (sorted)


class IdentifierRow(SQLModel, table=True):
    """A node of the identity graph: one normalized address of a person.

    The unique index on ``(workspace_id, key)`` is what makes two workers meeting the same new
    identifier collide instead of creating two customers.  ``home_customer_id`` is the customer
    it founded or first joined (an unmerge gives it back); ``display_names`` the normalized names
    it was seen with (also indexed in ``identifier_name``).
    """

    __tablename__ = "identifier"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "key", name="uq_identifier_workspace_key"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    kind: str = Field(max_length=40)
    key: str = Field(max_length=400)
    value: str = Field(max_length=400)
    scope: str | None = Field(default=None, max_length=200)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    home_customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    display_name: str | None = Field(default=None, max_length=200)  # as last seen, for people
    display_names: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class IdentifierNameRow(SQLModel, table=True):
    """A normalized display name an identifier was seen with: the index name matching reads."""

    __tablename__ = "identifier_name"
    __table_args__ = (sa.Index("ix_identifier_name_lookup", "workspace_id", "name"),)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", primary_key=True)
    key: str = Field(max_length=400, primary_key=True)
    name: str = Field(max_length=200, primary_key=True)


class EvidenceRow(SQLModel, table=True):
    """An edge of the identity graph between two identifier keys (``a_key < b_key``); retracted,
    never deleted."""

    __tablename__ = "evidence"
    __table_args__ = (
        sa.Index("ix_evidence_a", "workspace_id", "a_key"),
        sa.Index("ix_evidence_b", "workspace_id", "b_key"),
    )
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    a_key: str = Field(max_length=400)
    b_key: str = Field(max_length=400)
    source: str = Field(max_length=40)
    actor: str = Field(max_length=200)
    reference: str | None = Field(default=None, max_length=400)
    suggestion_id: uuid.UUID | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    retracted_at: datetime | None = Field(default=None, sa_column=_ts())
    retracted_by: str | None = Field(default=None, max_length=200)
    retraction_audit_id: uuid.UUID | None = Field(default=None)


class SuggestionRow(SQLModel, table=True):
    """Weak evidence waiting for an agent.  One row per identifier pair, ever (``lo_key``,
    ``hi_key`` is the sorted pair): a decided pair is never suggested again.  ``b`` may be an
    identifier never seen as a sender, so both ends are stored in full."""

    __tablename__ = "suggestion"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "lo_key", "hi_key", name="uq_suggestion_pair"),
        sa.Index("ix_suggestion_a", "workspace_id", "a_key"),
        sa.Index("ix_suggestion_b", "workspace_id", "b_key"),
    )
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    a_key: str = Field(max_length=400)
    a_kind: str = Field(max_length=40)
    a_value: str = Field(max_length=400)
    a_scope: str | None = Field(default=None, max_length=200)
    b_key: str = Field(max_length=400)
    b_kind: str = Field(max_length=40)
    b_value: str = Field(max_length=400)
    b_scope: str | None = Field(default=None, max_length=200)
    lo_key: str = Field(max_length=400)
    hi_key: str = Field(max_length=400)
    source: str = Field(max_length=40)
    actor: str = Field(max_length=200)
    reference: str | None = Field(default=None, max_length=400)
    status: str = Field(default=SuggestionStatus.PENDING, max_length=20)  # a SuggestionStatus
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=_ts())
    decided_by: str | None = Field(default=None, max_length=200)
    edge_id: uuid.UUID | None = Field(default=None)


class IdentityBlockRow(SQLModel, table=True):
    """A blocked identifier (workspace blocklist or auto-detected shared): it never merges
    anyone.  Lifting keeps the row, so it is not blocked again automatically."""

    __tablename__ = "identity_block"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "key", name="uq_identity_block_key"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    key: str = Field(max_length=400)
    reason: str = Field(max_length=20)  # an identity.rows.BlockReason
    detail: str = Field(default="", max_length=400)
    actor: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    lifted_at: datetime | None = Field(default=None, sa_column=_ts())
    lifted_by: str | None = Field(default=None, max_length=200)


class IdentityAuditCustomerRow(SQLModel, table=True):
    """Which customers an identity audit entry (``audit_log``) involves: the per-customer index."""

    __tablename__ = "identity_audit_customer"
    __table_args__ = (sa.Index("ix_identity_audit_customer", "workspace_id", "customer_id"),)
    audit_id: uuid.UUID = Field(foreign_key="audit_log.id", primary_key=True)
    customer_id: uuid.UUID = Field(primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id")


class SkillRow(SQLModel, table=True):
    __tablename__ = "skill"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_skill_workspace_name"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    name: str = Field(max_length=100)
    description: str | None = None


class QueueRow(SQLModel, table=True):
    __tablename__ = "queue"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_queue_workspace_name"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    campaign_id: uuid.UUID | None = Field(default=None, foreign_key="campaign.id", index=True)
    name: str = Field(max_length=100)
    priority: int = 5
    config: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    active: bool = True


class AgentRow(SQLModel, table=True):
    __tablename__ = "agent"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "email", name="uq_agent_workspace_email"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    email: str = Field(max_length=320)
    name: str = Field(max_length=200)
    role: str = Field(default="agent", max_length=20)  # agent, supervisor, admin
    skills: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    capacity: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    # Routing state the router persists: the presence the agent chose (or the router set), until
    # when (wrap-up), and whether a gateway holds the agent's socket (a restarted router starts
    # agents without one offline).  ``presence_lease_until``: renewed by the gateway holding the
    # socket; once past, the gateway is taken for dead and the router sets the agent offline.
    presence: str = Field(  # a core.states.Presence
        default=Presence.OFFLINE,
        sa_column=sa.Column(sa.String(20), nullable=False, server_default=Presence.OFFLINE.value),
    )
    presence_until: datetime | None = Field(default=None, sa_column=_ts())
    connected: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.text("false"))
    )
    presence_lease_until: datetime | None = Field(default=None, sa_column=_ts())
    # The console's sign-in: an argon2 hash (never the password); NULL until an invitation set it.
    password_hash: str | None = Field(default=None, max_length=200)
    password_set_at: datetime | None = Field(default=None, sa_column=_ts())


class ApiTokenRow(SQLModel, table=True):
    """A bearer token: only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    agent_id: uuid.UUID | None = Field(default=None, foreign_key="agent.id", index=True)
    role: str = Field(max_length=20)
    token_sha256: str = Field(max_length=64, unique=True)
    name: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts())
    expires_at: datetime | None = Field(default=None, sa_column=_ts())  # NULL: issued before expiry existed
    last_used_at: datetime | None = Field(default=None, sa_column=_ts())
    # "api": a bearer token for scripts; "session": the console's signed-in browser (a cookie),
    # also refused once idle for longer than the console's idle timeout.
    kind: str = Field(default="api", sa_column=sa.Column(sa.String(20), nullable=False, server_default="api"))


class InvitationRow(SQLModel, table=True):
    """A one-time sign-in link for an agent: only the SHA-256 of its secret is stored."""

    __tablename__ = "invitation"
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    agent_id: uuid.UUID = Field(foreign_key="agent.id", index=True)
    secret_sha256: str = Field(max_length=64, unique=True)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=_ts())


class SignInFailureRow(SQLModel, table=True):
    """A refused sign-in, kept for the rate limit's window: the keys are hashes (an email, an
    address), never the email or the address in clear."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (sa.Index("ix_sign_in_failure_key_at", "key_sha256", "at"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    key_sha256: str = Field(max_length=64)
    at: datetime = Field(sa_column=_ts(nullable=False))


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversation"
    __table_args__ = (
        sa.Index("ix_conversation_open", "workspace_id", "customer_id", "campaign_id", "status"),
        # Retention finds a campaign's conversations closed before a date.
        sa.Index("ix_conversation_campaign_closed", "campaign_id", "closed_at"),
    )
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    campaign_id: uuid.UUID | None = Field(default=None, foreign_key="campaign.id")
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    queue_id: uuid.UUID | None = Field(default=None, foreign_key="queue.id", index=True)
    agent_id: uuid.UUID | None = Field(default=None, foreign_key="agent.id", index=True)
    status: str = Field(default=ConversationStatus.WAITING, max_length=20, index=True)  # a ConversationStatus
    channel: str = Field(max_length=40)  # the channel the customer last used
    channel_account_id: uuid.UUID | None = Field(default=None, foreign_key="channel_account.id")
    identifier_id: uuid.UUID | None = Field(default=None, foreign_key="identifier.id")
    # the identifier that opened it: the conversation follows it when an unmerge splits a customer
    origin_identifier_id: uuid.UUID | None = Field(default=None, foreign_key="identifier.id", index=True)
    priority: int = 5
    opened_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    enqueued_at: datetime | None = Field(default=None, sa_column=_ts())
    assigned_at: datetime | None = Field(default=None, sa_column=_ts())
    first_response_at: datetime | None = Field(default=None, sa_column=_ts())
    closed_at: datetime | None = Field(default=None, sa_column=_ts())
    last_customer_message_at: datetime | None = Field(default=None, sa_column=_ts())
    follow_up_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    # The campaign's survey is due (set at an agent's close; cleared when a sender claims it).
    survey_due_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    disposition: dict[str, Any] | None = Field(default=None, sa_column=_json())
    # The live offer while ``status`` is ``offered`` (the router's compare-and-set guard).
    offer_id: uuid.UUID | None = Field(default=None)
    # The outside-hours auto-reply went out (once per conversation, across router failovers).
    auto_replied_at: datetime | None = Field(default=None, sa_column=_ts())
    # Invalid answers to the triage menu so far (while ``status`` is ``triage``).
    triage_attempts: int = 0


class MessageRow(SQLModel, table=True):
    """A timeline entry: inbound or outbound message, note, reaction, deletion, read, system notice."""

    __tablename__ = "message"
    __table_args__ = (
        sa.UniqueConstraint("channel", "direction", "external_id", name="uq_message_external"),
        sa.Index("ix_message_customer_time", "customer_id", "created_at", "id"),
        sa.Index("ix_message_conversation_time", "conversation_id", "created_at"),
        sa.Index("ix_message_outbox", "delivery_state", "due_at"),
        sa.UniqueConstraint("resend_of", name="uq_message_resend_of"),
    )
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    conversation_id: uuid.UUID | None = Field(default=None, foreign_key="conversation.id")
    customer_id: uuid.UUID | None = Field(default=None, foreign_key="customer.id")
    identifier_id: uuid.UUID | None = Field(default=None, foreign_key="identifier.id", index=True)
    direction: str = Field(max_length=10)  # a core.states.MessageDirection
    kind: str = Field(max_length=20)  # a core.states.MessageKind
    channel: str = Field(max_length=40)
    channel_account_id: uuid.UUID | None = Field(default=None, foreign_key="channel_account.id")
    external_id: str | None = Field(default=None, max_length=400)
    text: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    agent_id: uuid.UUID | None = Field(default=None, foreign_key="agent.id")
    delivery_state: str | None = Field(default=None, max_length=20)  # a DeliveryState (outbound)
    error: dict[str, Any] | None = Field(default=None, sa_column=_json())
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    stored_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    # Indexed: deleting a raw delivery (retention, erasure) checks the messages that point at it.
    raw_delivery_id: uuid.UUID | None = Field(default=None, foreign_key="raw_delivery.id", index=True)
    # The outbox (outbound rows): send attempts started, when a queued row is next due, when a
    # worker claimed it (``sending``: its lease), and the unconfirmed or failed row it resends.
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default=sa.text("0"))
    )
    due_at: datetime | None = Field(default=None, sa_column=_ts())
    claimed_at: datetime | None = Field(default=None, sa_column=_ts())
    resend_of: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(sa.Uuid, sa.ForeignKey("message.id", name="fk_message_resend_of"), nullable=True),
    )


class MediaRow(SQLModel, table=True):
    """One attachment of a timeline entry, fetched from the provider into the media store."""

    __tablename__ = "media"
    __table_args__ = (
        sa.UniqueConstraint("message_id", "position", name="uq_media_message_position"),
        sa.Index("ix_media_due", "status", "due_at"),
    )
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    # None: an agent's upload not sent yet (the reply that sends it sets it, and ``position``).
    message_id: uuid.UUID | None = Field(default=None, foreign_key="message.id", index=True)
    customer_id: uuid.UUID | None = Field(default=None, foreign_key="customer.id", index=True)
    channel_account_id: uuid.UUID | None = Field(default=None, foreign_key="channel_account.id")
    # An agent's upload: the conversation it was uploaded to, by whom (None: a supervisor's or
    # an admin's token), the file's name.
    conversation_id: uuid.UUID | None = Field(default=None, foreign_key="conversation.id")
    uploaded_by: uuid.UUID | None = Field(default=None, foreign_key="agent.id")
    filename: str | None = Field(default=None, max_length=255)
    position: int  # the attachment's index in the message
    kind: str = Field(max_length=40)  # an AttachmentKind
    status: str = Field(default=MediaStatus.PENDING, max_length=20)  # a MediaStatus
    mime_type: str | None = Field(default=None, max_length=200)
    size: int | None = None
    sha256: str | None = Field(default=None, max_length=64)
    storage_key: str | None = Field(default=None, max_length=300)
    attempts: int = 0
    due_at: datetime | None = Field(default=None, sa_column=_ts())
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    stored_at: datetime | None = Field(default=None, sa_column=_ts())


class OfferRow(SQLModel, table=True):
    __tablename__ = "offer"
    id: uuid.UUID = Field(primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    conversation_id: uuid.UUID = Field(foreign_key="conversation.id", index=True)
    agent_id: uuid.UUID = Field(foreign_key="agent.id", index=True)
    status: str = Field(default=OfferStatus.OFFERED, max_length=20)  # an OfferStatus
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=_ts())
    queue_id: uuid.UUID | None = Field(default=None)
    reason: str | None = Field(default=None, max_length=40)  # why it was withdrawn


class AssignmentRow(SQLModel, table=True):
    __tablename__ = "assignment"
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    conversation_id: uuid.UUID = Field(foreign_key="conversation.id", index=True)
    agent_id: uuid.UUID = Field(foreign_key="agent.id", index=True)
    assigned_at: datetime = Field(sa_column=_ts(nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=_ts())
    reason: str | None = Field(default=None, max_length=40)


class RoutingDecisionRow(SQLModel, table=True):
    __tablename__ = "routing_decision"
    __table_args__ = (sa.Index("ix_routing_decision_conversation", "conversation_id", "decided_at"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", index=True)
    conversation_id: uuid.UUID = Field(foreign_key="conversation.id")
    decided_at: datetime = Field(sa_column=_ts(nullable=False))
    outcome: str = Field(max_length=40)
    explanation: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))


class AlertRow(SQLModel, table=True):
    """An alert for the workspace's supervisors (the wall's feed): an SLA breach, for now.  A
    conversation raises one alert of a kind per queue, however often the router restarts."""

    __tablename__ = "alert"
    __table_args__ = (
        sa.UniqueConstraint("kind", "conversation_id", "queue_id", name="uq_alert_subject"),
        sa.Index("ix_alert_workspace_time", "workspace_id", "raised_at"),
    )
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id")
    kind: str = Field(max_length=40)  # an AlertKind
    queue_id: uuid.UUID | None = Field(default=None, foreign_key="queue.id")
    conversation_id: uuid.UUID | None = Field(default=None, foreign_key="conversation.id")
    raised_at: datetime = Field(sa_column=_ts(nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))


class RouterEpochRow(SQLModel, table=True):
    """Fencing for a workspace's router: the instance that becomes active bumps ``epoch``; every
    write of a router checks (under a row lock) that the epoch is still its own, so a router that
    lost its place never writes after its successor started."""

    __tablename__ = "router_epoch"
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id", primary_key=True)
    epoch: int = 0
    holder: str = Field(default="", max_length=200)
    taken_at: datetime = Field(sa_column=_ts(nullable=False))


class AuditRow(SQLModel, table=True):
    """The audit trail: append-only, never updated or deleted through any API.  Every step of a
    conversation's life (``core.facts.WorkAction``) and every other audited action (sign-ins,
    tokens and sessions, merges and unmerges, blocklist changes, campaign applies, exports) is
    one row: who (``actor``), when (``at``), what (``action``, ``details`` with before/after
    where it applies).  ``dedupe``: a fact's once-only key (a second write of it is dropped)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_subject", "subject_type", "subject_id"),
        sa.Index("ix_audit_workspace_at", "workspace_id", "at", "id"),
        sa.Index("ix_audit_conversation_at", "conversation_id", "at"),
        sa.Index("ix_audit_customer_at", "customer_id", "at"),
        sa.Index("ix_audit_agent_at", "agent_id", "at"),
        sa.UniqueConstraint("dedupe", name="uq_audit_log_dedupe"),
    )
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID | None = Field(default=None, foreign_key="workspace.id", index=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False, index=True))
    actor: str = Field(max_length=200)
    action: str = Field(max_length=60)
    subject_type: str = Field(max_length=40)
    subject_id: str = Field(max_length=100)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    conversation_id: uuid.UUID | None = Field(default=None)
    customer_id: uuid.UUID | None = Field(default=None)
    agent_id: uuid.UUID | None = Field(default=None)
    campaign_id: uuid.UUID | None = Field(default=None)
    queue_id: uuid.UUID | None = Field(default=None)
    dedupe: str | None = Field(default=None, max_length=200)


class ConversationReportRow(SQLModel, table=True):
    """One conversation as the reports read it: folded from its facts (``core.facts``) in the
    same transaction as each fact is appended — the reports' rollup.  Times are aware UTC."""

    __tablename__ = "conversation_report"
    __table_args__ = (
        sa.Index("ix_conversation_report_campaign_opened", "workspace_id", "campaign_id", "opened_at"),
        sa.Index("ix_conversation_report_customer_opened", "customer_id", "opened_at"),
    )
    conversation_id: uuid.UUID = Field(primary_key=True)
    workspace_id: uuid.UUID = Field()
    campaign_id: uuid.UUID | None = Field(default=None)
    customer_id: uuid.UUID = Field()
    channel: str | None = Field(default=None, max_length=40)  # the channel that opened it
    opened_at: datetime = Field(sa_column=_ts(nullable=False))
    triage: bool = False  # opened in the campaign's menu
    triage_option: str | None = Field(default=None, max_length=100)
    queue_id: uuid.UUID | None = Field(default=None)  # the queue it is (or was last) in
    answered_queue_id: uuid.UUID | None = Field(default=None)  # the queue it was first answered in
    enqueued_at: datetime | None = Field(default=None, sa_column=_ts())
    first_offered_at: datetime | None = Field(default=None, sa_column=_ts())
    assigned_at: datetime | None = Field(default=None, sa_column=_ts())  # first assignment
    waited_s: float | None = None  # enqueued → first assignment, counting the queue's open hours
    agent_id: uuid.UUID | None = Field(default=None)  # the agent who first had it
    last_agent_id: uuid.UUID | None = Field(default=None)
    first_response_at: datetime | None = Field(default=None, sa_column=_ts())
    first_response_agent_id: uuid.UUID | None = Field(default=None)
    closed_at: datetime | None = Field(default=None, sa_column=_ts())
    close_reason: str | None = Field(default=None, max_length=20)  # a core.facts.CloseReason
    disposition_code: str | None = Field(default=None, max_length=100)
    disposition_amount: str | None = Field(default=None, max_length=40)  # a decimal, as written
    disposition_date: str | None = Field(default=None, max_length=10)  # ISO date
    promise_outcome: str | None = Field(default=None, max_length=10)  # kept | broken, from a CRM
    paid_amount: str | None = Field(default=None, max_length=40)  # a decimal, as the CRM wrote it
    reopened_at: datetime | None = Field(default=None, sa_column=_ts())
    follow_up_of: str | None = Field(default=None, max_length=40)
    first_text: str | None = None  # the customer's first message, cut (the topics report)
    offers: int = 0
    declines: int = 0
    timeouts: int = 0
    assignments: int = 0
    agent_replies: int = 0
    notes: int = 0
    transfers: int = 0
    requeues: int = 0
    active_s: float = 0.0  # the sum of its assignments' lengths
    survey_kind: str | None = Field(default=None, max_length=10)  # csat | nps
    survey_sent_at: datetime | None = Field(default=None, sa_column=_ts())
    survey_score: int | None = None
    survey_answered_at: datetime | None = Field(default=None, sa_column=_ts())
    survey_comment: str | None = None


class TrafficHourRow(SQLModel, table=True):
    """Messages in and out per campaign, channel and UTC hour: a counter the writers of messages
    add to in the same transaction (the volume report's rollup)."""

    __tablename__ = "traffic_hour"
    __table_args__ = (sa.Index("ix_traffic_hour_workspace_hour", "workspace_id", "hour"),)
    bucket: str = Field(primary_key=True, max_length=200)  # campaign|channel|direction|hour
    workspace_id: uuid.UUID = Field()
    campaign_id: uuid.UUID | None = Field(default=None)
    channel: str = Field(max_length=40)
    direction: str = Field(max_length=10)  # a MessageDirection (in / out)
    hour: datetime = Field(sa_column=_ts(nullable=False))
    messages: int = 0


_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY is the rowid


class WebhookSubscriptionRow(SQLModel, table=True):
    """A webhook subscription of a workspace, as its campaign manifest declares it
    (``integrations.webhooks``, ``source`` manifest, its ``campaign_id``) or the admin API made
    it (``source`` api, no campaign); ``paused_at`` is set when its endpoint failed for too long."""

    __tablename__ = "webhook_subscription"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "name", name="uq_webhook_subscription_name"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspace.id")
    campaign_id: uuid.UUID | None = Field(default=None, foreign_key="campaign.id")
    source: str = Field(default="manifest", max_length=20)  # manifest | api: who manages it
    name: str = Field(max_length=100)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=_json(nullable=False))
    secret_env: str = Field(max_length=200)  # the variable's name, never the secret
    active: bool = True
    failing_since: datetime | None = Field(default=None, sa_column=_ts())
    paused_at: datetime | None = Field(default=None, sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class EventOutboxRow(SQLModel, table=True):
    """One event for one subscription, written in the transaction of the fact it reports; the
    delivery worker claims it (``lease_until``), and its retry state lives here."""

    __tablename__ = "event_outbox"
    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_event_outbox_event"),
        sa.Index("ix_event_outbox_due", "status", "due_at"),
        sa.Index("ix_event_outbox_order", "subscription_id", "conversation_id", "seq"),
    )
    seq: int | None = Field(default=None, sa_column=sa.Column(_SERIAL, primary_key=True, autoincrement=True))
    event_id: uuid.UUID = Field()
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id")
    workspace_id: uuid.UUID = Field()
    conversation_id: uuid.UUID | None = Field(default=None)
    type: str = Field(max_length=60)
    occurred_at: datetime = Field(sa_column=_ts(nullable=False))
    body: dict[str, Any] = Field(default_factory=dict, sa_column=_json(nullable=False))
    status: str = Field(default="pending", max_length=20)  # pending | delivered | failed
    attempts: int = 0
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    due_at: datetime = Field(sa_column=_ts(nullable=False))
    lease_until: datetime | None = Field(default=None, sa_column=_ts())
    delivered_at: datetime | None = Field(default=None, sa_column=_ts())
    last_error: str | None = Field(default=None, max_length=500)


class WebhookDeliveryRow(SQLModel, table=True):
    """One attempt to deliver an event: the subscription's delivery log."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (sa.Index("ix_webhook_delivery_subscription_at", "subscription_id", "attempted_at"),)
    id: uuid.UUID = Field(default_factory=_id, primary_key=True)
    subscription_id: uuid.UUID = Field(foreign_key="webhook_subscription.id")
    event_id: uuid.UUID = Field()
    attempted_at: datetime = Field(sa_column=_ts(nullable=False))
    status_code: int | None = None
    latency_ms: float | None = None
    outcome: str = Field(max_length=20)  # a DeliveryOutcome
    error: str | None = Field(default=None, max_length=500)


metadata = SQLModel.metadata
