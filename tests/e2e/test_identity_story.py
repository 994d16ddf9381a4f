"""The patient's story through the live endpoints: one person across WhatsApp, email and Instagram.

A patient writes on WhatsApp from ``+521…``, emails from another address with the phone (in
national form) in the signature, and sends an Instagram DM stating that email: exactly two
suggestions; an agent confirms them and the result is one customer with one timeline.  A family
member writing from the clinic's reception phone (on the workspace blocklist) stays apart; an
unmerge restores every record exactly.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

import pytest

from channels.instagram.testing import text_webhook_body as ig_text_webhook_body
from channels.whatsapp.testing import text_webhook_body
from core.ids import AgentId, WorkspaceId, new_id
from storage.database import Database
from storage.tables import AgentRow
from storage.tokens import TokenStore
from tests.e2e.conftest import Engine, StartEngine
from tests.support.seed import seed_workspace

WA_SECRET = "wa-app-secret-identidad"
IG_SECRET = "ig-app-secret-identidad"
MAIL_TOKEN = "tok-correo-identidad-0f9a"
PHONE_NUMBER_ID = "106540352242922"
IG_ACCOUNT = "17841400000000001"
MAILBOX = "citas@clinica.example"
PATIENT_WA = "5215512345678"
PATIENT_IGSID = "1254459154682919"
RECEPTION_WA = "5215588887777"
T0 = 1763720000  # 2025-11-21 10:13:20 UTC


@dataclass
class Clinic:
    workspace_id: WorkspaceId | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def whatsapp_body(
    wamid: str, text: str, *, wa_id: str = PATIENT_WA, name: str = "Ana Pérez", at: int = T0
) -> bytes:
    return text_webhook_body(PHONE_NUMBER_ID, wa_id, wamid, text, name=name, timestamp=at)


def instagram_body(mid: str, text: str, *, at_ms: int) -> bytes:
    return ig_text_webhook_body(IG_ACCOUNT, PATIENT_IGSID, mid, text, timestamp_ms=at_ms)


def email_body(message_id: str, date: str, text: str, signature: str, sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {MAILBOX}\r\nSubject: Cita\r\nDate: {date}\r\n"
        f"Message-ID: <{message_id}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n\r\n--\r\n{signature}\r\n"
    ).encode()


def signed(body: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_APP_SECRET_ID", WA_SECRET)
    monkeypatch.setenv("IG_APP_SECRET_ID", IG_SECRET)


def clinic_seed(clinic: Clinic) -> Any:
    async def seed(db: Database) -> None:
        seeded = await seed_workspace(
            db,
            "clinica",
            [
                {
                    "channel": "whatsapp",
                    "address": PHONE_NUMBER_ID,
                    "app_id": "app-1",
                    "app_secret_env": "WA_APP_SECRET_ID",
                },
                {
                    "channel": "instagram",
                    "address": IG_ACCOUNT,
                    "app_id": "app-2",
                    "app_secret_env": "IG_APP_SECRET_ID",
                },
                {"channel": "email", "address": MAILBOX},
            ],
        )
        clinic.workspace_id = WorkspaceId(seeded.workspace_id)
        async with db.transaction() as session:
            for role in ("agent", "supervisor"):
                agent = AgentRow(
                    id=new_id(),
                    workspace_id=seeded.workspace_id,
                    email=f"{role}@clinica.example",
                    name=role,
                    role=role,
                )
                session.add(agent)
                await session.flush()
                clinic.tokens[role] = await TokenStore(session).issue(
                    WorkspaceId(seeded.workspace_id), role, AgentId(agent.id), role, agent.created_at
                )

    return seed


async def start_clinic(start_engine: StartEngine) -> tuple[Engine, Clinic]:
    clinic = Clinic()
    engine = await start_engine(seed=clinic_seed(clinic), email_webhook_token=MAIL_TOKEN)
    return engine, clinic


async def send_whatsapp(engine: Engine, body: bytes) -> None:
    response = await engine.client.post("/webhooks/whatsapp", data=body, headers=signed(body, WA_SECRET))
    assert response.status == 200, await response.text()
    assert (await engine.next_outcome()).stored_messages == 1


async def send_instagram(engine: Engine, body: bytes) -> None:
    response = await engine.client.post("/webhooks/instagram", data=body, headers=signed(body, IG_SECRET))
    assert response.status == 200, await response.text()
    assert (await engine.next_outcome()).stored_messages == 1


async def send_email(engine: Engine, body: bytes) -> None:
    response = await engine.client.post(
        "/webhooks/email",
        data=body,
        headers={"X-Centralita-Token": MAIL_TOKEN, "Content-Type": "message/rfc822"},
    )
    assert response.status == 200, await response.text()
    assert (await engine.next_outcome()).stored_messages == 1


async def api(
    engine: Engine, clinic: Clinic, method: str, path: str, role: str = "agent", **kwargs: Any
) -> Any:
    response = await engine.client.request(method, path, headers=clinic.auth(role), **kwargs)
    assert response.status < 300, f"{method} {path}: {response.status} {await response.text()}"
    return await response.json()


async def customer_by(engine: Engine, clinic: Clinic, identifier: str) -> dict[str, Any]:
    found = await api(engine, clinic, "GET", "/api/customers", params={"identifier": identifier})
    assert len(found["customers"]) == 1, found
    return dict(found["customers"][0])


async def messages_of(
    engine: Engine, clinic: Clinic, customer_id: str
) -> list[tuple[str, str, str | None, str]]:
    """The customer's messages (not system notes) across the timeline's pages."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await api(engine, clinic, "GET", f"/api/customers/{customer_id}/timeline", params=params)
        entries += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return [
                (e["id"], e["channel"], e["conversation_id"], e["text"])
                for e in entries
                if e["direction"] in ("in", "out")
            ]


