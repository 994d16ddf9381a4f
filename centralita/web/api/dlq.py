"""``/api/admin/dlq``: the parked (dead-lettered) deliveries, for an admin to read and replay.

- ``GET /api/admin/dlq[?queue=Q&limit=N]``: ``{"items": [...]}``, each ``id``, ``queue``,
  ``reason``, ``parked_at``, ``size``, ``routing_key``, ``message_id`` — never the body.
- ``GET /api/admin/dlq/{id}[?queue=Q]``: one, with ``headers`` and ``body`` (personal data).
- ``POST /api/admin/dlq/{id}/replay[?queue=Q]``: publish it back to its original queue
  (confirmed), then remove it from the dead-letter queue: ``{"replayed": [...]}``.

The dead-letter queues belong to the engine, not to one workspace (an ingest partition carries
every workspace's deliveries): any workspace's admin token reads them all.
"""

from __future__ import annotations

from aiohttp import web

from centralita.deadletters import (
    detail,
    find_parked,
    list_parked,
    replay_parked,
    source_queues,
    summary,
    working,
)
from centralita.web.api._json import query_int
from centralita.web.auth import require
from centralita.web.keys import RUNTIME

__all__ = ["routes"]

routes = web.RouteTableDef()


async def _queues(request: web.Request) -> list[str]:
    runtime = request.app[RUNTIME]
    return await source_queues(runtime.settings, runtime.database, request.query.get("queue"))


@routes.get("/api/admin/dlq")
async def list_dead_letters(request: web.Request) -> web.Response:
    """List the parked deliveries (no bodies)."""
    await require(request, "admin")
    limit = query_int(request, "limit", 100, high=1000)
    dead_letters = working(request.app[RUNTIME].transport)
    items = await list_parked(dead_letters, await _queues(request), limit=limit)
    return web.json_response({"items": [summary(entry) for entry in items]})


@routes.get("/api/admin/dlq/{id}")
async def show_dead_letter(request: web.Request) -> web.Response:
    """One parked delivery with its headers and body (may contain personal data)."""
    await require(request, "admin")
    dead_letters = working(request.app[RUNTIME].transport)
    entry = await find_parked(dead_letters, await _queues(request), request.match_info["id"])
    return web.json_response(detail(entry))


@routes.post("/api/admin/dlq/{id}/replay")
async def replay_dead_letter(request: web.Request) -> web.Response:
    """Publish a parked delivery back to its queue, then remove it from the dead-letter queue."""
    await require(request, "admin")
    dead_letters = working(request.app[RUNTIME].transport)
    replayed = await replay_parked(dead_letters, await _queues(request), request.match_info["id"])
    return web.json_response({"replayed": [summary(entry) for entry in replayed]})
