"""A customer's data, exported: ``CustomerBundle``, the one shape of ``GET
/api/customers/{id}/export`` and ``centralita customers export-one``.

Built from what ``storage.export.export_customer`` read and recorded (``CustomerBundle.of``).  Every
time is UTC in ISO 8601 (``+00:00``); JSON the product stored as it received or wrote it
(a message's ``payload``, an audit entry's ``details``, a disposition's ``fields``) is kept as
stored.  ``notes`` says what the bundle cannot hold yet.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import AfterValidator, Field, PlainSerializer, WithJsonSchema

from centralita.schemas.common import ResponseBody
from core.states import ConversationStatus, MessageDirection
from storage.export import (
    AssignmentFacts,
    AuditFacts,
    BlockFacts,
    ConversationFacts,
    CustomerFacts,
    EvidenceFacts,
    Exported,
    IdentifierFacts,
    MessageFacts,
    RawDeliveryFacts,
    SuggestionFacts,
)
from storage.media import MediaRecord

__all__ = [
    "BUNDLE_NOTES",
    "SCHEMA_VERSION",
    "BundleAssignment",
    "BundleAuditEntry",
    "BundleBlock",
    "BundleConversation",
    "BundleCustomer",
    "BundleDisposition",
    "BundleEvidence",
    "BundleFollowUp",
    "BundleIdentifier",
    "BundleMedia",
    "BundleMessage",
    "BundleRawDelivery",
    "BundleRef",
    "BundleSuggestion",
    "BundleWorkspace",
    "CustomerBundle",
]

SCHEMA_VERSION = 1
"""Bumped when a field of the bundle changes meaning or goes away (adding one does not)."""


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a time must be timezone-aware")
    return value.astimezone(UTC)


UtcTime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A time in UTC, written ``2026-12-07T02:40:00+00:00``."""

BUNDLE_NOTES = (
    "media: the person's attachments the engine fetched into its media store, with their type, "
    "size and SHA-256; the files themselves come from GET /api/media/{id} (url) or, with "
    "`centralita customers export-one --out DIR`, are written beside the bundle (file). "
    "Attachments that were never fetched, failed or were erased are listed without a file.",
    "raw_deliveries: the webhook deliveries the person's messages were parsed from; a delivery "
    "that also carried another customer's message is listed without its body (shared). Delivery "
    "status webhooks are not linked to a message and are not included.",
    "Offers, routing decisions and agents' records are not included: they describe the agents' "
    "work, not the person. No survey answers are stored by the product.",
)


class BundleWorkspace(ResponseBody):
    id: UUID
    slug: str


class BundleRef(ResponseBody):
    """A campaign or queue: its id and name (null when it no longer exists)."""

    id: UUID
    name: str | None


class BundleCustomer(ResponseBody):
    """A customer record: the live one, or one merged into it."""

    id: UUID
    display_name: str | None
    created_at: UtcTime
    merged_into: UUID | None = Field(description="The customer it was merged into (null: live).")
    active: bool
    legal_hold: str | None = Field(description="Why its data may not be erased (null: none).")
    erased_at: UtcTime | None

    @classmethod
    def of(cls, c: CustomerFacts) -> Self:
        return cls(
            id=c.id,
            display_name=c.display_name,
            created_at=c.created_at,
            merged_into=c.merged_into,
            active=c.active,
            legal_hold=c.legal_hold,
            erased_at=c.erased_at,
        )


class BundleBlock(ResponseBody):
    """The identifier is (or was) blocked: it merges no one."""

    reason: str = Field(examples=["manual", "shared", "names"])
    detail: str
    actor: str
    created_at: UtcTime
    lifted_at: UtcTime | None
    lifted_by: str | None

    @classmethod
    def of(cls, b: BlockFacts) -> Self:
        return cls(
            reason=b.reason,
            detail=b.detail,
            actor=b.actor,
            created_at=b.created_at,
            lifted_at=b.lifted_at,
            lifted_by=b.lifted_by,
        )


class BundleIdentifier(ResponseBody):
    """A phone, email address or channel-scoped id of the person, as stored."""

    id: UUID
    kind: str
    key: str
    value: str
    scope: str | None
    customer_id: UUID
    home_customer_id: UUID = Field(description="The customer it founded or first joined.")
    display_name: str | None = Field(description="The name last seen with it.")
    display_names: list[str] = Field(description="Normalized names it was seen with.")
    first_seen_at: UtcTime
    block: BundleBlock | None

    @classmethod
    def of(cls, i: IdentifierFacts, block: BlockFacts | None) -> Self:
        return cls(
            id=i.id,
            kind=i.kind,
            key=i.key,
            value=i.value,
            scope=i.scope,
            customer_id=i.customer_id,
            home_customer_id=i.home_customer_id,
            display_name=i.display_name,
            display_names=list(i.display_names),
            first_seen_at=i.created_at,
            block=BundleBlock.of(block) if block is not None else None,
        )


