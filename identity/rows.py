"""The identity state as rows: what the storage layer persists and loads.

Every row is a frozen value carrying its workspace.  The graph (``identity.graph``) works on a
*working set* of these rows — one or a few connected components — and hands back a
:class:`ChangeSet` of inserted and updated rows for the storage layer to apply in one
transaction.  Nothing is ever deleted: edges are retracted, suggestions decided, blocks lifted,
customers merged into others (and restored).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.ids import CustomerId, WorkspaceId
from identity.normalize import Identifier

__all__ = [
    "DETERMINISTIC_SOURCES",
    "SYSTEM_ACTOR",
    "AuditAction",
    "AuditEntry",
    "Block",
    "BlockReason",
    "ChangeSet",
    "CustomerRow",
    "EvidenceEdge",
    "EvidenceSource",
    "IdentifierRow",
    "IdentityRows",
    "Reassignment",
    "Suggestion",
    "SuggestionStatus",
]

SYSTEM_ACTOR = "system"
"""The actor of automatic evidence; agents act under their agent id (``str(agent_id)``)."""


class EvidenceSource(StrEnum):
    """Why two identifiers are thought to be one person."""

    SAME_IDENTIFIER = "same_identifier"  # the same normalized key (recorded as a match, or an edge)
    CHANNEL_VERIFIED = "channel_verified"  # the channel pairs them (WhatsApp phone + BSUID)
    AGENT_LINK = "agent_link"  # an agent said so (directly or by confirming a suggestion)
    CUSTOMER_STATED = "customer_stated"  # "mi correo es …" — weak
    EMAIL_SIGNATURE = "email_signature"  # a phone or address in the signature — weak
    NAME_MATCH = "name_match"  # the same display name — weak

    @property
    def deterministic(self) -> bool:
        return self in DETERMINISTIC_SOURCES


DETERMINISTIC_SOURCES = frozenset(
    {EvidenceSource.SAME_IDENTIFIER, EvidenceSource.CHANNEL_VERIFIED, EvidenceSource.AGENT_LINK}
)


@dataclass(frozen=True, slots=True)
class IdentifierRow:
    """A node.  Unique on ``(workspace_id, identifier.key)`` — the index that makes two workers
    meeting the same new identifier collide instead of creating two customers."""

    workspace_id: WorkspaceId
    identifier: Identifier
    customer_id: CustomerId  # the customer it belongs to now (its component's id)
    home_customer_id: CustomerId  # the customer it was first given; an unmerge may restore it
    first_seen_at: datetime
    display_names: frozenset[str] = frozenset()  # normalized names it was seen with

    @property
    def key(self) -> str:
        return self.identifier.key


@dataclass(frozen=True, slots=True)
class EvidenceEdge:
    """Deterministic evidence between two identifier keys (``a < b``).  Never deleted: an
    unmerge sets ``retracted_at``."""

    id: uuid.UUID
    workspace_id: WorkspaceId
    a: str
    b: str
    source: EvidenceSource
    created_at: datetime
    actor: str
    reference: str | None = None  # message id the evidence came from
    suggestion_id: uuid.UUID | None = None  # the suggestion an agent confirmed, if any
    retracted_at: datetime | None = None
    retracted_by: str | None = None
    retraction_audit_id: uuid.UUID | None = None

    @property
    def active(self) -> bool:
        return self.retracted_at is None


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customer id.  Retired ones point at the customer they were merged into."""

    id: CustomerId
    workspace_id: WorkspaceId
    created_at: datetime
    merged_into: CustomerId | None = None


class SuggestionStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Weak evidence waiting for an agent.  One row per identifier pair, ever: a decided pair is
    never suggested again.  ``b`` may be an identifier never seen as a sender (an email a
    customer typed); the suggestion becomes actionable when it shows up on another customer."""

    id: uuid.UUID
    workspace_id: WorkspaceId
    a: Identifier  # the identifier the evidence came from (the sender)
    b: Identifier  # the identifier it points at
    source: EvidenceSource
    created_at: datetime
    actor: str
    reference: str | None = None
    status: SuggestionStatus = SuggestionStatus.PENDING
    decided_at: datetime | None = None
    decided_by: str | None = None
    edge_id: uuid.UUID | None = None  # the agent_link edge a confirmation created

    @property
    def pair(self) -> tuple[str, str]:
        return _pair(self.a.key, self.b.key)


class BlockReason(StrEnum):
    MANUAL = "manual"  # on the workspace blocklist
    POLICY = "policy"  # a role address by rule (noreply@, info@, …) — computed, not stored
    SHARED = "shared"  # auto: claimed by too many distinct customers
    NAMES = "names"  # auto: seen with too many different display names


@dataclass(frozen=True, slots=True)
class Block:
    """A blocked identifier: it never merges anyone.  Unique on ``(workspace_id, key)``; lifting
    keeps the row."""

    workspace_id: WorkspaceId
    key: str
    reason: BlockReason
    created_at: datetime
    actor: str
    detail: str = ""
    lifted_at: datetime | None = None
    lifted_by: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class AuditAction(StrEnum):
    MERGE = "merge"  # evidence joined two or more customers
    LINK = "link"  # an agent's link or confirmation between identifiers already one customer
    UNMERGE = "unmerge"  # evidence retracted (the component may have split)
    BLOCK = "block"
    UNBLOCK = "unblock"
    REJECT = "reject"  # a suggestion rejected


@dataclass(frozen=True, slots=True)
class Reassignment:
    """Identifier ``key`` moved from one customer to another: conversations and messages that
    came from it follow it."""

    key: str
    from_customer: CustomerId
    to_customer: CustomerId


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: uuid.UUID
    workspace_id: WorkspaceId
    action: AuditAction
    at: datetime
    actor: str
    edge_ids: tuple[uuid.UUID, ...] = ()  # the evidence added or retracted
    before: tuple[CustomerId, ...] = ()  # customer ids of the records involved, before
    after: tuple[CustomerId, ...] = ()  # and after
    reassignments: tuple[Reassignment, ...] = ()
    suggestion_id: uuid.UUID | None = None
    key: str | None = None  # the identifier blocked or unblocked
    reference: str | None = None  # message id the evidence came from
    detail: str = ""


@dataclass(frozen=True, slots=True)
class IdentityRows:
    """A working set as the storage layer loads it (see ``identity.graph.select_rows``).

    ``complete_customers`` names the customers whose every identifier is included; merges and
    splits may only touch those.  ``looked_up`` names the keys the storage layer searched for,
    found or not: only those may be created as new identifiers (anything else might exist
    unloaded).  ``None`` for both means a whole workspace.
    """

    identifiers: tuple[IdentifierRow, ...] = ()
    edges: tuple[EvidenceEdge, ...] = ()
    customers: tuple[CustomerRow, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    blocks: tuple[Block, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    complete_customers: frozenset[CustomerId] | None = None
    looked_up: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What to write, in one transaction.  ``*_inserted`` are new rows (an identifier insert that
    hits the unique index means another worker won: roll back, reload, resolve again);
    ``*_updated`` replace rows by primary key.  ``reassignments`` tell which identifiers'
    conversations and messages change customer (collapsed: one per key, net of the batch)."""

    identifiers_inserted: tuple[IdentifierRow, ...] = ()
    identifiers_updated: tuple[IdentifierRow, ...] = ()
    edges_inserted: tuple[EvidenceEdge, ...] = ()
    edges_updated: tuple[EvidenceEdge, ...] = ()
    customers_inserted: tuple[CustomerRow, ...] = ()
    customers_updated: tuple[CustomerRow, ...] = ()
    suggestions_inserted: tuple[Suggestion, ...] = ()
    suggestions_updated: tuple[Suggestion, ...] = ()
    blocks_upserted: tuple[Block, ...] = ()
    audit_inserted: tuple[AuditEntry, ...] = ()
    reassignments: tuple[Reassignment, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.identifiers_inserted,
                self.identifiers_updated,
                self.edges_inserted,
                self.edges_updated,
                self.customers_inserted,
                self.customers_updated,
                self.suggestions_inserted,
                self.suggestions_updated,
                self.blocks_upserted,
                self.audit_inserted,
            )
        )


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)
