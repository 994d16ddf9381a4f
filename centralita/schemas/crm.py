"""The inbound CRM API's bodies: a promise kept or broken, a customer's labels and notes."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Self
from uuid import UUID

from pydantic import Field, field_validator

from centralita.schemas.common import IsoDateTime, RequestBody, ResponseBody
from centralita.schemas.replies import TemplateRequest
from core.crm import LABEL_RULE, PromiseOutcome, normal_label
from storage.crm import LabelChange, MarkedPromise, NoteAdded

__all__ = [
    "CustomerLabels",
    "CustomerNote",
    "CustomerNoteRequest",
    "LabelRequest",
    "ProactiveRequest",
    "ProactiveStarted",
    "PromiseMark",
    "PromiseRequest",
]

Reference = Field(
    min_length=1,
    max_length=100,
    description="The CRM's own id of this call: a retry with the same reference records nothing more.",
)


class PromiseRequest(RequestBody):
    outcome: PromiseOutcome
    paid_amount: Decimal | None = Field(
        default=None, ge=0, max_digits=18, decimal_places=2, description="What was paid (a decimal)."
    )
    paid_at: IsoDateTime | None = Field(default=None, description="When it was paid, with its offset.")
    reference: str = Reference

    @field_validator("paid_at")
    @classmethod
    def _aware(cls, value: IsoDateTime | None) -> IsoDateTime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the time with its UTC offset")
        return value


class PromiseMark(ResponseBody):
    conversation_id: UUID
    outcome: PromiseOutcome
    reference: str
    paid_amount: str | None = Field(description="A decimal, as recorded.")
    paid_at: str | None
    promised_date: str = Field(description="The date the customer promised (ISO), from the disposition.")
    promised_amount: str | None
    recorded_at: IsoDateTime
    created: bool = Field(description="False: this reference was recorded already; nothing changed.")

    @classmethod
    def of(cls, m: MarkedPromise) -> Self:
        return cls(
            conversation_id=m.conversation_id,
            outcome=m.outcome,
            reference=m.reference,
            paid_amount=m.paid_amount,
            paid_at=m.paid_at,
            promised_date=m.promised_date,
            promised_amount=m.promised_amount,
            recorded_at=m.recorded_at,
            created=m.created,
        )


class LabelRequest(RequestBody):
    label: str = Field(description="1–50 characters of a-z, 0-9, _ - . : (lower-cased).")
    action: Literal["add", "remove"] = "add"

    @field_validator("label")
    @classmethod
    def _normal(cls, value: str) -> str:
        label = normal_label(value)
        if label is None:
            raise ValueError(LABEL_RULE)
        return label


class CustomerLabels(ResponseBody):
    customer_id: UUID = Field(description="The live customer (the survivor of a merge).")
    labels: list[str] = Field(description="Sorted.")
    changed: bool = Field(description="False: the customer already had (or had not) the label.")

    @classmethod
    def of(cls, c: LabelChange) -> Self:
        return cls(customer_id=c.customer_id, labels=list(c.labels), changed=c.changed)


class CustomerNoteRequest(RequestBody):
    text: str = Field(min_length=1, max_length=4000)
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The CRM's own id of this note: a retry with the same reference adds no second note.",
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the note needs text")
        return value


class CustomerNote(ResponseBody):
    customer_id: UUID
    message_id: UUID = Field(description="The note's entry in the customer's timeline.")
    created_at: IsoDateTime
    created: bool

    @classmethod
    def of(cls, n: NoteAdded) -> Self:
        return cls(
            customer_id=n.customer_id, message_id=n.message_id, created_at=n.created_at, created=n.created
        )


class ProactiveRequest(RequestBody):
    """A conversation the business starts with an approved template (a collections reminder)."""

    customer_id: UUID | None = Field(default=None, description="The customer; or give phone (one of them).")
    phone: str | None = Field(
        default=None, max_length=40, description="A phone number a customer of the workspace holds (E.164)."
    )
    campaign: str = Field(min_length=1, max_length=100, description="The campaign's name.")
    template: TemplateRequest
    queue: str | None = Field(
        default=None,
        max_length=100,
        description="The queue it waits in (a queue of the campaign); else the channel account's default.",
    )
    reference: str = Reference


class ProactiveStarted(ResponseBody):
    conversation_id: UUID
    customer_id: UUID
    message_id: UUID = Field(
        description="The template's outbound message (GET /api/conversations/{id}/messages/{message_id}).",
    )
    status: str = Field(description="The conversation's status when it opened: waiting.")
    queue: str | None = Field(description="The queue named in the request (null: the router's default).")
    reference: str
    created: bool = Field(description="False: this reference started a conversation already; nothing new.")
