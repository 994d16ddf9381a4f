"""Applying campaign manifests to the database: plan, apply, export and round-trip, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from centralita.campaigns import apply_manifest, export_manifest, export_yaml, plan_manifest
from core.campaign import (
    Manifest,
    canonical,
    equivalent,
    load_manifest,
    parse_manifest,
    required_env,
    validate_file,
)
from core.errors import Conflict
from storage.database import Database
from storage.tables import (
    AgentRow,
    AuditRow,
    CampaignRow,
    ChannelAccountRow,
    ConversationRow,
    CustomerRow,
    QueueRow,
    SkillRow,
    WorkspaceRow,
)

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "campaigns").glob("*.yaml"))
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _example(path: Path) -> Manifest:
    return load_manifest(path, check_env=False)


def _variant(manifest: Manifest, change: Callable[[dict[str, Any]], None]) -> Manifest:
    data = canonical(manifest)
    change(data)
    return Manifest.model_validate(data)


async def _apply(db: Database, manifest: Manifest, **kwargs: Any) -> Any:
    return await apply_manifest(db, manifest, actor="test", now=NOW, **kwargs)


async def _rows(db: Database, table: Any, *where: Any) -> list[Any]:
    async with db.session() as session:
        return list((await session.execute(sa.select(table).where(*where))).scalars().all())


@pytest.fixture
def posgrados() -> Manifest:
    return _example(EXAMPLES[[p.name for p in EXAMPLES].index("posgrados-universidad.yaml")])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_validates_with_its_environment_variables_set(path: Path) -> None:
    env = {name: "set" for name in required_env(_example(path))}
    result = validate_file(path, env=env)
    assert result.ok, result.format()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
async def test_each_example_plans_only_additions_against_an_empty_database(
    path: Path, database: Database
) -> None:
    result = await plan_manifest(database, _example(path))
    assert result.current_version is None
    assert result.plan.changes and all(c.action == "add" for c in result.plan.changes)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
async def test_each_example_applies_then_plans_no_changes(path: Path, database: Database) -> None:
    manifest = _example(path)
    applied = await _apply(database, manifest)
    assert applied.applied and applied.version == 1
    assert (await plan_manifest(database, manifest)).plan.is_empty


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
async def test_each_example_exports_an_equivalent_manifest_that_round_trips_through_yaml(
    path: Path, database: Database
) -> None:
    manifest = _example(path)
    await _apply(database, manifest)
    exported = await export_manifest(database, manifest.campaign.name)
    reparsed = parse_manifest(export_yaml(exported))
    assert equivalent(exported, manifest)
    assert equivalent(reparsed, manifest)
    assert (await plan_manifest(database, reparsed)).plan.is_empty


async def test_applying_the_same_manifest_twice_changes_nothing_the_second_time(
    database: Database, posgrados: Manifest
) -> None:
    await _apply(database, posgrados)
    again = await _apply(database, posgrados)
    assert not again.applied and again.plan.is_empty and again.version == 1
    (campaign,) = await _rows(database, CampaignRow)
    assert campaign.version == 1
    assert len(await _rows(database, AuditRow)) == 1


async def test_apply_writes_accounts_queues_skills_and_agents_of_the_workspace(
    database: Database, posgrados: Manifest
) -> None:
    await _apply(database, posgrados)
    (workspace,) = await _rows(database, WorkspaceRow)
    assert workspace.slug == "umc"
    accounts = {(a.channel, a.address): a for a in await _rows(database, ChannelAccountRow)}
    assert set(accounts) == {
        ("whatsapp", "106540352242922"),
        ("instagram", "17841405822304914"),
        ("email", "admisiones.posgrado@umc.example.mx"),
    }
    whatsapp = accounts[("whatsapp", "106540352242922")]
    assert whatsapp.app_secret_env == "UMC_WA_APP_SECRET" and whatsapp.app_id == "843120975510273"
    assert whatsapp.settings["waba_id"] == "102290129340398"
    assert whatsapp.settings["welcome_reply"] == "bienvenida"
    mailbox = accounts[("email", "admisiones.posgrado@umc.example.mx")]
    assert mailbox.settings["smtp_host"] == "smtp.umc.example.mx"
    assert mailbox.settings["password_env"] == "UMC_SMTP_PASSWORD"
    assert mailbox.app_secret_env is None
    queues = {q.name: q for q in await _rows(database, QueueRow)}
    assert set(queues) == {
        "maestrias",
        "doctorados",
        "pagos-becas",
        "informacion-general",
        "seguimiento-prospectos",
    }
    assert queues["doctorados"].config["overflow"]["to"] == "maestrias"
    assert queues["maestrias"].priority == 6
    assert {s.name for s in await _rows(database, SkillRow)} == {
        "maestrias",
        "doctorados",
        "pagos-becas",
        "informacion-general",
        "ingles",
    }
    agents = {a.email: a for a in await _rows(database, AgentRow)}
    assert len(agents) == 10  # four people and a group of six
    assert agents["ricardo.nunez@bpo-contacto.example.mx"].role == "supervisor"
    assert agents["asesor.vespertino6@bpo-contacto.example.mx"].capacity == {
        "email": 4,
        "instagram": 2,
        "whatsapp": 3,
    }
    assert all(a.workspace_id == workspace.id for a in agents.values())


async def test_a_removed_agent_is_deactivated_and_keeps_the_conversation_they_hold(
    database: Database, posgrados: Manifest
) -> None:
    applied = await _apply(database, posgrados)
    (jorge,) = await _rows(database, AgentRow, AgentRow.email == "jorge.villalobos@bpo-contacto.example.mx")
    async with database.transaction() as session:
        customer = CustomerRow(workspace_id=applied.workspace_id)
        session.add(customer)
        await session.flush()
        conversation = ConversationRow(
            workspace_id=applied.workspace_id,
            campaign_id=applied.campaign_id,
            customer_id=customer.id,
            agent_id=jorge.id,
            status="assigned",
            channel="whatsapp",
        )
        session.add(conversation)

    def drop_jorge(data: dict[str, Any]) -> None:
        data["agents"] = [a for a in data["agents"] if a.get("email") != jorge.email]

    result = await _apply(database, _variant(posgrados, drop_jorge))
    assert [(c.action, c.kind, c.key) for c in result.plan.changes] == [("remove", "agent", jorge.email)]
    (after,) = await _rows(database, AgentRow, AgentRow.id == jorge.id)
    assert not after.active
    (kept,) = await _rows(database, ConversationRow, ConversationRow.id == conversation.id)
    assert kept.agent_id == jorge.id and kept.status == "assigned"


async def test_removed_queues_and_accounts_are_deactivated_and_return_when_added_again(
    database: Database, posgrados: Manifest
) -> None:
    await _apply(database, posgrados)

    def drop(data: dict[str, Any]) -> None:
        data["queues"] = [q for q in data["queues"] if q["name"] != "seguimiento-prospectos"]
        for d in data["dispositions"]:
            d["schedules_follow_up"] = None
        data["channels"]["instagram"] = []

    await _apply(database, _variant(posgrados, drop))
    (queue,) = await _rows(database, QueueRow, QueueRow.name == "seguimiento-prospectos")
    (instagram,) = await _rows(database, ChannelAccountRow, ChannelAccountRow.channel == "instagram")
    assert not queue.active and not instagram.active

    back = await _apply(database, posgrados)
    assert back.version == 3
    (queue,) = await _rows(database, QueueRow, QueueRow.name == "seguimiento-prospectos")
    (again,) = await _rows(database, ChannelAccountRow, ChannelAccountRow.channel == "instagram")
    assert queue.active and again.active and again.id == instagram.id


async def test_a_changed_queue_updates_its_config_and_bumps_the_version(
    database: Database, posgrados: Manifest
) -> None:
    await _apply(database, posgrados)

    def later(data: dict[str, Any]) -> None:
        data["queues"][0]["business_hours"]["weekly"]["sat"] = ["10:00-13:00"]

    result = await _apply(database, _variant(posgrados, later))
    assert result.version == 2
    (change,) = result.plan.changes
    assert change.kind == "queue" and change.fields[0].field == "business_hours.weekly.sat"
    name = change.key
    (queue,) = await _rows(database, QueueRow, QueueRow.name == name)
    assert queue.config["business_hours"]["weekly"]["sat"] == ["10:00-13:00"]


async def test_a_channel_address_owned_by_another_workspace_is_a_conflict_and_nothing_is_written(
    database: Database, posgrados: Manifest
) -> None:
    await _apply(database, posgrados)

    def elsewhere(data: dict[str, Any]) -> None:
        data["workspace"] = "otra-universidad"

    with pytest.raises(Conflict, match="106540352242922 already belongs to another workspace"):
        await _apply(database, _variant(posgrados, elsewhere))
    assert [w.slug for w in await _rows(database, WorkspaceRow)] == ["umc"]
    assert (await plan_manifest(database, _variant(posgrados, elsewhere))).conflicts


async def test_an_apply_reviewed_against_an_older_version_is_a_conflict(
    database: Database, posgrados: Manifest
) -> None:
    await _apply(database, posgrados, expected_version=0)

    def renamed(data: dict[str, Any]) -> None:
        data["campaign"]["display_name"] = "Admisiones 2027"

    with pytest.raises(Conflict, match="plan again"):
        await _apply(database, _variant(posgrados, renamed), expected_version=0)
    assert (await _apply(database, _variant(posgrados, renamed), expected_version=1)).version == 2


async def test_each_apply_leaves_an_audit_row_with_its_actor_and_plan_summary(
    database: Database, posgrados: Manifest
) -> None:
    applied = await apply_manifest(database, posgrados, actor="cli:ana", now=NOW)
    (audit,) = await _rows(database, AuditRow)
    assert audit.actor == "cli:ana" and audit.action == "campaign.apply"
    assert audit.workspace_id == applied.workspace_id and audit.subject_id == str(applied.campaign_id)
    assert audit.details["version"] == 1 and audit.details["added"] == len(applied.plan.changes)


async def test_an_agent_shared_by_two_campaigns_stays_active_while_one_still_declares_them(
    database: Database, posgrados: Manifest
) -> None:
    await _apply(database, posgrados)

    def second(data: dict[str, Any]) -> None:
        data["campaign"]["name"] = "educacion-continua"
        data["channels"] = {"whatsapp": [], "instagram": [], "email": []}
        data["queues"] = [
            {**q, "name": f"ec-{q['name']}", "business_hours": None} for q in data["queues"][:1]
        ]
        data["queues"][0]["overflow"] = None
        data["agents"] = [
            a for a in data["agents"] if a.get("email") == "mariana.soto@bpo-contacto.example.mx"
        ]
        data["auto_replies"] = {}
        data["triage_menu"] = None
        data["templates"] = []
        data["dispositions"] = []

    await _apply(database, _variant(posgrados, second))

    def without_mariana(data: dict[str, Any]) -> None:
        data["agents"] = [
            a for a in data["agents"] if a.get("email") != "mariana.soto@bpo-contacto.example.mx"
        ]

    await _apply(database, _variant(posgrados, without_mariana))
    (mariana,) = await _rows(database, AgentRow, AgentRow.email == "mariana.soto@bpo-contacto.example.mx")
    assert mariana.active
