"""A changed campaign applied to running servers takes effect within seconds, with no restart."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa

from centralita.config_watch import ConfigChange, register_reload_hook
from centralita.pipeline.worker import Outcome
from centralita.web.keys import RUNTIME
from core.campaign import equivalent, parse_manifest
from storage.database import Database
from storage.tables import AgentRow, ConversationRow, MessageRow, QueueRow
from tests.e2e.conftest import Engine, StartEngine
from tests.support.campaigns import apply_text, issue_token, signed, whatsapp_text

FIRST_NUMBER = "200000000000001"
NEW_NUMBER = "200000000000002"
SECRETS = {"ACME_WA_APP_SECRET": "first-app-secret", "ACME_WA2_APP_SECRET": "second-app-secret"}
ENV = {
    **SECRETS,
    "ACME_WA_ACCESS_TOKEN": "t1",
    "ACME_WA_VERIFY_TOKEN": "v1",
    "ACME_WA2_ACCESS_TOKEN": "t2",
    "ACME_WA2_VERIFY_TOKEN": "v2",
}
CAMPAIGN_URL = "/api/campaigns"

V1 = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: acme
campaign: {{name: ventas, display_name: Ventas, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{FIRST_NUMBER}"
      display_phone: "+52 55 4170 2031"
      waba_id: "300000000000001"
      app_id: "400000000000001"
      app_secret_env: ACME_WA_APP_SECRET
      access_token_env: ACME_WA_ACCESS_TOKEN
      verify_token_env: ACME_WA_VERIFY_TOKEN
      default_queue: ventas
skills:
  - name: ventas
queues:
  - name: ventas
    required_skills: {{ventas: 5}}
    channels: [whatsapp]
    business_hours:
      weekly: {{mon: ["09:00-18:00"], tue: ["09:00-18:00"]}}
agents:
  - {{email: ana@acme.example, name: Ana, skills: {{ventas: 7}}, capacity: {{whatsapp: 3}}}}
  - {{email: beto@acme.example, name: Beto, skills: {{ventas: 6}}, capacity: {{whatsapp: 3}}}}
"""

