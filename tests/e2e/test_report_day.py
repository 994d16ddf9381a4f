"""A day of a collections campaign, through the real path, and the reports and audit trail of it.

Six customers write to *cobranza* (America/Bogota) on Monday 23 November 2026: signed WhatsApp
webhooks in, the triage menu and the agents' replies out to the loopback Graph peer, the live
router offering to Ana and Beto on their WebSockets (an offer declined, one left to time out, a
transfer, a queue still closed at 07:50), closes with dispositions through the API, a
supervisor closing one nobody answered, the CSAT survey going out after each attended close
and answered as "5", "⭐⭐⭐⭐" (with a comment after it), a tapped option and "2 tardaron
mucho" — on a controlled clock, on both backends.

The test keeps its own ledger of what it did and when, computes every measure of
docs/reports.md from that ledger on its own, and checks the reports API gives the same; then it
checks each conversation's history (the audit trail) tells exactly the steps it took, and that
the API changes none of it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from centralita.web.keys import SURVEYS
from channels.meta.peer import GraphPeer
from core.facts import WorkAction
from core.ids import ConversationId
from core.settings import Settings
from router.service import ManualClock
from router.wire import ConversationClosedInput, TransferInput
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token
from tests.support.routing import AgentSocket, RoutingScene

PHONE_NUMBER_ID = "106540352288123"
SECRET = "day-app-secret"
WA_TOKEN = "EAA-day"
START = datetime(2026, 11, 23, 12, 50, tzinfo=UTC)  # Monday 07:50 in Bogota (UTC−5)
OPENS = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # 08:00: the queues open
SLA = {"pagos": 60, "acuerdos": 120}
SURVEY_DELAY_S = 60
ANA, BETO = "ana@cobranza.example", "beto@cobranza.example"

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: diario
campaign: {{name: cobranza, display_name: Cobranza, timezone: America/Bogota}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+57 601 555 0123"
      waba_id: "300000000008123"
      app_id: "400000000008123"
      app_secret_env: DAY_WA_SECRET
      access_token_env: DAY_WA_TOKEN
      verify_token_env: DAY_WA_VERIFY
      default_queue: pagos
skills:
  - name: pagos
  - name: acuerdos
queues:
  - name: pagos
    required_skills: {{pagos: 3}}
    channels: [whatsapp]
    sla: {{answer_within_s: {SLA["pagos"]}, target_pct: 80}}
    business_hours: &horario
      weekly: {{mon: ["08:00-18:00"], tue: ["08:00-18:00"]}}
  - name: acuerdos
    required_skills: {{acuerdos: 3}}
    channels: [whatsapp]
    sla: {{answer_within_s: {SLA["acuerdos"]}, target_pct: 90}}
    business_hours: *horario
agents:
  - {{email: {ANA}, name: Ana, skills: {{pagos: 9, acuerdos: 4}}, capacity: {{whatsapp: 2}}}}
  - {{email: {BETO}, name: Beto, skills: {{pagos: 4, acuerdos: 9}}, capacity: {{whatsapp: 2}}}}
triage_menu:
  prompt: "¿En qué te ayudamos? Responde con el número:"
  options:
    - {{label: Pagos, queue: pagos}}
    - {{label: Acuerdos de pago, queue: acuerdos}}
  invalid_reply: "Responde solo con el número: 1 o 2."
  default_queue: pagos
dispositions:
  - {{code: promesa, label: Promesa de pago, requires: [amount, date]}}
  - {{code: pagado, label: Pagó}}
  - {{code: sin_interes, label: Sin interés}}
survey:
  kind: csat
  question: "¿Cómo calificarías la atención que recibiste?"
  delay_s: {SURVEY_DELAY_S}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAY_WA_SECRET", SECRET)
    monkeypatch.setenv("DAY_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("DAY_WA_VERIFY", "day-verify")


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
        ManualClock(START),
        workspace="diario",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        send_retries=1,
        send_retry_initial_s=0.0,
        outbound_poll_s=0.1,
    )


# ------------------------------------------------------------------------------ the ledger


@dataclass
class Seen:
    """One conversation as the test lived it: the clock at each step, and what was decided."""

    customer: str
    first_text: str
    opened: datetime
    option: str = ""
    queue: str = ""
    enqueued: datetime | None = None
    assigned: datetime | None = None
    open_wait_s: float | None = None  # the part of the wait the queue was open
    agent: str = ""  # the first agent who had it
    first_reply: datetime | None = None
    closed: datetime | None = None
    disposition: str = ""
    amount: str = ""
    date: str = ""
    transfers: int = 0
    reopened: bool = False
    survey_sent: bool = False
    score: int | None = None
    comment: str | None = None
    steps: list[tuple[datetime, str, str]] = field(default_factory=list)  # (at, action, actor)


class Day:
    """The campaign live, the test's ledger of what happened, and the hands that make it happen."""

    def __init__(self, scene: RoutingScene, graph: GraphPeer) -> None:
        self.scene, self.graph = scene, graph
        self.seen: dict[ConversationId, Seen] = {}
        self.messages_in = 0
        self.sockets: dict[str, AgentSocket] = {}
        self.tokens: dict[str, dict[str, str]] = {}

    @property
    def now(self) -> datetime:
        return self.scene.clock()

    def actor(self, email: str) -> str:
        return f"agent:{self.scene.agents[email]}"

    async def at(self, when: datetime) -> None:
        assert when >= self.now, (when, self.now)
        await self.scene.advance((when - self.now).total_seconds())

    async def later(self, seconds: float) -> None:
        await self.scene.advance(seconds)

    async def auth(self, email: str | None) -> dict[str, str]:
        key = email or "supervisor"
        if key not in self.tokens:
            if email is None:
                token = await issue_token(self.scene.database, "diario", "supervisor")
            else:
                token = await issue_token(self.scene.database, "diario", "agent", self.scene.agents[email])
            self.tokens[key] = {"Authorization": f"Bearer {token}"}
        return self.tokens[key]

    def step(self, conv: ConversationId, action: str, actor: str) -> None:
        self.seen[conv].steps.append((self.now, action, actor))

    # -- the customer -----------------------------------------------------------------------

    async def writes(self, wa_id: str, text: str) -> ConversationId:
        """A customer's first message: the conversation opens in the menu (the menu goes out)."""
        conv = await self.scene.customer_writes(SECRET, PHONE_NUMBER_ID, wa_id, text, routed=False)
        self.messages_in += 1
        self.seen[conv] = Seen(customer=wa_id, first_text=text, opened=self.now)
        self.step(conv, WorkAction.OPENED, "customer")
        return conv

    async def chooses(self, conv: ConversationId, number: int) -> None:
        seen = self.seen[conv]
        label, queue = [("Pagos", "pagos"), ("Acuerdos de pago", "acuerdos")][number - 1]
        got = await self.scene.customer_writes(
            SECRET, PHONE_NUMBER_ID, seen.customer, str(number), routed=True
        )
        assert got == conv
        self.messages_in += 1
        seen.option, seen.queue, seen.enqueued = label, queue, self.now
        self.step(conv, WorkAction.TRIAGED, "customer")

    async def rates(self, conv: ConversationId, content: dict[str, Any], score: int | None) -> None:
        """The customer answers the survey (``score``: what it should read as)."""
        seen = self.seen[conv]
        joined = await self.scene.customer_sends(
            SECRET, PHONE_NUMBER_ID, seen.customer, content, routed=False
        )
        assert joined == conv  # the answer joins the closed conversation
        self.messages_in += 1
        if score is not None:
            seen.score = score
            self.step(conv, WorkAction.SURVEY_ANSWERED, "customer")

    async def comments(self, conv: ConversationId, text: str) -> None:
        await self.rates(conv, {"type": "text", "text": {"body": text}}, None)
        self.seen[conv].comment = text
        self.step(conv, WorkAction.SURVEY_COMMENTED, "customer")

    # -- the agents ---------------------------------------------------------------------------

    async def offered(self, email: str, conv: ConversationId) -> dict[str, Any]:
        offer = await self.sockets[email].next("offer", conversation_id=conv)
        self.step(conv, WorkAction.OFFERED, "router")
        return offer

    async def accepts(
        self, email: str, conv: ConversationId, offer: dict[str, Any], *, how: str = "offer"
    ) -> None:
        socket = self.sockets[email]
        await socket.answer(offer)
        await socket.next("assigned", conversation_id=conv)
        seen = self.seen[conv]
        self.step(conv, WorkAction.OFFER_ACCEPTED, self.actor(email))
        self.step(conv, WorkAction.ASSIGNED, "router")
        if seen.assigned is None:
            assert seen.enqueued is not None
            seen.assigned, seen.agent = self.now, email
            open_from = max(seen.enqueued, OPENS)  # the queues open at 08:00
            seen.open_wait_s = (self.now - open_from).total_seconds()

    async def declines(self, email: str, conv: ConversationId, offer: dict[str, Any]) -> None:
        await self.sockets[email].answer(offer, accepted=False)
        self.step(conv, WorkAction.OFFER_DECLINED, self.actor(email))

    async def replies(self, email: str, conv: ConversationId, text: str) -> None:
        response = await self.scene.client.post(
            f"/api/conversations/{conv}/messages", json={"text": text}, headers=await self.auth(email)
        )
        assert response.status == 202, await response.text()
        seen = self.seen[conv]
        seen.first_reply = seen.first_reply or self.now
        self.step(conv, WorkAction.REPLIED, self.actor(email))

    async def transfers_to(self, email: str, conv: ConversationId, to: str) -> None:
        response = await self.scene.client.post(
            f"/api/conversations/{conv}/transfer",
            json={"agent_id": str(self.scene.agents[to])},
            headers=await self.auth(email),
        )
        assert response.status == 202, await response.text()
        await self.scene.input_handled(lambda i: isinstance(i, TransferInput) and i.conversation_id == conv)
        self.seen[conv].transfers += 1
        self.step(conv, WorkAction.TRANSFERRED, self.actor(email))
        self.step(conv, WorkAction.ASSIGNMENT_ENDED, "router")

    async def closes(self, email: str | None, conv: ConversationId, code: str, **data: str) -> None:
        response = await self.scene.client.post(
            f"/api/conversations/{conv}/close",
            json={"disposition": {"code": code, **data}},
            headers=await self.auth(email),
        )
        assert response.status == 200, await response.text()
        await self.scene.input_handled(
            lambda i: isinstance(i, ConversationClosedInput) and i.conversation_id == conv
        )
        seen = self.seen[conv]
        seen.closed, seen.disposition = self.now, code
        seen.amount, seen.date = data.get("amount", ""), data.get("date", "")
        principal = self.actor(email) if email else "token:"
        self.step(conv, WorkAction.CLOSED, principal)
        if seen.assigned is not None:
            self.step(conv, WorkAction.ASSIGNMENT_ENDED, "router")

    async def survey_goes_out(self, conv: ConversationId) -> None:
        """``delay_s`` after the close the survey is sent (inside the window: the list)."""
        await self.later(SURVEY_DELAY_S)
        await self.scene.client.server.app[SURVEYS].run_due()
        self.seen[conv].survey_sent = True
        self.step(conv, WorkAction.SURVEY_SENT, "system")

    def reopens(self, earlier: ConversationId) -> None:
        self.seen[earlier].reopened = True
        self.step(earlier, WorkAction.REOPENED, "customer")


