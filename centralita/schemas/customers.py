"""Customers and their identity: identifiers, suggestions, evidence edges, the audit, merges, blocks.

One model per shape, shared by the API (``centralita.web.api.customers``) and the CLI
(``centralita customers export`` prints ``CustomerExport``: the API's identifiers and suggestions
narrowed to the fields the export has always printed).  The customer's timeline entries are the
conversation timeline's ``TimelineEntry`` (``in_customer_timeline``: with ``external_id``).

A customer id that was merged away answers with the survivor: ``id``/``customer_id`` is the
survivor, ``requested_id`` the id asked for, ``merged_into`` the survivor's id (``null`` when the
id asked for is the live one).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from centralita.schemas.conversations import QueueRef, TimelineEntry
from core.events import AddressKind
from core.ids import CustomerId
from core.records import TimelineEntry as TimelineRecord
from core.states import ConversationStatus
from identity import (
    AuditAction,
    BlockReason,
    CustomerRow,
    EvidenceSource,
    IdentifierRow,
    IdentityGraph,
    SuggestionStatus,
    SuggestionView,
)
from identity import AuditEntry as AuditRecord
from identity import EvidenceEdge as EdgeRecord
from identity import Identifier as IdentifierValue
from identity import MergePreview as PreviewRecord
from identity import Reassignment as ReassignmentRecord
from storage.identity_store import CustomerConversation as ConversationRecord
from storage.identity_store import CustomerPrivacy

__all__ = [
    "AuditEntry",
    "BlockRequest",
    "BlockResult",
    "Customer",
    "CustomerAudit",
    "CustomerConversation",
    "CustomerExport",
    "CustomerIdentifier",
    "CustomerSearch",
    "CustomerTimeline",
    "EvidenceEdge",
    "Identifier",
    "IdentityChange",
    "MergePreview",
    "MergeRequest",
    "Reassignment",
    "Suggestion",
    "SuggestionEvidence",
    "UnmergeRequest",
    "Unmerged",
]

_BY_ALIAS = ConfigDict(serialize_by_alias=True)
"""For shapes with a field named like a Python keyword: ``from_`` in Python, ``from`` on the wire."""


# ------------------------------------------------------------------------------------ identifiers


class Identifier(ResponseBody):
    """A phone, an email address or a channel-scoped id, normalized as the channels' addresses are."""

    kind: AddressKind
    value: str = Field(description="As shown: E.164, a lower-cased email address, the channel's id.")
    key: str = Field(
        description="The matching key, unique per workspace (phone:+52…, email:…, instagram_id:<acct>:<id>)."
    )
    scope: str | None = Field(description="The business account a channel-scoped id belongs to.")

    @classmethod
    def of(cls, identifier: IdentifierValue) -> Self:
        return cls(kind=identifier.kind, value=identifier.value, key=identifier.key, scope=identifier.scope)


class CustomerIdentifier(Identifier):
    """One of a customer's identifiers, with its block (a blocked identifier merges no one)."""

    first_seen_at: IsoDateTime
    blocked: bool
    block_reason: BlockReason | None

    @classmethod
    def of_node(cls, node: IdentifierRow, graph: IdentityGraph) -> Self:
        block = graph.block_of(node.key)
        return cls(
            **dict(Identifier.of(node.identifier)),
            first_seen_at=node.first_seen_at,
            blocked=block is not None,
            block_reason=block.reason if block is not None else None,
        )


# ------------------------------------------------------------------------------------ suggestions


class SuggestionEvidence(ResponseBody):
    """Why the link is suggested: the identifier the evidence came from and the one it points at."""

    model_config = _BY_ALIAS

    source: EvidenceSource
    from_: Identifier = Field(serialization_alias="from")
    points_at: Identifier
    reference: str | None = Field(description="The message the evidence came from.")
    actor: str
    created_at: IsoDateTime


