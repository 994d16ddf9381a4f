"""What a customer hears before an agent does, with the university example campaign applied:

- a new WhatsApp conversation gets the welcome reply and the numbered menu, and waits in
  ``triage`` (no agent is offered it) until the customer's answer picks the queue;
- invalid answers get the options again, and after ``max_attempts`` the menu's default queue;
- Instagram and email customers are invited to continue on WhatsApp with a wa.me link (the
  email as an RFC 3834 auto-reply, through the mailbox's SMTP login named by env variables);
- automated mail (an out-of-office) gets nothing back and opens nothing.

Signed webhooks and SMTP in, the database, the broker, the live router, agents on WebSockets,
and the loopback Graph API and SMTP server out.  Embedded and PostgreSQL + RabbitMQ.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
import sqlalchemy as sa

from centralita.pipeline.worker import Outcome
from centralita.web.keys import PIPELINE, RUNTIME
from channels.email.testing import SmtpPeer, smtp_peer
from channels.instagram.testing import text_webhook_body
from channels.meta.peer import GraphPeer
from core.facts import WorkAction
from core.ids import ConversationId, new_id
from core.settings import Settings
from router.service import ManualClock
from storage.facts import AUDIT, REPORT
from storage.tables import ConversationRow, MessageRow
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token, signed, whatsapp_text
from tests.support.routing import RoutingScene

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "campaigns" / "posgrados-universidad.yaml"
PHONE_NUMBER_ID = "106540352242922"
IG_ACCOUNT = "17841405822304914"
MAILBOX = "admisiones.posgrado@umc.example.mx"
WA_SECRET, WA_TOKEN = "umc-wa-secret", "EAA-umc-wa"
IG_SECRET, IG_TOKEN = "umc-ig-secret", "IGQ-umc"
SMTP_LOGIN = ("admisiones-smtp", "s3creta-smtp")
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 10:00 in Mexico City: open
WA_LINK_FROM_INSTAGRAM = (
    "https://wa.me/525541702030?text=Hola%2C%20vengo%20de%20Instagram%20y%20quiero%20informaci%C3%B3n"
    "%20de%20posgrados"
)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "UMC_WA_APP_SECRET": WA_SECRET,
        "UMC_WA_ACCESS_TOKEN": WA_TOKEN,
        "UMC_WA_VERIFY_TOKEN": "umc-verify",
        "UMC_IG_APP_SECRET": IG_SECRET,
        "UMC_IG_ACCESS_TOKEN": IG_TOKEN,
        "UMC_IG_VERIFY_TOKEN": "umc-ig-verify",
        "UMC_SMTP_USERNAME": SMTP_LOGIN[0],
        "UMC_SMTP_PASSWORD": SMTP_LOGIN[1],
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    return backend_settings


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN, IG_ACCOUNT: IG_TOKEN}) as peer:
        yield peer


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpPeer]:
    async with smtp_peer(credentials=SMTP_LOGIN) as peer:
        yield peer


class Customers:
    """The campaign live, and customers writing to it."""

    def __init__(self, scene: RoutingScene, graph: GraphPeer, smtp: SmtpPeer) -> None:
        self.scene, self.graph, self.smtp = scene, graph, smtp
        self.processed: asyncio.Queue[Outcome] = asyncio.Queue()
        app = scene.client.server.app
        app[PIPELINE].observers.append(lambda _env, outcome: self.processed.put_nowait(outcome))
        self.listener_port = app[RUNTIME].adapters.get("email").listener_port

    async def _stored(self) -> Outcome:
        async with asyncio.timeout(10):
            outcome = await self.processed.get()
        assert outcome.stored_messages == 1, outcome
        return outcome

    async def whatsapp(self, wa_id: str, text: str) -> Outcome:
        body = whatsapp_text(PHONE_NUMBER_ID, wa_id, f"wamid.{new_id().hex}", text)
        data = json.loads(body)
        data["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(
            int(self.scene.clock().timestamp())
        )
        body = json.dumps(data).encode()
        response = await self.scene.client.post(
            "/webhooks/whatsapp", data=body, headers=signed(body, WA_SECRET)
        )
        assert response.status == 200, await response.text()
        return await self._stored()

    async def instagram(self, igsid: str, text: str) -> Outcome:
        ms = int(self.scene.clock().timestamp() * 1000)
        data = text_webhook_body(IG_ACCOUNT, igsid, f"aWdfZAG1.{new_id().hex}", text, timestamp_ms=ms)
        response = await self.scene.client.post(
            "/webhooks/instagram", data=data, headers=signed(data, IG_SECRET)
        )
        assert response.status == 200, await response.text()
        return await self._stored()

    async def email(self, sender: str, text: str, **headers: str) -> Outcome:
        mail = EmailMessage()
        mail["From"] = f"Prospecto <{sender}>"
        mail["To"] = f"Admisiones Posgrado UMC <{MAILBOX}>"
        mail["Subject"] = "Información de posgrados"
        mail["Message-ID"] = f"<{new_id().hex}@correo.example.net>"
        mail["Date"] = self.scene.clock().strftime("%a, %d %b %Y %H:%M:%S +0000")
        for name, value in headers.items():
            mail[name.replace("_", "-")] = value
        mail.set_content(text)
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=self.listener_port, timeout=10)
        return await self._stored()

    async def row(self, conversation_id: ConversationId) -> ConversationRow:
        return await self.scene.row(conversation_id)

    async def auto_replies(self, conversation_id: ConversationId) -> list[MessageRow]:
        async with self.scene.database.session() as session:
            rows = await session.execute(
                sa.select(MessageRow)
                .where(MessageRow.conversation_id == conversation_id, MessageRow.direction == "out")
                .order_by(MessageRow.created_at)
            )
            return list(rows.scalars())

    async def sent_to_whatsapp(self, count: int) -> list[str]:
        requests = await self.graph.wait_for(count, within_s=10)
        return [r["json"]["text"]["body"] for r in requests if r["node_id"] == PHONE_NUMBER_ID]


def _manifest(smtp: SmtpPeer) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("smtp_host: smtp.umc.example.mx", f"smtp_host: {smtp.host}")
    text = text.replace("smtp_port: 587", f"smtp_port: {smtp.port}\n      smtp_security: none")
    assert f"smtp_port: {smtp.port}" in text
    return text


@pytest.fixture
async def customers(
    settings: Settings, graph: GraphPeer, smtp: SmtpPeer, start_routing_scene: StartRoutingScene
) -> Customers:
    scene = await start_routing_scene(
        settings,
        _manifest(smtp),
        ManualClock(MONDAY_10),
        workspace="umc",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        smtp_listen_port=0,
        send_retries=1,
    )
    return Customers(scene, graph, smtp)


def _conversation(outcome: Outcome) -> ConversationId:
    (conversation,) = {*outcome.triaged, *(n.conversation_id for n in outcome.nudges)}
    return conversation


async def test_a_new_whatsapp_customer_is_welcomed_shown_the_menu_and_routed_by_the_answer(
    customers: Customers,
) -> None:
    jorge = await customers.scene.connect("jorge.villalobos@bpo-contacto.example.mx")  # doctorados 8

    first = await customers.whatsapp("5215512340001", "Hola, buenas tardes")
    conversation = _conversation(first)
    assert first.triaged == [conversation] and first.nudges == []  # the router does not see it yet
    (menu,) = await customers.sent_to_whatsapp(1)
    assert menu.startswith("¡Hola! Gracias por escribir a Admisiones Posgrado")
    assert menu.endswith(
        "¿Sobre qué tema quieres información? Responde con el número:\n"
        "1. Maestrías\n2. Doctorados\n3. Pagos y becas\n4. Otro"
    )
    row = await customers.row(conversation)
    assert (row.status, row.queue_id, row.enqueued_at) == ("triage", None, None)
    (stored,) = await customers.auto_replies(conversation)
    assert stored.payload["auto_reply"] is True and stored.agent_id is None
    token = await issue_token(customers.scene.database, "umc", "supervisor")
    listed = await customers.scene.client.get(
        "/api/conversations", params={"status": "triage"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert [c["id"] for c in (await listed.json())["items"]] == [str(conversation)]

    answer = await customers.whatsapp("5215512340001", "2")
    assert [n.conversation_id for n in answer.nudges] == [conversation]
    offer = await jorge.next("offer", conversation_id=conversation)
    assert offer["queue_id"] == str(customers.scene.queues["doctorados"])
    row = await customers.row(conversation)
    assert row.queue_id == customers.scene.queues["doctorados"] and row.status in ("offered", "waiting")
    assert len(await customers.sent_to_whatsapp(1)) == 1  # the answer itself is not answered


async def test_a_keyword_answer_picks_its_option(customers: Customers) -> None:
    lucia = await customers.scene.connect("lucia.herrera@bpo-contacto.example.mx")  # pagos-becas 9
    conversation = _conversation(await customers.whatsapp("5215512340002", "Hola"))
    await customers.whatsapp("5215512340002", "¿Tienen becas?")
    await customers.whatsapp("5215512340002", "Becas")
    offer = await lucia.next("offer", conversation_id=conversation)
    assert offer["queue_id"] == str(customers.scene.queues["pagos-becas"])


async def test_invalid_answers_get_the_options_again_then_the_menus_default_queue(
    customers: Customers,
) -> None:
    mariana = await customers.scene.connect("mariana.soto@bpo-contacto.example.mx")  # general 8
    conversation = _conversation(await customers.whatsapp("5215512340003", "Buenas"))

    second = await customers.whatsapp("5215512340003", "quiero saber precios")
    assert second.triaged == [conversation] and second.nudges == []
    texts = await customers.sent_to_whatsapp(2)
    assert texts[1] == (
        "No entendí tu respuesta. Responde solo con el número: 1, 2, 3 o 4.\n"
        "1. Maestrías\n2. Doctorados\n3. Pagos y becas\n4. Otro"
    )
    row = await customers.row(conversation)
    assert (row.status, row.triage_attempts) == ("triage", 1)

    third = await customers.whatsapp("5215512340003", "9")  # max_attempts: 2
    assert [n.conversation_id for n in third.nudges] == [conversation]
    offer = await mariana.next("offer", conversation_id=conversation)
    assert offer["queue_id"] == str(customers.scene.queues["informacion-general"])
    assert (await customers.row(conversation)).triage_attempts == 2
    assert len(await customers.sent_to_whatsapp(2)) == 2


async def test_an_instagram_customer_is_invited_to_whatsapp_and_still_queued(customers: Customers) -> None:
    mariana = await customers.scene.connect("mariana.soto@bpo-contacto.example.mx")
    outcome = await customers.instagram("1254459154682919", "Hola, ¿qué maestrías tienen?")
    conversation = _conversation(outcome)
    assert outcome.triaged == []  # the menu asks on WhatsApp only
    requests = await customers.graph.wait_for(1, within_s=10)
    (sent,) = [r for r in requests if r["node_id"] in (IG_ACCOUNT, "me")]
    text = sent["json"]["message"]["text"]
    assert text.startswith("¡Gracias por escribirnos!") and text.endswith(WA_LINK_FROM_INSTAGRAM)
    assert sent["json"]["recipient"] == {"id": "1254459154682919"}
    offer = await mariana.next("offer", conversation_id=conversation)
    assert offer["queue_id"] == str(customers.scene.queues["informacion-general"])


async def test_an_email_customer_gets_an_rfc3834_auto_reply_with_the_whatsapp_link(
    customers: Customers,
) -> None:
    outcome = await customers.email("prospecto@correo.example.net", "Quisiera información del doctorado.")
    conversation = _conversation(outcome)
    (mail,) = await customers.smtp.wait_delivered(1)
    assert mail["rcpt_tos"] == ["prospecto@correo.example.net"]
    assert mail["auto_submitted"] == "auto-replied"
    assert mail["text"].startswith("Recibimos tu correo")
    assert re.search(r"https://wa\.me/525541702030\?text=Hola%2C%20les%20escrib%C3%AD", mail["text"])
    assert customers.smtp.logins == [SMTP_LOGIN[0]]  # the mailbox's login, named by env variables
    # The auto-reply leaves from the outbox, maybe before the router took the nudge: wait for it.
    async with asyncio.timeout(10):
        while (row := await customers.row(conversation)).queue_id is None:  # noqa: ASYNC110 - the router writes it
            await asyncio.sleep(0.02)
    assert row.status in ("waiting", "offered")


async def test_an_out_of_office_mail_gets_nothing_back_and_opens_nothing(customers: Customers) -> None:
    outcome = await customers.email(
        "ausente@correo.example.net",
        "Estoy fuera de la oficina hasta el lunes.",
        Auto_Submitted="auto-replied",
    )
    assert outcome.nudges == [] and outcome.triaged == [] and outcome.auto_replies == []
    await asyncio.sleep(0.5)
    assert customers.smtp.received == []
    async with customers.scene.database.session() as session:
        opened = (await session.execute(sa.select(sa.func.count()).select_from(ConversationRow))).scalar_one()
    assert opened == 0


async def test_the_menus_answer_is_recorded_with_its_option_and_queue_and_starts_the_wait(
    customers: Customers,
) -> None:
    conversation = _conversation(await customers.whatsapp("5215512340009", "Hola"))
    customers.scene.clock.advance(40)
    await customers.whatsapp("5215512340009", "3")

    async with customers.scene.database.session() as session:
        trail = (
            (
                await session.execute(
                    sa.select(AUDIT.c.action, AUDIT.c.actor, AUDIT.c.details, AUDIT.c.queue_id)
                    .where(AUDIT.c.conversation_id == conversation)
                    .order_by(AUDIT.c.at)
                )
            )
            .mappings()
            .all()
        )
        report = (
            (await session.execute(sa.select(REPORT).where(REPORT.c.conversation_id == conversation)))
            .mappings()
            .one()
        )
    queue = customers.scene.queues["pagos-becas"]
    assert [(r["action"], r["actor"]) for r in trail[:2]] == [
        (WorkAction.OPENED, "customer"),
        (WorkAction.TRIAGED, "customer"),
    ]
    assert trail[0]["details"]["triage"] is True
    assert trail[1]["details"] == {
        "option": "Pagos y becas",
        "number": 3,
        "queue": "pagos-becas",
        "queue_id": str(queue),
    }
    assert trail[1]["queue_id"] == queue
    assert (report["triage"], report["triage_option"], report["queue_id"]) == (True, "Pagos y becas", queue)
    assert report["enqueued_at"].astimezone(UTC) == MONDAY_10 + timedelta(seconds=40)
