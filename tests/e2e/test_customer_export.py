"""A customer's data, exported: ``GET /api/customers/{id}/export`` and ``centralita customers
export-one`` give the same bundle of everything the workspace holds about the person.

Lucía writes on WhatsApp and by email (two customers), an agent links them (one customer), replies
on WhatsApp through the loopback Graph peer, adds a note and closes with a disposition that
schedules a follow-up.  On the embedded backend and on PostgreSQL + RabbitMQ.

Every export writes a ``customer.export`` audit entry after its read: a bundle lists the exports
made before it, never its own, so two bundles of the same person are compared without those.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from centralita.outbound import SendOutcome
from centralita.web.keys import OUTBOUND
from channels.email.testing import SmtpPeer, smtp_peer
from channels.meta.peer import GraphPeer
from channels.meta.signature import sign_body
from channels.whatsapp.testing import text_webhook_body
from core.ids import AgentId, WorkspaceId, new_id
from storage.database import Database
from storage.tables import AgentRow, ApiTokenRow, AuditRow, CampaignRow, ConversationRow
from storage.tokens import TokenStore
from tests.e2e.conftest import Engine, StartEngine
from tests.support.seed import seed_workspace

WA_SECRET = "wa-secret-export"
WA_TOKEN = "EAA-export-token"
PHONE_NUMBER_ID = "106540352247001"
MAILBOX = "ayuda@tienda.example"
MAIL_TOKEN = "tok-correo-export"
LUCIA_WA = "5215587654321"
LUCIA_EMAIL = "lucia.gomez@correo.example"
PHONE_KEY = "phone:+525587654321"
EMAIL_KEY = f"email:{LUCIA_EMAIL}"

WA_TEXT = "Hola, mi pedido 4411 no ha llegado"
MAIL_TEXT = "Les escribo también por correo por el pedido 4411."
REPLY_TEXT = "Hola Lucía, ya revisamos tu pedido con la paquetería."
NOTE_TEXT = "Cliente pide llamada antes de las 18 h"

MANIFEST = {
    "dispositions": [
        {
            "code": "promesa_de_pago",
            "label": "Promesa de pago",
            "requires": ["date", "amount"],
            "schedules_follow_up": {"after_days": 3},
        }
    ]
}

CONVERSATION = ConversationRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
TOKEN = ApiTokenRow.__table__  # type: ignore[attr-defined]
EXPORT = "customer.export"
CLI = [sys.executable, "-m", "centralita.cli"]


@dataclass
class Shop:
    engine: Engine
    tokens: dict[str, str]
    agent_id: uuid.UUID
    sent: asyncio.Queue[SendOutcome]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def call(self, method: str, path: str, who: str = "agent", **kwargs: Any) -> Any:
        response = await self.engine.client.request(method, path, headers=self.auth(who), **kwargs)
        assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
        return await response.json()

    async def customer_of(self, identifier: str) -> str:
        found = await self.call("GET", "/api/customers", params={"identifier": identifier})
        return str(found["customers"][0]["id"])


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORT_WA_SECRET", WA_SECRET)
    monkeypatch.setenv("EXPORT_WA_TOKEN", WA_TOKEN)


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpPeer]:
    async with smtp_peer() as peer:
        yield peer


async def _seed(db: Database, tokens: dict[str, str], agents: dict[str, uuid.UUID]) -> None:
    seeded = await seed_workspace(
        db,
        "tienda",
        [
            {
                "channel": "whatsapp",
                "address": PHONE_NUMBER_ID,
                "app_id": "app-export",
                "app_secret_env": "EXPORT_WA_SECRET",
                "access_token_env": "EXPORT_WA_TOKEN",
            },
            {"channel": "email", "address": MAILBOX},
        ],
    )
    other = await seed_workspace(db, "otra-tienda", [])
    now = datetime.now(UTC)
    async with db.transaction() as session:
        campaign = await session.get(CampaignRow, seeded.campaign_id)
        assert campaign is not None
        campaign.manifest = MANIFEST
        agent = AgentRow(
            id=new_id(), workspace_id=seeded.workspace_id, email="ana@tienda.example", name="Ana"
        )
        session.add(agent)
        await session.flush()
        agents["agent"] = agent.id
        store, ws = TokenStore(session), WorkspaceId(seeded.workspace_id)
        tokens["agent"] = await store.issue(ws, "agent", AgentId(agent.id), "ana", now)
        tokens["supervisor"] = await store.issue(ws, "supervisor", None, "sup", now)
        tokens["admin"] = await store.issue(ws, "admin", None, "admin", now)
        tokens["foreign"] = await store.issue(
            WorkspaceId(other.workspace_id), "supervisor", None, "otra", now
        )


@pytest.fixture
async def shop(start_engine: StartEngine, graph: GraphPeer, smtp: SmtpPeer) -> Shop:
    tokens: dict[str, str] = {}
    agents: dict[str, uuid.UUID] = {}

    async def seed(db: Database) -> None:
        await _seed(db, tokens, agents)

    engine = await start_engine(
        seed=seed,
        graph_base_url=graph.base_url,
        smtp_relay_host=smtp.host,
        smtp_relay_port=smtp.port,
        email_webhook_token=MAIL_TOKEN,
    )
    sent: asyncio.Queue[SendOutcome] = asyncio.Queue()
    engine.client.server.app[OUTBOUND].observers.append(sent.put_nowait)
    return Shop(engine, tokens, agents["agent"], sent)


def _mail(at: datetime) -> bytes:
    return (
        f"From: =?UTF-8?Q?Luc=C3=ADa_G=C3=B3mez?= <{LUCIA_EMAIL}>\r\nTo: <{MAILBOX}>\r\n"
        f"Subject: Pedido 4411\r\nDate: {at.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        "Message-ID: <pedido-4411@correo.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        f"{MAIL_TEXT}\r\n"
    ).encode()


async def _lucia_story(shop: Shop) -> tuple[str, str]:
    """Lucía on WhatsApp and by email, linked, answered, noted and closed: (live, merged-away) ids."""
    engine = shop.engine
    at = datetime.now(UTC) - timedelta(minutes=30)
    body = text_webhook_body(
        PHONE_NUMBER_ID, LUCIA_WA, "wamid.lucia.1", WA_TEXT, name="Lucía Gómez", timestamp=int(at.timestamp())
    )
    response = await engine.client.post(
        "/webhooks/whatsapp",
        data=body,
        headers={"X-Hub-Signature-256": sign_body(body, WA_SECRET), "Content-Type": "application/json"},
    )
    assert response.status == 200, await response.text()
    assert (await engine.next_outcome()).stored_messages == 1
    response = await engine.client.post(
        "/webhooks/email",
        data=_mail(at + timedelta(minutes=5)),
        headers={"X-Centralita-Token": MAIL_TOKEN, "Content-Type": "message/rfc822"},
    )
    assert response.status == 200, await response.text()
    assert (await engine.next_outcome()).stored_messages == 1
    wa, mail = await shop.customer_of(PHONE_KEY), await shop.customer_of(EMAIL_KEY)
    assert wa != mail

    merged = await shop.call("POST", "/api/customers/merge", json={"identifiers": [PHONE_KEY, EMAIL_KEY]})
    live = merged["customer_id"]
    away = mail if live == wa else wa
    async with engine.database.transaction() as s:
        open_id = (
            await s.execute(
                sa.select(CONVERSATION.c.id).where(
                    CONVERSATION.c.customer_id == uuid.UUID(live), CONVERSATION.c.status != "closed"
                )
            )
        ).scalar_one()
        await s.execute(  # what the router does when the agent accepts the offer
            sa.update(CONVERSATION)
            .where(CONVERSATION.c.id == open_id)
            .values(agent_id=shop.agent_id, status="assigned")
        )
    reply = await shop.call("POST", f"/api/conversations/{open_id}/messages", json={"text": REPLY_TEXT})
    async with asyncio.timeout(15):
        outcome = await shop.sent.get()
    assert outcome.state == "sent", outcome
    await shop.call("POST", f"/api/conversations/{open_id}/notes", json={"text": NOTE_TEXT})
    promised = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    await shop.call(
        "POST",
        f"/api/conversations/{open_id}/close",
        json={"disposition": {"code": "promesa_de_pago", "date": promised, "amount": "350.00"}},
    )
    # The answer reads the row after the commit: a fast outbound worker may have claimed it.
    assert reply["delivery_state"] in ("queued", "sending")
    return live, away


def _times(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every value under a key naming a time (``at``, ``*_at``), outside stored payloads."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("payload", "details", "fields", "headers"):
                continue
            if key == "at" or key.endswith("_at"):
                yield f"{path}.{key}", value
            yield from _times(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _times(value, f"{path}[{i}]")


def _cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "customers", "export-one", "--workspace", "tienda", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "CENTRALITA_LOG_FORMAT": "json",
            "CENTRALITA_DATABASE_URL": engine.settings.database_url,
        },
        check=False,
    )


def _exports(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The bundle's entries for earlier exports of the person."""
    return [a for a in bundle["audit"] if a["action"] == EXPORT]


