"""Workspaces are sealed: a token of workspace A gets 404 — not 403, not 200 — for any id of
workspace B, on every ``/api`` route with a path parameter (found from the application's routes,
so a new route is covered the day it is added), and never sees B's rows in lists or stats.
On the embedded backend and on PostgreSQL + RabbitMQ."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from centralita.web.api.openapi import live_routes
from centralita.web.spec import operation_of
from core.ids import new_id
from storage.tables import (
    AlertRow,
    ApiTokenRow,
    EventOutboxRow,
    IdentityBlockRow,
    MediaRow,
    MessageRow,
    SuggestionRow,
    WebhookSubscriptionRow,
)
from storage.tokens import ROLES
from tests.e2e.conftest import Engine, StartWorkspaces
from tests.support.work import Workspace

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
BLOCKED_KEY = "phone:+573001112233"

# Bodies that would be valid in B, so that only the id decides the answer.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/conversations/{conversation_id}/notes"): {"text": "nota"},
    ("POST", "/api/conversations/{conversation_id}/close"): {
        "disposition": {"code": "pago_realizado", "amount": 1}
    },
    ("POST", "/api/conversations/{conversation_id}/messages"): {"text": "hola"},
    ("PATCH", "/api/admin/webhooks/{name}"): {"active": False},
    ("POST", "/api/conversations/{conversation_id}/promise"): {"outcome": "kept", "reference": "r"},
    ("POST", "/api/customers/{customer_id}/labels"): {"label": "mora_30"},
    ("POST", "/api/customers/{customer_id}/notes"): {"text": "nota"},
}


@dataclass
class Scene:
    engine: Engine
    a: Workspace
    b: Workspace
    b_ids: dict[str, str]


@pytest.fixture
async def scene(start_workspaces: StartWorkspaces) -> Scene:
    engine, seeded = await start_workspaces({"alfa": "113829475016311", "beta": "113829475016312"})
    a, b = seeded["alfa"], seeded["beta"]
    db = engine.database
    customer = await b.add_customer(db, "Cliente de Beta")
    conversation = await b.add_conversation(db, now=NOW, customer_id=customer)
    message = await b.add_message(db, conversation, at=NOW, text="hola", direction="out")
    suggestion = new_id()
    async with db.transaction() as session:
        session.add(
            SuggestionRow(
                id=suggestion,
                workspace_id=b.id,
                a_key="email:ana@beta.example",
                a_kind="email",
                a_value="ana@beta.example",
                b_key=BLOCKED_KEY,
                b_kind="phone",
                b_value="+573001112233",
                lo_key="email:ana@beta.example",
                hi_key=BLOCKED_KEY,
                source="customer_stated",
                actor="test",
            )
        )
        session.add(
            IdentityBlockRow(
                workspace_id=b.id, key=BLOCKED_KEY, reason="manual", actor="test", created_at=NOW
            )
        )
    media = new_id()
    async with db.transaction() as session:
        session.add(
            MediaRow(
                id=media,
                workspace_id=b.id,
                message_id=message,
                customer_id=customer,
                position=0,
                kind="image",
                status="stored",
                mime_type="image/png",
                storage_key=media.hex,
                created_at=NOW,
            )
        )
    # B's webhook subscription and one event of its outbox (the delivery log's ids)
    subscription, event = new_id(), new_id()
    async with db.transaction() as session:
        session.add(
            WebhookSubscriptionRow(
                id=subscription,
                workspace_id=b.id,
                source="api",
                name=f"cobranza-{b.slug}",  # the {name} of B's campaign and of its webhook
                url="https://crm.beta.example/hooks",
                events=["conversation.*"],
                secret_env="BETA_HOOK_SECRET",
                updated_at=NOW,
            )
        )
        await session.flush()
        session.add(
            EventOutboxRow(
                event_id=event,
                subscription_id=subscription,
                workspace_id=b.id,
                conversation_id=conversation,
                type="conversation.opened",
                occurred_at=NOW,
                body={},
                created_at=NOW,
                due_at=NOW,
            )
        )
    b_ids = {
        "event_id": str(event),
        "media_id": str(media),
        "conversation_id": str(conversation),
        "customer_id": str(customer),
        "message_id": str(message),
        "suggestion_id": str(suggestion),
        "name": f"cobranza-{b.slug}",
        "key": BLOCKED_KEY,
        "id": "b-parked",  # a dead letter id; B's own are proven 404 in test_dead_letters_and_backpressure
    }
    async with db.session() as session:
        assert await session.get(MessageRow, message) is not None
        b_token = sa.select(ApiTokenRow.id).where(ApiTokenRow.workspace_id == b.id)
        b_ids["token_id"] = str((await session.execute(b_token)).scalars().first())
    return Scene(engine, a, b, b_ids)


async def test_every_id_of_another_workspace_is_404_on_every_api_route(scene: Scene) -> None:
    app = scene.engine.client.server.app
    checked: list[str] = []
    wrong: list[str] = []
    for route in live_routes(app):
        params = PARAM.findall(route.path)
        if not route.path.startswith("/api/") or not params:
            continue
        missing = [p for p in params if p not in scene.b_ids]
        assert not missing, f"{route.method} {route.path}: give this test an id of workspace B for {missing}"
        operation = operation_of(route.handler)
        assert operation is not None and operation.role is not None, (
            f"{route.method} {route.path} undocumented"
        )
        path = PARAM.sub(lambda m: quote(scene.b_ids[m.group(1)], safe=""), route.path)
        body = BODIES.get((route.method, route.path), {})
        for who, role in (("ana", "agent"), ("carla", "supervisor"), ("admin", "admin")):
            response = await scene.engine.client.request(
                route.method, path, json=body, headers=scene.a.auth(who)
            )
            allowed = ROLES.index(role) >= ROLES.index(operation.role)
            expected = 404 if allowed else 403
            if response.status != expected:
                wrong.append(
                    f"{route.method} {route.path} as {role}: {response.status} {await response.text()}"
                )
        checked.append(f"{route.method} {route.path}")
    assert not wrong, "\n".join(wrong)
    assert "GET /api/conversations/{conversation_id}" in checked and len(checked) >= 10


async def test_the_same_ids_answer_in_their_own_workspace(scene: Scene) -> None:
    """The ids above are real: B's own supervisor reaches them (so the 404s are isolation)."""
    client = scene.engine.client
    conversation, customer = scene.b_ids["conversation_id"], scene.b_ids["customer_id"]
    for path in (f"/api/conversations/{conversation}", f"/api/customers/{customer}"):
        response = await client.get(path, headers=scene.b.auth("carla"))
        assert response.status == 200, path


