"""``/api/admin/dlq``: the parked (dead-lettered) deliveries, for an admin to read and replay.

- ``GET /api/admin/dlq[?queue=Q&limit=N]``: ``{"items": [...]}``, each ``id``, ``queue``,
  ``reason``, ``parked_at``, ``size``, ``routing_key``, ``message_id`` — never the body.
- ``GET /api/admin/dlq/{id}[?queue=Q]``: one, with ``headers`` and ``body`` (personal data).
- ``POST /api/admin/dlq/{id}/replay[?queue=Q]``: publish it back to its original queue
  (confirmed), then remove it from the dead-letter queue: ``{"replayed": [...]}``.

The dead-letter queues belong to the engine (an ingest partition carries every workspace's
deliveries), so an admin sees only the entries that provably belong to the token's workspace
(``centralita.deadletters.workspace_of``); another workspace's entry is 404, like every id of
another workspace.  Entries that name no workspace are worked with ``centralita dlq``.
"""

from __future__ import annotations

from aiohttp import web

from centralita.deadletters import (
    Owner,
    find_parked,
    list_parked,
    replay_parked,
    source_queues,
    working,
    workspace_of,
)
from centralita.schemas.dlq import DeadLetter, DeadLetterDetail, DeadLetterPage, DeadLetterReplay
from centralita.web.api._json import query_int, respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.errors import NotFound
from core.ids import WorkspaceId
from core.transport.deadletters import Parked

__all__ = ["routes"]

routes = web.RouteTableDef()

_QUEUE = Param("queue", "Only this queue's dead-letter queue (the original name, e.g. ingest.0).")


async def _queues(request: web.Request) -> list[str]:
    runtime = request.app[RUNTIME]
    return await source_queues(runtime.settings, runtime.database, request.query.get("queue"))


def _owner(request: web.Request) -> Owner:
    runtime = request.app[RUNTIME]
    return Owner(runtime.database, runtime.directory, runtime.adapters)


async def _mine(request: web.Request, workspace_id: WorkspaceId, entry: Parked) -> bool:
    return await workspace_of(entry, _owner(request)) == workspace_id


async def _entry(request: web.Request, workspace_id: WorkspaceId) -> Parked:
    entry_id = request.match_info["id"]
    entry = await find_parked(working(request.app[RUNTIME].transport), await _queues(request), entry_id)
    if not await _mine(request, workspace_id, entry):
        raise NotFound(f"no parked delivery {entry_id!r}", field="id")
    return entry


@routes.get("/api/admin/dlq")
@documented(
    "admin",
    {200: ("The parked deliveries, oldest first per queue (no bodies).", DeadLetterPage)},
    query=(_QUEUE, Param("limit", "At most this many.", {"type": "integer", "minimum": 1, "maximum": 1000})),
    description="Only the entries that provably belong to the token's workspace.",
)
async def list_dead_letters(request: web.Request) -> web.Response:
    """List the parked deliveries (no bodies)."""
    principal = await require(request, "admin")
    limit = query_int(request, "limit", 100, high=1000)
    dead_letters = working(request.app[RUNTIME].transport)
    items = await list_parked(dead_letters, await _queues(request), limit=100_000)
    mine = [entry for entry in items if await _mine(request, principal.workspace_id, entry)]
    return respond(DeadLetterPage(items=[DeadLetter.of(entry) for entry in mine[:limit]]))


@routes.get("/api/admin/dlq/{id}")
@documented(
    "admin",
    {200: ("The parked delivery with its headers and body.", DeadLetterDetail)},
    query=(_QUEUE,),
)
async def show_dead_letter(request: web.Request) -> web.Response:
    """One parked delivery with its headers and body (may contain personal data)."""
    principal = await require(request, "admin")
    return respond(DeadLetterDetail.of(await _entry(request, principal.workspace_id)))


@routes.post("/api/admin/dlq/{id}/replay")
@documented(
    "admin",
    {200: ("Published back to its queue (confirmed), then unparked.", DeadLetterReplay)},
    query=(_QUEUE,),
    extra_errors={503: "The broker is down or the queue is full: try again."},
)
async def replay_dead_letter(request: web.Request) -> web.Response:
    """Publish a parked delivery back to its queue, then remove it from the dead-letter queue."""
    principal = await require(request, "admin")
    entry = await _entry(request, principal.workspace_id)
    dead_letters = working(request.app[RUNTIME].transport)
    replayed = await replay_parked(dead_letters, [entry.queue], entry.id)
    return respond(DeadLetterReplay(replayed=[DeadLetter.of(entry) for entry in replayed]))