class BundleEvidence(ResponseBody):
    """An edge of the identity graph touching one of the person's identifiers (by key)."""

    id: UUID
    a: str
    b: str
    source: str = Field(examples=["same_identifier", "channel_verified", "agent_link"])
    actor: str
    reference: str | None = Field(description="The message the evidence came from.")
    suggestion_id: UUID | None
    created_at: UtcTime
    retracted_at: UtcTime | None
    retracted_by: str | None
    retraction_audit_id: UUID | None

    @classmethod
    def of(cls, e: EvidenceFacts) -> Self:
        return cls(
            id=e.id,
            a=e.a_key,
            b=e.b_key,
            source=e.source,
            actor=e.actor,
            reference=e.reference,
            suggestion_id=e.suggestion_id,
            created_at=e.created_at,
            retracted_at=e.retracted_at,
            retracted_by=e.retracted_by,
            retraction_audit_id=e.retraction_audit_id,
        )


class BundleSuggestion(ResponseBody):
    """Weak evidence (pending or decided) touching one of the person's identifiers."""

    id: UUID
    from_key: str = Field(description="The identifier the evidence came from.")
    from_value: str
    points_at_key: str
    points_at_value: str
    source: str = Field(examples=["customer_stated", "email_signature", "name_match"])
    actor: str
    reference: str | None
    status: str = Field(examples=["pending", "confirmed", "rejected"])
    created_at: UtcTime
    decided_at: UtcTime | None
    decided_by: str | None

    @classmethod
    def of(cls, s: SuggestionFacts) -> Self:
        return cls(
            id=s.id,
            from_key=s.a_key,
            from_value=s.a_value,
            points_at_key=s.b_key,
            points_at_value=s.b_value,
            source=s.source,
            actor=s.actor,
            reference=s.reference,
            status=s.status,
            created_at=s.created_at,
            decided_at=s.decided_at,
            decided_by=s.decided_by,
        )


class BundleFollowUp(ResponseBody):
    """A follow-up the disposition scheduled; ``done_at`` once a conversation took it."""

    due_at: UtcTime | None
    queue: str | None
    queue_id: UUID | None
    template: str | None
    done_at: UtcTime | None
    conversation_id: UUID | None = Field(description="The conversation that took it.")


class BundleDisposition(ResponseBody):
    """How the conversation was closed: the wrap-up code and the fields it carried."""

    code: str
    label: str | None
    closed_by: str | None
    fields: dict[str, Any] = Field(
        description="The rest as stored: date, amount, note; for a merge, into and previous_status."
    )


class BundleAssignment(ResponseBody):
    agent_id: UUID
    assigned_at: UtcTime
    ended_at: UtcTime | None
    reason: str | None

    @classmethod
    def of(cls, a: AssignmentFacts) -> Self:
        return cls(agent_id=a.agent_id, assigned_at=a.assigned_at, ended_at=a.ended_at, reason=a.reason)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


