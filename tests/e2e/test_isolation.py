"""Every workspace's data stays in it: another workspace's ids answer exactly as ids that do not exist.

Two workspaces are applied from two example manifests (a university, ``umc``, and a collections
team, ``crediandes``); the same person writes to both WhatsApp numbers.  Then every API route of
the running app that takes an id is called with the first workspace's tokens and the second
workspace's ids, and must answer as it does for ids that exist nowhere (GET as an admin: 404).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web

from core.campaign import load_manifest, required_env
from core.ids import AgentId
from storage.database import Database
from storage.tables import (
    AgentRow,
    ConversationRow,
    CustomerRow,
    IdentifierRow,
    MessageRow,
    WorkspaceRow,
)
from tests.e2e.conftest import Engine, StartEngine
from tests.support.campaigns import apply_text, issue_token, signed, whatsapp_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "campaigns"
A_FILE, B_FILE = EXAMPLES / "posgrados-universidad.yaml", EXAMPLES / "cobranza-temprana.yaml"
A_NUMBER, B_NUMBER = "106540352242922", "113829475016372"
SECRETS = {"UMC_WA_APP_SECRET": "umc-app-secret", "CREDIANDES_WA_APP_SECRET": "crediandes-app-secret"}
SAME_PERSON = "5215512345678"
# Route parameters whose kind of id this test knows how to produce for workspace B.
KNOWN_PARAMS = ("name", "customer_id", "conversation_id", "message_id")


@pytest.fixture(autouse=True)
def _campaign_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in (A_FILE, B_FILE):
        for name in required_env(load_manifest(path, check_env=False)):
            monkeypatch.setenv(name, SECRETS.get(name, "set"))


@dataclass
class Tokens:
    by_role: dict[str, str]


async def _two_workspaces(start_engine: StartEngine) -> tuple[Engine, Tokens, Tokens]:
    a = Tokens({})
    b = Tokens({})

    async def seed(db: Database) -> None:
        await apply_text(db, A_FILE.read_text(encoding="utf-8"))
        await apply_text(db, B_FILE.read_text(encoding="utf-8"))
        for workspace, tokens in (("umc", a), ("crediandes", b)):
            async with db.session() as session:
                agent = (
                    await session.execute(
                        sa.select(AgentRow.id)
                        .join(WorkspaceRow, WorkspaceRow.id == AgentRow.workspace_id)
                        .where(WorkspaceRow.slug == workspace, AgentRow.role == "agent")
                        .limit(1)
                    )
                ).scalar_one()
            tokens.by_role["agent"] = await issue_token(db, workspace, "agent", AgentId(agent))
            for role in ("supervisor", "admin"):
                tokens.by_role[role] = await issue_token(db, workspace, role)

    engine = await start_engine(seed=seed)
    for number, secret, wamid in (
        (A_NUMBER, SECRETS["UMC_WA_APP_SECRET"], "wamid.to-umc"),
        (B_NUMBER, SECRETS["CREDIANDES_WA_APP_SECRET"], "wamid.to-crediandes"),
    ):
        body = whatsapp_text(number, SAME_PERSON, wamid, "Hola, quiero información")
        response = await engine.client.post("/webhooks/whatsapp", data=body, headers=signed(body, secret))
        assert response.status == 200, await response.text()
        assert (await engine.next_outcome()).stored_messages == 1
    return engine, a, b


async def _workspace_id(db: Database, slug: str) -> uuid.UUID:
    async with db.session() as session:
        found = await session.execute(sa.select(WorkspaceRow.id).where(WorkspaceRow.slug == slug))
        return uuid.UUID(str(found.scalar_one()))


async def _ids_of(db: Database, workspace_id: uuid.UUID) -> dict[str, str]:
    async with db.session() as session:
        conversation = (
            await session.execute(
                sa.select(ConversationRow).where(ConversationRow.workspace_id == workspace_id)
            )
        ).scalar_one()
        message = (
            await session.execute(sa.select(MessageRow).where(MessageRow.conversation_id == conversation.id))
        ).scalar_one()
    return {
        "name": "cobranza-temprana",
        "customer_id": str(conversation.customer_id),
        "conversation_id": str(conversation.id),
        "message_id": str(message.id),
    }


def _nowhere() -> dict[str, str]:
    return {
        "name": "no-existe-en-ningun-lado",
        "customer_id": str(uuid.uuid4()),
        "conversation_id": str(uuid.uuid4()),
        "message_id": str(uuid.uuid4()),
    }


def _routes_with_ids(app: web.Application) -> list[tuple[str, str, list[str]]]:
    """(method, path pattern, parameter names) of every route whose path takes an id."""
    found = []
    for resource in app.router.resources():
        pattern = resource.get_info().get("formatter")
        if not pattern or not pattern.startswith("/api/"):
            continue
        params = re.findall(r"{(\w+)}", pattern)
        for route in resource:
            if route.method != "HEAD":
                found.append((route.method, pattern, params))
    return found


async def test_the_same_phone_writing_to_two_workspaces_becomes_one_customer_in_each(
    start_engine: StartEngine,
) -> None:
    engine, a, b = await _two_workspaces(start_engine)
    db = engine.database
    umc, crediandes = await _workspace_id(db, "umc"), await _workspace_id(db, "crediandes")
    async with db.session() as session:
        customers = (await session.execute(sa.select(CustomerRow))).scalars().all()
        identifiers = (await session.execute(sa.select(IdentifierRow))).scalars().all()
    assert sorted(c.workspace_id for c in customers) == sorted([umc, crediandes])
    assert {i.workspace_id for i in identifiers} == {umc, crediandes}
    assert not {i.customer_id for i in identifiers if i.workspace_id == umc} & {
        i.customer_id for i in identifiers if i.workspace_id == crediandes
    }
    for tokens, workspace in ((a, umc), (b, crediandes)):
        response = await engine.client.get(
            "/api/customers",
            params={"identifier": f"+{SAME_PERSON}"},
            headers={"Authorization": f"Bearer {tokens.by_role['supervisor']}"},
        )
        assert response.status == 200, await response.text()
        listed = (await response.json())["customers"]
        own = {str(c.id) for c in customers if c.workspace_id == workspace}
        assert len(listed) == 1 and listed[0]["id"] in own


async def test_another_workspaces_ids_answer_exactly_like_ids_that_do_not_exist(
    start_engine: StartEngine,
) -> None:
    engine, a, _ = await _two_workspaces(start_engine)
    theirs = await _ids_of(engine.database, await _workspace_id(engine.database, "crediandes"))
    nowhere = _nowhere()
    covered: set[str] = set()
    leaks: list[str] = []
    for method, pattern, params in _routes_with_ids(engine.client.server.app):
        if not params or not set(params) <= set(KNOWN_PARAMS):
            continue
        covered.add(pattern)
        for role, token in a.by_role.items():
            statuses = []
            for ids in (theirs, nowhere):
                path = pattern.format(**{p: ids[p] for p in params})
                kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {token}"}}
                if method not in ("GET", "DELETE"):
                    kwargs["json"] = {}
                async with engine.client.request(method, path, **kwargs) as response:
                    statuses.append(response.status)
            if statuses[0] != statuses[1]:
                leaks.append(
                    f"{method} {pattern} as {role}: {statuses[0]} for theirs, {statuses[1]} for none"
                )
            if method == "GET" and role == "admin" and statuses[0] != 404:
                leaks.append(f"{method} {pattern} as admin: {statuses[0]}, not 404")
    assert leaks == []
    assert {"/api/campaigns/{name}/export", "/api/customers/{customer_id}"} <= covered


async def test_a_workspace_lists_only_its_own_campaigns(start_engine: StartEngine) -> None:
    engine, a, b = await _two_workspaces(start_engine)
    for tokens, expected in ((a, ["posgrados-2027"]), (b, ["cobranza-temprana"])):
        response = await engine.client.get(
            "/api/campaigns", headers={"Authorization": f"Bearer {tokens.by_role['supervisor']}"}
        )
        assert [c["name"] for c in (await response.json())["campaigns"]] == expected