class Suggestion(ResponseBody):
    """A weak link between one of the customer's identifiers and another, for an agent to decide."""

    id: UUID
    status: SuggestionStatus
    identifier: Identifier = Field(description="The customer's own side of the link.")
    other: Identifier
    other_customer_id: UUID | None = Field(description="null: the other identifier has not written yet.")
    evidence: SuggestionEvidence

    @classmethod
    def of(cls, view: SuggestionView) -> Self:
        s = view.suggestion
        ours = s.a if view.other.key == s.b.key else s.b
        return cls(
            id=s.id,
            status=s.status,
            identifier=Identifier.of(ours),
            other=Identifier.of(view.other),
            other_customer_id=view.other_customer_id,
            evidence=SuggestionEvidence(
                source=s.source,
                from_=Identifier.of(s.a),
                points_at=Identifier.of(s.b),
                reference=s.reference,
                actor=s.actor,
                created_at=s.created_at,
            ),
        )


# ------------------------------------------------------------------------------------ a customer


class CustomerConversation(ResponseBody):
    """One of the customer's conversations: where it was, how it ended, what follows."""

    id: UUID
    campaign_id: UUID | None
    status: ConversationStatus
    channel: str
    agent_id: UUID | None
    opened_at: IsoDateTime
    queue: QueueRef | None
    closed_at: IsoDateTime | None
    disposition: dict[str, Any] | None = Field(
        description="As closed: code, label, date, amount, note, closed_by and the follow-up scheduled."
    )
    follow_up_at: IsoDateTime | None = Field(description="When a follow-up re-enters routing.")

    @classmethod
    def of(cls, conversation: ConversationRecord) -> Self:
        queue_id = conversation.queue_id
        return cls(
            id=conversation.id,
            campaign_id=conversation.campaign_id,
            status=ConversationStatus(conversation.status),
            channel=conversation.channel,
            agent_id=conversation.agent_id,
            opened_at=conversation.opened_at,
            queue=QueueRef(id=queue_id, name=conversation.queue_name) if queue_id is not None else None,
            closed_at=conversation.closed_at,
            disposition=conversation.disposition,
            follow_up_at=conversation.follow_up_at,
        )


class Customer(ResponseBody):
    """A customer: identifiers, shared contact points, pending suggestions and conversations."""

    id: UUID = Field(description="The live customer (the survivor of a merge).")
    requested_id: UUID
    merged_into: UUID | None
    created_at: IsoDateTime
    identifiers: list[CustomerIdentifier] = Field(description="Oldest first.")
    shared_contacts: list[CustomerIdentifier] = Field(
        description="Blocked identifiers with evidence into this customer."
    )
    suggestions: list[Suggestion] = Field(description="Pending; none that would involve an erased customer.")
    conversations: list[CustomerConversation]
    legal_hold: str | None = Field(
        description="Why the customer's data may not be erased now (null: no hold)."
    )
    erased_at: IsoDateTime | None = Field(description="When the customer's data was erased (null: never).")
    labels: list[str] = Field(description="Set by a CRM (POST /api/customers/{id}/labels), sorted.")

    @classmethod
    def of(
        cls,
        live: CustomerRow,
        requested: UUID,
        graph: IdentityGraph,
        conversations: Sequence[ConversationRecord],
        privacy: CustomerPrivacy,
        erased: Collection[UUID] = (),
        labels: Sequence[str] = (),
    ) -> Self:
        """``erased``: other customers whose suggestions are not offered."""
        return cls(
            id=live.id,
            requested_id=requested,
            merged_into=live.id if live.id != requested else None,
            created_at=live.created_at,
            identifiers=[CustomerIdentifier.of_node(n, graph) for n in graph.identifiers_of(live.id)],
            shared_contacts=[CustomerIdentifier.of_node(n, graph) for n in graph.shared_contacts(live.id)],
            suggestions=[]
            if privacy.erased_at is not None
            else [
                Suggestion.of(v) for v in graph.suggestions_for(live.id) if v.other_customer_id not in erased
            ],
            conversations=[CustomerConversation.of(c) for c in conversations],
            legal_hold=privacy.legal_hold,
            erased_at=privacy.erased_at,
            labels=list(labels),
        )


class CustomerSearch(ResponseBody):
    """The customer holding the identifier: none or one."""

    identifier: Identifier = Field(description="The identifier as read.")
    customers: list[Customer]


class _OfCustomer(ResponseBody):
    customer_id: UUID = Field(description="The live customer (the survivor of a merge).")
    requested_id: UUID
    merged_into: UUID | None


def _resolved(live: UUID, requested: UUID) -> dict[str, Any]:
    return {
        "customer_id": live,
        "requested_id": requested,
        "merged_into": live if live != requested else None,
    }