class BundleConversation(ResponseBody):
    id: UUID
    customer_id: UUID
    status: ConversationStatus
    channel: str = Field(description="The channel the customer last used in it.")
    channel_account_id: UUID | None
    campaign: BundleRef | None
    queue: BundleRef | None
    agent_id: UUID | None
    identifier_id: UUID | None = Field(description="The identifier replies go to.")
    origin_identifier_id: UUID | None = Field(description="The identifier that opened it.")
    priority: int
    opened_at: UtcTime
    enqueued_at: UtcTime | None
    assigned_at: UtcTime | None
    first_response_at: UtcTime | None
    closed_at: UtcTime | None
    last_customer_message_at: UtcTime | None
    auto_replied_at: UtcTime | None
    disposition: BundleDisposition | None
    follow_up: BundleFollowUp | None
    assignments: list[BundleAssignment] = Field(description="Who had it, oldest first.")

    @classmethod
    def of(cls, c: ConversationFacts) -> Self:
        stored = dict(c.disposition or {})
        plan = stored.pop("follow_up", None)
        disposition = None
        if c.disposition is not None:
            disposition = BundleDisposition(
                code=str(stored.pop("code", "")),
                label=_text(stored.pop("label", None)),
                closed_by=_text(stored.pop("closed_by", None)),
                fields=stored,
            )
        follow_up = None
        if isinstance(plan, dict) or c.follow_up_at is not None:
            plan = plan if isinstance(plan, dict) else {}
            follow_up = BundleFollowUp(
                due_at=c.follow_up_at or _time(plan.get("due_at")),
                queue=_text(plan.get("queue")),
                queue_id=_uuid(plan.get("queue_id")),
                template=_text(plan.get("template")),
                done_at=_time(plan.get("done_at")),
                conversation_id=_uuid(plan.get("conversation_id")),
            )
        return cls(
            id=c.id,
            customer_id=c.customer_id,
            status=ConversationStatus(c.status),
            channel=c.channel,
            channel_account_id=c.channel_account_id,
            campaign=BundleRef(id=c.campaign_id, name=c.campaign_name) if c.campaign_id else None,
            queue=BundleRef(id=c.queue_id, name=c.queue_name) if c.queue_id else None,
            agent_id=c.agent_id,
            identifier_id=c.identifier_id,
            origin_identifier_id=c.origin_identifier_id,
            priority=c.priority,
            opened_at=c.opened_at,
            enqueued_at=c.enqueued_at,
            assigned_at=c.assigned_at,
            first_response_at=c.first_response_at,
            closed_at=c.closed_at,
            last_customer_message_at=c.last_customer_message_at,
            auto_replied_at=c.auto_replied_at,
            disposition=disposition,
            follow_up=follow_up,
            assignments=[BundleAssignment.of(a) for a in c.assignments],
        )


class BundleMessage(ResponseBody):
    """A timeline entry: a message in or out, a note, a reaction, a system notice."""

    id: UUID
    at: UtcTime = Field(description="When it was written (the provider's time for inbound).")
    stored_at: UtcTime
    conversation_id: UUID | None
    customer_id: UUID | None
    identifier_id: UUID | None = Field(description="The person's identifier it came from or went to.")
    direction: MessageDirection
    kind: str = Field(examples=["message", "reaction", "postback", "system", "note"])
    channel: str
    channel_account_id: UUID | None
    external_id: str | None = Field(description="The provider's message id.")
    text: str | None
    agent_id: UUID | None
    delivery_state: str | None = Field(
        description="A reply's: queued, sending, sent, delivered, read, failed, unknown."
    )
    error: dict[str, Any] | None = Field(description="Why a reply failed or is unknown.")
    attempts: int
    resend_of: UUID | None
    template: dict[str, Any] | str | None = Field(description="A reply's template, as sent.")
    attachments: list[dict[str, Any]] = Field(
        description="Attachment metadata as the channel sent it (no file: see media)."
    )
    raw_delivery_id: UUID | None = Field(description="The webhook delivery it was parsed from.")
    payload: dict[str, Any] = Field(description="Everything else stored with it, as stored.")

    @classmethod
    def of(cls, m: MessageFacts) -> Self:
        payload = dict(m.payload)
        template = payload.pop("template", None)
        attachments = payload.pop("attachments", None)
        return cls(
            id=m.id,
            at=m.created_at,
            stored_at=m.stored_at,
            conversation_id=m.conversation_id,
            customer_id=m.customer_id,
            identifier_id=m.identifier_id,
            direction=MessageDirection(m.direction),
            kind=m.kind,
            channel=m.channel,
            channel_account_id=m.channel_account_id,
            external_id=m.external_id,
            text=m.text,
            agent_id=m.agent_id,
            delivery_state=m.delivery_state,
            error=m.error,
            attempts=m.attempts,
            resend_of=m.resend_of,
            template=template if isinstance(template, dict | str) else None,
            attachments=[a for a in attachments or () if isinstance(a, dict)],
            raw_delivery_id=m.raw_delivery_id,
            payload=payload,
        )


class BundleRawDelivery(ResponseBody):
    """A webhook delivery exactly as the provider sent it."""

    id: UUID
    channel: str
    received_at: UtcTime
    status: str
    error: str | None
    headers: dict[str, Any] = Field(description="The provider headers kept (no credentials).")
    body_sha256: str
    shared: bool = Field(description="It also carried another customer's message: body withheld.")
    body_encoding: Literal["utf-8", "base64"] | None = Field(description="null: withheld.")
    body: str | None

    @classmethod
    def of(cls, r: RawDeliveryFacts) -> Self:
        encoding: Literal["utf-8", "base64"] | None = None
        body: str | None = None
        if r.body is not None:
            try:
                body, encoding = r.body.decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                body, encoding = base64.b64encode(r.body).decode("ascii"), "base64"
        return cls(
            id=r.id,
            channel=r.channel,
            received_at=r.received_at,
            status=r.status,
            error=r.error,
            headers=r.headers,
            body_sha256=r.body_sha256,
            shared=r.shared,
            body_encoding=encoding,
            body=body,
        )


