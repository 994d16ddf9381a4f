"""What a CRM may tell the engine: a promise to pay kept or broken, a customer's labels and notes.

Pure: the facts each call records, the labels a change leaves, the notes' texts.  The storage
(``storage.crm``) writes them in one transaction with the timeline entry they show as; the API is
``centralita.web.api.crm``.

- A promise is a disposition with a promised ``date`` (an amount alone is a payment, not a
  promise: ``core.reports.dispositions``).  Marking it records ``promise.kept`` or
  ``promise.broken`` (``core.facts.WorkAction``), once per the CRM's ``reference`` (the fact's
  dedupe key), and sets the report row's ``promise_outcome`` and ``paid_amount``: the latest mark
  wins.
- A proactive conversation (``centralita.proactive``) sends only a template the campaign's
  manifest approves (``templates:``), in one of its languages, with as many body parameters as
  it declares: ``approved_template`` (422 ``template_not_approved`` naming the field otherwise —
  stricter than an agent's reply, which leaves a campaign without templates to the provider).
- Labels are short codes (``mora_30``): lower-cased, 1–50 of ``a-z 0-9 _ - . :``; a customer has
  at most ``MAX_LABELS``.  Adding one it has, or removing one it has not, records nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from core.errors import CentralitaError, InvalidInput
from core.events import Template
from core.facts import Fact, WorkAction
from core.reply_window import ApprovedTemplate

__all__ = [
    "LABEL_RULE",
    "MAX_LABELS",
    "CrmAction",
    "Promise",
    "PromiseOutcome",
    "TemplateNotApproved",
    "approved_template",
    "label_change",
    "normal_label",
    "promise_fact",
    "promise_note",
    "promise_of",
]

MAX_LABELS: Final = 50
_LABEL = re.compile(r"^[a-z0-9_\-.:]{1,50}$")


class CrmAction(StrEnum):
    """Audited actions on a customer (``subject_type`` customer, no conversation)."""

    LABEL_ADDED = "customer.label_added"  # label, reference
    LABEL_REMOVED = "customer.label_removed"  # label, reference
    NOTE_ADDED = "customer.note_added"  # message_id, reference


class PromiseOutcome(StrEnum):
    KEPT = "kept"
    BROKEN = "broken"

    @property
    def action(self) -> WorkAction:
        return WorkAction.PROMISE_KEPT if self is PromiseOutcome.KEPT else WorkAction.PROMISE_BROKEN


@dataclass(frozen=True, slots=True)
class Promise:
    """A closed conversation's promise to pay: its date and amount as the agent recorded them."""

    date: str  # ISO
    amount: str | None


def promise_of(disposition: Mapping[str, Any] | None) -> Promise | None:
    """The promise in a disposition, None when it promised no date."""
    if not disposition or not disposition.get("date"):
        return None
    amount = disposition.get("amount")
    return Promise(str(disposition["date"]), None if amount is None else str(amount))


def promise_fact(
    outcome: PromiseOutcome,
    promise: Promise,
    *,
    at: datetime,
    actor: str,
    workspace_id: uuid.UUID,
    conversation_id: uuid.UUID,
    customer_id: uuid.UUID,
    campaign_id: uuid.UUID | None,
    reference: str,
    paid_amount: Decimal | None,
    paid_at: datetime | None,
) -> Fact:
    return Fact(
        outcome.action,
        at,
        actor,
        workspace_id,
        conversation_id=conversation_id,
        customer_id=customer_id,
        campaign_id=campaign_id,
        details={
            "reference": reference,
            "paid_amount": None if paid_amount is None else format(paid_amount, "f"),
            "paid_at": None if paid_at is None else paid_at.isoformat(),
            "promised_date": promise.date,
            "promised_amount": promise.amount,
        },
        dedupe=f"{conversation_id}:promise:{reference}",
    )


def promise_note(outcome: PromiseOutcome, paid_amount: Decimal | None) -> str:
    """The system note on the conversation's timeline (Spanish, like the engine's other notes)."""
    paid = f" (pagado: {format(paid_amount, 'f')})" if paid_amount is not None else ""
    if outcome is PromiseOutcome.KEPT:
        return f"Promesa de pago cumplida{paid}"
    return f"Promesa de pago incumplida{paid}"


LABEL_RULE: Final = "a label is 1–50 characters of a-z, 0-9, _ - . :"


def normal_label(raw: str) -> str | None:
    """The label as stored (lower-cased, trimmed), None when it breaks ``LABEL_RULE``."""
    label = raw.strip().lower()
    return label if _LABEL.match(label) else None


def label_change(current: Iterable[str], label: str, *, add: bool) -> tuple[str, ...] | None:
    """The labels after adding (or removing) ``label``, sorted; None when nothing changes."""
    have = set(current)
    if (label in have) == add:
        return None
    if add and len(have) >= MAX_LABELS:
        raise InvalidInput(f"a customer has at most {MAX_LABELS} labels", field="label")
    return tuple(sorted(have | {label} if add else have - {label}))


class TemplateNotApproved(CentralitaError):
    """A proactive message's template is not one the campaign approves; ``field`` names why."""

    code = "template_not_approved"
    http_status = 422


def approved_template(template: Template, approved: Iterable[ApprovedTemplate]) -> ApprovedTemplate:
    """The manifest's entry ``template`` is, or ``TemplateNotApproved``."""
    listed = list(approved)
    details = {"templates": [t.to_dict() for t in listed]}
    named = [t for t in listed if t.name == template.name]
    if not named:
        raise TemplateNotApproved(
            f"template {template.name!r} is not approved for this campaign",
            field="template.name",
            details=details,
        )
    chosen = next((t for t in named if t.language == template.language), None)
    if chosen is None:
        languages = ", ".join(sorted({t.language for t in named}))
        raise TemplateNotApproved(
            f"template {template.name!r} has no {template.language!r} translation ({languages})",
            field="template.language",
            details=details,
        )
    if len(template.body_parameters) != len(chosen.parameters):
        raise TemplateNotApproved(
            f"template {template.name!r} takes {len(chosen.parameters)} parameters"
            f" ({', '.join(chosen.parameters)}), got {len(template.body_parameters)}",
            field="template.parameters",
            details=details,
        )
    return chosen
