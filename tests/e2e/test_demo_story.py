"""The demo as a newcomer lives it, in a real browser: the demo's own campaign and its stand-in
for Meta; a customer writes from the simulator page (a signed webhook, the real path), gets the
welcome and the menu, chooses Maestrías; the demo's agent, signed in with the password the
banner prints, accepts the offer and answers; the answer and its ticks reach the simulator.
Embedded default (SQLite + in-process broker), as ``make demo`` runs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, expect

from centralita import simulator
from centralita.campaigns import apply_manifest
from centralita.demo import DEMO_ENV, DEMO_PASSWORD, DEMO_PEOPLE, demo_manifest
from centralita.directory import load_directory
from centralita.passwords import hash_password
from centralita.runtime import utc_now
from centralita.web.app import create_app
from core.settings import Settings
from storage.database import Database
from storage.signin import SignInStore
from tests.support.browser import ChromiumThread
from tests.support.schema import migrated


@pytest.fixture
async def demo(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[TestClient, simulator.DemoMeta]]:
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)
    await migrated(sqlite_url)
    database = Database(sqlite_url)
    try:
        manifest = demo_manifest()
        await apply_manifest(database, manifest, actor="demo", now=utc_now())
        async with database.transaction() as session:
            store = SignInStore(session)
            (agent,) = await store.accounts(DEMO_PEOPLE["agent"], manifest.workspace)
            await store.set_password(agent.agent_id, await hash_password(DEMO_PASSWORD), utc_now())
        accounts = await load_directory(database)
    finally:
        await database.dispose()
    meta = simulator.DemoMeta(accounts)
    await meta.start()
    settings = Settings(
        database_url=sqlite_url,
        broker_url="memory://",
        graph_base_url=meta.peer.base_url,
        media_dir=str(tmp_path / "media"),
        router_ramp_period_s=0.0,
    )
    app = create_app(settings)
    simulator.setup(app, meta)
    client = TestClient(TestServer(app))
    await client.start_server()
    meta.server_url = str(client.make_url("/")).rstrip("/")
    yield client, meta
    await client.close()
    await meta.stop()


@pytest.fixture
async def pages(chromium: ChromiumThread) -> AsyncIterator[tuple[Page, Page]]:
    desk = await chromium.new_page()
    phone = await chromium.new_page(width=420, height=820)
    yield desk, phone
    await chromium.close_page(desk)
    await chromium.close_page(phone)


async def test_a_customer_writes_from_the_simulator_and_the_demo_agent_answers_from_the_desk(
    chromium: ChromiumThread, pages: tuple[Page, Page], demo: tuple[TestClient, simulator.DemoMeta]
) -> None:
    b = chromium.run
    client, _meta = demo
    desk, phone = pages
    started = time.monotonic()
    await b(desk.goto(str(client.make_url("/"))))
    await b(desk.get_by_label("Correo").fill(DEMO_PEOPLE["agent"]))
    await b(desk.get_by_label("Contraseña").fill(DEMO_PASSWORD))
    await b(desk.get_by_role("button", name="Entrar").click())
    await b(expect(desk.locator("#live")).to_have_text("● En vivo"))
    await b(desk.locator("#presence").select_option("available"))

    await b(phone.goto(str(client.make_url("/console/simulator"))))
    thread = phone.locator("#thread")
    await b(phone.locator("#text").fill("Hola, quiero informes de posgrados"))
    await b(phone.get_by_role("button", name="Enviar como cliente").click())
    await b(expect(thread.locator("li[data-side=customer]")).to_have_count(1))
    await b(expect(thread).to_contain_text("Gracias por escribir a Admisiones Posgrado"))  # the welcome
    await b(expect(thread).to_contain_text("¿Sobre qué tema quieres información?"))  # the menu
    await b(phone.locator("#text").fill("1"))
    await b(phone.get_by_role("button", name="Enviar como cliente").click())

    offer = desk.locator("li.offer")
    await b(expect(offer).to_contain_text("Marta Gómez", timeout=10_000))
    await b(offer.get_by_role("button", name="Aceptar").click())
    await b(expect(desk.locator("#timeline")).to_contain_text("Hola, quiero informes de posgrados"))
    await b(desk.locator("#reply").fill("¡Hola, Marta! Soy Mariana. ¿Qué maestría te interesa?"))
    await b(desk.get_by_role("button", name="Enviar").click())

    answer = thread.locator("li[data-side=business]").last
    await b(expect(answer).to_contain_text("Soy Mariana"))
    await b(expect(answer.locator(".tick")).to_have_attribute("data-state", "read"))
    await b(
        expect(desk.locator("#timeline li.entry.out").last.locator(".tick")).to_have_attribute(
            "data-state", "read"
        )
    )
    elapsed = time.monotonic() - started
    print(f"sign-in to an answered customer, read on the phone: {elapsed:.1f} s")
    await chromium.screenshot(phone, "simulator")
    await chromium.screenshot(desk, "desk-demo")