class CustomerTimeline(_OfCustomer):
    """The customer's timeline across channels and conversations, oldest first."""

    entries: list[TimelineEntry]
    next_cursor: str | None = Field(description="The next (newer) page's cursor (null: this is the last).")

    @classmethod
    def of(
        cls, live: UUID, requested: UUID, entries: Sequence[TimelineRecord], next_cursor: str | None
    ) -> Self:
        return cls(
            **_resolved(live, requested),
            entries=TimelineEntry.page(entries, customer=True),
            next_cursor=next_cursor,
        )


# ------------------------------------------------------------------------------------ the audit


class EvidenceEdge(ResponseBody):
    """Evidence that two identifiers (by key) are one person."""

    id: UUID
    a: str = Field(description="An identifier's key.")
    b: str
    source: EvidenceSource
    actor: str
    created_at: IsoDateTime
    reference: str | None
    suggestion_id: UUID | None = Field(description="The suggestion an agent confirmed, if any.")
    retracted_at: IsoDateTime | None = Field(description="An unmerge retracted it.")

    @classmethod
    def of(cls, edge: EdgeRecord) -> Self:
        return cls(
            id=edge.id,
            a=edge.a,
            b=edge.b,
            source=edge.source,
            actor=edge.actor,
            created_at=edge.created_at,
            reference=edge.reference,
            suggestion_id=edge.suggestion_id,
            retracted_at=edge.retracted_at,
        )


class Reassignment(ResponseBody):
    """An identifier that moved from one customer to another."""

    model_config = _BY_ALIAS

    key: str
    from_: UUID = Field(serialization_alias="from")
    to: UUID

    @classmethod
    def of(cls, move: ReassignmentRecord) -> Self:
        return cls(key=move.key, from_=move.from_customer, to=move.to_customer)


class AuditEntry(ResponseBody):
    """An identity change: who did what, with which evidence, and the customers before and after."""

    id: UUID
    action: AuditAction
    at: IsoDateTime
    actor: str = Field(description="system, an agent's id, or token:<id>.")
    evidence: list[EvidenceEdge] = Field(description="The evidence added or retracted.")
    before: list[UUID]
    after: list[UUID]
    reassignments: list[Reassignment]
    suggestion_id: UUID | None
    key: str | None = Field(description="The identifier blocked or unblocked.")
    reference: str | None
    detail: str

    @classmethod
    def of(cls, entry: AuditRecord, edges: Mapping[UUID, EdgeRecord]) -> Self:
        return cls(
            id=entry.id,
            action=entry.action,
            at=entry.at,
            actor=entry.actor,
            evidence=[EvidenceEdge.of(edges[e]) for e in entry.edge_ids if e in edges],
            before=list(entry.before),
            after=list(entry.after),
            reassignments=[Reassignment.of(m) for m in entry.reassignments],
            suggestion_id=entry.suggestion_id,
            key=entry.key,
            reference=entry.reference,
            detail=entry.detail,
        )


class CustomerAudit(_OfCustomer):
    """Identity audit entries involving the customer or any customer merged into it."""

    entries: list[AuditEntry]

    @classmethod
    def of(
        cls,
        live: UUID,
        requested: UUID,
        entries: Sequence[AuditRecord],
        edges: Mapping[UUID, EdgeRecord],
    ) -> Self:
        return cls(**_resolved(live, requested), entries=[AuditEntry.of(e, edges) for e in entries])


# ------------------------------------------------------------------------------------ merges and blocks


class MergePreview(ResponseBody):
    """What a merge or link would do; nothing changes."""

    would_merge: bool
    survivor: UUID | None
    merged_away: list[UUID]
    customers: list[UUID]
    identifiers: list[Identifier] = Field(description="Of the resulting customer.")
    blocked: list[str] = Field(description="Keys of blocked identifiers that prevent the merge.")
    conversations: int | None = Field(description="Conversations of the customers involved.")

    @classmethod
    def of(cls, preview: PreviewRecord) -> Self:
        return cls(
            would_merge=preview.would_merge,
            survivor=preview.survivor,
            merged_away=list(preview.merged_away),
            customers=list(preview.customers),
            identifiers=[Identifier.of(i) for i in preview.identifiers],
            blocked=list(preview.blocked),
            conversations=preview.conversations,
        )


