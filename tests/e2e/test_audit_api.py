"""The audit trail through HTTP: supervisors read it by conversation, customer, agent, action and
time, a page at a time; export it as CSV or JSON Lines; read one conversation's whole history in
one call.  Sign-ins, sessions, invitations and tokens land in it as they happen.  Nothing in the
API changes or deletes an entry, and another workspace's entries are never seen.  On the
embedded backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from core.facts import CloseReason, Fact, WorkAction
from core.ids import new_id
from router.service import ManualClock
from storage.facts import FactLog
from storage.tables import AuditRow, IdentityAuditCustomerRow
from tests.e2e.conftest import Engine, StartWorkspaces
from tests.support.work import Workspace

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
PASSWORD = "caballo correcto batería grapa"
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]


@dataclass
class Scene:
    engine: Engine
    clock: ManualClock
    a: Workspace
    b: Workspace

    async def get(
        self, path: str, who: str = "carla", ws: Workspace | None = None, params: Any = None
    ) -> tuple[int, Any]:
        response = await self.engine.client.get(path, headers=(ws or self.a).auth(who), params=params)
        return response.status, await response.json()

    async def trail(self, params: Any = (), who: str = "carla", ws: Workspace | None = None) -> list[Any]:
        """Every entry the filters select, oldest first, following the cursors."""
        items: list[Any] = []
        cursor = None
        while True:
            page = [*params, ("order", "oldest"), ("limit", "500")] + ([("cursor", cursor)] if cursor else [])
            status, body = await self.get("/api/audit", who, ws, page)
            assert status == 200, body
            items += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    async def facts(self, facts: list[Fact]) -> None:
        async with self.engine.database.transaction() as session:
            await FactLog(session).append(facts)


@pytest.fixture
async def scene(start_workspaces: StartWorkspaces) -> Scene:
    clock = ManualClock(NOW)
    engine, seeded = await start_workspaces(
        {"alfa": "113829475016371", "beta": "113829475016372"}, clock=clock
    )
    return Scene(engine, clock, seeded["alfa"], seeded["beta"])


def at(s: float) -> datetime:
    return NOW - timedelta(hours=2) + timedelta(seconds=s)


def life(ws: Workspace, conversation: uuid.UUID, customer: uuid.UUID, agent: str, t0: float) -> list[Fact]:
    """A conversation from its opening to its survey, as the facts record it."""
    agent_id = ws.agents[agent]
    queue = ws.queues["mora"]
    common: dict[str, Any] = {
        "workspace_id": ws.id,
        "conversation_id": conversation,
        "customer_id": customer,
        "campaign_id": ws.campaign_id,
        "queue_id": queue,
    }
    offer = new_id()
    by_agent = f"agent:{agent_id}"
    return [
        Fact(WorkAction.OPENED, at(t0), "customer", **common, details={"channel": "whatsapp"}),
        Fact(
            WorkAction.OFFERED, at(t0 + 5), "router", **common, agent_id=agent_id, details={"offer_id": offer}
        ),
        Fact(WorkAction.OFFER_ACCEPTED, at(t0 + 9), by_agent, **common, agent_id=agent_id),
        Fact(
            WorkAction.ASSIGNED,
            at(t0 + 9.5),
            "router",
            **common,
            agent_id=agent_id,
            details={"how": "offer", "waited_s": 9.0},
        ),
        Fact(WorkAction.REPLIED, at(t0 + 40), by_agent, **common, agent_id=agent_id, details={"first": True}),
        Fact(
            WorkAction.CLOSED,
            at(t0 + 300),
            by_agent,
            **common,
            agent_id=agent_id,
            details={
                "reason": CloseReason.AGENT,
                "disposition": {"code": "promesa_de_pago", "amount": "150000", "date": "2026-03-20"},
            },
        ),
        Fact(
            WorkAction.SURVEY_ANSWERED,
            at(t0 + 900),
            "customer",
            **common,
            details={"kind": "csat", "score": 5},
        ),
    ]


@dataclass
class Story:
    c1: uuid.UUID
    c2: uuid.UUID
    k1: uuid.UUID
    k2: uuid.UUID
    merge: uuid.UUID
    b_conversation: uuid.UUID


@pytest.fixture
async def story(scene: Scene) -> Story:
    """Two conversations of alfa (Ana's for customer 1, Beto's for customer 2), an identity merge
    involving customer 1, and a conversation of beta."""
    db = scene.engine.database
    a, b = scene.a, scene.b
    k1, k2 = await a.add_customer(db, "Uno"), await a.add_customer(db, "Dos")
    c1 = await a.add_conversation(db, now=NOW, customer_id=k1, agent="ana", closed=True)
    c2 = await a.add_conversation(db, now=NOW, customer_id=k2, agent="beto", closed=True)
    kb = await b.add_customer(db, "Beta")
    cb = await b.add_conversation(db, now=NOW, customer_id=kb, agent="ana", closed=True)
    await scene.facts(life(a, c1, k1, "ana", 0) + life(a, c2, k2, "beto", 1000) + life(b, cb, kb, "ana", 0))
    merge = new_id()
    async with db.transaction() as session:  # as storage.identity_store writes a merge
        session.add(
            AuditRow(
                id=merge,
                workspace_id=a.id,
                at=at(2000),
                actor="agent:" + str(a.agents["carla"]),
                action="identity.merge",
                subject_type="customer",
                subject_id=str(k2),
                details={"before": [str(k1), str(k2)], "after": [str(k2)]},
            )
        )
        await session.flush()
        session.add(IdentityAuditCustomerRow(audit_id=merge, customer_id=k1, workspace_id=a.id))
    return Story(c1, c2, k1, k2, merge, cb)


def actions(items: list[Any]) -> list[str]:
    return [i["action"] for i in items]


# ---------------------------------------------------------------------------------- who reads it


async def test_supervisors_and_admins_read_the_trail_and_agents_are_refused(
    scene: Scene, story: Story
) -> None:
    for who in ("carla", "admin"):
        status, body = await scene.get("/api/audit", who)
        assert status == 200 and body["items"], body
    for path in ("/api/audit", "/api/audit/export", f"/api/conversations/{story.c1}/history"):
        status, body = await scene.get(path, "ana")
        assert status == 403, (path, body)


async def test_another_workspaces_entries_are_never_seen(scene: Scene, story: Story) -> None:
    everything = await scene.trail()
    assert {i["conversation_id"] for i in everything if i["conversation_id"]} == {
        str(story.c1),
        str(story.c2),
    }
    assert await scene.trail([("conversation", str(story.b_conversation))]) == []
    status, body = await scene.get(f"/api/conversations/{story.b_conversation}/history")
    assert status == 404 and body["error"]["field"] == "conversation_id"
    theirs = await scene.trail(ws=scene.b)
    assert {i["conversation_id"] for i in theirs if i["conversation_id"]} == {str(story.b_conversation)}


# ---------------------------------------------------------------------------------- filters


async def test_the_conversation_filter_gives_its_facts_in_order(scene: Scene, story: Story) -> None:
    items = await scene.trail([("conversation", str(story.c1))])
    assert actions(items) == [
        "conversation.opened",
        "offer.made",
        "offer.accepted",
        "conversation.assigned",
        "message.replied",
        "conversation.closed",
        "survey.answered",
    ]


async def test_the_customer_filter_includes_the_identity_changes_that_involve_them(
    scene: Scene, story: Story
) -> None:
    one = await scene.trail([("customer", str(story.k1))])
    assert {i["conversation_id"] for i in one if i["conversation_id"]} == {str(story.c1)}
    assert str(story.merge) in {i["id"] for i in one}  # through identity_audit_customer
    two = await scene.trail([("customer", str(story.k2))])
    assert str(story.merge) in {i["id"] for i in two}  # its subject
    assert len(one) == len(two) == 8


async def test_the_agent_filter_gives_what_the_agent_did_and_what_happened_to_them(
    scene: Scene, story: Story
) -> None:
    ana = str(scene.a.agents["ana"])
    items = await scene.trail([("agent", ana), ("action", "conversation.*,offer.*,message.*")])
    assert {i["conversation_id"] for i in items} == {str(story.c1)}
    assert all(i["agent_id"] == ana or i["actor"] == f"agent:{ana}" for i in items)
    assert len(items) == 5  # offered, accepted, assigned, replied, closed
    carla = await scene.trail([("agent", str(scene.a.agents["carla"]))])
    assert str(story.merge) in {i["id"] for i in carla}  # she acted


async def test_actions_are_exact_names_prefixes_or_lists_of_both(scene: Scene, story: Story) -> None:
    offers = await scene.trail([("action", "offer.*")])
    assert sorted(actions(offers)) == ["offer.accepted"] * 2 + ["offer.made"] * 2
    mixed = await scene.trail([("action", "conversation.closed"), ("action", "survey.answered,identity.*")])
    assert (
        sorted(actions(mixed)) == ["conversation.closed"] * 2 + ["identity.merge"] + ["survey.answered"] * 2
    )


async def test_from_is_inclusive_and_to_exclusive(scene: Scene, story: Story) -> None:
    # Beto's conversation opens at +1000 s and closes at +1300 s.
    items = await scene.trail(
        [("from", at(1000).isoformat()), ("to", at(1300).isoformat()), ("conversation", str(story.c2))]
    )
    assert actions(items)[0] == "conversation.opened" and "conversation.closed" not in actions(items)
    assert len(items) == 5


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("conversation", "42"),
        ("customer", "nadie"),
        ("agent", "ana"),
        ("action", "offer%"),
        ("from", "ayer"),
        ("to", "2026-02-30"),
        ("order", "sideways"),
        ("limit", "0"),
        ("cursor", "not-a-cursor!"),
    ],
)
async def test_a_malformed_filter_is_a_400_naming_it(scene: Scene, param: str, value: str) -> None:
    status, body = await scene.get("/api/audit", params={param: value})
    assert status == 400 and body["error"]["field"] == param, body


async def test_pages_follow_the_cursor_newest_or_oldest_first_without_repeats(
    scene: Scene, story: Story
) -> None:
    everything = await scene.trail([("action", "conversation.*,offer.*,message.*,survey.*")])
    for order, expected in (("oldest", everything), ("newest", everything[::-1])):
        seen: list[str] = []
        cursor = None
        while True:
            params = [
                ("action", "conversation.*,offer.*,message.*,survey.*"),
                ("order", order),
                ("limit", "3"),
            ]
            status, body = await scene.get(
                "/api/audit", params=params + ([("cursor", cursor)] if cursor else [])
            )
            assert status == 200 and len(body["items"]) <= 3
            seen += [i["id"] for i in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [i["id"] for i in expected] and len(seen) == 14


# ---------------------------------------------------------------------------------- exports


async def test_the_csv_and_json_lines_exports_hold_what_the_pages_hold(scene: Scene, story: Story) -> None:
    params = [("customer", str(story.k1))]
    expected = await scene.trail(params)
    client = scene.engine.client
    response = await client.get(
        "/api/audit/export", params=[("format", "csv"), *params], headers=scene.a.auth("carla")
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [r["id"] for r in rows] == [i["id"] for i in expected]
    closed = next(r for r in rows if r["action"] == "conversation.closed")
    assert json.loads(closed["details"])["disposition"]["amount"] == "150000"

    response = await client.get(
        "/api/audit/export", params=[("format", "jsonl"), *params], headers=scene.a.auth("admin")
    )
    assert response.status == 200 and response.headers["Content-Type"].startswith("application/x-ndjson")
    assert response.headers["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in (await response.text()).splitlines()]
    assert lines == expected

    status, body = await scene.get("/api/audit/export", params={"format": "xml"})
    assert status == 400 and body["error"]["field"] == "format"
    status, body = await scene.get("/api/audit/export", params={"from": "ayer"})
    assert status == 400 and body["error"]["field"] == "from"


# ---------------------------------------------------------------------------------- history


async def test_a_conversations_history_says_who_answered_when_what_was_promised_and_how_it_closed(
    scene: Scene, story: Story
) -> None:
    status, body = await scene.get(f"/api/conversations/{story.c1}/history")
    assert status == 200, body
    ana = str(scene.a.agents["ana"])
    entries = body["entries"]
    assert body["conversation_id"] == str(story.c1) and body["agents"] == {ana: "Ana"}
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    replied = next(e for e in entries if e["action"] == "message.replied")
    assert replied["actor_name"] == "Ana" and replied["at"] == at(40).isoformat()
    offered = next(e for e in entries if e["action"] == "offer.made")
    assert offered["actor"] == "router" and offered["actor_name"] is None and offered["agent_name"] == "Ana"
    closed = next(e for e in entries if e["action"] == "conversation.closed")
    assert closed["details"] == {
        "reason": "agent",
        "disposition": {"code": "promesa_de_pago", "amount": "150000", "date": "2026-03-20"},
    }
    assert entries[-1]["action"] == "survey.answered" and entries[-1]["details"]["score"] == 5


# ---------------------------------------------------------------------------------- append-only


async def test_nothing_in_the_api_changes_or_deletes_an_entry(scene: Scene, story: Story) -> None:
    before = await scene.trail()
    some = before[0]["id"]
    client = scene.engine.client
    for who in ("carla", "admin"):
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            for path in (
                "/api/audit",
                f"/api/audit/{some}",
                "/api/audit/export",
                f"/api/conversations/{story.c1}/history",
            ):
                response = await client.request(
                    method, path, json={"action": "nada", "details": {}}, headers=scene.a.auth(who)
                )
                assert response.status in (404, 405), (method, path, response.status)
    assert await scene.trail() == before


# ---------------------------------------------------------------------------------- access actions


async def test_issuing_revoking_and_rotating_tokens_are_in_the_trail_as_the_admin(scene: Scene) -> None:
    client, admin = scene.engine.client, scene.a.auth("admin")
    listed = await (await client.get("/api/admin/tokens", headers=admin)).json()
    admin_token = next(t["id"] for t in listed["items"] if t["name"] == "test admin")
    ana = str(scene.a.agents["ana"])
    response = await client.post(
        "/api/admin/tokens", json={"role": "agent", "agent_id": ana, "name": "escritorio"}, headers=admin
    )
    issued = (await response.json())["item"]["id"]
    scene.clock.advance(60)
    response = await client.post(f"/api/admin/tokens/{issued}/rotate", headers=admin)
    rotated = (await response.json())["item"]["id"]
    scene.clock.advance(60)
    await client.post(f"/api/admin/tokens/{rotated}/revoke", headers=admin)
    await client.post(f"/api/admin/tokens/{rotated}/revoke", headers=admin)  # again: nothing changes

    items = [i for i in await scene.trail([("action", "token.*")]) if i["subject_id"] in (issued, rotated)]
    when = {0: NOW.isoformat(), 60: (NOW + timedelta(seconds=60)).isoformat()}
    when[120] = (NOW + timedelta(seconds=120)).isoformat()
    assert sorted((i["at"], i["action"], i["subject_id"]) for i in items) == [
        (when[0], "token.issued", issued),
        (when[60], "token.issued", rotated),  # the rotation: both in one transaction
        (when[60], "token.revoked", issued),
        (when[120], "token.revoked", rotated),  # revoked once: the second revoke changed nothing
    ]
    assert {i["actor"] for i in items} == {f"token:{admin_token}"}
    assert {i["agent_id"] for i in items} == {ana}
    first = next(i for i in items if i["action"] == "token.issued" and i["subject_id"] == issued)
    assert first["details"]["role"] == "agent" and first["details"]["name"] == "escritorio"
    second = next(i for i in items if i["action"] == "token.issued" and i["subject_id"] == rotated)
    assert second["details"]["replaces"] == issued
    replaced = next(i for i in items if i["action"] == "token.revoked" and i["subject_id"] == issued)
    assert replaced["details"]["reason"] == "rotated" and replaced["details"]["replaced_by"] == rotated
    assert replaced["details"]["before"] == {"revoked_at": None}
    last = next(i for i in items if i["action"] == "token.revoked" and i["subject_id"] == rotated)
    assert last["details"]["after"] == {"revoked_at": when[120]}


class Browser:
    """A browser of the console: its own cookies and the CSRF token of its session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None
        self.origin = str(engine.client.make_url("/")).rstrip("/")

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Origin": self.origin} | ({"X-CSRF-Token": self.csrf} if self.csrf else {})
        async with self.http.request(
            method, str(self.engine.client.make_url(path)), json=body, headers=headers
        ) as response:
            found = await response.json()
            if response.status == 200 and isinstance(found, dict) and found.get("csrf_token"):
                self.csrf = found["csrf_token"]
            return response.status, found


