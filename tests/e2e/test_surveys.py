"""A campaign's CSAT survey after an agent's close, through the real path: a signed WhatsApp
webhook opens the conversation, an agent on the WebSocket takes it and closes it through the
API, and ``delay_s`` later the survey reaches the loopback Graph peer — inside the reply window
as an interactive list, outside it only as the manifest's approved template, and not at all
without one.  The customer's answer ("5", "⭐⭐⭐⭐⭐" or the tapped row) lands as 5 on the
closed conversation (its report row and the audit trail), once; a comment after it is kept;
a message that answers nothing opens a new conversation as always.  On both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from centralita.surveys import SurveyOutcome
from centralita.web.keys import SURVEYS
from channels.meta.peer import GraphPeer
from core.facts import WorkAction
from core.ids import ConversationId
from core.settings import Settings
from router.service import ManualClock
from storage.tables import AuditRow, ConversationReportRow, ConversationRow, MessageRow
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import issue_token
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352277101"
SECRET = "survey-app-secret"
WA_TOKEN = "EAA-survey"
CUSTOMER = "5215512347801"
AGENT = "ana@encuestas.example"
QUESTION = "¿Cómo calificarías la atención que recibiste?"
THANKS = "¡Gracias por tu calificación! Si quieres, cuéntanos por qué."
MONDAY_10 = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def _manifest(*, template: bool) -> str:
    survey_template = "\n  template: {name: encuesta_csat, language: es_MX}" if template else ""
    return f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: encuestas
campaign: {{name: soporte, display_name: Soporte, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 7101"
      waba_id: "300000000007101"
      app_id: "400000000007101"
      app_secret_env: SURVEY_WA_SECRET
      access_token_env: SURVEY_WA_TOKEN
      verify_token_env: SURVEY_WA_VERIFY
      default_queue: soporte
skills:
  - name: soporte
queues:
  - name: soporte
    required_skills: {{soporte: 1}}
    channels: [whatsapp]
agents:
  - {{email: {AGENT}, name: Ana, skills: {{soporte: 9}}, capacity: {{whatsapp: 3}}}}
templates:
  - {{name: encuesta_csat, language: es_MX, purpose: encuesta, category: utility}}
survey:
  kind: csat
  question: "{QUESTION}"
  delay_s: 60{survey_template}
  thanks: "{THANKS}"
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURVEY_WA_SECRET", SECRET)
    monkeypatch.setenv("SURVEY_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("SURVEY_WA_VERIFY", "survey-verify")


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


async def _scene(
    settings: Settings, graph: GraphPeer, start: StartRoutingScene, *, template: bool
) -> RoutingScene:
    return await start(
        settings,
        _manifest(template=template),
        ManualClock(MONDAY_10),
        workspace="encuestas",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        send_retries=1,
        send_retry_initial_s=0.0,
        outbound_poll_s=0.1,
    )


@pytest.fixture
async def scene(
    backend_settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> RoutingScene:
    return await _scene(backend_settings, graph, start_routing_scene, template=True)


@pytest.fixture
async def scene_without_template(
    backend_settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene
) -> RoutingScene:
    return await _scene(backend_settings, graph, start_routing_scene, template=False)


class Survey:
    """One customer's conversation, taken and closed by Ana, and its survey."""

    def __init__(self, scene: RoutingScene, graph: GraphPeer) -> None:
        self.scene, self.graph = scene, graph
        self.outcomes: asyncio.Queue[SurveyOutcome] = asyncio.Queue()
        scene.client.server.app[SURVEYS].observers.append(self.outcomes.put_nowait)
        self.conversation = ConversationId(uuid.UUID(int=0))

    async def closed_by_ana(self, *, hours_later: float = 0.0) -> ConversationId:
        ana = await self.scene.connect(AGENT)
        conversation = await self.scene.customer_writes(
            SECRET, PHONE_NUMBER_ID, CUSTOMER, "No me llegó el reembolso", name="Marta Gómez"
        )
        offer = await ana.next("offer", conversation_id=conversation)
        await ana.answer(offer)
        await ana.next("assigned", conversation_id=conversation)
        async with self.scene.database.session() as session:  # the pipeline opened its report row
            assert await session.get(ConversationReportRow, conversation) is not None
        if hours_later:
            await self.scene.advance(hours_later * 3600)
        token = await issue_token(self.scene.database, "encuestas", "agent", self.scene.agents[AGENT])
        response = await self.scene.client.post(
            f"/api/conversations/{conversation}/close",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 200, await response.text()
        self.conversation = conversation
        return conversation

    async def sent(self) -> SurveyOutcome:
        """Once ``delay_s`` passed: what the sender did."""
        await self.scene.advance(60)
        async with asyncio.timeout(10):
            return await self.outcomes.get()

    async def answers(self, content: dict[str, Any]) -> ConversationId:
        """The customer sends ``content``; the conversation its message joined."""
        return await self.scene.customer_sends(
            SECRET, PHONE_NUMBER_ID, CUSTOMER, content, name="Marta Gómez", routed=False
        )

    async def writes(self, text: str) -> ConversationId:
        return await self.answers({"type": "text", "text": {"body": text}})

    async def report(self) -> ConversationReportRow:
        async with self.scene.database.session() as session:
            row = await session.get(ConversationReportRow, self.conversation, populate_existing=True)
            assert row is not None
            return row

    async def audit(self, action: str) -> list[AuditRow]:
        async with self.scene.database.session() as session:
            rows = await session.execute(
                sa.select(AuditRow).where(
                    AuditRow.conversation_id == self.conversation, AuditRow.action == action
                )
            )
            return list(rows.scalars())

    async def conversations(self) -> int:
        async with self.scene.database.session() as session:
            return int(
                (
                    await session.execute(
                        sa.select(sa.func.count())
                        .select_from(ConversationRow)
                        .where(ConversationRow.workspace_id == self.scene.workspace_id)
                    )
                ).scalar_one()
            )


@pytest.fixture
def survey(scene: RoutingScene, graph: GraphPeer) -> Survey:
    return Survey(scene, graph)


def _tapped(row_id: str, title: str = "5 ⭐⭐⭐⭐⭐") -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": row_id, "title": title}},
    }