def _without_exports(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle less what differs from one export to the next: its time, its own audit entry's
    id, and the entries of the exports made before it."""
    kept = {k: v for k, v in bundle.items() if k not in ("exported_at", "audit_id")}
    kept["audit"] = [a for a in bundle["audit"] if a["action"] != EXPORT]
    return kept


def _entry_of(bundle: dict[str, Any], actor: str) -> dict[str, Any]:
    """What a later bundle lists for the export that produced ``bundle``: id, time, actor."""
    return {"id": bundle["audit_id"], "at": bundle["exported_at"], "actor": actor, "action": EXPORT}


def _seen(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("id", "at", "actor", "action")}


async def test_the_bundle_holds_every_identifier_conversation_timeline_entry_and_audit_entry(
    shop: Shop,
) -> None:
    live, away = await _lucia_story(shop)
    bundle = await shop.call("GET", f"/api/customers/{away}/export", "supervisor")

    assert bundle["schema_version"] == 1 and bundle["workspace"]["slug"] == "tienda"
    assert bundle["requested_id"] == away and bundle["customer"]["id"] == live
    assert [c["id"] for c in bundle["merged_customers"]] == [away]
    assert bundle["merged_customers"][0]["merged_into"] == live
    keys = {i["key"] for i in bundle["identifiers"]}
    assert {PHONE_KEY, EMAIL_KEY} <= keys
    assert {i["customer_id"] for i in bundle["identifiers"]} == {live}
    link = [e for e in bundle["evidence"] if {e["a"], e["b"]} == {PHONE_KEY, EMAIL_KEY}]
    assert [e["source"] for e in link] == ["agent_link"]

    conversations = bundle["conversations"]
    assert len(conversations) == 2 and {c["channel"] for c in conversations} == {"whatsapp", "email"}
    assert all(c["campaign"]["name"] == "atencion" for c in conversations)
    answered = next(c for c in conversations if c["agent_id"] is not None)
    merged_away = next(c for c in conversations if c is not answered)
    assert answered["status"] == "closed" and answered["disposition"]["code"] == "promesa_de_pago"
    assert answered["disposition"]["label"] == "Promesa de pago"
    assert (
        answered["disposition"]["fields"]["amount"] == "350.00"
        and "date" in answered["disposition"]["fields"]
    )
    assert answered["disposition"]["closed_by"] == f"agent:{shop.agent_id}"
    assert answered["follow_up"]["due_at"].endswith("+00:00") and answered["follow_up"]["done_at"] is None
    assert merged_away["disposition"]["code"] == "merged"

    entries = bundle["timeline"]
    by_text = {e["text"]: e for e in entries}
    assert by_text[WA_TEXT]["direction"] == "in" and by_text[WA_TEXT]["channel"] == "whatsapp"
    assert by_text[MAIL_TEXT]["direction"] == "in" and by_text[MAIL_TEXT]["channel"] == "email"
    reply = by_text[REPLY_TEXT]
    assert reply["direction"] == "out" and reply["delivery_state"] == "sent"
    assert reply["agent_id"] == str(shop.agent_id) and reply["external_id"].startswith("wamid.")
    assert by_text[NOTE_TEXT]["direction"] == "note"
    assert any(e["kind"] == "system" for e in entries)  # the merge's notice in the closed conversation
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)

    raw = bundle["raw_deliveries"]
    assert {r["channel"] for r in raw} == {"whatsapp", "email"}
    assert all(not r["shared"] and r["body_encoding"] == "utf-8" for r in raw)
    assert any(WA_TEXT in r["body"] for r in raw) and any(MAIL_TEXT in r["body"] for r in raw)
    assert {by_text[WA_TEXT]["raw_delivery_id"], by_text[MAIL_TEXT]["raw_delivery_id"]} == {
        r["id"] for r in raw
    }

    merges = [a for a in bundle["audit"] if a["action"] in ("identity.merge", "identity.link")]
    assert len(merges) == 1 and merges[0]["actor"] == str(shop.agent_id)
    assert bundle["media"] == [] and any("media" in n for n in bundle["notes"])

    times = list(_times(bundle))
    assert len(times) > 20
    assert all(v is None or (isinstance(v, str) and v.endswith("+00:00")) for _, v in times), times


async def test_only_a_supervisor_or_admin_of_the_workspace_may_export(shop: Shop) -> None:
    live, _ = await _lucia_story(shop)
    path = f"/api/customers/{live}/export"
    agent = await shop.engine.client.get(path, headers=shop.auth("agent"))
    assert agent.status == 403
    foreign = await shop.engine.client.get(path, headers=shop.auth("foreign"))
    assert foreign.status == 404 and (await foreign.json())["error"]["code"] == "not_found"
    admin = await shop.engine.client.get(path, headers=shop.auth("admin"))
    assert admin.status == 200 and (await admin.json())["customer"]["id"] == live


async def test_the_cli_writes_the_same_bundle_as_the_api(shop: Shop, tmp_path: Path) -> None:
    live, away = await _lucia_story(shop)
    by_api = await shop.call("GET", f"/api/customers/{live}/export", "supervisor")
    done = await asyncio.to_thread(
        _cli, shop.engine, "--identifier", EMAIL_KEY, "--out", str(tmp_path / "out")
    )
    assert done.returncode == 0, done.stderr
    written = tmp_path / "out" / f"customer-{live}.json"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [written.name]
    by_cli = json.loads(written.read_text(encoding="utf-8"))
    assert by_cli["exported_at"].endswith("+00:00")
    assert _without_exports(by_cli) == _without_exports(by_api)
    supervisor = f"token:{await _token_id(shop, 'sup')}"
    assert [_seen(a) for a in _exports(by_cli)] == [_entry_of(by_api, supervisor)]

    away_by_api = await shop.call("GET", f"/api/customers/{away}/export", "admin")
    assert [_seen(a) for a in _exports(away_by_api)] == [
        _entry_of(by_api, supervisor),
        _entry_of(by_cli, "cli"),
    ]
    printed = await asyncio.to_thread(_cli, shop.engine, "--customer", away)
    assert printed.returncode == 0, printed.stderr
    by_cli_again = json.loads(printed.stdout)
    assert _without_exports(by_cli_again) == _without_exports(away_by_api)
    assert _exports(by_cli_again)[:-1] == _exports(away_by_api)
    assert _seen(_exports(by_cli_again)[-1]) == _entry_of(
        away_by_api, f"token:{await _token_id(shop, 'admin')}"
    )


async def _token_id(shop: Shop, name: str) -> str:
    async with shop.engine.database.session() as s:
        return str((await s.execute(sa.select(TOKEN.c.id).where(TOKEN.c.name == name))).scalar_one())


async def test_each_export_is_audited_and_the_next_bundle_lists_it_without_personal_data(
    shop: Shop,
) -> None:
    live, away = await _lucia_story(shop)
    first = await shop.call("GET", f"/api/customers/{live}/export", "supervisor")
    assert _exports(first) == []  # its own entry is written after the read
    second = await shop.call("GET", f"/api/customers/{away}/export", "supervisor")

    supervisor = await _token_id(shop, "sup")
    (earlier,) = _exports(second)
    assert _seen(earlier) == _entry_of(first, f"token:{supervisor}")
    assert earlier["subject_type"] == "customer" and earlier["subject_id"] == live
    assert earlier["details"] == {
        "requested_id": live,
        "customers": [live, away],
        "token_id": supervisor,
        "counts": {
            "identifiers": len(first["identifiers"]),
            "evidence": len(first["evidence"]),
            "suggestions": len(first["suggestions"]),
            "conversations": len(first["conversations"]),
            "messages": len(first["timeline"]),
            "raw_deliveries": len(first["raw_deliveries"]),
            "audit_entries": len(first["audit"]),
        },
    }

    async with shop.engine.database.session() as s:
        rows = (
            await s.execute(
                sa.select(AUDIT)
                .where(AUDIT.c.action == EXPORT, AUDIT.c.subject_id == live)
                .order_by(AUDIT.c.at, AUDIT.c.id)
            )
        ).all()
    assert [str(r.id) for r in rows] == [first["audit_id"], second["audit_id"]]
    assert rows[1].details["requested_id"] == away and rows[1].actor == f"token:{supervisor}"
    stored = json.dumps([[r.actor, r.subject_id, r.details] for r in rows], ensure_ascii=False)
    personal = [LUCIA_WA, PHONE_KEY.removeprefix("phone:"), LUCIA_EMAIL, "Lucía", "Gómez", "Lucia"]
    personal += [WA_TEXT, MAIL_TEXT, REPLY_TEXT, NOTE_TEXT]
    assert [p for p in personal if p.lower() in stored.lower()] == []


async def test_an_unknown_identifier_is_a_clear_cli_error(shop: Shop) -> None:
    done = await asyncio.to_thread(_cli, shop.engine, "--identifier", "email:nadie@correo.example")
    assert done.returncode == 1 and done.stdout == ""
    assert "centralita: error: no customer with the identifier email:nadie@correo.example" in done.stderr
    assert "tienda" in done.stderr
