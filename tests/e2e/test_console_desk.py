"""The agent's desk in a real browser (headless Chromium): an agent signs in, a signed WhatsApp
webhook arrives, the offer shows who writes and what, the agent accepts, the customer's next
message appears without a reload, the agent's reply reaches the loopback Graph peer and its
delivery tick comes back, and the agent closes with "promesa de pago", its date and amount.
Outside the reply window the composer offers only the campaign's approved templates.  On the
embedded backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import WSCloseCode
from playwright.async_api import Page, expect

from centralita.passwords import hash_password
from centralita.web.ws import close_sockets
from channels.meta.peer import GraphPeer
from channels.meta.signature import sign_body
from channels.whatsapp.testing import webhook_body
from core.settings import Settings
from router.service import ManualClock
from storage.signin import SignInStore
from storage.tables import ConversationRow
from tests.e2e.conftest import StartRoutingScene
from tests.support.browser import ChromiumThread
from tests.support.campaigns import apply_text, issue_token
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352266077"
SECRET = "desk-app-secret"
WA_TOKEN = "EAA-desk"
PASSWORD = "una clave larga de prueba"
CUSTOMER = "5215512348800"


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


RECEIPT = _png(240, 150, (30, 120, 200))  # a receipt's thumbnail, as far as the desk knows

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: escritorio
campaign: {{name: cobranza, display_name: Cobranza, timezone: America/Bogota}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+57 601 555 0101"
      waba_id: "300000000000077"
      app_id: "400000000000077"
      app_secret_env: DESK_WA_SECRET
      access_token_env: DESK_WA_TOKEN
      verify_token_env: DESK_WA_VERIFY
      default_queue: mora
skills:
  - name: cobranza
queues:
  - name: mora
    required_skills: {{cobranza: 1}}
    channels: [whatsapp]
    sla: {{answer_within_s: 60, target_pct: 80}}
agents:
  - {{email: ana@escritorio.example, name: Ana Ruiz, skills: {{cobranza: 9}}, capacity: {{whatsapp: 3}}}}
  - email: sofia@escritorio.example
    name: Sofía Lara
    role: supervisor
    skills: {{cobranza: 9}}
    capacity: {{whatsapp: 1}}
templates:
  - name: recordatorio_pago
    language: es_CO
    purpose: recordatorio
    category: utility
    parameters: [nombre]
    body: "Hola {{{{1}}}}, te escribimos de Cobranza."
dispositions:
  - code: promesa_de_pago
    label: Promesa de pago
    requires: [date, amount]
  - {{code: sin_contacto, label: Sin contacto}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESK_WA_SECRET", SECRET)
    monkeypatch.setenv("DESK_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("DESK_WA_VERIFY", "desk-verify")


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


@pytest.fixture
async def scene(
    backend_settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene, tmp_path: Path
) -> RoutingScene:
    # The browser counts down with its own clock: the server's starts at the real time.
    found = await start_routing_scene(
        backend_settings,
        MANIFEST,
        ManualClock(datetime.now(UTC)),
        workspace="escritorio",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        offer_timeout_s=120.0,
        config_poll_s=3600.0,
        session_idle_s=3 * 86400.0,  # one test moves the clock a day on
        session_absolute_s=3 * 86400.0,
        media_dir=str(tmp_path / "media"),
        media_poll_s=0.1,
    )
    async with found.database.transaction() as session:
        for email in ("ana@escritorio.example", "sofia@escritorio.example"):
            await SignInStore(session).set_password(
                found.agents[email], await hash_password(PASSWORD), found.clock()
            )
    return found


@pytest.fixture
async def page(chromium: ChromiumThread) -> AsyncIterator[Page]:
    opened = await chromium.new_page()
    yield opened
    await chromium.close_page(opened)


async def _sign_in(
    chromium: ChromiumThread, page: Page, scene: RoutingScene, email: str = "ana@escritorio.example"
) -> None:
    b = chromium.run
    await b(page.goto(str(scene.client.make_url("/"))))
    await b(expect(page.get_by_role("heading", name="Iniciar sesión")).to_be_visible())
    await b(page.get_by_label("Correo").fill(email))
    await b(page.get_by_label("Contraseña").fill(PASSWORD))
    await b(page.get_by_role("button", name="Entrar").click())
    if email.startswith("ana"):
        await b(expect(page.get_by_role("heading", name="Mis conversaciones")).to_be_visible())
        await b(expect(page.locator("#live")).to_have_text("● En vivo"))


async def _available(chromium: ChromiumThread, page: Page, scene: RoutingScene) -> None:
    agent = scene.agents["ana@escritorio.example"]
    await chromium.run(page.locator("#presence").select_option("available"))
    await scene.input_handled(
        lambda i: getattr(i, "type", "") == "presence" and i.agent_id == agent and i.presence == "available"
    )


async def _status(scene: RoutingScene, sent: dict[str, object], state: str) -> None:
    body = webhook_body(PHONE_NUMBER_ID, statuses=[GraphPeer.whatsapp_status(sent, state)])  # type: ignore[arg-type]
    headers = {"X-Hub-Signature-256": sign_body(body, SECRET), "Content-Type": "application/json"}
    assert (await scene.client.post("/webhooks/whatsapp", data=body, headers=headers)).status == 200


async def test_an_agent_answers_a_whatsapp_customer_from_the_desk_and_closes_with_a_promise_to_pay(
    chromium: ChromiumThread, page: Page, scene: RoutingScene, graph: GraphPeer
) -> None:
    b = chromium.run
    await _sign_in(chromium, page, scene)
    await chromium.screenshot(page, "desk-empty")
    await _available(chromium, page, scene)

    conversation = await scene.customer_writes(
        SECRET,
        PHONE_NUMBER_ID,
        CUSTOMER,
        "Buenas, quiero ponerme al día con la cuota de marzo",
        name="Marta Gómez",
    )
    offer = page.locator("li.offer")
    await b(expect(offer).to_contain_text("Marta Gómez"))
    await b(expect(offer).to_contain_text("quiero ponerme al día con la cuota de marzo"))
    await b(expect(offer).to_contain_text("Oferta de mora"))
    await b(expect(offer.locator(".countdown")).to_contain_text("vence en"))
    await chromium.screenshot(page, "desk-offer")
    await b(offer.get_by_role("button", name="Aceptar").click())

    timeline = page.locator("#timeline")
    await b(expect(page.locator(".conv-head h2")).to_have_text("Marta Gómez"))
    await b(expect(timeline).to_contain_text("quiero ponerme al día"))
    await b(expect(page.locator("button.conv.current")).to_contain_text("Marta Gómez"))

    await scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, CUSTOMER, "¿Me pueden dar un plazo hasta el viernes?"
    )
    await b(
        expect(timeline.locator("li.entry.in").last).to_contain_text("plazo hasta el viernes")
    )  # no reload
    graph.add_media("1479537139650973", RECEIPT, "image/png")
    picture = {
        "type": "image",
        "image": {"id": "1479537139650973", "mime_type": "image/png", "caption": "El recibo"},
    }
    await scene.customer_sends(SECRET, PHONE_NUMBER_ID, CUSTOMER, picture)
    shown = timeline.locator("li.entry.in").last.locator("img.att-img")
    await b(expect(shown).to_have_attribute("alt", "El recibo"))
    await b(expect(timeline.locator("li.entry.in").last.locator("figcaption")).to_have_text("El recibo"))
    await b(page.wait_for_function("() => document.querySelector('img.att-img')?.naturalWidth === 240"))

    await b(page.locator("#reply").fill("Claro, Marta. ¿Qué monto podrías pagar el viernes?"))
    await b(page.locator("#reply").press("Control+Enter"))
    (sent,) = await graph.wait_for(1, within_s=10)
    assert sent["json"]["text"]["body"] == "Claro, Marta. ¿Qué monto podrías pagar el viernes?"
    mine = timeline.locator("li.entry.out").last
    await b(expect(mine).to_contain_text("¿Qué monto podrías pagar el viernes?"))
    await _status(scene, sent, "delivered")
    await b(expect(mine.locator(".tick")).to_have_attribute("data-state", "delivered"))
    await b(expect(mine.locator(".tick")).to_contain_text("entregado"))
    await _status(scene, sent, "read")
    await b(expect(mine.locator(".tick")).to_contain_text("leído"))
    await chromium.screenshot(page, "desk-conversation")

    friday = (scene.clock() + timedelta(days=3)).date().isoformat()
    await b(page.locator("#disposition").select_option("promesa_de_pago"))
    await b(page.locator("#disposition-date").fill(friday))
    await b(page.locator("#disposition-amount").fill("150000"))
    await b(page.locator("#close").click())
    await b(expect(page.locator("#toast")).to_have_text("Conversación cerrada."))
    await b(expect(page.locator("#list")).to_contain_text("No tienes conversaciones abiertas."))
    async with scene.database.session() as session:
        row = (
            await session.execute(sa.select(ConversationRow).where(ConversationRow.id == conversation))
        ).scalar_one()
    assert row.status == "closed"
    assert row.disposition is not None
    assert (row.disposition["code"], row.disposition["date"], row.disposition["amount"]) == (
        "promesa_de_pago",
        friday,
        "150000",
    )


async def test_outside_the_reply_window_the_composer_offers_only_the_approved_templates(
    chromium: ChromiumThread, page: Page, scene: RoutingScene, graph: GraphPeer
) -> None:
    b = chromium.run
    await _sign_in(chromium, page, scene)
    await _available(chromium, page, scene)
    await scene.customer_writes(SECRET, PHONE_NUMBER_ID, CUSTOMER, "Hola", name="Marta Gómez")
    await b(page.locator("li.offer").get_by_role("button", name="Aceptar").click())
    await b(expect(page.locator("#reply")).to_be_visible())
    # An hour before WhatsApp's window closes the router warns; the browser counts down on the
    # same time (moved first, so the warning finds it there).
    await b(page.clock.set_system_time(scene.clock() + timedelta(hours=23)))
    scene.clock.advance(23 * 3600)
    banner = page.locator("#window-banner")
    await b(expect(banner).to_have_text("La ventana de 24 h cierra en 60 min — después solo plantillas"))
    await chromium.screenshot(page, "desk-window-warning")
    await b(page.clock.set_system_time(scene.clock() + timedelta(hours=1)))
    scene.clock.advance(3600)  # closed: the desk switches to templates by itself
    await b(expect(page.locator("#window-closed")).to_be_visible())
    await b(expect(banner).to_be_hidden())
    await b(expect(page.locator("#reply[placeholder]")).to_have_count(0))  # no free text
    options = await b(page.locator("#template option").all_text_contents())
    assert options == ["Elige una plantilla", "recordatorio_pago (es_CO)"]
    await b(page.locator("#template").select_option(label="recordatorio_pago (es_CO)"))
    await b(page.get_by_label("Parámetro nombre").fill("Marta"))
    await chromium.screenshot(page, "desk-templates")
    await b(page.locator("#send-template").click())
    (sent,) = await graph.wait_for(1, within_s=10)
    template = sent["json"]["template"]
    assert template["name"] == "recordatorio_pago" and template["language"]["code"] == "es_CO"
    assert json.dumps(template["components"]).count("Marta") == 1


async def test_a_wrong_password_is_said_plainly_and_the_desk_speaks_english_one_click_away(
    chromium: ChromiumThread, page: Page, scene: RoutingScene
) -> None:
    b = chromium.run
    await b(page.goto(str(scene.client.make_url("/console/"))))
    await b(page.get_by_label("Correo").fill("ana@escritorio.example"))
    await b(page.get_by_label("Contraseña").fill("no es esta"))
    await b(page.get_by_role("button", name="Entrar").click())
    await b(expect(page.locator("#toast")).to_have_text("Correo o contraseña incorrectos."))
    await _sign_in(chromium, page, scene)
    await b(page.get_by_role("button", name="English").click())
    await b(expect(page.get_by_role("heading", name="My conversations")).to_be_visible())
    await b(expect(page.locator("html")).to_have_attribute("lang", "en"))
    await b(page.get_by_role("button", name="Español").click())
    await b(expect(page.get_by_role("heading", name="Mis conversaciones")).to_be_visible())


async def test_a_supervisors_wall_counts_an_arrival_within_two_seconds_and_shows_its_sla_breach(
    chromium: ChromiumThread, page: Page, scene: RoutingScene
) -> None:
    b = chromium.run
    await _sign_in(chromium, page, scene, "sofia@escritorio.example")
    await b(expect(page.locator("#live")).to_have_text("● En vivo"))  # over /ws/supervisor
    tile = page.locator(f'article.tile[data-queue="{scene.queues["mora"]}"]')
    await b(expect(tile.locator("h2")).to_have_text("mora"))
    await b(expect(tile.locator('[data-stat="waiting"]')).to_have_text("0"))
    await b(expect(tile.locator(".hours")).to_have_text("Abierta todo el día"))  # no business hours
    await b(expect(page.locator("#alerts")).to_contain_text("Sin alertas por ahora."))
    await scene.customer_writes(SECRET, PHONE_NUMBER_ID, CUSTOMER, "¿Hay alguien?", name="Marta Gómez")
    await b(
        expect(tile.locator('[data-stat="waiting"]')).to_have_text("1", timeout=2000)
    )  # nobody is available, and the tile says why
    reason = tile.locator(".not-offered")
    await b(expect(reason).to_have_text("No se ofrece: ningún agente de la cola ha entrado"))
    await scene.advance(61)  # past the queue's answer_within_s: 60
    alert = page.locator("#alerts li.alert.sla_breach")
    await b(expect(alert).to_contain_text("SLA vencido en mora: esperó 1 min (meta 1 min)"))
    await chromium.screenshot(page, "wall")
    await b(alert.get_by_role("button", name="Leer").click())
    await b(expect(page.locator("#reader")).to_contain_text("¿Hay alguien?"))


async def test_an_invited_agent_opens_the_link_chooses_a_password_and_lands_on_the_desk(
    chromium: ChromiumThread, page: Page, scene: RoutingScene
) -> None:
    b = chromium.run
    admin = await issue_token(scene.database, "escritorio", "admin")
    response = await scene.client.post(
        "/api/admin/invitations",
        json={"email": "ana@escritorio.example"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status == 201
    link = (await response.json())["url"]
    await b(page.goto(link))
    await b(expect(page.get_by_role("heading", name="Bienvenido a Centralita")).to_be_visible())
    await b(page.get_by_label("Nueva contraseña").fill("mi clave nueva y larga"))
    await b(page.get_by_label("Repite la contraseña").fill("mi clave distinta"))
    await b(page.get_by_role("button", name="Guardar y entrar").click())
    await b(expect(page.locator("#toast")).to_have_text("Las contraseñas no coinciden."))
    await b(page.get_by_label("Repite la contraseña").fill("mi clave nueva y larga"))
    await b(page.get_by_role("button", name="Guardar y entrar").click())
    await b(expect(page.get_by_role("heading", name="Mis conversaciones")).to_be_visible())
    assert "#" not in page.url and page.url.endswith("/console/")  # the secret left the address bar
    await b(page.goto(link))  # a second time: the link is spent
    await b(page.get_by_label("Nueva contraseña").fill("otra clave más larga"))
    await b(page.get_by_label("Repite la contraseña").fill("otra clave más larga"))
    await b(page.get_by_role("button", name="Guardar y entrar").click())
    await b(
        expect(page.locator("#toast")).to_have_text("Este enlace de invitación ya se usó: pide uno nuevo.")
    )


async def test_a_dropped_socket_reconnects_and_shows_what_arrived_meanwhile(
    chromium: ChromiumThread, page: Page, scene: RoutingScene
) -> None:
    b = chromium.run
    await _sign_in(chromium, page, scene)
    await _available(chromium, page, scene)
    await scene.customer_writes(SECRET, PHONE_NUMBER_ID, CUSTOMER, "Primer mensaje", name="Marta Gómez")
    await b(page.locator("li.offer").get_by_role("button", name="Aceptar").click())
    timeline = page.locator("#timeline")
    await b(expect(timeline).to_contain_text("Primer mensaje"))

    assert await close_sockets(scene.client.server.app, WSCloseCode.SERVICE_RESTART, "restart") == 1
    await b(expect(page.locator("#live")).to_have_text("○ Reconectando…"))
    for text in ("Mientras no estabas 1", "Mientras no estabas 2"):
        await scene.customer_writes(SECRET, PHONE_NUMBER_ID, CUSTOMER, text, name="Marta Gómez")
    await b(expect(page.locator("#live")).to_have_text("● En vivo"))
    await b(expect(timeline.locator("li.entry.in")).to_have_count(3))
    assert await b(timeline.locator("li.entry.in .text").all_text_contents()) == [
        "Primer mensaje",
        "Mientras no estabas 1",
        "Mientras no estabas 2",
    ]
    await scene.customer_writes(SECRET, PHONE_NUMBER_ID, CUSTOMER, "Ya de vuelta", name="Marta Gómez")
    await b(expect(timeline.locator("li.entry.in")).to_have_count(4))  # live again


OTHER = """\
apiVersion: centralita/v1
kind: Campaign
workspace: otra-empresa
campaign: {name: ventas, display_name: Ventas, timezone: America/Bogota}
channels:
  whatsapp:
    - name: ventas
      phone_number_id: "106540352266078"
      display_phone: "+57 601 555 0102"
      waba_id: "300000000000078"
      app_id: "400000000000078"
      app_secret_env: DESK_WA_SECRET
      access_token_env: DESK_WA_TOKEN
      verify_token_env: DESK_WA_VERIFY
      default_queue: ventas