@pytest.fixture
async def day(scene: RoutingScene, graph: GraphPeer) -> Day:
    d = Day(scene, graph)
    for email in (ANA, BETO):
        d.sockets[email] = await scene.connect(email)
    return d


async def _live_the_day(day: Day) -> dict[str, ConversationId]:
    """The day's script; returns the conversations by name."""
    c: dict[str, ConversationId] = {}

    # 07:50 — before opening: the menu is answered, the queue waits for 08:00.
    c["lucia"] = await day.writes("573001110001", "Hola, quiero pagar mi deuda de la tarjeta")
    await day.later(30)
    await day.chooses(c["lucia"], 1)
    await day.at(OPENS)
    offer = await day.offered(ANA, c["lucia"])
    await day.later(10)
    await day.accepts(ANA, c["lucia"], offer)
    await day.later(30)
    await day.replies(ANA, c["lucia"], "Hola Lucía, con gusto. ¿Cuánto puede abonar?")
    await day.later(60)
    await day.closes(ANA, c["lucia"], "promesa", amount="150000", date="2026-11-30")
    await day.survey_goes_out(c["lucia"])
    await day.later(10)
    await day.rates(c["lucia"], {"type": "text", "text": {"body": "5"}}, 5)

    # 08:50 — Beto declines, Ana takes it; two replies; a promise; four stars and a comment.
    await day.at(START + timedelta(hours=1))
    c["mario"] = await day.writes("573001110002", "Necesito un acuerdo de pago por favor")
    await day.later(20)
    await day.chooses(c["mario"], 2)
    offer = await day.offered(BETO, c["mario"])
    await day.later(10)
    await day.declines(BETO, c["mario"], offer)
    offer = await day.offered(ANA, c["mario"])
    await day.later(15)
    await day.accepts(ANA, c["mario"], offer)
    await day.later(55)
    await day.replies(ANA, c["mario"], "Claro, le propongo tres cuotas.")
    await day.later(30)
    await day.replies(ANA, c["mario"], "¿Le sirve el día 5?")
    await day.later(270)
    await day.closes(ANA, c["mario"], "promesa", amount="300000.50", date="2026-12-05")
    await day.survey_goes_out(c["mario"])
    await day.later(10)
    await day.rates(c["mario"], {"type": "text", "text": {"body": "⭐⭐⭐⭐"}}, 4)
    await day.later(10)
    await day.comments(c["mario"], "muy amable la asesora")

    # 09:50 — Ana lets the offer time out, Beto takes it, replies, hands it to Ana, who closes.
    await day.at(START + timedelta(hours=2))
    c["sofia"] = await day.writes("573001110003", "Buenas, mi factura llegó mal y no puedo pagar")
    await day.later(10)
    await day.chooses(c["sofia"], 1)
    await day.offered(ANA, c["sofia"])
    await day.later(31)  # the offer times out (30 s)
    day.step(c["sofia"], WorkAction.OFFER_EXPIRED, "router")
    offer = await day.offered(BETO, c["sofia"])
    await day.later(9)
    await day.accepts(BETO, c["sofia"], offer)
    await day.later(30)
    await day.replies(BETO, c["sofia"], "Reviso su factura.")
    await day.later(20)
    await day.transfers_to(BETO, c["sofia"], ANA)
    offer = await day.offered(ANA, c["sofia"])
    await day.later(10)
    await day.accepts(ANA, c["sofia"], offer)
    await day.later(90)
    await day.closes(ANA, c["sofia"], "pagado")
    await day.survey_goes_out(c["sofia"])
    await day.later(10)
    row = f"survey:{c['sofia']}:5"
    tapped = {
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": row, "title": "5"}},
    }
    await day.rates(c["sofia"], tapped, 5)

    # 10:50 — nobody is available; a supervisor closes it unanswered after 5 minutes.
    await day.at(START + timedelta(hours=3))
    for email in (ANA, BETO):
        await day.scene.presence(day.sockets[email], "away")
    c["pedro"] = await day.writes("573001110004", "hola")
    await day.later(10)
    await day.chooses(c["pedro"], 2)
    await day.later(300)
    await day.closes(None, c["pedro"], "sin_interes")
    for email in (ANA, BETO):
        await day.scene.presence(day.sockets[email], "available")

    # 11:50 — Lucía again: a repeat contact that reopens her morning conversation.
    await day.at(START + timedelta(hours=4))
    c["lucia2"] = await day.writes("573001110001", "Otra consulta, ¿ya quedó registrado mi pago?")
    day.reopens(c["lucia"])
    await day.later(10)
    await day.chooses(c["lucia2"], 1)
    offer = await day.offered(ANA, c["lucia2"])
    await day.later(15)
    await day.accepts(ANA, c["lucia2"], offer)
    await day.later(45)
    await day.replies(ANA, c["lucia2"], "Sí, quedó registrado.")
    await day.later(240)
    await day.closes(ANA, c["lucia2"], "pagado")
    await day.survey_goes_out(c["lucia2"])
    await day.later(10)
    await day.rates(c["lucia2"], {"type": "text", "text": {"body": "2 tardaron mucho"}}, 2)
    day.seen[c["lucia2"]].comment = "tardaron mucho"

    # 12:50 — nobody is available until Ana comes back 80 s later: answered after 85 s (the
    # SLA is 60 s); the survey is never answered.
    await day.at(START + timedelta(hours=5))
    for email in (ANA, BETO):
        await day.scene.presence(day.sockets[email], "away")
    c["andres"] = await day.writes("573001110006", "Quiero saber el saldo de mi deuda")
    await day.later(10)
    await day.chooses(c["andres"], 1)
    await day.later(80)
    await day.scene.presence(day.sockets[ANA], "available")
    offer = await day.offered(ANA, c["andres"])
    await day.later(5)
    await day.accepts(ANA, c["andres"], offer)
    await day.later(110)
    await day.replies(ANA, c["andres"], "Su saldo es de 420.000 pesos.")
    await day.later(300)
    await day.closes(ANA, c["andres"], "sin_interes")
    await day.survey_goes_out(c["andres"])
    return c


