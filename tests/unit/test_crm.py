"""What a CRM may tell the engine, decided without I/O (core.crm)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.crm import (
    MAX_LABELS,
    PromiseOutcome,
    TemplateNotApproved,
    approved_template,
    label_change,
    normal_label,
    promise_fact,
    promise_note,
    promise_of,
)
from core.errors import InvalidInput
from core.events import Template
from core.facts import Fact, WorkAction, fold, report_changes
from core.reply_window import ApprovedTemplate

AT = datetime(2026, 12, 14, 15, 0, tzinfo=UTC)
WS, CONV, CUST = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_a_promise_is_a_disposition_with_a_date() -> None:
    promise = promise_of({"code": "promesa", "amount": 1500, "date": "2026-12-15"})
    assert promise is not None and (promise.date, promise.amount) == ("2026-12-15", "1500")
    assert promise_of({"code": "pago_realizado", "amount": "20000"}) is None
    assert promise_of(None) is None


def test_a_mark_sets_the_outcome_and_what_was_paid_once_per_reference() -> None:
    promise = promise_of({"code": "promesa", "amount": "1500.50", "date": "2026-12-15"})
    assert promise is not None
    fact = promise_fact(
        PromiseOutcome.BROKEN,
        promise,
        at=AT,
        actor="token:t1",
        workspace_id=WS,
        conversation_id=CONV,
        customer_id=CUST,
        campaign_id=None,
        reference="mora-1",
        paid_amount=Decimal("200.00"),
        paid_at=None,
    )
    assert fact.action == WorkAction.PROMISE_BROKEN and fact.dedupe == f"{CONV}:promise:mora-1"
    assert {c.column: c.value for c in report_changes(fact)} == {
        "promise_outcome": "broken",
        "paid_amount": "200.00",
    }
    assert (
        promise_note(PromiseOutcome.BROKEN, Decimal("200.00"))
        == "Promesa de pago incumplida (pagado: 200.00)"
    )
    assert promise_note(PromiseOutcome.KEPT, None) == "Promesa de pago cumplida"


def test_the_latest_mark_is_the_one_the_report_row_keeps() -> None:
    promise = promise_of({"code": "promesa", "amount": "100", "date": "2026-12-15"})
    assert promise is not None
    facts = [
        Fact(WorkAction.OPENED, datetime(2026, 12, 1, tzinfo=UTC), "customer", WS, conversation_id=CONV),
        *(
            promise_fact(
                outcome,
                promise,
                at=at,
                actor="token:t1",
                workspace_id=WS,
                conversation_id=CONV,
                customer_id=CUST,
                campaign_id=None,
                reference=ref,
                paid_amount=paid,
                paid_at=None,
            )
            for outcome, at, ref, paid in (
                (PromiseOutcome.BROKEN, datetime(2026, 12, 16, tzinfo=UTC), "a", None),
                (PromiseOutcome.KEPT, datetime(2026, 12, 18, tzinfo=UTC), "b", Decimal("100")),
            )
        ),
    ]
    row = fold(reversed(facts))  # in any order: fold sorts by time
    assert row is not None and (row["promise_outcome"], row["paid_amount"]) == ("kept", "100")


def test_labels_are_normalized_sorted_and_bounded() -> None:
    assert normal_label("  Mora_30 ") == "mora_30"
    assert normal_label("mora 30") is None and normal_label("") is None and normal_label("x" * 51) is None
    assert label_change(["mora_30"], "acuerdo", add=True) == ("acuerdo", "mora_30")
    assert label_change(["mora_30"], "mora_30", add=True) is None  # had it: nothing changes
    assert label_change(["mora_30"], "acuerdo", add=False) is None  # had it not
    assert label_change(["acuerdo", "mora_30"], "acuerdo", add=False) == ("mora_30",)
    with pytest.raises(InvalidInput) as caught:
        label_change([f"l{i}" for i in range(MAX_LABELS)], "one_more", add=True)
    assert caught.value.field == "label"


APPROVED = [ApprovedTemplate(name="recordatorio_mora_30", language="es", parameters=("nombre", "monto"))]


@pytest.mark.parametrize(
    ("template", "field"),
    [
        (Template(name="promo", language="es", body_parameters=("a", "b")), "template.name"),
        (
            Template(name="recordatorio_mora_30", language="en", body_parameters=("a", "b")),
            "template.language",
        ),
        (Template(name="recordatorio_mora_30", language="es", body_parameters=("a",)), "template.parameters"),
    ],
)
def test_a_proactive_template_must_be_approved_as_sent(template: Template, field: str) -> None:
    with pytest.raises(TemplateNotApproved) as caught:
        approved_template(template, APPROVED)
    assert caught.value.field == field and caught.value.http_status == 422


def test_a_campaign_without_templates_approves_none() -> None:
    template = Template(name="recordatorio_mora_30", language="es", body_parameters=("a", "b"))
    assert approved_template(template, APPROVED).name == "recordatorio_mora_30"
    with pytest.raises(TemplateNotApproved):
        approved_template(template, [])