class IdentityChange(ResponseBody):
    """A merge, link, confirmation or rejection: its audit entry and the customer it leaves."""

    audit: AuditEntry
    customer_id: UUID | None = Field(description="The customer after the change.")

    @classmethod
    def of(cls, entry: AuditRecord, edges: Mapping[UUID, EdgeRecord]) -> Self:
        return cls(audit=AuditEntry.of(entry, edges), customer_id=entry.after[0] if entry.after else None)


class Unmerged(ResponseBody):
    """An unmerge: its audit entry and the customers the split left."""

    audit: AuditEntry
    customers: list[UUID]

    @classmethod
    def of(cls, entry: AuditRecord, edges: Mapping[UUID, EdgeRecord]) -> Self:
        return cls(audit=AuditEntry.of(entry, edges), customers=list(entry.after))


class BlockResult(ResponseBody):
    key: str
    blocked: bool
    audit: AuditEntry | None = Field(description="null: the identifier was already blocked.")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class MergeRequest(RequestBody):
    """Two customers (``customer_ids``) or two identifiers (``identifiers``: phones, emails or keys)."""

    # absent, not null: a null is refused, and the document shows neither null nor a default
    customer_ids: Annotated[list[UUID], Field(min_length=2, max_length=2)] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_default
    )
    identifiers: Annotated[list[str], Field(min_length=2, max_length=2)] | SkipJsonSchema[None] = Field(
        default=None, json_schema_extra=_no_default
    )
    region: str | None = Field(default=None, description="Region of numbers in national format (ISO 3166).")

    @field_validator("customer_ids", mode="before")
    @classmethod
    def _two_customers(cls, value: Any) -> Any:
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("must list two customers")
        return [_a_uuid(v) for v in value]

    @field_validator("identifiers", mode="before")
    @classmethod
    def _two_identifiers(cls, value: Any) -> Any:
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("send customer_ids or identifiers: two of them")
        if not all(isinstance(v, str) for v in value):
            raise ValueError("each must be a phone, an email address or a key")
        return value


def _a_uuid(value: Any) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise ValueError("must be a UUID") from None


class UnmergeRequest(RequestBody):
    audit_id: UUID = Field(description="The merge's (or link's) audit entry.")

    @field_validator("audit_id", mode="before")
    @classmethod
    def _an_id(cls, value: Any) -> UUID:
        return _a_uuid(value)


class BlockRequest(RequestBody):
    identifier: str = Field(description="A phone, an email address or a key.")
    region: str | None = Field(default=None, description="Region of numbers in national format (ISO 3166).")
    detail: str | None = Field(default=None, description="Why (kept to 200 characters).")


# ------------------------------------------------------------------------------------ the CLI


_EXPORTED_IDENTIFIER = {"kind": True, "value": True}
_EXPORTED: dict[str, Any] = {
    "id": True,
    "workspace": True,
    "identifiers": {"__all__": _EXPORTED_IDENTIFIER},
    "conversations": True,
    "suggestions": {
        "__all__": {
            "id": True,
            "other_customer_id": True,
            "other": _EXPORTED_IDENTIFIER,
            "evidence": {
                "source": True,
                "from_": _EXPORTED_IDENTIFIER,
                "points_at": _EXPORTED_IDENTIFIER,
                "reference": True,
                "created_at": True,
            },
        }
    },
}


class CustomerExport(ResponseBody):
    """One line of ``centralita customers export``: a live customer with its identifiers
    (``{kind, value}``, oldest first), its conversation count and its pending suggestions (the
    other customer, the other identifier and the evidence: source, from, points at, reference,
    time)."""

    id: UUID
    workspace: str = Field(description="The workspace's slug.")
    identifiers: list[Identifier]
    conversations: int
    suggestions: list[Suggestion]

    @classmethod
    def of(cls, customer: CustomerId, workspace: str, graph: IdentityGraph, conversations: int) -> Self:
        return cls(
            id=customer,
            workspace=workspace,
            identifiers=[Identifier.of(n.identifier) for n in graph.identifiers_of(customer)],
            conversations=conversations,
            suggestions=[Suggestion.of(v) for v in graph.suggestions_for(customer)],
        )

    def line(self) -> str:
        """The JSON line the CLI prints."""
        return json.dumps(self.model_dump(mode="json", include=_EXPORTED), ensure_ascii=False)
