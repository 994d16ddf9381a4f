"""Replies go out through the real path: reply API → outbound queue → worker → adapter → loopback peer.

The WhatsApp Cloud API and the Instagram Send API are the loopback Graph peer
(``channels.meta.peer.GraphPeer``), the customer's mail server the loopback SMTP peer
(``channels.email.testing.smtp_peer``).  Customer messages arrive signed over the webhooks, on
the embedded backend and on PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from centralita.outbound import SendOutcome
from centralita.web.keys import OUTBOUND
from channels.email.testing import SmtpPeer, smtp_peer
from channels.instagram.testing import text_webhook_body as ig_text_webhook_body
from channels.meta.peer import GraphPeer, rate_limited, window_closed
from channels.meta.signature import sign_body
from channels.whatsapp.testing import text_webhook_body, webhook_body
from core.ids import new_id
from storage.database import Database
from storage.tables import AgentRow, CampaignRow, ConversationRow, MessageRow
from storage.tokens import TokenStore
from tests.e2e.conftest import Engine, StartEngine
from tests.support.seed import seed_workspace

WA_SECRET = "wa-secret-outbound"
WA_TOKEN = "EAAwa-outbound-token"
PHONE_NUMBER_ID = "106540352249001"
SECOND_PHONE_NUMBER_ID = "106540352249002"
CUSTOMER_WA = "5215512345678"
IG_SECRET = "ig-secret-outbound"
IG_TOKEN = "IGAA-outbound-token"
IG_ACCOUNT = "17841400000009001"
CUSTOMER_IGSID = "1254459154689001"
MAILBOX = "admisiones@universidad.example"
EMAIL_TOKEN = "tok-email-outbound"
CUSTOMER_EMAIL = "maria.lopez@correo.example"

TEMPLATES = [
    {
        "name": "seguimiento_prospecto",
        "language": "es_MX",
        "purpose": "seguimiento-lead",
        "category": "marketing",
        "parameters": ["nombre", "programa"],
    },
    {
        "name": "recordatorio_entrevista",
        "language": "es_MX",
        "purpose": "entrevista",
        "category": "utility",
        "parameters": ["nombre", "fecha", "hora"],
    },
]


@dataclass
class Scene:
    engine: Engine
    graph: GraphPeer
    smtp: SmtpPeer
    second_number: uuid.UUID
    agent_id: uuid.UUID
    agent_token: str
    other_agent_token: str
    supervisor_token: str
    foreign_token: str
    sent: asyncio.Queue[SendOutcome]

    async def next_send(self, within_s: float = 15.0) -> SendOutcome:
        async with asyncio.timeout(within_s):
            return await self.sent.get()

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.agent_token}"}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUT_WA_SECRET", WA_SECRET)
    monkeypatch.setenv("OUT_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("OUT_IG_SECRET", IG_SECRET)
    monkeypatch.setenv("OUT_IG_TOKEN", IG_TOKEN)


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer(
        {PHONE_NUMBER_ID: WA_TOKEN, SECOND_PHONE_NUMBER_ID: WA_TOKEN, IG_ACCOUNT: IG_TOKEN}
    ) as peer:
        yield peer


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpPeer]:
    async with smtp_peer() as peer:
        yield peer


async def _seed(db: Database) -> dict[str, Any]:
    seeded = await seed_workspace(
        db,
        "posgrados",
        [
            {
                "channel": "whatsapp",
                "address": PHONE_NUMBER_ID,
                "name": "principal",
                "app_id": "app-out",
                "app_secret_env": "OUT_WA_SECRET",
                "access_token_env": "OUT_WA_TOKEN",
            },
            {
                "channel": "whatsapp",
                "address": SECOND_PHONE_NUMBER_ID,
                "name": "cobranza",
                "app_id": "app-out",
                "app_secret_env": "OUT_WA_SECRET",
                "access_token_env": "OUT_WA_TOKEN",
            },
            {
                "channel": "instagram",
                "address": IG_ACCOUNT,
                "app_id": "ig-app-out",
                "app_secret_env": "OUT_IG_SECRET",
                "access_token_env": "OUT_IG_TOKEN",
                "settings": {"login": "instagram"},
            },
            {"channel": "email", "address": MAILBOX, "settings": {"display_name": "Admisiones"}},
        ],
    )
    other = await seed_workspace(db, "cobranza", [])
    now = datetime.now(UTC)
    async with db.transaction() as session:
        campaign = await session.get(CampaignRow, seeded.campaign_id)
        assert campaign is not None
        campaign.manifest = {"templates": TEMPLATES}
        agents = [
            AgentRow(id=new_id(), workspace_id=seeded.workspace_id, email=f"{n}@posgrados.example", name=n)
            for n in ("ana", "beto")
        ]
        session.add_all(agents)
        await session.flush()
        tokens = TokenStore(session)
        agent_token = await tokens.issue(seeded.workspace_id, "agent", agents[0].id, "ana", now)
        other_agent_token = await tokens.issue(seeded.workspace_id, "agent", agents[1].id, "beto", now)
        supervisor_token = await tokens.issue(seeded.workspace_id, "supervisor", None, "sup", now)
        foreign_token = await tokens.issue(other.workspace_id, "supervisor", None, "otro", now)
    return {
        "second_number": seeded.accounts[f"whatsapp:{SECOND_PHONE_NUMBER_ID}"],
        "agent_id": agents[0].id,
        "agent_token": agent_token,
        "other_agent_token": other_agent_token,
        "supervisor_token": supervisor_token,
        "foreign_token": foreign_token,
    }


@pytest.fixture
async def scene(start_engine: StartEngine, graph: GraphPeer, smtp: SmtpPeer) -> Scene:
    seeded: dict[str, Any] = {}

    async def seed(db: Database) -> None:
        seeded.update(await _seed(db))

    engine = await start_engine(
        seed=seed,
        graph_base_url=graph.base_url,
        smtp_relay_host=smtp.host,
        smtp_relay_port=smtp.port,
        email_webhook_token=EMAIL_TOKEN,
        send_retries=3,
        send_retry_initial_s=0.001,
        send_retry_max_s=0.005,
        outbound_attempts=2,
    )
    sent: asyncio.Queue[SendOutcome] = asyncio.Queue()
    engine.client.server.app[OUTBOUND].observers.append(sent.put_nowait)
    return Scene(engine, graph, smtp, sent=sent, **seeded)


# ------------------------------------------------------------------ the customer writes


def _wa_text(wamid: str, text: str, at: datetime) -> bytes:
    return text_webhook_body(
        PHONE_NUMBER_ID,
        CUSTOMER_WA,
        wamid,
        text,
        name="María López",
        timestamp=int(at.timestamp()),
        waba_id="102290129349000",
    )


def _wa_status(wamid: str, status: str, errors: list[dict[str, Any]] | None = None) -> bytes:
    entry: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": CUSTOMER_WA,
    }
    if errors:
        entry["errors"] = errors
    return webhook_body(PHONE_NUMBER_ID, statuses=[entry])


def _ig_text(mid: str, text: str, at: datetime) -> bytes:
    return ig_text_webhook_body(
        IG_ACCOUNT, CUSTOMER_IGSID, mid, text, timestamp_ms=int(at.timestamp() * 1000)
    )


def _mail(message_id: str, at: datetime) -> bytes:
    date = at.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        f"From: =?UTF-8?Q?Mar=C3=ADa_L=C3=B3pez?= <{CUSTOMER_EMAIL}>\r\n"
        f"To: Admisiones <{MAILBOX}>\r\n"
        "Subject: =?UTF-8?Q?Informaci=C3=B3n_de_la_maestr=C3=ADa?=\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <{message_id}>\r\n"
        "References: <campania-2026@universidad.example>\r\n"
        "In-Reply-To: <campania-2026@universidad.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Hola, ¿la maestría tiene modalidad en línea?\r\n"
    ).encode()


async def _deliver(engine: Engine, channel: str, body: bytes, secret: str) -> None:
    headers = {"X-Hub-Signature-256": sign_body(body, secret), "Content-Type": "application/json"}
    response = await engine.client.post(f"/webhooks/{channel}", data=body, headers=headers)
    assert response.status == 200, await response.text()
    await engine.next_outcome()


async def _conversation(engine: Engine) -> uuid.UUID:
    async with engine.database.session() as s:
        return (await s.execute(sa.select(ConversationRow.id))).scalars().one()  # type: ignore[call-overload]


async def _assign(engine: Engine, conversation_id: uuid.UUID, agent_id: uuid.UUID) -> None:
    """What the router does when the agent accepts the offer (the router is not in this test)."""
    async with engine.database.transaction() as s:
        await s.execute(
            sa.update(ConversationRow)
            .where(ConversationRow.id == conversation_id)  # type: ignore[arg-type]
            .values(agent_id=agent_id, status="assigned")
        )


async def _whatsapp_customer(scene: Scene, hours_ago: float = 1.0, wamid: str = "wamid.in.1") -> uuid.UUID:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    await _deliver(scene.engine, "whatsapp", _wa_text(wamid, "Hola, quiero información", at), WA_SECRET)
    conversation_id = await _conversation(scene.engine)
    await _assign(scene.engine, conversation_id, scene.agent_id)
    return conversation_id


async def _reply(
    scene: Scene, conversation_id: uuid.UUID, body: dict[str, Any], token: str | None = None
) -> Any:
    return await scene.engine.client.post(
        f"/api/conversations/{conversation_id}/messages", json=body, headers=scene.auth(token)
    )


async def _row(engine: Engine, message_id: str) -> MessageRow:
    async with engine.database.session() as s:
        return (
            (await s.execute(sa.select(MessageRow).where(MessageRow.id == uuid.UUID(message_id))))
            .scalars()
            .one()
        )  # type: ignore[arg-type]


# ------------------------------------------------------------------ WhatsApp


async def test_a_text_reply_reaches_the_cloud_api_and_is_marked_sent(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    response = await _reply(scene, conversation_id, {"text": "¡Hola María! Con gusto te ayudo."})
    assert response.status == 202, await response.text()
    queued = await response.json()
    assert queued["delivery_state"] == "queued" and queued["window"]["open"] is True

    outcome = await scene.next_send()
    assert outcome.state == "sent"
    request = scene.graph.received[-1]
    assert request["path"] == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request["authorization"] == f"Bearer {WA_TOKEN}"
    assert request["json"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER_WA,
        "type": "text",
        "text": {"body": "¡Hola María! Con gusto te ayudo.", "preview_url": False},
        "biz_opaque_callback_data": queued["id"],  # echoed in its statuses
    }
    row = await _row(scene.engine, queued["id"])
    assert row.direction == "out" and row.delivery_state == "sent"
    assert row.external_id == outcome.external_id and row.external_id.startswith("wamid.")
    assert row.agent_id == scene.agent_id and row.conversation_id == conversation_id
    async with scene.engine.database.session() as s:
        conversation = await s.get(ConversationRow, conversation_id)
    assert conversation is not None and conversation.first_response_at is not None


async def test_a_reply_quoting_a_customer_message_carries_the_whatsapp_context(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene, wamid="wamid.quoted")
    async with scene.engine.database.session() as s:
        inbound_id = (
            await s.execute(sa.select(MessageRow.id).where(MessageRow.direction == "in"))
        ).scalar_one()  # type: ignore[call-overload,arg-type]
    response = await _reply(
        scene, conversation_id, {"text": "Sobre esto:", "reply_to_message_id": str(inbound_id)}
    )
    assert response.status == 202, await response.text()
    assert (await scene.next_send()).state == "sent"
    assert scene.graph.received[-1]["json"]["context"] == {"message_id": "wamid.quoted"}


async def test_a_template_with_parameters_goes_out_when_the_window_is_closed(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene, hours_ago=30)
    template = {"name": "seguimiento_prospecto", "language": "es_MX", "parameters": ["María", "MBA"]}
    response = await _reply(scene, conversation_id, {"template": template})
    assert response.status == 202, await response.text()
    assert (await scene.next_send()).state == "sent"
    body = scene.graph.received[-1]["json"]
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "seguimiento_prospecto",
        "language": {"code": "es_MX"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "María"}, {"type": "text", "text": "MBA"}],
            }
        ],
    }


async def test_free_form_text_outside_the_24_hour_window_is_refused_before_sending(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene, hours_ago=25)
    response = await _reply(scene, conversation_id, {"text": "¿Sigues interesada?"})
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "reply_window_closed"
    assert [t["name"] for t in error["details"]["templates"]] == [
        "seguimiento_prospecto",
        "recordatorio_entrevista",
    ]
    assert scene.graph.received == []
    async with scene.engine.database.session() as s:
        outbound = (
            (await s.execute(sa.select(MessageRow).where(MessageRow.direction == "out"))).scalars().all()
        )  # type: ignore[arg-type]
    assert outbound == []


async def test_a_131047_from_the_provider_marks_the_reply_failed_and_the_api_shows_why(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    scene.graph.fail_next(**window_closed())
    queued = await (await _reply(scene, conversation_id, {"text": "Hola"})).json()
    outcome = await scene.next_send()
    assert outcome.state == "failed"
    assert len(scene.graph.received) == 1  # permanent: not retried

    response = await scene.engine.client.get(
        f"/api/conversations/{conversation_id}/messages/{queued['id']}", headers=scene.auth()
    )
    shown = await response.json()
    assert response.status == 200
    assert shown["delivery_state"] == "failed"
    assert shown["error"]["provider_code"] == 131047
    assert shown["error"]["code"] == "channel_permanent"
    assert "131047" in shown["error"]["message"] or "24" in shown["error"]["message"]


async def test_a_130429_rate_limit_is_retried_and_the_reply_is_sent(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    scene.graph.fail_next(**rate_limited(times=2))
    await _reply(scene, conversation_id, {"text": "Hola"})
    outcome = await scene.next_send()
    assert outcome.state == "sent"
    assert [r["status"] for r in scene.graph.received] == [429, 429, 200]


async def test_a_rate_limit_that_outlasts_every_attempt_marks_the_reply_failed(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    scene.graph.fail_next(**rate_limited(times=100))
    queued = await (await _reply(scene, conversation_id, {"text": "Hola"})).json()
    first, second = await scene.next_send(), await scene.next_send()
    assert (first.state, second.state) == ("retry", "failed")
    assert len(scene.graph.received) == 3 * 2  # adapter attempts x worker attempts
    row = await _row(scene.engine, queued["id"])
    assert row.delivery_state == "failed" and row.error is not None
    assert row.error["provider_code"] == 130429 and row.error["attempts"] == 2


async def test_delivery_statuses_from_webhooks_move_the_sent_reply_on(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    queued = await (await _reply(scene, conversation_id, {"text": "Hola"})).json()
    wamid = (await scene.next_send()).external_id
    assert wamid is not None
    for status in ("delivered", "read"):
        await _deliver(scene.engine, "whatsapp", _wa_status(wamid, status), WA_SECRET)
        assert (await _row(scene.engine, queued["id"])).delivery_state == status
    await _deliver(scene.engine, "whatsapp", _wa_status(wamid, "delivered"), WA_SECRET)
    assert (await _row(scene.engine, queued["id"])).delivery_state == "read"  # never backwards


async def test_a_failed_status_webhook_marks_the_reply_failed_with_the_providers_errors(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    queued = await (await _reply(scene, conversation_id, {"text": "Hola"})).json()
    wamid = (await scene.next_send()).external_id
    assert wamid is not None
    errors = [{"code": 131026, "title": "Message Undeliverable", "message": "Message Undeliverable"}]
    await _deliver(scene.engine, "whatsapp", _wa_status(wamid, "failed", errors), WA_SECRET)
    row = await _row(scene.engine, queued["id"])
    assert row.delivery_state == "failed"
    assert row.error is not None and row.error[0]["code"] == "131026"
    shown = await scene.engine.client.get(
        f"/api/conversations/{conversation_id}/messages/{queued['id']}", headers=scene.auth()
    )
    error = (await shown.json())["error"]
    assert error["code"] == "delivery_failed" and error["provider_code"] == "131026"
    async with scene.engine.database.session() as s:
        assert (await s.execute(sa.select(sa.func.count()).select_from(MessageRow))).scalar_one() == 2


async def test_the_window_is_per_business_number_so_another_number_needs_a_template(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene, hours_ago=1)  # open on the first number only
    other = str(scene.second_number)
    refused = await _reply(
        scene, conversation_id, {"text": "Le escribo de cobranza", "channel_account_id": other}
    )
    assert refused.status == 422
    assert (await refused.json())["error"]["code"] == "reply_window_closed"
    assert scene.graph.received == []

    template = {
        "name": "recordatorio_entrevista",
        "language": "es_MX",
        "parameters": ["María", "lunes", "10:00"],
    }
    queued = await _reply(scene, conversation_id, {"template": template, "channel_account_id": other})
    assert queued.status == 202, await queued.text()
    assert (await queued.json())["channel_account_id"] == other
    assert (await scene.next_send()).state == "sent"
    request = scene.graph.received[-1]
    assert request["node_id"] == SECOND_PHONE_NUMBER_ID and request["json"]["to"] == CUSTOMER_WA


async def test_a_template_the_campaign_did_not_approve_is_refused_before_sending(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene, hours_ago=30)
    response = await _reply(
        scene, conversation_id, {"template": {"name": "promo_verano", "language": "es_MX"}}
    )
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "template.name"
    assert scene.graph.received == []


# ------------------------------------------------------------------ who may reply


async def test_an_agent_cannot_reply_in_a_conversation_assigned_to_someone_else(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    response = await _reply(scene, conversation_id, {"text": "Hola"}, token=scene.other_agent_token)
    assert response.status == 403
    assert scene.graph.received == []


async def test_a_supervisor_may_reply_in_any_conversation_of_the_workspace(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    response = await _reply(scene, conversation_id, {"text": "Hola"}, token=scene.supervisor_token)
    assert response.status == 202
    assert (await scene.next_send()).state == "sent"


async def test_another_workspaces_conversation_is_not_found(scene: Scene) -> None:
    conversation_id = await _whatsapp_customer(scene)
    response = await _reply(scene, conversation_id, {"text": "Hola"}, token=scene.foreign_token)
    assert response.status == 404
    queued = await (await _reply(scene, conversation_id, {"text": "Hola"})).json()
    shown = await scene.engine.client.get(
        f"/api/conversations/{conversation_id}/messages/{queued['id']}",
        headers=scene.auth(scene.foreign_token),
    )
    assert shown.status == 404


# ------------------------------------------------------------------ Instagram


async def _instagram_customer(scene: Scene, hours_ago: float) -> uuid.UUID:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    await _deliver(scene.engine, "instagram", _ig_text("mid.in.ig.1", "Hola, ¿hay becas?", at), IG_SECRET)
    conversation_id = await _conversation(scene.engine)
    await _assign(scene.engine, conversation_id, scene.agent_id)
    return conversation_id


async def test_a_reply_on_instagram_reaches_the_send_api(scene: Scene) -> None:
    conversation_id = await _instagram_customer(scene, hours_ago=1)
    assert (await _reply(scene, conversation_id, {"text": "¡Sí! Te cuento."})).status == 202
    assert (await scene.next_send()).state == "sent"
    request = scene.graph.received[-1]
    assert request["node_id"] == IG_ACCOUNT and request["authorization"] == f"Bearer {IG_TOKEN}"
    assert request["json"] == {
        "recipient": {"id": CUSTOMER_IGSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "¡Sí! Te cuento."},
    }


async def test_an_agent_reply_after_24_hours_on_instagram_goes_with_the_human_agent_tag(scene: Scene) -> None:
    conversation_id = await _instagram_customer(scene, hours_ago=48)
    queued = await (await _reply(scene, conversation_id, {"text": "Retomo tu consulta."})).json()
    assert queued["tag"] == "HUMAN_AGENT" and queued["window"]["requires_tag"] == "HUMAN_AGENT"
    assert (await scene.next_send()).state == "sent"
    body = scene.graph.received[-1]["json"]
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"


async def test_instagram_refuses_free_form_after_seven_days_and_offers_no_templates(scene: Scene) -> None:
    conversation_id = await _instagram_customer(scene, hours_ago=24 * 8)
    response = await _reply(scene, conversation_id, {"text": "¿Sigues ahí?"})
    assert response.status == 422
    assert (await response.json())["error"]["details"]["templates"] == []
    assert scene.graph.received == []


# ------------------------------------------------------------------ email


async def test_an_email_reply_threads_under_the_customers_mail(scene: Scene) -> None:
    mail = _mail("CAJx-cliente-1@mail.correo.example", datetime.now(UTC) - timedelta(days=3))
    response = await scene.engine.client.post(
        "/webhooks/email", data=mail, headers={"Authorization": f"Bearer {EMAIL_TOKEN}"}
    )
    assert response.status == 200, await response.text()
    await scene.engine.next_outcome()
    conversation_id = await _conversation(scene.engine)
    await _assign(scene.engine, conversation_id, scene.agent_id)

    queued = await (await _reply(scene, conversation_id, {"text": "Sí, hay modalidad en línea."})).json()
    assert queued["window"]["open"] is True  # email has no reply window
    assert (await scene.next_send()).state == "sent"
    delivered = scene.smtp.delivered[-1]
    assert delivered["rcpt_tos"] == [CUSTOMER_EMAIL]
    assert delivered["in_reply_to"] == "<CAJx-cliente-1@mail.correo.example>"
    assert (
        delivered["references"] == "<campania-2026@universidad.example> <CAJx-cliente-1@mail.correo.example>"
    )
    assert delivered["subject"] == "Re: Información de la maestría"
    assert "Sí, hay modalidad en línea." in delivered["text"]
    row = await _row(scene.engine, queued["id"])
    assert row.delivery_state == "sent" and row.external_id == delivered["message_id"].strip("<>")


# ------------------------------------------------------------------ an agent's file


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


async def _upload(scene: Scene, conversation_id: uuid.UUID, data: bytes, name: str, kind: str) -> Any:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=kind)
    return await scene.engine.client.post(
        f"/api/conversations/{conversation_id}/attachments", data=form, headers=scene.auth()
    )


async def test_an_agents_pdf_reaches_the_customers_mailbox_as_a_mime_attachment(scene: Scene) -> None:
    mail = _mail("CAJx-cliente-2@mail.correo.example", datetime.now(UTC) - timedelta(hours=2))
    response = await scene.engine.client.post(
        "/webhooks/email", data=mail, headers={"Authorization": f"Bearer {EMAIL_TOKEN}"}
    )
    assert response.status == 200, await response.text()
    await scene.engine.next_outcome()
    conversation_id = await _conversation(scene.engine)
    await _assign(scene.engine, conversation_id, scene.agent_id)

    uploaded = await _upload(scene, conversation_id, PDF, "temario.pdf", "application/pdf")
    assert uploaded.status == 201, await uploaded.text()
    upload = await uploaded.json()
    assert (upload["kind"], upload["mime_type"]) == ("document", "application/pdf")
    body = {"text": "Le envío el temario.", "attachments": [{"upload_id": upload["id"]}]}
    assert (await _reply(scene, conversation_id, body)).status == 202
    assert (await scene.next_send()).state == "sent"
    parsed = BytesParser(policy=policy.default).parsebytes(scene.smtp.delivered[-1]["raw"])
    text, attached = parsed.iter_parts()
    assert "Le envío el temario." in text.get_content()
    assert (attached.get_content_type(), attached.get_filename()) == ("application/pdf", "temario.pdf")
    assert attached.get_content() == PDF


async def test_instagram_takes_no_uploaded_file_and_the_upload_says_why(scene: Scene) -> None:
    conversation_id = await _instagram_customer(scene, hours_ago=1)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    refused = await _upload(scene, conversation_id, png, "foto.png", "image/png")
    assert refused.status == 415
    error = (await refused.json())["error"]
    assert error["field"] == "file" and "public URL" in error["message"]
