"""The desk's customer panel in a real browser (headless Chromium): beside the open conversation
the agent sees who the customer is (identities), their past conversations with queue,
disposition and follow-up, the merge suggestions about them to confirm or reject, and why the
conversation was routed to them, in words.  The agent closes with a follow-up, transfers a
conversation to a colleague (who gets it as an offer on their socket) and finds the keyboard
shortcuts behind "?".  On the embedded backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from centralita.passwords import hash_password
from channels.meta.peer import GraphPeer
from core.settings import Settings
from router.service import ManualClock
from storage.signin import SignInStore
from storage.tables import ConversationRow, MessageRow
from tests.e2e.conftest import StartRoutingScene
from tests.support.browser import ChromiumThread
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352266091"
SECRET = "panel-app-secret"
WA_TOKEN = "EAA-panel"
PASSWORD = "una clave larga de prueba"
MAIN_PHONE = "5215512348800"
OTHER_PHONE = "5215512348801"

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: mostrador
campaign: {{name: cobranza, display_name: Cobranza, timezone: America/Bogota}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+57 601 555 0191"
      waba_id: "300000000000091"
      app_id: "400000000000091"
      app_secret_env: PANEL_WA_SECRET
      access_token_env: PANEL_WA_TOKEN
      verify_token_env: PANEL_WA_VERIFY
      default_queue: mora
skills:
  - name: cobranza
queues:
  - name: mora
    required_skills: {{cobranza: 3}}
    channels: [whatsapp]
  - name: acuerdos
    required_skills: {{cobranza: 1}}
    channels: [whatsapp]
agents:
  - {{email: ana@mostrador.example, name: Ana Ruiz, skills: {{cobranza: 9}}, capacity: {{whatsapp: 3}}}}
  - {{email: luis@mostrador.example, name: Luis Pérez, skills: {{cobranza: 5}}, capacity: {{whatsapp: 2}}}}
dispositions:
  - code: promesa_de_pago
    label: Promesa de pago
    requires: [date, amount]
  - {{code: sin_contacto, label: Sin contacto}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANEL_WA_SECRET", SECRET)
    monkeypatch.setenv("PANEL_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("PANEL_WA_VERIFY", "panel-verify")


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


@pytest.fixture
async def scene(
    backend_settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> RoutingScene:
    found = await start_routing_scene(
        backend_settings,
        MANIFEST,
        ManualClock(datetime.now(UTC)),  # the browser's clock and the server's agree
        workspace="mostrador",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        offer_timeout_s=120.0,
        config_poll_s=3600.0,
    )
    async with found.database.transaction() as session:
        await SignInStore(session).set_password(
            found.agents["ana@mostrador.example"], await hash_password(PASSWORD), found.clock()
        )
    return found


async def _desk(chromium: ChromiumThread, scene: RoutingScene, *, width: int = 1366) -> Page:
    """Ana signed in on a fresh page, available."""
    b = chromium.run
    page = await chromium.new_page(width=width, height=768 if width > 800 else 844)
    await b(page.goto(str(scene.client.make_url("/console/"))))
    await b(page.get_by_label("Correo").fill("ana@mostrador.example"))
    await b(page.get_by_label("Contraseña").fill(PASSWORD))
    await b(page.get_by_role("button", name="Entrar").click())
    await b(expect(page.locator("#live")).to_have_text("● En vivo"))
    agent = scene.agents["ana@mostrador.example"]
    await b(page.locator("#presence").select_option("available"))
    await scene.input_handled(
        lambda i: getattr(i, "type", "") == "presence" and i.agent_id == agent and i.presence == "available"
    )
    return page


@pytest.fixture
async def pages(chromium: ChromiumThread) -> AsyncIterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        await chromium.close_page(page)


async def _accept(chromium: ChromiumThread, page: Page, customer_text: str) -> None:
    b = chromium.run
    offer = page.locator("li.offer")
    await b(expect(offer).to_contain_text(customer_text))
    await b(offer.get_by_role("button", name="Aceptar").click())
    await b(expect(page.locator("#timeline")).to_contain_text(customer_text))


async def test_the_panel_shows_who_the_customer_is_why_it_came_to_me_and_a_confirmed_suggestion_merges(
    chromium: ChromiumThread, scene: RoutingScene, pages: list[Page]
) -> None:
    b = chromium.run
    page = await _desk(chromium, scene)
    pages.append(page)
    panel = page.locator("#customer-panel")

    # Marta writes first from her other number: Ana serves her and closes with a follow-up.
    first = await scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, OTHER_PHONE, "Hola, soy Marta", name="Marta Gómez"
    )
    await _accept(chromium, page, "Hola, soy Marta")
    await b(expect(panel.locator("#panel-identities")).to_contain_text("Teléfono: +52"))
    await b(expect(panel.locator("#panel-identities")).to_contain_text("12348801"))
    await b(expect(panel.locator("#panel-history")).to_contain_text("Es su primera conversación."))
    why = panel.locator("#panel-routing")
    await b(expect(why).to_contain_text("Cola: mora"))
    await b(expect(why).to_contain_text("por un mensaje nuevo"))
    await b(expect(why).to_contain_text("cobranza (tú 9, la cola pide 3)"))
    await b(expect(why).to_contain_text("Tu puntuación: 9"))
    await b(expect(why).to_contain_text("Luis Pérez: desconectado"))  # who else, and why not

    due = (datetime.now() + timedelta(days=2)).replace(hour=10, minute=30, second=0, microsecond=0)
    await b(page.locator("#disposition").select_option("sin_contacto"))
    await b(page.get_by_label("Programar seguimiento (opcional)").fill(due.strftime("%Y-%m-%dT%H:%M")))
    await b(page.locator("#close").click())
    await b(expect(page.locator("#toast")).to_have_text("Conversación cerrada."))
    async with scene.database.session() as session:
        row = (
            await session.execute(sa.select(ConversationRow).where(ConversationRow.id == first))
        ).scalar_one()
    assert row.status == "closed" and row.follow_up_at is not None
    browser_offset = await b(page.evaluate("() => new Date().getTimezoneOffset()"))
    expected = due.replace(tzinfo=UTC) + timedelta(minutes=browser_offset)  # the browser's local time
    assert row.follow_up_at.astimezone(UTC) == expected

    # From her main number she says which other number is hers: the panel suggests the merge.
    await scene.customer_writes(
        SECRET,
        PHONE_NUMBER_ID,
        MAIN_PHONE,
        "Buenas, antes les escribí desde mi otro número: +52 55 1234 8801",
        name="Marta Gómez",
    )
    await _accept(chromium, page, "desde mi otro número")
    suggestion = panel.locator("#panel-suggestions li.suggestion")
    await b(expect(suggestion).to_have_count(1))
    await b(expect(suggestion).to_contain_text("12348801"))
    await b(expect(suggestion).to_contain_text("el cliente lo escribió · es otro cliente"))
    await b(expect(panel.locator("#panel-history")).to_contain_text("Es su primera conversación."))
    await b(suggestion.get_by_role("button", name="Confirmar").click())
    await b(expect(page.locator("#toast")).to_have_text("Unión confirmada."))

    # One customer now: both numbers, the earlier conversation with its disposition and follow-up,
    # and its messages on the timeline.
    await b(expect(panel.locator("#panel-suggestions")).to_have_count(0))
    identities = panel.locator("#panel-identities li")
    await b(expect(identities).to_have_count(2))
    past = panel.locator(f'#panel-history li[data-conversation="{first}"]')
    await b(expect(past).to_contain_text("mora · cerrada"))
    await b(expect(past).to_contain_text("Sin contacto"))
    await b(expect(past.locator(".follow-up")).to_contain_text("Seguimiento:"))
    await b(expect(page.locator("#timeline")).to_contain_text("Hola, soy Marta"))
    assert "null" not in await b(panel.inner_text())
    await chromium.screenshot(page, "desk-panel")


async def test_an_agent_transfers_to_a_colleague_who_gets_the_offer_and_the_desk_has_shortcuts(
    chromium: ChromiumThread, scene: RoutingScene, pages: list[Page]
) -> None:
    b = chromium.run
    luis = await scene.connect("luis@mostrador.example", presence="away")  # not offered the arrival
    page = await _desk(chromium, scene)
    pages.append(page)
    conversation = await scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, MAIN_PHONE, "Necesito un acuerdo de pago", name="Marta Gómez"
    )
    await b(expect(page.locator("li.offer")).to_contain_text("Necesito un acuerdo de pago"))
    await b(page.keyboard.press("Alt+A"))  # accept the first offer
    await b(expect(page.locator("#timeline")).to_contain_text("Necesito un acuerdo de pago"))
    await b(page.keyboard.press("Alt+N"))
    await b(expect(page.locator("#reply")).to_be_focused())
    await b(page.locator("#reply").evaluate("node => node.blur()"))  # "?" in the composer is a "?"
    await b(page.keyboard.press("?"))
    help_box = page.get_by_role("dialog", name="Atajos de teclado")
    await b(expect(help_box).to_be_visible())
    await b(expect(help_box).to_contain_text("Conversación siguiente / anterior"))
    await chromium.screenshot(page, "desk-shortcuts")
    await b(page.keyboard.press("Escape"))
    await b(expect(help_box).to_be_hidden())

    await scene.presence(luis, "available")
    target = page.locator("#transfer-target")
    options = await b(target.locator("option").all_text_contents())
    assert options[0] == "acuerdos"  # the campaign's other queue, then the agents
    assert options[1].startswith("Luis Pérez — ")
    await b(target.select_option(label=options[1]))
    await b(page.locator("#transfer-form").get_by_role("button", name="Transferir").click())
    await b(expect(page.locator("#toast")).to_have_text("Conversación transferida."))
    offer = await luis.next("offer", conversation_id=str(conversation))
    assert offer["preview"]["customer_name"] == "Marta Gómez"
    assert offer["preview"]["text"] == "Necesito un acuerdo de pago"
    await luis.answer(offer)
    await luis.next("assigned", conversation_id=str(conversation))
    await b(expect(page.locator("#list")).to_contain_text("No tienes conversaciones abiertas."))


async def test_at_a_phones_width_the_panel_folds_away_and_opens_on_demand(
    chromium: ChromiumThread, scene: RoutingScene, pages: list[Page]
) -> None:
    b = chromium.run
    page = await _desk(chromium, scene, width=390)
    pages.append(page)
    await scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, MAIN_PHONE, "Hola desde el celular", name="Marta Gómez"
    )
    await _accept(chromium, page, "Hola desde el celular")
    toggle = page.locator("#panel-toggle")
    await b(expect(toggle).to_have_attribute("aria-expanded", "false"))
    await b(expect(page.locator("#customer-panel-body")).to_be_hidden())
    await b(toggle.click())
    await b(expect(page.locator("#panel-routing")).to_contain_text("Cola: mora"))
    await b(page.locator("#customer-panel").scroll_into_view_if_needed())
    await chromium.screenshot(page, "desk-panel-phone")


async def test_a_message_the_customer_edited_or_deleted_is_marked_on_the_timeline(
    chromium: ChromiumThread, scene: RoutingScene, pages: list[Page]
) -> None:
    b = chromium.run
    page = await _desk(chromium, scene)
    pages.append(page)
    conversation = await scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, MAIN_PHONE, "Puedo pagar el lunes", name="Marta Gómez"
    )
    await _accept(chromium, page, "Puedo pagar el lunes")
    await scene.customer_writes(SECRET, PHONE_NUMBER_ID, MAIN_PHONE, "Mi clave es 1234", name="Marta Gómez")
    timeline = page.locator("#timeline")
    await b(expect(timeline).to_contain_text("Mi clave es 1234"))
    # As the pipeline stores a channel's edit and deletion (Instagram's message_edit and unsend;
    # their webhooks are tested in test_desk_panel_api).
    async with scene.database.transaction() as session:
        said = {
            r.text: r
            for r in (
                await session.execute(sa.select(MessageRow).where(MessageRow.conversation_id == conversation))
            ).scalars()
        }
        for kind, target, text in (
            ("edited", said["Puedo pagar el lunes"], "Puedo pagar el martes"),
            ("deleted", said["Mi clave es 1234"], None),
        ):
            session.add(
                MessageRow(
                    workspace_id=target.workspace_id,
                    conversation_id=conversation,
                    customer_id=target.customer_id,
                    direction="in",
                    kind=kind,
                    channel="whatsapp",
                    external_id=f"{target.external_id}#{kind}",
                    text=text,
                    payload={"kind": kind, "target_external_id": target.external_id},
                    created_at=scene.clock(),
                    stored_at=scene.clock(),
                )
            )
    await b(page.locator("button.conv.current").click())  # the desk reads the conversation again
    edited = timeline.locator("li.entry", has_text="Puedo pagar el martes")
    await b(expect(edited.locator(".marker.edited")).to_have_text(" · editado"))
    await b(expect(edited.locator(".was-text")).to_have_text("Antes decía: Puedo pagar el lunes"))
    deleted = timeline.locator("li.entry.was-deleted")
    await b(expect(deleted).to_contain_text("Mi clave es 1234"))
    await b(expect(deleted.locator(".marker.deleted")).to_have_text(" · eliminado"))
    await b(expect(timeline.locator("li.entry")).to_have_count(2))  # edit, deletion: said on theirs
    await chromium.screenshot(page, "desk-markers")