async def test_inside_the_window_the_survey_goes_out_as_an_interactive_list_delay_s_after_the_close(
    survey: Survey, graph: GraphPeer
) -> None:
    conversation = await survey.closed_by_ana()
    assert graph.requests_to(PHONE_NUMBER_ID) == []  # not before delay_s
    outcome = await survey.sent()
    assert (outcome.conversation_id, outcome.sent_as) == (conversation, "interactive")
    (request,) = await graph.wait_for(1, within_s=10)
    body = request["json"]
    assert (body["type"], body["to"]) == ("interactive", CUSTOMER)
    assert body["interactive"] == {
        "type": "list",
        "body": {"text": QUESTION},
        "action": {
            "button": "Calificar",
            "sections": [
                {
                    "rows": [
                        {"id": f"survey:{conversation}:{n}", "title": f"{n} {'⭐' * n}"}
                        for n in (5, 4, 3, 2, 1)
                    ]
                }
            ],
        },
    }
    report = await survey.report()
    assert (report.survey_kind, report.survey_sent_at) == ("csat", MONDAY_10.replace(minute=1))
    (sent,) = await survey.audit(WorkAction.SURVEY_SENT)
    assert (sent.details["kind"], sent.details["as"], sent.actor) == ("csat", "interactive", "system")


async def test_outside_the_window_the_survey_goes_out_only_as_its_template(
    survey: Survey, graph: GraphPeer
) -> None:
    await survey.closed_by_ana(hours_later=25)  # the customer wrote 25 hours before the close
    outcome = await survey.sent()
    assert outcome.sent_as == "template"
    (request,) = await graph.wait_for(1, within_s=10)
    body = request["json"]
    assert body["type"] == "template" and "interactive" not in body and "text" not in body
    assert (body["template"]["name"], body["template"]["language"]["code"]) == ("encuesta_csat", "es_MX")
    (sent,) = await survey.audit(WorkAction.SURVEY_SENT)
    assert sent.details["as"] == "template"


