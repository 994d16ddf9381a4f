"""``/api/admin/webhooks``: the workspace's webhook subscriptions, a subscription's delivery
log, and redelivering an event.

- ``GET /api/admin/webhooks``: every subscription, whichever made it (``source``: manifest or api).
- ``POST /api/admin/webhooks``: make one (source ``api``; 201).  ``PATCH /api/admin/webhooks/{name}``
  changes ``url``, ``events``, ``secret_env``, ``active``; ``DELETE`` deactivates it (the row, its
  outbox and log stay).  A manifest's subscriptions are its apply's: changing one here is a 409,
  and a manifest naming an API-made one is refused at apply.  The destination rule of
  ``centralita.integrations.refusal_of`` applies (400 at ``url``); ``secret_env`` must be set
  where the API runs (400).  Each change is in the audit trail (``webhook.created|changed|
  deactivated``, subject ``webhook``).

- ``GET /api/admin/webhooks/{name}/deliveries[?limit=N]``: the latest attempts, newest first
  (time, status code, latency, outcome, error); whether the subscription is paused.
- ``POST /api/admin/webhooks/{name}/deliveries/{event_id}/redeliver``: queue the event again,
  due now (202; the delivery worker takes it within ``webhook_poll_s``); a paused
  subscription resumes.

Subscriptions are the token's workspace's (declared in its campaign manifests); another's
name is a 404.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from centralita.integrations import refusal_of
from centralita.runtime import Runtime
from centralita.schemas.integrations import (
    DeliveryAttempt,
    DeliveryLog,
    Redelivered,
    WebhookChange,
    WebhookCreate,
    WebhookList,
    WebhookView,
)
from centralita.web.api._json import parse_body, query_int, respond
from centralita.web.api.conversations import actor_of
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.errors import InvalidInput, NotFound
from core.facts import Fact
from storage.facts import FactLog
from storage.webhooks import Subscription, WebhookStore

__all__ = ["routes"]

routes = web.RouteTableDef()


async def _subscription(store: WebhookStore, workspace_id: uuid.UUID, name: str) -> Subscription:
    found = await store.subscription(workspace_id, name)
    if found is None:
        raise NotFound(f"no webhook {name!r}", field="name")
    return found


async def _check(runtime: Runtime, *, url: str | None, secret_env: str | None) -> None:
    if url is not None:
        why = await refusal_of(url, allow_private=runtime.settings.webhooks_allow_private)
        if why is not None:
            raise InvalidInput(f"webhook refused: {why}", field="url")
    if secret_env is not None and not os.environ.get(secret_env):
        raise InvalidInput(f"{secret_env} is not set where the API runs", field="secret_env")


def _audited(action: str, actor: str, subscription: Subscription, at: datetime, **details: Any) -> Fact:
    return Fact(
        f"webhook.{action}",
        at,
        actor,
        subscription.workspace_id,
        details=details,
        subject_type="webhook",
        subject_id=subscription.name,
    )


@routes.get("/api/admin/webhooks")
@documented("admin", {200: ("The workspace's subscriptions, by name.", WebhookList)})
async def list_webhooks(request: web.Request) -> web.Response:
    """The workspace's webhook subscriptions."""
    principal = await require(request, "admin")
    async with request.app[RUNTIME].database.session() as session:
        found = await WebhookStore(session).subscriptions(principal.workspace_id)
    return respond(WebhookList(items=[WebhookView.of(s) for s in found]))


@routes.post("/api/admin/webhooks")
@documented(
    "admin",
    {201: ("Made; events are queued for it from now on.", WebhookView)},
    body=WebhookCreate,
)
async def create_webhook(request: web.Request) -> web.Response:
    """Subscribe an endpoint to the workspace's events."""
    principal = await require(request, "admin")
    body = await parse_body(request, WebhookCreate)
    runtime = request.app[RUNTIME]
    await _check(runtime, url=body.url, secret_env=body.secret_env)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        made = await WebhookStore(session).create(
            principal.workspace_id,
            name=body.name,
            url=body.url,
            events=body.events,
            secret_env=body.secret_env,
            active=body.active,
            now=now,
        )
        await FactLog(session).append(
            [_audited("created", actor_of(principal), made, now, **body.model_dump(exclude={"name"}))]
        )
    return respond(WebhookView.of(made), status=201)


