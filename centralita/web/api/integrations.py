"""``/api/admin/webhooks``: a webhook subscription's delivery log, and redelivering an event.

- ``GET /api/admin/webhooks/{name}/deliveries[?limit=N]``: the latest attempts, newest first
  (time, status code, latency, outcome, error); whether the subscription is paused.
- ``POST /api/admin/webhooks/{name}/deliveries/{event_id}/redeliver``: queue the event again,
  due now (202; the delivery worker takes it within ``webhook_poll_s``); a paused
  subscription resumes.

Subscriptions are the token's workspace's (declared in its campaign manifests); another's
name is a 404.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from centralita.schemas.integrations import DeliveryAttempt, DeliveryLog, Redelivered
from centralita.web.api._json import query_int, respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.errors import InvalidInput, NotFound
from storage.webhooks import Subscription, WebhookStore

__all__ = ["routes"]

routes = web.RouteTableDef()


async def _subscription(store: WebhookStore, workspace_id: uuid.UUID, name: str) -> Subscription:
    found = await store.subscription(workspace_id, name)
    if found is None:
        raise NotFound(f"no webhook {name!r}", field="name")
    return found


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
