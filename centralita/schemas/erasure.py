"""Erasing a person, and the legal hold that forbids it: the API's request and response shapes.

The storage side (``storage.erasure``) returns dataclasses; these models are what the API and
the CLI print (``of`` converts).  Counts only: no response here carries personal data.
"""

from __future__ import annotations

from typing import Annotated, Self
from uuid import UUID

from pydantic import Field, StringConstraints

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from storage.erasure import ErasureCounts as CountsRecord
from storage.erasure import ErasureResult, LegalHoldResult

__all__ = ["Erasure", "ErasureCounts", "ErasureRequest", "LegalHold", "LegalHoldRequest"]

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ErasureRequest(RequestBody):
    """Why the person's data is erased."""

    reason: Reason = Field(
        description=(
            "Why, e.g. the person's request reference (ARCO-2026-0142). Kept in the audit trail; "
            "the person's own addresses and names are replaced in it."
        )
    )


class ErasureCounts(ResponseBody):
    """What the erasure changed, in numbers."""

    customers: int = Field(description="Records of the person: the survivor and every record merged into it.")
    identifiers: int = Field(description="Identifiers replaced by irreversible tokens.")
    stated_identifiers: int = Field(
        description="Addresses the person only stated (held by suggestions), replaced by tokens too."
    )
    names: int = Field(description="Display names removed (records, identifiers, the name index).")
    messages: int = Field(description="Timeline rows scrubbed: messages, replies, notes, system notices.")
    texts: int = Field(description="Of those, rows that had a text.")
    attachments: int = Field(description="Attachment entries (metadata, URLs) removed.")
    media: int = Field(
        description="Files kept in the media store: not served any more; the media worker deletes them."
    )
    replies_cancelled: int = Field(description="Queued replies that became failed (customer_erased).")
    raw_deliveries: int = Field(description="Raw webhook bodies deleted.")
    other_messages_unlinked: int = Field(
        description="Other people's messages that came in a deleted body: kept, without the pointer to it."
    )
    other_messages_scrubbed: int = Field(
        description="Messages of others that wrote one of the person's addresses: kept, the address replaced."
    )
    conversations: int = Field(description="Conversations kept, their dispositions reduced to the code.")
    follow_ups_cancelled: int
    evidence: int = Field(description="Identity evidence edges rewritten with tokens.")
    suggestions: int = Field(description="Suggestions rewritten with tokens.")
    blocks: int = Field(description="Blocklist entries rewritten with tokens.")
    audit_entries: int = Field(
        description="Audit rows whose details held the person's values (kept, scrubbed)."
    )

    @classmethod
    def of(cls, counts: CountsRecord) -> Self:
        return cls(**counts.as_dict())


class Erasure(ResponseBody):
    """The person's data was erased; the records, conversations and counts stay."""

    customer_id: UUID = Field(description="The live record the id stood for.")
    requested_id: UUID
    customers: list[UUID] = Field(description="Every record erased: the survivor and those merged into it.")
    erased_at: IsoDateTime = Field(description="When the record was first erased.")
    audit_id: UUID = Field(description="The customer.erase audit entry.")
    counts: ErasureCounts

    @classmethod
    def of(cls, result: ErasureResult) -> Self:
        return cls(
            customer_id=result.customer_id,
            requested_id=result.requested_id,
            customers=list(result.customers),
            erased_at=result.erased_at,
            audit_id=result.audit_id,
            counts=ErasureCounts.of(result.counts),
        )


class LegalHoldRequest(RequestBody):
    """Why the person's data must be kept (a case, a regulator's request)."""

    reason: Reason = Field(description="Shown in the 409 an erasure meets, e.g. 'Litigio 2026-114'.")


class LegalHold(ResponseBody):
    """A customer's legal hold, as set or cleared."""

    customer_id: UUID = Field(description="The live record the hold is on.")
    requested_id: UUID
    legal_hold: str | None = Field(description="The hold's reason; null once cleared.")
    audit_id: UUID = Field(description="The customer.legal_hold / customer.legal_hold_cleared audit entry.")

    @classmethod
    def of(cls, result: LegalHoldResult) -> Self:
        return cls(
            customer_id=result.customer_id,
            requested_id=result.requested_id,
            legal_hold=result.legal_hold,
            audit_id=result.audit_id,
        )
