"""Identity: one customer per person across channels, from evidence, with a way back.

Pure code (no I/O, clock injected).  ``normalize`` turns addresses into identifiers,
``extract`` finds identifiers customers state, ``graph`` holds the evidence graph and its
operations (merge, confirm, reject, unmerge, block), ``resolve`` applies an inbound event, and
``rows`` are the rows the storage layer persists.
"""

from identity.extract import extract_emails, extract_phones, extract_signature, extract_stated
from identity.graph import (
    DEFAULT_SHARED_LOCAL_PARTS,
    EvidenceResult,
    IdentityGraph,
    IdentityPolicy,
    MergePreview,
    SuggestionView,
    WorkingSetIncomplete,
    select_rows,
)
from identity.normalize import (
    Identifier,
    email_identifier,
    normalize_address,
    normalize_display_name,
    phone_identifier,
    phone_key,
    scoped_identifier,
)
from identity.resolve import (
    MatchKind,
    Observation,
    Resolution,
    StatedIdentifier,
    carries_new_evidence,
    observe_event,
    resolve,
)
from identity.rows import (
    DETERMINISTIC_SOURCES,
    SYSTEM_ACTOR,
    AuditAction,
    AuditEntry,
    Block,
    BlockReason,
    ChangeSet,
    CustomerRow,
    EvidenceEdge,
    EvidenceSource,
    IdentifierRow,
    IdentityRows,
    Reassignment,
    Suggestion,
    SuggestionStatus,
)

__all__ = [
    "DEFAULT_SHARED_LOCAL_PARTS",
    "DETERMINISTIC_SOURCES",
    "SYSTEM_ACTOR",
    "AuditAction",
    "AuditEntry",
    "Block",
    "BlockReason",
    "ChangeSet",
    "CustomerRow",
    "EvidenceEdge",
    "EvidenceResult",
    "EvidenceSource",
    "Identifier",
    "IdentifierRow",
    "IdentityGraph",
    "IdentityPolicy",
    "IdentityRows",
    "MatchKind",
    "MergePreview",
    "Observation",
    "Reassignment",
    "Resolution",
    "StatedIdentifier",
    "Suggestion",
    "SuggestionStatus",
    "SuggestionView",
    "WorkingSetIncomplete",
    "carries_new_evidence",
    "email_identifier",
    "extract_emails",
    "extract_phones",
    "extract_signature",
    "extract_stated",
    "normalize_address",
    "normalize_display_name",
    "observe_event",
    "phone_identifier",
    "phone_key",
    "resolve",
    "scoped_identifier",
    "select_rows",
]