@pytest.fixture
async def browser(scene: Scene) -> AsyncIterator[Browser]:
    found = Browser(scene.engine)
    yield found
    await found.http.close()


async def test_an_invitation_sign_ins_a_refusal_and_sign_outs_are_in_the_trail(
    scene: Scene, browser: Browser
) -> None:
    client = scene.engine.client
    response = await client.post(
        "/api/admin/invitations", json={"email": "ana@alfa.example"}, headers=scene.a.auth("admin")
    )
    secret = (await response.json())["url"].split("#", 1)[1]
    status, body = await browser.call(
        "POST", "/api/auth/invitation", {"invitation": secret, "password": PASSWORD}
    )
    assert status == 200, body
    status, _ = await browser.call("POST", "/api/auth/sign-out")
    assert status == 200
    scene.clock.advance(30)
    status, _ = await browser.call(
        "POST", "/api/auth/sign-in", {"email": "ana@alfa.example", "password": "mala"}
    )
    assert status == 401
    status, _ = await browser.call(
        "POST", "/api/auth/sign-in", {"email": "nadie@alfa.example", "password": "x"}
    )
    assert status == 401
    scene.clock.advance(30)
    status, _ = await browser.call(
        "POST", "/api/auth/sign-in", {"email": "Ana@alfa.example", "password": PASSWORD}
    )
    assert status == 200
    status, _ = await browser.call("POST", "/api/auth/sign-out-everywhere")
    assert status == 200

    ana = str(scene.a.agents["ana"])
    items = await scene.trail([("agent", ana), ("action", "sign_in.*,session.*,invitation.*")])
    assert sorted(actions(items)) == sorted(
        [
            *(
                "invitation.issued",
                "invitation.used",
                "session.issued",
                "sign_in.succeeded",
                "session.revoked",
            ),
            "sign_in.refused",
            *("session.issued", "sign_in.succeeded", "session.revoked"),
        ]
    )
    assert all(i["agent_id"] == ana for i in items)
    invited = next(i for i in items if i["action"] == "invitation.issued")
    assert invited["actor"].startswith("token:")
    signed = [i for i in items if i["action"] == "sign_in.succeeded"]
    assert [s["details"]["how"] for s in signed] == ["invitation", "password"]
    assert all(s["actor"] == f"agent:{ana}" for s in signed)
    revoked = [i for i in items if i["action"] == "session.revoked"]
    assert [r["details"]["reason"] for r in revoked] == ["sign_out", "sign_out_everywhere"]
    refused = next(i for i in items if i["action"] == "sign_in.refused")
    assert refused["actor"] == "anonymous" and refused["at"] == (NOW + timedelta(seconds=30)).isoformat()
    assert refused["details"] == {
        "email_sha256": hashlib.sha256(b"email:ana@alfa.example").hexdigest(),
        "reason": "wrong_password",
    }
    everything = json.dumps(await scene.trail([("action", "sign_in.*,session.*,invitation.*,token.*")]))
    assert "ana@alfa.example" not in everything.lower() and "nadie" not in everything  # no email in clear
    nobody = hashlib.sha256(b"email:nadie@alfa.example").hexdigest()
    assert nobody not in everything  # no workspace knows that email: its refusal is in none's trail
    async with scene.engine.database.session() as session:
        kept = (
            await session.execute(
                sa.select(sa.func.count()).select_from(AUDIT).where(AUDIT.c.subject_id == nobody)
            )
        ).scalar()
    assert kept == 1  # … but it is recorded (centralita audit without --workspace shows it)