async def test_outside_the_window_without_a_template_the_survey_is_not_sent(
    scene_without_template: RoutingScene, graph: GraphPeer
) -> None:
    survey = Survey(scene_without_template, graph)
    await survey.closed_by_ana(hours_later=25)
    outcome = await survey.sent()
    assert (outcome.sent_as, outcome.reason) == (None, "window_closed_no_template")
    await scene_without_template.client.server.app[SURVEYS].run_due()  # nothing is left due
    assert graph.requests_to(PHONE_NUMBER_ID) == []
    assert await survey.audit(WorkAction.SURVEY_SENT) == []
    assert (await survey.report()).survey_sent_at is None


@pytest.mark.parametrize(
    "answer",
    [
        {"type": "text", "text": {"body": "5"}},
        {"type": "text", "text": {"body": "⭐⭐⭐⭐⭐"}},
        "tapped",
    ],
    ids=["digit", "stars", "tapped row"],
)
async def test_an_answer_lands_as_5_on_the_closed_conversation_and_is_thanked(
    survey: Survey, graph: GraphPeer, answer: dict[str, Any] | str
) -> None:
    conversation = await survey.closed_by_ana()
    await survey.sent()
    await graph.wait_for(1, within_s=10)
    content = _tapped(f"survey:{conversation}:5") if answer == "tapped" else answer
    assert isinstance(content, dict)
    assert await survey.answers(content) == conversation  # joins the closed conversation's timeline
    report = await survey.report()
    assert (report.survey_score, report.survey_comment) == (5, None)
    (answered,) = await survey.audit(WorkAction.SURVEY_ANSWERED)
    assert (answered.details["kind"], answered.details["score"], answered.actor) == ("csat", 5, "customer")
    assert await survey.conversations() == 1  # the answer opened nothing
    requests = await graph.wait_for(2, within_s=10)
    assert requests[1]["json"]["text"]["body"] == THANKS


async def test_a_second_answer_is_ignored(survey: Survey, graph: GraphPeer) -> None:
    conversation = await survey.closed_by_ana()
    await survey.sent()
    await survey.writes("5")
    assert await survey.writes("2") == conversation
    assert await survey.answers(_tapped(f"survey:{conversation}:1", "1 ⭐")) == conversation
    assert (await survey.report()).survey_score == 5
    assert len(await survey.audit(WorkAction.SURVEY_ANSWERED)) == 1
    assert (await survey.report()).survey_comment is None  # a score again is no comment


async def test_a_comment_in_the_answer_or_in_the_next_message_is_kept(survey: Survey) -> None:
    conversation = await survey.closed_by_ana()
    await survey.sent()
    await survey.writes("5")
    assert await survey.writes("La asesora resolvió todo muy rápido") == conversation
    report = await survey.report()
    assert (report.survey_score, report.survey_comment) == (5, "La asesora resolvió todo muy rápido")
    (commented,) = await survey.audit(WorkAction.SURVEY_COMMENTED)
    assert commented.details["comment"] == "La asesora resolvió todo muy rápido"


async def test_a_comment_after_the_score_in_the_same_message_is_kept(survey: Survey) -> None:
    await survey.closed_by_ana()
    await survey.sent()
    await survey.writes("4, muy amable")
    report = await survey.report()
    assert (report.survey_score, report.survey_comment) == (4, "muy amable")


async def test_a_message_that_answers_nothing_opens_a_new_conversation(survey: Survey) -> None:
    conversation = await survey.closed_by_ana()
    await survey.sent()
    other = await survey.scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, CUSTOMER, "Hola, tengo otra duda", name="Marta Gómez"
    )
    assert other != conversation
    assert (await survey.report()).survey_score is None
    async with survey.scene.database.session() as session:
        (stored,) = (
            await session.execute(sa.select(MessageRow).where(MessageRow.text == "Hola, tengo otra duda"))
        ).scalars()
    assert stored.conversation_id == other
