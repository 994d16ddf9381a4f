"""The inbound CRM API, through the real path on both backends.

A customer writes on WhatsApp (a signed webhook), the router offers the conversation to Ana on
her WebSocket, she closes it with a promise to pay through the API; then the collections system,
with its supervisor token, marks the promise kept (a retry with the same reference changes
nothing) or broken, labels the customer and leaves a note — and each lands in the timeline,
the audit trail and the dispositions report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from channels.meta.peer import GraphPeer
from core.ids import ConversationId
from core.settings import Settings
from router.service import ManualClock
from router.wire import ConversationClosedInput
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352277117"
SECRET = "crm-app-secret"
WA_TOKEN = "EAA-crm"
ANA = "ana@crm.example"

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: cartera
campaign: {{name: cobranza, display_name: Cobranza, timezone: America/Bogota}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+57 601 555 0117"
      waba_id: "300000000000117"
      app_id: "400000000000117"
      app_secret_env: CRM_WA_SECRET
      access_token_env: CRM_WA_TOKEN
      verify_token_env: CRM_WA_VERIFY
      default_queue: cobranza
skills:
  - name: cobranza
queues:
  - name: cobranza
    required_skills: {{cobranza: 5}}
    channels: [whatsapp]
agents:
  - {{email: {ANA}, name: Ana, skills: {{cobranza: 9}}, capacity: {{whatsapp: 3}}}}
dispositions:
  - {{code: promesa, label: Promesa de pago, requires: [amount, date]}}
  - {{code: sin_interes, label: Sin interés}}
templates:
  - name: recordatorio_mora_30
    language: es
    purpose: mora-1-30
    category: utility
    parameters: [nombre, monto]
    body: Hola {{{{1}}}}, su cuota de {{{{2}}}} está vencida.
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_WA_SECRET", SECRET)
    monkeypatch.setenv("CRM_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("CRM_WA_VERIFY", "crm-verify")


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


@pytest.fixture
async def scene(
    backend_settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> RoutingScene:
    return await start_routing_scene(
        backend_settings,
        MANIFEST,
        ManualClock(datetime.now(UTC)),
        workspace="cartera",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        send_retries=1,
        send_retry_initial_s=0.0,
        outbound_poll_s=0.1,
    )


async def _crm(scene: RoutingScene) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token(scene.database, 'cartera', 'supervisor')}"}


async def _closed(
    scene: RoutingScene, wa_id: str, disposition: dict[str, Any] | None = None
) -> ConversationId:
    """A customer writes; Ana takes the conversation and closes it (a promise to pay unless told)."""
    ana = await scene.connect(ANA)
    conversation = await scene.customer_writes(SECRET, PHONE_NUMBER_ID, wa_id, "Quiero pagar mi deuda")
    offer = await ana.next("offer", conversation_id=conversation)
    await ana.answer(offer)
    await ana.next("assigned", conversation_id=conversation)
    token = await issue_token(scene.database, "cartera", "agent", scene.agents[ANA])
    closed = await scene.client.post(
        f"/api/conversations/{conversation}/close",
        json={"disposition": disposition or {"code": "promesa", "amount": "1500.50", "date": "2026-12-15"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert closed.status == 200, await closed.text()
    await scene.input_handled(
        lambda i: isinstance(i, ConversationClosedInput) and i.conversation_id == conversation
    )
    await ana.close()
    return conversation


async def _dispositions(scene: RoutingScene, headers: dict[str, str]) -> dict[str, Any]:
    now = scene.clock()
    answer = await scene.client.get(
        "/api/reports/dispositions",
        params={"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()},
        headers=headers,
    )
    assert answer.status == 200, await answer.text()
    (row,) = (await answer.json())["rows"]
    return dict(row)


async def _audit(scene: RoutingScene, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    answer = await scene.client.get("/api/audit", params=params, headers=headers)
    assert answer.status == 200, await answer.text()
    return list((await answer.json())["items"])


async def _timeline(scene: RoutingScene, headers: dict[str, str], customer_id: Any) -> list[dict[str, Any]]:
    answer = await scene.client.get(f"/api/customers/{customer_id}/timeline", headers=headers)
    assert answer.status == 200, await answer.text()
    return list((await answer.json())["entries"])


# ------------------------------------------------------------------ promises


async def test_a_promise_marked_kept_lands_in_the_timeline_the_audit_trail_and_the_report_once(
    backend_settings: Settings, scene: RoutingScene
) -> None:
    conversation = await _closed(scene, "573001110117")
    crm = await _crm(scene)
    before = await _dispositions(scene, crm)
    assert (before["promises"], before["kept"], before["broken"], before["pending"]) == (1, 0, 0, 1)

    paid_at = "2026-12-14T10:00:00-05:00"
    mark = {"outcome": "kept", "paid_amount": "1500.50", "paid_at": paid_at, "reference": "pago-88121"}
    first = await scene.client.post(f"/api/conversations/{conversation}/promise", json=mark, headers=crm)
    assert first.status == 201, await first.text()
    body = await first.json()
    assert (body["outcome"], body["paid_amount"], body["promised_date"], body["promised_amount"]) == (
        "kept",
        "1500.50",
        "2026-12-15",
        "1500.50",
    )
    assert body["created"] is True

    # The CRM retries (its answer was lost): the same answer, nothing written twice.
    again = await scene.client.post(f"/api/conversations/{conversation}/promise", json=mark, headers=crm)
    assert again.status == 200, await again.text()
    assert {**(await again.json()), "created": True} == body

    customer_id = (await scene.row(conversation)).customer_id
    notes = [e for e in await _timeline(scene, crm, customer_id) if e["kind"] == "system"]
    assert [(n["conversation_id"], n["text"]) for n in notes] == [
        (str(conversation), "Promesa de pago cumplida (pagado: 1500.50)")
    ]
    facts = await _audit(scene, crm, conversation=str(conversation), action="promise.*")
    assert [
        (f["action"], f["actor"], f["details"]["reference"], f["details"]["paid_amount"]) for f in facts
    ] == [("promise.kept", f"token:{facts[0]['actor'].removeprefix('token:')}", "pago-88121", "1500.50")]
    assert facts[0]["actor"].startswith("token:") and facts[0]["details"]["paid_at"] == paid_at

    after = await _dispositions(scene, crm)
    assert (after["promises"], after["kept"], after["broken"], after["pending"]) == (1, 1, 0, 0)
    assert after["paid_amount"] == "1500.50"


async def test_a_promise_broken_and_the_marks_the_api_refuses(
    backend_settings: Settings, scene: RoutingScene
) -> None:
    conversation = await _closed(scene, "573001110118")
    crm = await _crm(scene)
    url = f"/api/conversations/{conversation}/promise"

    broken = await scene.client.post(
        url, json={"outcome": "broken", "paid_amount": 200, "reference": "mora-1"}, headers=crm
    )
    assert broken.status == 201, await broken.text()
    report = await _dispositions(scene, crm)
    assert (report["kept"], report["broken"], report["pending"], report["paid_amount"]) == (0, 1, 0, "200")

    # The same reference cannot say the other outcome.
    twisted = await scene.client.post(url, json={"outcome": "kept", "reference": "mora-1"}, headers=crm)
    assert twisted.status == 409 and (await twisted.json())["error"]["field"] == "reference"
    for bad, field in (
        ({"outcome": "maybe", "reference": "r"}, "outcome"),
        ({"outcome": "kept", "reference": "r", "paid_amount": "-5"}, "paid_amount"),
        ({"outcome": "kept", "reference": "r", "paid_at": "2026-12-14T10:00:00"}, "paid_at"),
        ({"outcome": "kept"}, "reference"),
    ):
        refused = await scene.client.post(url, json=bad, headers=crm)
        assert refused.status == 400, bad
        assert (await refused.json())["error"]["field"] == field, bad

    agent = {
        "Authorization": f"Bearer {await issue_token(scene.database, 'cartera', 'agent', scene.agents[ANA])}"
    }
    forbidden = await scene.client.post(url, json={"outcome": "kept", "reference": "r2"}, headers=agent)
    assert forbidden.status == 403

    no_promise = await _closed(scene, "573001110119", {"code": "sin_interes"})
    refused = await scene.client.post(
        f"/api/conversations/{no_promise}/promise", json={"outcome": "kept", "reference": "r3"}, headers=crm
    )
    assert refused.status == 409 and (await refused.json())["error"]["field"] == "conversation_id"


# ------------------------------------------------------------------ customers


async def test_the_crm_labels_a_customer_and_leaves_a_note_on_its_timeline(
    backend_settings: Settings, scene: RoutingScene
) -> None:
    conversation = await _closed(scene, "573001110120")
    customer_id = (await scene.row(conversation)).customer_id
    crm = await _crm(scene)
    labels = f"/api/customers/{customer_id}/labels"

    for label in ("Mora_30", "acuerdo-vigente", "mora_30"):
        added = await scene.client.post(labels, json={"label": label}, headers=crm)
        assert added.status == 200, await added.text()
    assert (await added.json()) == {
        "customer_id": str(customer_id),
        "labels": ["acuerdo-vigente", "mora_30"],
        "changed": False,  # mora_30 was there already
    }
    removed = await scene.client.post(
        labels, json={"label": "acuerdo-vigente", "action": "remove"}, headers=crm
    )
    assert (await removed.json())["labels"] == ["mora_30"]
    shown = await scene.client.get(f"/api/customers/{customer_id}", headers=crm)
    assert (await shown.json())["labels"] == ["mora_30"]
    bad = await scene.client.post(labels, json={"label": "mora 30!"}, headers=crm)
    assert bad.status == 400 and (await bad.json())["error"]["field"] == "label"

    note = {"text": "Cliente pidió que lo llamen después de las 6 pm", "reference": "nota-7"}
    written = await scene.client.post(f"/api/customers/{customer_id}/notes", json=note, headers=crm)
    assert written.status == 201, await written.text()
    retried = await scene.client.post(f"/api/customers/{customer_id}/notes", json=note, headers=crm)
    assert retried.status == 200
    assert (await retried.json())["message_id"] == (await written.json())["message_id"]
    entries = [e for e in await _timeline(scene, crm, customer_id) if e["kind"] == "note"]
    assert [(e["conversation_id"], e["channel"], e["text"]) for e in entries] == [(None, "crm", note["text"])]

    facts = await _audit(scene, crm, customer=str(customer_id), action="customer.*", order="oldest")
    assert [(f["action"], f["details"].get("label"), f["subject_type"]) for f in facts] == [
        ("customer.label_added", "mora_30", "customer"),
        ("customer.label_added", "acuerdo-vigente", "customer"),
        ("customer.label_removed", "acuerdo-vigente", "customer"),
        ("customer.note_added", None, "customer"),
    ]
    assert all(f["conversation_id"] is None for f in facts)


async def test_another_workspaces_conversation_or_customer_is_a_404(
    backend_settings: Settings, scene: RoutingScene
) -> None:
    crm = await _crm(scene)
    other = "00000000-0000-4000-8000-000000000017"
    for url, body in (
        (f"/api/conversations/{other}/promise", {"outcome": "kept", "reference": "x"}),
        (f"/api/customers/{other}/labels", {"label": "x"}),
        (f"/api/customers/{other}/notes", {"text": "x"}),
    ):
        answer = await scene.client.post(url, json=body, headers=crm)
        assert answer.status == 404, url


# ------------------------------------------------------------------ proactive conversations


async def test_a_proactive_reminder_reaches_whatsapp_waits_in_the_queue_and_is_in_the_reports(
    backend_settings: Settings, scene: RoutingScene, graph: GraphPeer
) -> None:
    earlier = await _closed(scene, "573001110121")
    customer_id = (await scene.row(earlier)).customer_id
    await scene.advance(3 * 24 * 3600.0)  # days later: the customer-service window is long closed
    crm = await _crm(scene)
    ana = await scene.connect(ANA)
    reminder = {
        "phone": "+57 300 111 0121",
        "campaign": "cobranza",
        "template": {"name": "recordatorio_mora_30", "language": "es", "parameters": ["Ana", "150000"]},
        "queue": "cobranza",
        "reference": "mora30-2026-12-08-0121",
    }
    started = await scene.client.post("/api/conversations/proactive", json=reminder, headers=crm)
    assert started.status == 201, await started.text()
    body = await started.json()
    assert (body["customer_id"], body["status"], body["queue"], body["created"]) == (
        str(customer_id),
        "waiting",
        "cobranza",
        True,
    )
    conversation = body["conversation_id"]

    (sent,) = await graph.wait_for(1, within_s=10)
    assert sent["node_id"] == PHONE_NUMBER_ID and sent["json"]["to"] == "573001110121"
    template = sent["json"]["template"]
    assert (template["name"], template["language"]["code"]) == ("recordatorio_mora_30", "es")
    offer = await ana.next("offer", conversation_id=conversation)  # it waits in the queue for an agent
    assert offer["conversation_id"] == conversation

    retried = await scene.client.post("/api/conversations/proactive", json=reminder, headers=crm)
    assert retried.status == 200
    assert {**(await retried.json()), "created": True} == body

    (opened,) = await _audit(scene, crm, conversation=conversation, action="conversation.opened")
    assert opened["details"]["proactive"] is True and opened["details"]["template"] == "recordatorio_mora_30"
    now = scene.clock()
    summary = await scene.client.get(
        "/api/reports/summary",
        params={"from": (now - timedelta(days=5)).isoformat(), "to": (now + timedelta(days=1)).isoformat()},
        headers=crm,
    )
    (row,) = (await summary.json())["rows"]
    assert row["conversations"] == 2 and row["offered"] == 2
    assert len(graph.received) == 1  # the retry sent nothing


async def test_a_proactive_reminder_the_api_refuses_names_the_field(
    backend_settings: Settings, scene: RoutingScene, graph: GraphPeer
) -> None:
    earlier = await _closed(scene, "573001110122")
    customer_id = str((await scene.row(earlier)).customer_id)
    crm = await _crm(scene)
    template = {"name": "recordatorio_mora_30", "language": "es", "parameters": ["Ana", "150000"]}
    base = {"customer_id": customer_id, "campaign": "cobranza", "template": template, "reference": "r1"}
    for change, status, field in (
        ({"template": {**template, "name": "promo_navidad"}}, 422, "template.name"),
        ({"template": {**template, "language": "en"}}, 422, "template.language"),
        ({"template": {**template, "parameters": ["Ana"]}}, 422, "template.parameters"),
        ({"campaign": "becas"}, 404, "campaign"),
        ({"queue": "ventas"}, 404, "queue"),
        ({"customer_id": "00000000-0000-4000-8000-000000000017"}, 404, "customer_id"),
        ({"customer_id": None, "phone": "+573009990000"}, 404, "phone"),
        ({"phone": "+573001110122"}, 400, "phone"),  # both customer_id and phone
    ):
        answer = await scene.client.post("/api/conversations/proactive", json={**base, **change}, headers=crm)
        assert answer.status == status, (change, await answer.text())
        assert (await answer.json())["error"]["field"] == field, change

    first = await scene.client.post("/api/conversations/proactive", json=base, headers=crm)
    assert first.status == 201, await first.text()
    # Another reminder while that one is open would talk over it.
    second = await scene.client.post(
        "/api/conversations/proactive", json={**base, "reference": "r2"}, headers=crm
    )
    assert second.status == 409
    error = (await second.json())["error"]
    assert error["field"] == "customer_id"
    assert error["details"]["conversation_id"] == (await first.json())["conversation_id"]
    await graph.wait_for(1, within_s=10)
    assert len(graph.received) == 1


async def test_erasing_the_customer_clears_what_the_crm_told(
    backend_settings: Settings, scene: RoutingScene
) -> None:
    conversation = await _closed(scene, "573001110123")
    customer_id = (await scene.row(conversation)).customer_id
    crm = await _crm(scene)
    mark = {"outcome": "kept", "paid_amount": "1500.50", "reference": "pago-1"}
    assert (
        await scene.client.post(f"/api/conversations/{conversation}/promise", json=mark, headers=crm)
    ).status == 201
    labels = f"/api/customers/{customer_id}/labels"
    assert (await scene.client.post(labels, json={"label": "mora_30"}, headers=crm)).status == 200

    admin = {"Authorization": f"Bearer {await issue_token(scene.database, 'cartera', 'admin')}"}
    erased = await scene.client.post(
        f"/api/customers/{customer_id}/erase", json={"reason": "solicitud del titular"}, headers=admin
    )
    assert erased.status == 200, await erased.text()

    assert (await (await scene.client.get(f"/api/customers/{customer_id}", headers=crm)).json())[
        "labels"
    ] == []
    (kept,) = await _audit(scene, admin, conversation=str(conversation), action="promise.kept")
    figures = ("paid_amount", "paid_at", "promised_amount", "promised_date")
    assert [kept["details"].get(k) for k in figures] == [None] * 4
    (label,) = await _audit(scene, admin, customer=str(customer_id), action="customer.label_added")
    assert (label["details"].get("label"), label["details"].get("labels")) == (None, None)
    report = await _dispositions(scene, crm)
    # The promised date is erased too (as before the CRM API), so it is no longer counted a promise.
    assert (report["promises"], report["kept"], report["paid_amount"]) == (0, 0, "0")
