"""The webhook event catalogue and delivery rules (core.webhooks): what each fact emits, the
schemas in docs/events/, signatures, which answers are retried, backoff and refused addresses."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from core.campaign import parse_manifest, plan, render_plan
from core.facts import CloseReason, Fact, WorkAction
from core.states import AlertKind
from core.webhooks import (
    EMITTED,
    DeliveryOutcome,
    address_refusal,
    alert_raised,
    customer_regrouped,
    delivery_status,
    event_schemas,
    events_of,
    followup_due,
    matches,
    message_received,
    next_attempt_in,
    outcome_of,
    schema_text,
    sign,
    valid_pattern,
)
from tests.e2e.test_webhooks_out import manifest

EVENTS_DIR = Path(__file__).resolve().parents[2] / "docs" / "events"
AT = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
WS, CONV, CUST, AGENT, QUEUE = (uuid.uuid4() for _ in range(5))
# The types a conversation's facts emit (core.webhooks.events_of); the rest come from elsewhere.
_FACT_TYPES = (
    "conversation.opened",
    "conversation.assigned",
    "conversation.transferred",
    "conversation.requeued",
    "conversation.closed",
    "disposition.recorded",
    "survey.answered",
    "message.sent",
)


def _fact(action: str, **details: object) -> Fact:
    return Fact(
        action=action,
        at=AT,
        actor=f"agent:{AGENT}",
        workspace_id=WS,
        conversation_id=CONV,
        customer_id=CUST,
        agent_id=AGENT,
        queue_id=QUEUE,
        details=details,
    )


def test_the_event_schemas_in_docs_are_the_generated_ones() -> None:
    generated = event_schemas()
    on_disk = {p.name.removesuffix(".schema.json"): p for p in EVENTS_DIR.glob("*.schema.json")}
    assert set(on_disk) == set(generated) == EMITTED, (
        "docs/events/ is stale: regenerate it with `python -m centralita.integrations docs/events`"
    )
    for event_type, schema in generated.items():
        assert on_disk[event_type].read_text(encoding="utf-8") == schema_text(schema), (
            f"docs/events/{event_type}.schema.json is stale: `python -m centralita.integrations docs/events`"
        )


def test_a_close_with_a_promise_to_pay_emits_the_close_and_the_disposition_with_its_data() -> None:
    fact_id = uuid.uuid4()
    disposition = {"code": "promesa", "label": "Promesa de pago", "amount": "1500.50", "date": "2026-11-30"}
    events = events_of(_fact(WorkAction.CLOSED, reason=CloseReason.AGENT, disposition=disposition), fact_id)
    assert [e.type for e in events] == ["conversation.closed", "disposition.recorded"]
    promise = events[1].body
    assert promise["data"] | {} == {
        "conversation_id": str(CONV),
        "customer_id": str(CUST),
        "agent_id": str(AGENT),
        "queue_id": str(QUEUE),
        "campaign_id": None,
        "code": "promesa",
        "label": "Promesa de pago",
        "amount": "1500.50",
        "date": "2026-11-30",
    }
    assert (promise["version"], promise["workspace_id"], promise["occurred_at"]) == (
        1,
        str(WS),
        AT.isoformat(),
    )
    # Ids are stable per fact and type: a receiver's idempotency key.
    again = events_of(_fact(WorkAction.CLOSED, reason=CloseReason.AGENT, disposition=disposition), fact_id)
    assert [e.id for e in again] == [e.id for e in events] and events[0].id != events[1].id
    for event in events:
        jsonschema.Draft202012Validator(event_schemas()[event.type]).validate(
            json.loads(json.dumps(event.body))
        )


def test_a_close_without_a_disposition_emits_only_the_close_and_other_facts_what_the_catalogue_says() -> None:
    closed = events_of(_fact(WorkAction.CLOSED, reason=CloseReason.ABANDONED), uuid.uuid4())
    assert [e.type for e in closed] == ["conversation.closed"]
    assert events_of(_fact(WorkAction.NOTE, message_id=str(uuid.uuid4())), uuid.uuid4()) == []
    reply = events_of(_fact(WorkAction.REPLIED, message_id=str(CONV), first=True), uuid.uuid4())
    assert [(e.type, e.body["data"]["first"]) for e in reply] == [("message.sent", True)]
    moved = events_of(
        _fact(WorkAction.TRANSFERRED, reason="agent", from_agent_id=str(AGENT), to_queue_id=str(QUEUE)),
        uuid.uuid4(),
    )
    assert moved[0].body["data"]["to_queue_id"] == str(QUEUE)
    score = events_of(_fact(WorkAction.SURVEY_ANSWERED, kind="csat", score=5, comment="bien"), uuid.uuid4())
    assert score[0].body["data"]["score"] == 5 and "comment" not in score[0].body["data"]
    for event in [*closed, *reply, *moved, *score]:
        jsonschema.Draft202012Validator(event_schemas()[event.type]).validate(event.body)


def test_the_events_no_fact_emits_match_their_schemas_and_keep_their_ids() -> None:
    message = uuid.uuid4()
    drafts = [
        message_received(
            WS,
            message,
            AT,
            conversation_id=CONV,
            customer_id=CUST,
            campaign_id=None,
            channel="whatsapp",
            kind="message",
        ),
        delivery_status(
            WS, message, AT, conversation_id=CONV, agent_id=AGENT, channel="whatsapp", status="delivered"
        ),
        delivery_status(
            WS,
            message,
            AT,
            conversation_id=CONV,
            agent_id=AGENT,
            channel="whatsapp",
            status="failed",
            errors=[{"code": 131047, "title": "Re-engagement"}],
        ),
        followup_due(
            WS,
            AT,
            follow_up_of=CONV,
            due_at=AT,
            conversation_id=uuid.uuid4(),
            customer_id=CUST,
            campaign_id=None,
            queue_id=QUEUE,
            disposition="promesa",
            reopened=False,
        ),
        customer_regrouped(
            WS, uuid.uuid4(), AT, merged=True, before=[CUST, AGENT], after=[CUST], actor="system"
        ),
        customer_regrouped(WS, uuid.uuid4(), AT, merged=False, before=[CUST], after=[CUST, AGENT], actor="x"),
        *(
            alert_raised(WS, uuid.uuid4(), kind, AT, queue_id=QUEUE, details={"waited_s": 90.0})
            for kind in AlertKind
        ),
    ]
    assert {d.type for d in drafts} == EMITTED - set(_FACT_TYPES)
    for draft in drafts:
        jsonschema.Draft202012Validator(event_schemas()[draft.type]).validate(
            json.loads(json.dumps(draft.body))
        )
    assert drafts[2].body["data"]["error_codes"] == ["131047"]
    assert len({d.id for d in drafts}) == len(drafts)  # a failed status is news after a delivered one
    again = message_received(
        WS,
        message,
        AT,
        conversation_id=CONV,
        customer_id=CUST,
        campaign_id=None,
        channel="whatsapp",
        kind="message",
    )
    assert again.id == drafts[0].id  # the same message, the same idempotency key


def test_patterns_name_types_or_families_of_the_catalogue() -> None:
    assert all(valid_pattern(p) for p in ("*", "conversation.*", "disposition.recorded", "customer.merged"))
    assert not any(valid_pattern(p) for p in ("conversation", "convo.*", "disposition.made", ""))
    assert matches(["conversation.*"], "conversation.closed")
    assert not matches(["conversation.*"], "disposition.recorded")
    assert matches(["*"], "survey.answered")


def test_the_signature_is_an_hmac_sha256_over_the_timestamp_and_the_body() -> None:
    body = b'{"id":"x"}'
    expected = hmac.new(b"s3cret", b"1765152000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1765152000, body) == f"v1={expected}"
    assert sign("s3cret", 1765152001, body) != sign("s3cret", 1765152000, body)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, DeliveryOutcome.DELIVERED),
        (204, DeliveryOutcome.DELIVERED),
        (400, DeliveryOutcome.FAILED),
        (410, DeliveryOutcome.FAILED),
        (408, DeliveryOutcome.RETRY),
        (429, DeliveryOutcome.RETRY),
        (301, DeliveryOutcome.RETRY),
        (500, DeliveryOutcome.RETRY),
        (503, DeliveryOutcome.RETRY),
        (None, DeliveryOutcome.RETRY),
    ],
)
def test_which_answers_are_retried(status: int | None, outcome: DeliveryOutcome) -> None:
    assert outcome_of(status) == outcome


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    for attempts in range(1, 30):
        waits = [next_attempt_in(attempts, initial_s=5.0, max_s=3600.0) for _ in range(50)]
        cap = timedelta(seconds=min(3600.0, 5.0 * 2**attempts))
        assert all(timedelta(0) <= w <= cap for w in waits)
    late = [next_attempt_in(12, initial_s=5.0, max_s=3600.0) for _ in range(50)]
    assert len(set(late)) > 1 and max(late) > timedelta(seconds=60)  # jittered, and grown


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "private"),
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_private_link_local_and_loopback_addresses_are_refused(address: str, why: str | None) -> None:
    assert address_refusal(address) == why


def test_a_manifests_webhooks_are_items_of_its_plan() -> None:
    before = parse_manifest(manifest("https://crm.example.com/a", '["conversation.*"]'))
    after = parse_manifest(manifest("https://crm.example.com/b", '["conversation.*"]'))
    assert "+ webhook crm" in render_plan(plan(before, None)).splitlines()
    assert (
        "~ webhook crm: url https://crm.example.com/a → https://crm.example.com/b"
        in render_plan(plan(after, before)).splitlines()
    )
    assert "- webhook crm" in render_plan(plan(parse_manifest(manifest(None)), before)).splitlines()