async def test_the_patient_is_one_customer_with_one_timeline_and_an_unmerge_restores_every_record(
    start_engine: StartEngine,
) -> None:
    engine, clinic = await start_clinic(start_engine)
    await api(
        engine,
        clinic,
        "POST",
        "/api/identity/blocklist",
        "supervisor",
        json={"identifier": "+52 55 8888 7777"},
    )

    await send_whatsapp(engine, whatsapp_body("wamid.ana.1", "Hola, quiero una cita"))
    await send_email(
        engine,
        email_body(
            "cita-1@mail.gmail.com",
            "Fri, 21 Nov 2025 10:14:20 +0000",
            "Buenas tardes, les escribo por la cita del martes.",
            "Ana Pérez\nCel. 55 1234 5678\nRecepción de la clínica: 55 8888 7777",
            "Ana Pérez <Ana.Perez@gmail.com>",
        ),
    )
    await send_instagram(
        engine, instagram_body("mid.ana.1", "mi correo es ana.perez@gmail.com", at_ms=(T0 + 120) * 1000)
    )
    await send_whatsapp(
        engine,
        whatsapp_body(
            "wamid.luis.1", "Hola, soy el hermano de Ana", wa_id=RECEPTION_WA, name="Luis Pérez", at=T0 + 180
        ),
    )

    wa = await customer_by(engine, clinic, "+52 55 1234 5678")
    mail = await customer_by(engine, clinic, "ana.perez@gmail.com")
    ig = await customer_by(engine, clinic, f"instagram_id:{IG_ACCOUNT}:{PATIENT_IGSID}")
    family = await customer_by(engine, clinic, "+5215588887777")
    assert len({wa["id"], mail["id"], ig["id"], family["id"]}) == 4

    # exactly the expected suggestions, nothing through the reception phone
    suggestions = {
        s["id"]: (s["evidence"]["from"]["key"], s["evidence"]["points_at"]["key"], s["evidence"]["source"])
        for record in (wa, mail, ig, family)
        for s in record["suggestions"]
    }
    assert sorted(suggestions.values()) == [
        ("email:ana.perez@gmail.com", "phone:+525512345678", "email_signature"),
        (f"instagram_id:{IG_ACCOUNT}:{PATIENT_IGSID}", "email:ana.perez@gmail.com", "customer_stated"),
    ]
    assert [s["other_customer_id"] for s in wa["suggestions"]] == [mail["id"]]
    assert family["suggestions"] == [] and [i["blocked"] for i in family["identifiers"]] == [True]
    before = {r["id"]: (r["identifiers"], await messages_of(engine, clinic, r["id"])) for r in (wa, mail, ig)}

    # the agent confirms both
    by_source = {v[2]: k for k, v in suggestions.items()}
    signature_merge = await api(
        engine, clinic, "POST", f"/api/suggestions/{by_source['email_signature']}/confirm"
    )
    dm_merge = await api(engine, clinic, "POST", f"/api/suggestions/{by_source['customer_stated']}/confirm")
    assert signature_merge["audit"]["action"] == dm_merge["audit"]["action"] == "merge"
    assert dm_merge["audit"]["evidence"][0]["source"] == "agent_link"

    one = await customer_by(engine, clinic, f"instagram_id:{IG_ACCOUNT}:{PATIENT_IGSID}")
    assert one["id"] == wa["id"] and one["suggestions"] == []
    assert {i["key"] for i in one["identifiers"]} == {
        "phone:+525512345678",
        "email:ana.perez@gmail.com",
        f"instagram_id:{IG_ACCOUNT}:{PATIENT_IGSID}",
    }
    assert [(m[1], m[3]) for m in await messages_of(engine, clinic, one["id"])] == [
        ("whatsapp", "Hola, quiero una cita"),
        ("email", "Buenas tardes, les escribo por la cita del martes."),
        ("instagram", "mi correo es ana.perez@gmail.com"),
    ]
    assert [c["status"] for c in one["conversations"]].count("closed") == 2  # merged into the oldest open one
    retired = await api(engine, clinic, "GET", f"/api/customers/{mail['id']}")
    assert retired["id"] == wa["id"] and retired["merged_into"] == wa["id"]
    assert (await customer_by(engine, clinic, "+5215588887777"))["id"] == family["id"]
    audit = await api(engine, clinic, "GET", f"/api/customers/{wa['id']}/audit")
    assert [e["action"] for e in audit["entries"]] == ["merge", "merge"]

    # a supervisor undoes both merges
    for merge in (dm_merge, signature_merge):
        await api(
            engine,
            clinic,
            "POST",
            "/api/customers/unmerge",
            "supervisor",
            json={"audit_id": merge["audit"]["id"]},
        )
    for record in (wa, mail, ig):
        restored = await api(engine, clinic, "GET", f"/api/customers/{record['id']}")
        assert restored["id"] == record["id"] and restored["merged_into"] is None
        identifiers, messages = before[record["id"]]
        assert restored["identifiers"] == identifiers
        assert await messages_of(engine, clinic, record["id"]) == messages
        assert [c["status"] for c in restored["conversations"]] == ["waiting"]