@routes.patch("/api/admin/webhooks/{name}")
@documented(
    "admin",
    {200: ("Changed.", WebhookView), 409: ("A campaign manifest declares it: change it there.", None)},
    body=WebhookChange,
)
async def change_webhook(request: web.Request) -> web.Response:
    """Change a subscription made through the API."""
    principal = await require(request, "admin")
    body = await parse_body(request, WebhookChange)
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise InvalidInput("nothing to change: give url, events, secret_env or active", field="body")
    runtime = request.app[RUNTIME]
    await _check(runtime, url=body.url, secret_env=body.secret_env)
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = WebhookStore(session)
        subscription = await _subscription(store, principal.workspace_id, request.match_info["name"])
        changed = await store.change(subscription, changes, now)
        await FactLog(session).append([_audited("changed", actor_of(principal), changed, now, **changes)])
    return respond(WebhookView.of(changed))


@routes.delete("/api/admin/webhooks/{name}")
@documented(
    "admin",
    {
        200: ("Deactivated: nothing more is queued for it.", WebhookView),
        409: ("A manifest declares it.", None),
    },
)
async def delete_webhook(request: web.Request) -> web.Response:
    """Deactivate a subscription made through the API (its delivery log stays)."""
    principal = await require(request, "admin")
    runtime = request.app[RUNTIME]
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = WebhookStore(session)
        subscription = await _subscription(store, principal.workspace_id, request.match_info["name"])
        changed = await store.change(subscription, {"active": False}, now)
        await FactLog(session).append([_audited("deactivated", actor_of(principal), changed, now)])
    return respond(WebhookView.of(changed))


@routes.get("/api/admin/webhooks/{name}/deliveries")
@documented(
    "admin",
    {200: ("The latest attempts, newest first.", DeliveryLog)},
    query=(Param("limit", "At most this many.", {"type": "integer", "minimum": 1, "maximum": 1000}),),
)
async def deliveries(request: web.Request) -> web.Response:
    """A webhook's delivery log."""
    principal = await require(request, "admin")
    limit = query_int(request, "limit", 100, high=1000)
    async with request.app[RUNTIME].database.session() as session:
        store = WebhookStore(session)
        subscription = await _subscription(store, principal.workspace_id, request.match_info["name"])
        items = await store.deliveries(subscription.id, limit=limit)
    return respond(
        DeliveryLog(
            webhook=subscription.name,
            active=subscription.active,
            paused=subscription.paused_at is not None,
            items=[DeliveryAttempt.of(d) for d in items],
        )
    )


@routes.post("/api/admin/webhooks/{name}/deliveries/{event_id}/redeliver")
@documented("admin", {202: ("Queued again, due now.", Redelivered)})
async def redeliver(request: web.Request) -> web.Response:
    """Deliver an event again."""
    principal = await require(request, "admin")
    try:
        event_id = uuid.UUID(request.match_info["event_id"])
    except ValueError:
        raise InvalidInput("event_id must be a UUID", field="event_id") from None
    runtime = request.app[RUNTIME]
    async with runtime.database.transaction() as session:
        store = WebhookStore(session)
        subscription = await _subscription(store, principal.workspace_id, request.match_info["name"])
        if not await store.redeliver(subscription, event_id, runtime.clock()):
            raise NotFound(f"webhook {subscription.name!r} has no event {event_id}", field="event_id")
    return respond(Redelivered(webhook=subscription.name, event_id=event_id), status=202)