# Adds a queue, a WhatsApp number and an agent; changes the hours; removes Beto.
V2 = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: acme
campaign: {{name: ventas, display_name: Ventas, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{FIRST_NUMBER}"
      display_phone: "+52 55 4170 2031"
      waba_id: "300000000000001"
      app_id: "400000000000001"
      app_secret_env: ACME_WA_APP_SECRET
      access_token_env: ACME_WA_ACCESS_TOKEN
      verify_token_env: ACME_WA_VERIFY_TOKEN
      default_queue: ventas
    - name: postventa
      phone_number_id: "{NEW_NUMBER}"
      display_phone: "+52 55 4170 2032"
      waba_id: "300000000000001"
      app_id: "400000000000002"
      app_secret_env: ACME_WA2_APP_SECRET
      access_token_env: ACME_WA2_ACCESS_TOKEN
      verify_token_env: ACME_WA2_VERIFY_TOKEN
      default_queue: postventa
skills:
  - name: ventas
  - name: postventa
queues:
  - name: ventas
    required_skills: {{ventas: 5}}
    channels: [whatsapp]
    business_hours:
      weekly: {{mon: ["08:00-20:00"], tue: ["08:00-20:00"], wed: ["08:00-20:00"]}}
  - name: postventa
    required_skills: {{postventa: 5}}
    channels: [whatsapp]
agents:
  - {{email: ana@acme.example, name: Ana, skills: {{ventas: 7}}, capacity: {{whatsapp: 3}}}}
  - {{email: carla@acme.example, name: Carla, skills: {{postventa: 8}}, capacity: {{whatsapp: 3}}}}
"""

BROKEN = """\
apiVersion: centralita/v1
kind: Campaign
workspace: acme
campaign: {name: ventas, display_name: Ventas, timezone: America/Mexico_Cty}
skills:
  - name: ventas
queues:
  - name: ventas
    required_skills: {ventas: 5, cobranza: 3}
    priorty: 5
    channels: [whatsapp]
    business_hours:
      weekly: {mon: ["09:00-14:00", "13:00-18:00"]}
agents:
  - {email: ana@acme.example, name: Ana, skills: {ventas: 7}, capacity: {whatsapp: 3}}
"""
BROKEN_PROBLEMS = {
    (4, "invalid_timezone"),
    (9, "unknown_skill"),
    (10, "unknown_key"),
    (11, "channel_without_account"),
    (13, "overlapping_hours"),
}


@pytest.fixture(autouse=True)
def _campaign_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


class Tokens:
    admin = ""
    supervisor = ""


async def _seed_v1(tokens: Tokens) -> Callable[[Database], Awaitable[None]]:
    async def seed(db: Database) -> None:
        await apply_text(db, V1)
        tokens.admin = await issue_token(db, "acme", "admin")
        tokens.supervisor = await issue_token(db, "acme", "supervisor")

    return seed


def _auth(token: str, content_type: str = "application/yaml") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": content_type}


def _hook_queue(engine: Engine) -> asyncio.Queue[ConfigChange]:
    changes: asyncio.Queue[ConfigChange] = asyncio.Queue()

    async def hook(change: ConfigChange) -> None:
        changes.put_nowait(change)

    register_reload_hook(engine.client.server.app[RUNTIME], hook)
    return changes


async def _version_seen(
    changes: asyncio.Queue[ConfigChange], version: int, within_s: float = 5.0
) -> ConfigChange:
    async with asyncio.timeout(within_s):
        while True:
            change = await changes.get()
            if change.version == version:
                return change


async def _next_outcome_of_any(*engines: Engine, within_s: float = 10.0) -> Outcome:
    """The next delivery any of the servers processed (on RabbitMQ one pipeline is active for all)."""
    waits = [asyncio.ensure_future(e.next_outcome(within_s)) for e in engines]
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return next(iter(done)).result()


async def test_a_changed_manifest_applied_through_the_api_reaches_every_running_server_within_5_s(
    start_engine: StartEngine,
) -> None:
    tokens = Tokens()
    applier = await start_engine(seed=await _seed_v1(tokens), config_poll_s=1.0)
    # A conversation from before the change, held by Beto, whom the new manifest removes.
    body = whatsapp_text(FIRST_NUMBER, "5215512345678", "wamid.before", "Hola")
    assert (
        await applier.client.post(
            "/webhooks/whatsapp", data=body, headers=signed(body, SECRETS["ACME_WA_APP_SECRET"])
        )
    ).status == 200
    assert (await applier.next_outcome()).stored_messages == 1
    db = applier.database
    async with db.transaction() as session:
        beto = (
            await session.execute(sa.select(AgentRow).where(AgentRow.email == "beto@acme.example"))
        ).scalar_one()
        conversation = (await session.execute(sa.select(ConversationRow))).scalar_one()
        conversation.agent_id, conversation.status = beto.id, "assigned"

    other = await start_engine(config_poll_s=1.0)  # a second server that does not apply anything
    other_changes = _hook_queue(other)
    applier_changes = _hook_queue(applier)
    new_body = whatsapp_text(NEW_NUMBER, "5215598765432", "wamid.after", "Hola postventa")
    new_headers = signed(new_body, SECRETS["ACME_WA2_APP_SECRET"])
    assert (await other.client.post("/webhooks/whatsapp", data=new_body, headers=new_headers)).status == 401

    response = await applier.client.post(f"{CAMPAIGN_URL}/apply", data=V2, headers=_auth(tokens.admin))
    assert response.status == 200, await response.text()
    applied = await response.json()
    assert applied["applied"] and applied["version"] == 2
    assert {(c["action"], c["kind"], c["key"]) for c in applied["plan"]["changes"]} >= {
        ("add", "queue", "postventa"),
        ("change", "queue", "ventas"),
        ("add", "agent", "carla@acme.example"),
        ("remove", "agent", "beto@acme.example"),
        ("add", "whatsapp_account", "postventa"),
    }

    seen_here = await _version_seen(applier_changes, 2)
    seen_there = await _version_seen(other_changes, 2)
    assert seen_here.campaign == seen_there.campaign == "ventas"
    assert other.client.server.app[RUNTIME].directory.find("whatsapp", NEW_NUMBER) is not None

    response = await other.client.post("/webhooks/whatsapp", data=new_body, headers=new_headers)
    assert response.status == 200, await response.text()

    assert (await _next_outcome_of_any(applier, other)).stored_messages == 1
    async with db.session() as session:
        message = (
            await session.execute(sa.select(MessageRow).where(MessageRow.external_id == "wamid.after"))
        ).scalar_one()
        kept = (
            await session.execute(sa.select(ConversationRow).where(ConversationRow.id == conversation.id))
        ).scalar_one()
        agents = {a.email: a.active for a in (await session.execute(sa.select(AgentRow))).scalars()}
        queues = {q.name: q for q in (await session.execute(sa.select(QueueRow))).scalars()}
    assert message.text == "Hola postventa"
    assert kept.agent_id == beto.id and kept.status == "assigned"
    assert agents == {"ana@acme.example": True, "beto@acme.example": False, "carla@acme.example": True}
    assert queues["postventa"].active
    assert queues["ventas"].config["business_hours"]["weekly"]["wed"] == ["08:00-20:00"]


async def test_a_change_applied_without_an_announcement_still_converges_by_polling(
    start_engine: StartEngine,
) -> None:
    tokens = Tokens()
    engine = await start_engine(seed=await _seed_v1(tokens), config_poll_s=0.5)
    changes = _hook_queue(engine)
    other_process = Database(engine.settings.database_url)
    try:
        await apply_text(other_process, V2)  # as `centralita campaign apply` with no broker to tell
    finally:
        await other_process.dispose()
    change = await _version_seen(changes, 2)
    assert change.campaign == "ventas"
    assert engine.client.server.app[RUNTIME].directory.find("whatsapp", NEW_NUMBER) is not None


async def test_a_broken_manifest_gets_every_error_at_once_each_with_its_line(
    start_engine: StartEngine,
) -> None:
    tokens = Tokens()
    engine = await start_engine(seed=await _seed_v1(tokens))
    checked = await engine.client.post(f"{CAMPAIGN_URL}/validate", data=BROKEN, headers=_auth(tokens.admin))
    assert checked.status == 200
    report = await checked.json()
    assert report["ok"] is False
    assert {(p["line"], p["code"]) for p in report["problems"]} == BROKEN_PROBLEMS
    assert all(p["column"] and p["message"] and p["severity"] == "error" for p in report["problems"])

    refused = await engine.client.post(
        f"{CAMPAIGN_URL}/apply",
        json={"manifest": BROKEN},
        headers={"Authorization": f"Bearer {tokens.admin}"},
    )
    assert refused.status == 422
    body = await refused.json()
    assert {(p["line"], p["code"]) for p in body["problems"]} == BROKEN_PROBLEMS
    assert body["error"]["code"] == "invalid_manifest"


async def test_plan_through_the_api_shows_the_diff_and_export_round_trips(start_engine: StartEngine) -> None:
    tokens = Tokens()
    engine = await start_engine(seed=await _seed_v1(tokens))
    planned = await engine.client.post(f"{CAMPAIGN_URL}/plan", data=V2, headers=_auth(tokens.admin))
    assert planned.status == 200
    plan = await planned.json()
    assert plan["current_version"] == 1 and "+ queue postventa" in plan["text"]

    same = await engine.client.post(f"{CAMPAIGN_URL}/plan", data=V1, headers=_auth(tokens.admin))
    assert (await same.json())["text"].startswith("No changes")

    exported = await engine.client.get(f"{CAMPAIGN_URL}/ventas/export", headers=_auth(tokens.admin))
    assert exported.status == 200 and exported.content_type == "application/yaml"
    assert equivalent(parse_manifest(await exported.text()), parse_manifest(V1))


async def test_campaign_administration_needs_an_admin_token_of_the_manifests_workspace(
    start_engine: StartEngine,
) -> None:
    tokens = Tokens()
    engine = await start_engine(seed=await _seed_v1(tokens))
    anonymous = await engine.client.post(
        f"{CAMPAIGN_URL}/apply", data=V2, headers={"Content-Type": "application/yaml"}
    )
    assert anonymous.status == 401
    supervisor = await engine.client.post(f"{CAMPAIGN_URL}/apply", data=V2, headers=_auth(tokens.supervisor))
    assert supervisor.status == 403
    foreign = V2.replace("workspace: acme", "workspace: otra")
    other_workspace = await engine.client.post(
        f"{CAMPAIGN_URL}/apply", data=foreign, headers=_auth(tokens.admin)
    )
    assert other_workspace.status == 403
    assert "workspace" in (await other_workspace.json())["error"]["message"]
    missing = await engine.client.get(f"{CAMPAIGN_URL}/no-existe/export", headers=_auth(tokens.admin))
    assert missing.status == 404


async def test_a_failing_reload_hook_does_not_stop_the_others(start_engine: StartEngine) -> None:
    tokens = Tokens()
    engine = await start_engine(seed=await _seed_v1(tokens))

    async def broken(change: ConfigChange) -> None:
        raise RuntimeError("a bug in another service")

    register_reload_hook(engine.client.server.app[RUNTIME], broken)
    changes = _hook_queue(engine)
    response = await engine.client.post(f"{CAMPAIGN_URL}/apply", data=V2, headers=_auth(tokens.admin))
    assert response.status == 200, await response.text()
    assert (await _version_seen(changes, 2)).campaign == "ventas"


async def test_validate_judges_the_file_and_warns_of_unset_secrets_while_plan_refuses_them(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = Tokens()
    engine = await start_engine(seed=await _seed_v1(tokens))
    monkeypatch.delenv("ACME_WA2_ACCESS_TOKEN")  # V2's new number: this server lacks its token

    checked = await engine.client.post(f"{CAMPAIGN_URL}/validate", data=V2, headers=_auth(tokens.admin))
    assert checked.status == 200
    report = await checked.json()
    assert report["ok"] is True
    warnings = [p for p in report["problems"] if p["severity"] == "warning"]
    assert len(warnings) == 1 and "ACME_WA2_ACCESS_TOKEN" in warnings[0]["message"]

    refused = await engine.client.post(f"{CAMPAIGN_URL}/plan", data=V2, headers=_auth(tokens.admin))
    assert refused.status == 422
    body = await refused.json()
    assert any("ACME_WA2_ACCESS_TOKEN" in p["message"] and p["severity"] == "error" for p in body["problems"])