# ------------------------------------------------------------------------ expected measures


def _pctl(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (docs/reports.md)."""
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    return xs[lo] + (h - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _s(a: datetime | None, b: datetime | None) -> float:
    assert a is not None and b is not None
    return (b - a).total_seconds()


def _expected_measures(seen: Sequence[Seen], all_seen: Sequence[Seen]) -> dict[str, Any]:
    answered = [s for s in seen if s.assigned is not None]
    replied = [s for s in seen if s.first_reply is not None]
    closed = [s for s in seen if s.closed is not None]
    offered = [s for s in seen if s.enqueued is not None]
    frt = [_s(s.opened, s.first_reply) for s in replied]
    met = [s for s in answered if s.open_wait_s is not None and s.open_wait_s <= SLA[s.queue]]

    def earlier_within(s: Seen, window: timedelta) -> bool:
        return any(
            o is not s and o.customer == s.customer and s.opened - window <= o.opened < s.opened
            for o in all_seen
        )

    return {
        "conversations": len(seen),
        "offered": len(offered),
        "answered": len(answered),
        "abandoned": sum(1 for s in closed if s.first_reply is None),
        "frt_p50_s": _pctl(frt, 0.5) if frt else None,
        "frt_p90_s": _pctl(frt, 0.9) if frt else None,
        "frt_mean_s": _mean(frt),
        "asa_s": _mean([_s(s.enqueued, s.assigned) for s in answered]),
        "asa_open_s": _mean([s.open_wait_s or 0.0 for s in answered]),
        "aht_s": _mean([_s(s.assigned, s.closed) for s in answered if s.closed is not None]),
        "sla_met": len(met),
        "sla_answered": len(answered),
        "sla_offered": len(offered),
        "transfers": sum(s.transfers for s in seen),
        "requeues": 0,
        "closed": len(closed),
        "reopened": sum(1 for s in seen if s.reopened),
        "repeat_24h": sum(1 for s in seen if earlier_within(s, timedelta(hours=24))),
        "repeat_7d": sum(1 for s in seen if earlier_within(s, timedelta(days=7))),
    }


def _close(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        if isinstance(value, float):
            assert got[name] == pytest.approx(value, abs=1e-6), name
        else:
            assert got[name] == value, name


# ----------------------------------------------------------------------------------- the test


async def test_a_days_reports_and_audit_trail_tell_exactly_what_happened(day: Day, graph: GraphPeer) -> None:
    c = await _live_the_day(day)
    seen = list(day.seen.values())
    # 6 menus, 6 replies, 5 surveys (Pedro, whom nobody attended, is not surveyed)
    await graph.wait_for(17, within_s=15)
    assert len(graph.requests_to(PHONE_NUMBER_ID)) == 17
    supervisor = await day.auth(None)
    client = day.scene.client

    async def report(name: str, **params: str) -> dict[str, Any]:
        query = {"from": "2026-11-23", "to": "2026-11-23", "campaign": "cobranza", **params}
        response = await client.get(f"/api/reports/{name}", params=query, headers=supervisor)
        assert response.status == 200, await response.text()
        return dict(await response.json())

    # -- summary: every conversation measure, and the volume -----------------------------------
    (total,) = (await report("summary"))["rows"]
    _close(total, _expected_measures(seen, seen))
    assert (total["messages_in"], total["messages_out"]) == (day.messages_in, 17)
    assert total["sla_pct_of_answered"] == pytest.approx(100 * 4 / 5)  # Andrés waited 85 s of 60
    assert total["reopen_rate"] == pytest.approx(1 / 6)

    # -- per queue, with its own SLA target ---------------------------------------------------
    queues = {r["group"]["queue"]: r for r in (await report("queues"))["rows"]}
    assert set(queues) == {"pagos", "acuerdos"}
    for name, row in queues.items():
        _close(row, _expected_measures([s for s in seen if s.queue == name], seen))
    assert (queues["pagos"]["sla_target_pct"], queues["acuerdos"]["sla_target_pct"]) == (80, 90)

    # -- per agent: the first agent who had it ------------------------------------------------
    agents = {r["group"]["agent"]: r for r in (await report("agents"))["rows"]}
    assert set(agents) == {"Ana", "Beto"}
    for name, email in (("Ana", ANA), ("Beto", BETO)):
        _close(agents[name], _expected_measures([s for s in seen if s.agent == email], seen))

    # -- by hour of the day (local) -----------------------------------------------------------
    hours = {r["group"]["hour"]: r for r in (await report("summary", group_by="hour"))["rows"]}
    assert sorted(hours) == ["07", "08", "09", "10", "11", "12"]
    for hour, row in hours.items():
        _close(
            row,
            _expected_measures(
                [s for s in seen if f"{(s.opened - timedelta(hours=5)).hour:02d}" == hour], seen
            ),
        )

    # -- channels: all WhatsApp ---------------------------------------------------------------
    (channel,) = (await report("channels"))["rows"]
    assert channel["group"] == {"channel": "whatsapp"}
    assert (channel["messages_in"], channel["messages_out"]) == (day.messages_in, 17)

    # -- dispositions and promises ------------------------------------------------------------
    (disp,) = (await report("dispositions"))["rows"]
    codes = Counter(s.disposition for s in seen)
    assert disp["with_disposition"] == 6
    assert {m["code"]: m["count"] for m in disp["mix"]} == dict(codes)
    promises = [s for s in seen if s.amount]
    assert disp["promises"] == len(promises) == 2
    assert (
        Decimal(disp["promised_amount"]) == sum(Decimal(s.amount) for s in promises) == Decimal("450000.50")
    )
    assert {p["date"]: (p["count"], Decimal(p["amount"])) for p in disp["by_date"]} == {
        s.date: (1, Decimal(s.amount)) for s in promises
    }

    # -- the CSAT survey, per campaign and per agent -------------------------------------------
    (csat,) = (await report("surveys"))["rows"]
    scores = [s.score for s in seen if s.score is not None]
    sent = sum(1 for s in seen if s.survey_sent)
    assert (csat["kind"], csat["sent"], csat["answered"]) == ("csat", sent, len(scores)) == ("csat", 5, 4)
    assert csat["response_rate"] == pytest.approx(len(scores) / sent)
    assert csat["mean_score"] == pytest.approx(sum(scores) / len(scores))
    assert csat["csat_pct"] == pytest.approx(100 * sum(1 for x in scores if x >= 4) / len(scores))
    by_agent = {r["group"]["agent"]: r for r in (await report("surveys", group_by="agent"))["rows"]}
    ana_scores = [s.score for s in seen if s.agent == ANA and s.score is not None]
    assert by_agent["Ana"]["answered"] == len(ana_scores) == 3
    assert by_agent["Ana"]["mean_score"] == pytest.approx(sum(ana_scores) / 3)

    # -- topics: the menu's choices and the first messages' words, per queue --------------------
    topics = {r["group"]["queue"]: r for r in (await report("topics"))["rows"]}
    for name in ("pagos", "acuerdos"):
        mine = [s for s in seen if s.queue == name]
        assert {t["key"]: t["count"] for t in topics[name]["triage_options"]} == dict(
            Counter(s.option for s in mine)
        )
    pagos_words = {w["key"]: w["count"] for w in topics["pagos"]["top_words"]}
    assert pagos_words["deuda"] == 2  # Lucía's and Andrés's first messages
    assert "quiero" not in pagos_words and "hola" not in pagos_words

    # -- CSV: the same rows -------------------------------------------------------------------
    response = await client.get(
        "/api/reports/queues",
        params={"from": "2026-11-23", "to": "2026-11-23", "format": "csv"},
        headers=supervisor,
    )
    assert response.status == 200 and response.content_type == "text/csv"
    lines = (await response.text()).strip().splitlines()
    header = lines[0].split(",")
    rows = {line.split(",")[0]: dict(zip(header, line.split(","), strict=True)) for line in lines[1:]}
    assert rows["pagos"]["answered"] == str(queues["pagos"]["answered"])

    # -- the audit trail: each conversation's history is exactly the steps it took -------------
    for name, conv in c.items():
        response = await client.get(f"/api/conversations/{conv}/history", headers=supervisor)
        assert response.status == 200, await response.text()
        history = (await response.json())["entries"]
        got = Counter((h["at"], h["action"], _who(h["actor"])) for h in history)
        want = Counter(
            (at.isoformat(), str(action), _who(actor)) for at, action, actor in day.seen[conv].steps
        )
        assert got == want, name
        closes = [h for h in history if h["action"] == WorkAction.CLOSED]
        assert len(closes) == 1
        if day.seen[conv].amount:
            assert closes[0]["details"]["disposition"]["amount"] == day.seen[conv].amount

    # -- and nothing in the API rewrites or deletes it ------------------------------------------
    entry = history[0]
    for method in ("PUT", "PATCH", "DELETE"):
        for path in ("/api/audit", f"/api/audit/{entry['id']}", f"/api/conversations/{conv}/history"):
            response = await client.request(method, path, json={"action": "x"}, headers=supervisor)
            assert response.status in (404, 405), (method, path, response.status)
    response = await client.get(f"/api/conversations/{conv}/history", headers=supervisor)
    assert (await response.json())["entries"] == history


def _who(actor: str) -> str:
    """A supervisor's token closes Pedro's conversation: its id is the test's unknown."""
    return "token:" if actor.startswith("token:") else actor