async def test_lists_and_stats_never_show_another_workspaces_rows(scene: Scene) -> None:
    client = scene.engine.client
    await scene.a.add_conversation(scene.engine.database, now=NOW)
    response = await client.get("/api/conversations", headers=scene.a.auth("carla"))
    assert [c["id"] for c in (await response.json())["items"]] == [str(scene.a.conversations[0])]
    response = await client.get(
        "/api/conversations", params={"queue_id": str(scene.b.queues["mora"])}, headers=scene.a.auth("carla")
    )
    assert (await response.json())["items"] == []
    response = await client.get("/api/agents", headers=scene.a.auth("carla"))
    assert {a["id"] for a in (await response.json())["items"]} == {str(i) for i in scene.a.agents.values()}
    response = await client.get("/api/queues/stats", headers=scene.a.auth("carla"))
    assert {q["queue_id"] for q in (await response.json())["queues"]} == {
        str(i) for i in scene.a.queues.values()
    }


async def test_a_wall_sees_its_own_workspace_only(scene: Scene) -> None:
    """B's queues, agents and alerts never reach A's wall socket, snapshot or feed."""
    db = scene.engine.database
    async with db.transaction() as session:
        session.add(
            AlertRow(
                workspace_id=scene.b.id,
                kind="sla_breach",
                queue_id=scene.b.queues["mora"],
                conversation_id=uuid.UUID(scene.b_ids["conversation_id"]),
                raised_at=NOW,
                details={"waited_s": 90.0},
            )
        )
    ws = await scene.engine.client.ws_connect("/ws/supervisor", headers=scene.a.auth("carla"))
    try:
        snapshot = json.loads((await ws.receive(timeout=10)).data)
        assert snapshot["type"] == "wall" and snapshot["alerts"] == []
        assert {q["queue_id"] for q in snapshot["queues"]["queues"]} == {
            str(i) for i in scene.a.queues.values()
        }
        assert {a["id"] for a in snapshot["agents"]} <= {str(i) for i in scene.a.agents.values()}
        await scene.b.add_conversation(db, now=NOW, status="waiting", agent=None, assigned_ago_s=None)
        seen = json.dumps(snapshot)
        with contextlib.suppress(TimeoutError):
            while True:  # the feed's next rounds (1 s each): whatever they send is A's
                seen += (await ws.receive(timeout=2.5)).data
    finally:
        await ws.close()
    for b_id in (str(scene.b.id), *map(str, scene.b.queues.values()), *map(str, scene.b.agents.values())):
        assert b_id not in seen
    response = await scene.engine.client.get("/api/alerts", headers=scene.a.auth("carla"))
    assert (await response.json())["items"] == []


async def test_ids_of_another_workspace_in_a_body_are_404_naming_the_field(scene: Scene) -> None:
    client = scene.engine.client
    mine = await scene.a.add_conversation(scene.engine.database, now=NOW)
    for path, body, field in (
        ("transfer", {"queue_id": str(scene.b.queues["mora"])}, "queue_id"),
        ("transfer", {"agent_id": str(scene.b.agents["beto"])}, "agent_id"),
        ("assign", {"agent_id": str(scene.b.agents["beto"])}, "agent_id"),
        ("requeue", {"queue_id": str(scene.b.queues["promesas"])}, "queue_id"),
    ):
        response = await client.post(
            f"/api/conversations/{mine}/{path}", json=body, headers=scene.a.auth("carla")
        )
        answer = await response.json()
        assert (response.status, answer["error"]["field"]) == (404, field), (path, body)