skills:
  - name: ventas
queues:
  - name: ventas
    required_skills: {ventas: 1}
    channels: [whatsapp]
agents:
  - email: sofia@escritorio.example
    name: Sofía Lara
    role: supervisor
    skills: {ventas: 5}
    capacity: {whatsapp: 1}
"""


async def test_a_supervisor_of_another_workspace_sees_none_of_it(
    chromium: ChromiumThread, page: Page, scene: RoutingScene
) -> None:
    """The same email supervises another workspace: signed in there, the wall shows only its queues."""
    b = chromium.run
    await apply_text(scene.database, OTHER)
    async with scene.database.transaction() as session:
        store = SignInStore(session)
        (other,) = await store.accounts("sofia@escritorio.example", "otra-empresa")
        await store.set_password(other.agent_id, await hash_password(PASSWORD), scene.clock())
    await scene.customer_writes(SECRET, PHONE_NUMBER_ID, CUSTOMER, "¿Hay alguien?", name="Marta Gómez")
    await b(page.goto(str(scene.client.make_url("/console/"))))
    await b(page.get_by_label("Correo").fill("sofia@escritorio.example"))
    await b(page.get_by_label("Contraseña").fill(PASSWORD))
    await b(page.get_by_role("button", name="Entrar").click())
    await b(
        expect(page.locator("#toast")).to_have_text(
            "Tu correo entra a varios espacios de trabajo (escritorio, otra-empresa): escribe cuál."
        )
    )
    await b(page.get_by_label("Espacio de trabajo (solo si te lo piden)").fill("otra-empresa"))
    await b(page.get_by_role("button", name="Entrar").click())
    await b(expect(page.locator("article.tile h2")).to_have_text(["ventas"]))
    await b(expect(page.locator("article.tile [data-stat='waiting']")).to_have_text(["0"]))
    assert "mora" not in await b(page.locator("main").inner_text())


async def test_a_supervisor_finds_a_waiting_conversation_reads_it_and_force_assigns_it(
    chromium: ChromiumThread, page: Page, scene: RoutingScene
) -> None:
    b = chromium.run
    ana = await scene.connect("ana@escritorio.example", presence="away")  # nobody takes offers
    conversation = await scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, CUSTOMER, "Necesito hablar con alguien", name="Marta Gómez"
    )
    await _sign_in(chromium, page, scene, "sofia@escritorio.example")
    await b(expect(page.locator("#agents tr[data-agent]").first).to_be_visible())
    await b(expect(page.locator(f'#agents tr[data-agent="{ana.agent_id}"]')).to_contain_text("Ausente"))
    row = page.locator(f'#results tr[data-conversation="{conversation}"]')
    await b(expect(row).to_contain_text("en espera"))
    await b(page.locator("#search-channel").select_option("instagram"))
    await b(page.get_by_role("button", name="Buscar").click())
    await b(expect(page.locator("#results")).to_have_text("Ninguna conversación con esos filtros."))
    await b(page.locator("#search-channel").select_option("whatsapp"))
    await b(page.get_by_role("button", name="Buscar").click())
    await b(row.get_by_role("button", name="Marta Gómez").click())
    await b(expect(page.locator("#reader")).to_contain_text("Necesito hablar con alguien"))
    await chromium.screenshot(page, "wall-search")
    await b(row.locator("select.assign-agent").select_option(label="Ana Ruiz"))
    await b(row.get_by_role("button", name="Asignar").click())
    await b(expect(page.locator("#toast")).to_have_text("Asignación enviada al enrutador."))
    pushed = await ana.next("assigned", conversation_id=conversation)
    assert pushed["forced"] is True
    await b(page.locator("#search-status").select_option("assigned"))
    await b(page.get_by_role("button", name="Buscar").click())
    await b(expect(row).to_contain_text("asignada"))
    await b(expect(row).to_contain_text("Ana Ruiz"))


async def test_an_agent_attaches_an_image_sees_it_before_sending_and_in_the_timeline_after(
    chromium: ChromiumThread, page: Page, scene: RoutingScene, graph: GraphPeer
) -> None:
    b = chromium.run
    await _sign_in(chromium, page, scene)
    await _available(chromium, page, scene)
    await scene.customer_writes(SECRET, PHONE_NUMBER_ID, CUSTOMER, "¿Me manda el recibo?", name="Marta Gómez")
    await b(page.locator("li.offer").get_by_role("button", name="Aceptar").click())
    picker = page.get_by_label("Adjuntar archivo")
    await b(expect(picker).to_be_visible())

    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 24 + b";"
    await b(picker.set_input_files({"name": "saludo.gif", "mimeType": "image/gif", "buffer": gif}))
    await b(page.locator("#reply").fill("Aquí está su recibo"))
    await b(page.locator("#send").click())
    refused = page.locator(".attach-error[role=alert]")
    await b(expect(refused).to_contain_text("Este canal no envía ese tipo de archivo"))
    await b(expect(refused).to_contain_text("image/gif"))
    assert graph.uploads == [] and graph.received == []
    await b(page.get_by_role("button", name="Quitar archivo").click())
    await b(expect(page.locator(".attach-chosen")).to_have_count(0))
    await b(expect(picker).to_be_focused())

    await b(picker.set_input_files({"name": "recibo.png", "mimeType": "image/png", "buffer": RECEIPT}))
    chosen = page.locator(".attach-chosen")
    await b(expect(chosen).to_contain_text("recibo.png"))
    await b(expect(chosen.locator("img.attach-thumb")).to_have_attribute("alt", "recibo.png"))
    await chromium.screenshot(page, "desk-attach-chosen")
    await b(page.locator("#send").click())
    (sent,) = await graph.wait_for(1, within_s=10)
    (uploaded,) = graph.uploads
    assert (uploaded["data"], uploaded["type"]) == (RECEIPT, "image/png")
    assert sent["json"]["image"] == {"id": uploaded["media_id"], "caption": "Aquí está su recibo"}

    mine = page.locator("#timeline li.entry.out").last
    await b(expect(mine.locator("img.att-img")).to_have_attribute("alt", "recibo.png"))
    await b(
        page.wait_for_function(
            "() => document.querySelector('li.entry.out img.att-img')?.naturalWidth === 240"
        )
    )
    await b(expect(mine).to_contain_text("Aquí está su recibo"))
    await _status(scene, sent, "delivered")
    await b(expect(mine.locator(".tick")).to_have_attribute("data-state", "delivered"))
    await b(expect(page.locator(".attach-chosen")).to_have_count(0))
    await b(expect(page.locator("#reply")).to_have_value(""))
    await chromium.screenshot(page, "desk-attach-sent")
    await b(page.set_viewport_size({"width": 390, "height": 844}))
    await b(picker.set_input_files({"name": "recibo.png", "mimeType": "image/png", "buffer": RECEIPT}))
    await b(expect(page.locator(".attach-chosen")).to_be_visible())
    await chromium.screenshot(page, "desk-attach-phone")
