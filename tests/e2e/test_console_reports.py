"""The supervisor's report pages in a real browser (headless Chromium): Carla opens "Informes",
sees the last 7 days' headline figures — the same numbers the reports API gives for that range
— and the charts (messages by hour, SLA % by day with each queue's target, the first-response
distribution, CSAT by day, the disposition mix), the per-queue and per-agent tables and a CSV
download per report; she narrows the range to one day and the page reads it again; a range that
ends before it starts says which field is wrong; a range with nothing in it says so.  An agent's
console has no reports.  The report rows are the facts of five conversations appended through
``FactLog`` and the hourly message counters through ``count_traffic``, as the engine does."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from centralita.passwords import hash_password
from core.facts import CloseReason, Fact, WorkAction
from core.ids import AgentId, new_id
from storage.facts import FactLog, count_traffic, traffic
from storage.signin import SignInStore
from tests.e2e.conftest import StartWorkScene
from tests.support.browser import ChromiumThread
from tests.support.work import WorkScene

PHONE_NUMBER_ID = "113829475016455"
PASSWORD = "una clave larga de prueba"
BOGOTA = ZoneInfo("America/Bogota")


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BOGOTA).astimezone(UTC)


class Seeded:
    """The two days the facts fall on (local dates in Bogotá: the day before yesterday and
    yesterday, inside the default "last 7 days" whatever the hour)."""

    def __init__(self, scene: WorkScene) -> None:
        today = datetime.now(BOGOTA).date()
        self.scene = scene
        self.first = today - timedelta(days=2)
        self.second = today - timedelta(days=1)
        self.today = today


async def _seed(scene: WorkScene) -> Seeded:
    seeded = Seeded(scene)
    ws, db = scene.ws, scene.engine.database
    ana, beto = ws.agents["ana"], ws.agents["beto"]
    facts: list[Fact] = []

    async def conversation(
        opened: datetime,
        queue: str,
        *,
        agent: Any = None,
        waited_s: float = 0,
        frt_s: float | None = None,
        disposition: dict[str, str] | None = None,
        csat: int | None = None,
    ) -> None:
        common: dict[str, Any] = {
            "workspace_id": ws.id,
            "conversation_id": new_id(),
            "customer_id": await ws.add_customer(db),
            "campaign_id": ws.campaign_id,
            "queue_id": ws.queues[queue],
        }
        facts.append(Fact(WorkAction.OPENED, opened, "customer", details={"channel": "whatsapp"}, **common))
        if agent is None:  # nobody answered: the customer left after two minutes
            facts.append(
                Fact(WorkAction.CLOSED, opened + timedelta(seconds=120), "system",
                     details={"reason": CloseReason.ABANDONED}, **common)
            )  # fmt: skip
            return
        assert frt_s is not None
        facts.extend([
            Fact(WorkAction.ASSIGNED, opened + timedelta(seconds=waited_s), "router", agent_id=agent,
                 details={"waited_s": waited_s}, **common),
            Fact(WorkAction.REPLIED, opened + timedelta(seconds=frt_s), f"agent:{agent}", agent_id=agent,
                 **common),
            Fact(WorkAction.CLOSED, opened + timedelta(seconds=frt_s + 600), f"agent:{agent}", agent_id=agent,
                 details={"reason": CloseReason.AGENT, "disposition": disposition}, **common),
        ])  # fmt: skip
        if csat is not None:
            at = opened + timedelta(seconds=frt_s + 700)
            facts.extend([
                Fact(WorkAction.SURVEY_SENT, at, "system", details={"kind": "csat"}, **common),
                Fact(WorkAction.SURVEY_ANSWERED, at + timedelta(seconds=60), "customer",
                     details={"kind": "csat", "score": csat}, **common),
            ])  # fmt: skip

    promise = {"code": "promesa_de_pago", "date": (seeded.today + timedelta(days=5)).isoformat()}
    first, second = seeded.first, seeded.second
    await conversation(_local(first, 10), "mora", agent=ana, waited_s=20, frt_s=45,
                       disposition={**promise, "amount": "80000"}, csat=5)  # fmt: skip
    await conversation(_local(first, 10, 30), "mora", agent=ana, waited_s=90, frt_s=400,
                       disposition={**promise, "amount": "50000"}, csat=3)  # fmt: skip
    await conversation(_local(first, 15), "mora")
    await conversation(_local(second, 11), "mora", agent=beto, waited_s=30, frt_s=120,
                       disposition={"code": "pago_realizado", "amount": "20000"}, csat=4)  # fmt: skip
    await conversation(_local(second, 11, 15), "promesas", agent=ana, waited_s=100, frt_s=5000,
                       disposition={"code": "negociacion", "note": "llamar el lunes"})  # fmt: skip
    counts = []
    for day, hour, incoming, outgoing in ((first, 10, 5, 3), (first, 15, 1, 0), (second, 11, 4, 6)):
        for direction, n in (("in", incoming), ("out", outgoing)):
            counts += [traffic(ws.id, ws.campaign_id, "whatsapp", direction, _local(day, hour, 5))] * n
    async with db.transaction() as session:
        await FactLog(session).append(facts)
        await count_traffic(session, counts)
        for who in ("carla", "ana"):
            await SignInStore(session).set_password(
                AgentId(ws.agents[who]), await hash_password(PASSWORD), scene.clock()
            )
    return seeded


@pytest.fixture
async def seeded(start_work_scene: StartWorkScene) -> Seeded:
    # The browser reads "the last 7 days" from its own clock: the server's starts at the real time.
    scene = await start_work_scene("informes", PHONE_NUMBER_ID, now=datetime.now(UTC), who="carla")
    return await _seed(scene)


@pytest.fixture
async def pages(chromium: ChromiumThread) -> AsyncIterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        await chromium.close_page(page)


async def _signed_in(chromium: ChromiumThread, seeded: Seeded, who: str, *, width: int = 1366) -> Page:
    b = chromium.run
    page = await chromium.new_page(width=width, height=768 if width > 800 else 844, timezone="America/Bogota")
    await b(page.goto(str(seeded.scene.engine.client.make_url("/console/"))))
    await b(page.get_by_label("Correo").fill(f"{who}@informes.example"))
    await b(page.get_by_label("Contraseña").fill(PASSWORD))
    await b(page.get_by_role("button", name="Entrar").click())
    return page


async def _api(seeded: Seeded, report: str, start: date, end: date, **params: str) -> Any:
    status, body = await seeded.scene.get(
        f"/api/reports/{report}", **{"from": start.isoformat(), "to": end.isoformat(), **params}
    )
    assert status == 200, body
    return body


async def _figure(chromium: ChromiumThread, page: Page, key: str) -> tuple[str, str]:
    node = page.locator(f'.figure[data-figure="{key}"]')
    value = await chromium.run(node.get_attribute("data-value"))
    return value or "", (await chromium.run(node.locator("dd").inner_text())).strip()


async def test_a_supervisor_reads_the_last_weeks_reports_charts_and_csv_and_narrows_the_range(
    chromium: ChromiumThread, seeded: Seeded, pages: list[Page]
) -> None:
    b = chromium.run
    page = await _signed_in(chromium, seeded, "carla")
    pages.append(page)
    await b(page.get_by_role("link", name="Informes").click())
    await b(expect(page.get_by_role("heading", name="Informes", level=1)).to_be_visible())
    week = (seeded.today - timedelta(days=6), seeded.today)
    await b(expect(page.locator("#report-from")).to_have_value(week[0].isoformat()))
    await b(expect(page.locator("#report-to")).to_have_value(week[1].isoformat()))
    await b(expect(page.locator(".figure")).to_have_count(11))
    assert await b(page.locator("#report-campaign-field").is_hidden())  # one campaign: no selector

    # The headline is the summary the API gives for the same range.
    (total,) = (await _api(seeded, "summary", *week))["rows"]
    assert (total["conversations"], total["answered"], total["abandoned"]) == (5, 4, 1)
    assert await _figure(chromium, page, "conversations") == ("5", "5")
    assert await _figure(chromium, page, "answered") == ("4", "4")
    assert await _figure(chromium, page, "abandoned") == ("1", "1")
    for key in (
        "sla_pct_of_answered",
        "sla_pct_of_offered",
        "asa_s",
        "aht_s",
        "reopen_rate",
        "repeat_24h_rate",
    ):
        value, _ = await _figure(chromium, page, key)
        assert float(value) == pytest.approx(total[key]), key
    assert total["sla_pct_of_answered"] == 75.0  # 3 of 4 answered within their queue's SLA
    assert (await _figure(chromium, page, "sla_pct_of_answered"))[1].startswith("75 %")
    # first replies at 45 s, 120 s, 400 s and 5000 s: p50 260 s, p90 3620 s
    assert (total["frt_p50_s"], total["frt_p90_s"]) == (260.0, pytest.approx(3620.0))
    assert (await _figure(chromium, page, "frt"))[1] == "4 min 20 s\np90: 1 h 00 min"
    assert (await _figure(chromium, page, "csat_pct"))[1].startswith("66.7 %")  # 5 and 4 of 5, 3, 4

    # Messages by hour: 24 hours, in and out, the counters' numbers in each bar's title.
    volume = page.locator("#chart-volume")
    await b(expect(volume.locator("rect.bar.in")).to_have_count(24))
    await b(expect(volume.locator("rect.bar.out")).to_have_count(24))
    by_hour = {r["group"]["hour"]: r for r in (await _api(seeded, "summary", *week, group_by="hour"))["rows"]}
    for hour in ("10", "11", "15"):
        bar = volume.locator(f'g.category[data-category="{hour}"] rect.in')
        assert await b(bar.get_attribute("data-value")) == str(by_hour[hour]["messages_in"])
    await b(
        expect(volume.locator('g[data-category="11"] rect.out title')).to_have_text("11 h · Salientes: 6")
    )

    # SLA % by day: a category per day of the range, bars on the two days with conversations,
    # a target line per queue target.
    sla = page.locator("#chart-sla")
    await b(expect(sla.locator("g.category")).to_have_count(7))
    await b(expect(sla.locator("rect.bar.sla-answered")).to_have_count(2))
    by_day = {r["group"]["day"]: r for r in (await _api(seeded, "summary", *week, group_by="day"))["rows"]}
    first = sla.locator(f'g[data-category="{seeded.first.isoformat()}"] rect.sla-answered')
    shown = await b(first.get_attribute("data-value"))
    assert float(shown or "nan") == by_day[seeded.first.isoformat()]["sla_pct_of_answered"] == 50.0
    await b(expect(sla.locator("g.target")).to_have_count(2))
    await b(expect(sla.locator("g.target title")).to_have_text(["Meta mora 80 %", "Meta promesas 85 %"]))
    await b(expect(sla.locator(".legend .target-key")).to_have_text(["Meta mora 80 %", "Meta promesas 85 %"]))

    # The first-response distribution: six buckets, as the API counts them.
    frt = page.locator("#chart-frt rect.bar")
    await b(expect(frt).to_have_count(6))
    assert (
        [int(v or 0) for v in await b(frt.evaluate_all("bars => bars.map(b => b.dataset.value)"))]
        == [bucket["count"] for bucket in total["frt_histogram"]]
        == [1, 1, 1, 0, 1, 0]
    )
    await b(
        expect(page.locator("#chart-frt rect.bar").first.locator("title")).to_have_text(
            "< 1 min · Conversaciones: 1"
        )
    )

    # CSAT by day: a point per day with answers, its numbers in its title.
    points = page.locator("#chart-csat circle.point")
    await b(expect(points).to_have_count(2))
    await b(
        expect(points.first.locator("title")).to_contain_text("CSAT 50 % · media 4 · 2 de 2 respondieron")
    )

    # The disposition mix: a bar per code, commonest first, and the promises (a disposition
    # with a promised date: 80,000 and 50,000; the payment of 20,000 is not one).
    mix = (await _api(seeded, "dispositions", *week))["rows"][0]["mix"]
    items = page.locator("#chart-dispositions g.item")
    await b(expect(items).to_have_count(len(mix)))
    await b(expect(items.first).to_have_attribute("data-key", "promesa_de_pago"))
    await b(expect(items.first.locator("text.label")).to_have_text("Promesa de pago"))  # its label
    await b(expect(items.first.locator("text.value")).to_have_text("2 (50 %)"))
    await b(
        expect(page.locator("#chart-dispositions .promised")).to_have_text(
            "Prometido en total: 130,000 en 2 promesas"
        )
    )

    # The tables per queue and per agent.
    await b(expect(page.locator("#table-queues tbody tr")).to_have_count(2))
    await b(expect(page.locator('#table-queues tr[data-queue="mora"] td').nth(4)).to_have_text("66.7 %"))
    await b(expect(page.locator("#table-agents tbody th")).to_have_text(["Ana", "Beto"]))
    await chromium.screenshot(page, "reports")
    await b(page.locator("#chart-frt").scroll_into_view_if_needed())
    await b(page.mouse.move(0, 0))  # no bar under the pointer (hovered bars are lighter)
    await chromium.screenshot(page, "reports-charts")
    await b(page.locator("#table-agents").scroll_into_view_if_needed())
    await chromium.screenshot(page, "reports-tables")

    # Each report downloads as CSV, for the same range.
    link = page.locator('#table-queues a.csv[data-report="queues"]')
    href = await b(link.get_attribute("href"))
    assert href is not None and f"from={week[0].isoformat()}" in href
    response = await b(page.request.get(str(seeded.scene.engine.client.make_url(href))))
    assert response.ok and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await b(response.text()))))
    assert [(r["queue"], r["offered"], r["frt_lt_1m"]) for r in rows] == [
        ("mora", "4", "1"),
        ("promesas", "1", "0"),
    ]

    # One day: the page reads the reports again.
    await b(page.locator("#report-from").fill(seeded.second.isoformat()))
    await b(page.locator("#report-to").fill(seeded.second.isoformat()))
    await b(page.get_by_role("button", name="Ver").click())
    await b(expect(page.locator('.figure[data-figure="conversations"] dd')).to_have_text("2"))
    (day,) = (await _api(seeded, "summary", seeded.second, seeded.second))["rows"]
    assert await _figure(chromium, page, "abandoned") == (str(day["abandoned"]), "0")
    await b(expect(page.locator("#chart-sla g.category")).to_have_count(1))
    assert f"from={seeded.second.isoformat()}" in (await b(link.get_attribute("href")) or "")

    # A range that ends before it starts: the API's 400 names the field.
    await b(page.locator("#report-to").fill(seeded.first.isoformat()))
    await b(page.get_by_role("button", name="Ver").click())
    await b(
        expect(page.locator("#report-status")).to_have_text(
            "No se pudo leer el informe (Hasta): to must be after from"
        )
    )
    await b(expect(page.locator("#report-body")).to_be_empty())

    # Nothing in the range: said plainly.
    await b(page.locator("#report-from").fill("2020-01-01"))
    await b(page.locator("#report-to").fill("2020-01-07"))
    await b(page.get_by_role("button", name="Ver").click())
    await b(expect(page.locator("#report-empty")).to_have_text(
        "No hay datos en este rango: ninguna conversación ni mensaje. Prueba con otras fechas."
    ))  # fmt: skip

    # On a phone the same page, one column.
    phone = await _signed_in(chromium, seeded, "carla", width=390)
    pages.append(phone)
    await b(phone.get_by_role("link", name="Informes").click())
    await b(expect(phone.locator("#chart-volume rect.bar.in")).to_have_count(24))
    await chromium.screenshot(phone, "reports-phone")
    await b(phone.locator("#chart-sla").scroll_into_view_if_needed())
    await chromium.screenshot(phone, "reports-phone-charts")

    # An agent's console has no reports, even at their address.
    desk = await _signed_in(chromium, seeded, "ana")
    pages.append(desk)
    await b(expect(desk.get_by_role("heading", name="Mis conversaciones")).to_be_visible())
    await b(desk.goto("about:blank"))
    await b(desk.goto(str(seeded.scene.engine.client.make_url("/console/#informes"))))
    await b(expect(desk.get_by_role("heading", name="Mis conversaciones")).to_be_visible())
    await b(expect(desk.get_by_role("link", name="Informes")).to_have_count(0))
    await b(expect(desk.locator("#report-body")).to_have_count(0))