class BundleAuditEntry(ResponseBody):
    """An audit entry about the person: identity changes (merges, links, unmerges, blocks) and
    any entry whose subject is one of their customer ids or identifiers — earlier exports
    (``customer.export``) included."""

    id: UUID
    at: UtcTime
    actor: str = Field(description="system, an agent's id, or token:<id>.")
    action: str = Field(
        examples=["identity.merge", "identity.link", "identity.unmerge", "customer.export", "customer.erase"]
    )
    subject_type: str
    subject_id: str
    details: dict[str, Any] = Field(description="As recorded.")

    @classmethod
    def of(cls, a: AuditFacts) -> Self:
        return cls(
            id=a.id,
            at=a.at,
            actor=a.actor,
            action=a.action,
            subject_type=a.subject_type,
            subject_id=a.subject_id,
            details=a.details,
        )


class BundleMedia(ResponseBody):
    """One of the person's attachments as the media store holds it."""

    id: UUID
    message_id: UUID | None = Field(description="null: an agent's upload that no reply sent.")
    position: int = Field(description="Its index among the message's attachments.")
    kind: str
    status: str = Field(description="stored, pending, failed or erased.")
    mime_type: str | None
    size: int | None
    sha256: str | None
    url: str | None = Field(description="GET it while stored (same authorization as the export).")
    file: str | None = Field(
        description="Its file beside the bundle (media/<id>), when the CLI wrote the bundle to a directory."
    )

    @classmethod
    def of(cls, media: MediaRecord) -> Self:
        stored = media.status == "stored"
        return cls(
            id=media.id,
            message_id=media.message_id,
            position=media.position,
            kind=media.kind,
            status=media.status,
            mime_type=media.mime_type,
            size=media.size,
            sha256=media.sha256,
            url=f"/api/media/{media.id}" if stored else None,
            file=None,
        )


class CustomerBundle(ResponseBody):
    """Everything the workspace holds about one person."""

    schema_version: int = Field(description="Of this shape (1).")
    exported_at: UtcTime = Field(description="When it was read; the time of its audit entry.")
    audit_id: UUID = Field(
        description=(
            "This export's customer.export audit entry, written after the read: this bundle's "
            "audit does not list it, the next export's does."
        )
    )
    workspace: BundleWorkspace
    requested_id: UUID = Field(description="The id asked for (a merged-away id stands for its survivor).")
    customer: BundleCustomer = Field(description="The live customer.")
    merged_customers: list[BundleCustomer] = Field(description="Ids merged into it, oldest first.")
    identifiers: list[BundleIdentifier] = Field(description="Oldest first.")
    evidence: list[BundleEvidence] = Field(description="Edges touching the identifiers, retracted ones too.")
    suggestions: list[BundleSuggestion]
    conversations: list[BundleConversation] = Field(description="Oldest first.")
    timeline: list[BundleMessage] = Field(description="Every entry, oldest first.")
    raw_deliveries: list[BundleRawDelivery]
    audit: list[BundleAuditEntry] = Field(
        description="Oldest first: every entry written before this export, earlier exports included."
    )
    media: list[BundleMedia]
    notes: list[str] = Field(description="What the bundle does not hold, and why.")

    @classmethod
    def of(cls, export: Exported) -> Self:
        data = export.data
        blocks = {b.key: b for b in data.blocks}
        return cls(
            schema_version=SCHEMA_VERSION,
            exported_at=export.exported_at,
            audit_id=export.audit_id,
            workspace=BundleWorkspace(id=data.workspace_id, slug=data.workspace_slug),
            requested_id=data.requested_id,
            customer=BundleCustomer.of(data.customer),
            merged_customers=[BundleCustomer.of(c) for c in data.merged_customers],
            identifiers=[BundleIdentifier.of(i, blocks.get(i.key)) for i in data.identifiers],
            evidence=[BundleEvidence.of(e) for e in data.evidence],
            suggestions=[BundleSuggestion.of(s) for s in data.suggestions],
            conversations=[BundleConversation.of(c) for c in data.conversations],
            timeline=[BundleMessage.of(m) for m in data.messages],
            raw_deliveries=[BundleRawDelivery.of(r) for r in data.raw_deliveries],
            audit=[BundleAuditEntry.of(a) for a in data.audit],
            media=[BundleMedia.of(m) for m in data.media],
            notes=list(BUNDLE_NOTES),
        )

    def file_name(self) -> str:
        """The bundle's file under ``--out DIR``."""
        return f"customer-{self.customer.id}.json"
