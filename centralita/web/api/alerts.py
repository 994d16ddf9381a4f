"""``GET /api/alerts``: the workspace's latest alerts (supervisor), newest first.

The live router raises them (an SLA breach: a conversation that waited past its queue's
``answer_within_s`` unanswered, once per conversation and queue) in its round's transaction; the
wall receives the new ones over ``/ws/supervisor`` (``centralita.web.wall``).
"""

from __future__ import annotations

from aiohttp import web

from centralita.schemas.alerts import Alert, AlertList
from centralita.web.api._json import query_int, respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from storage.alerts import AlertStore

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/alerts")
@documented(
    "supervisor",
    {200: ("The workspace's latest alerts, newest first.", AlertList)},
    query=(Param("limit", "At most this many (50).", {"type": "integer", "minimum": 1, "maximum": 500}),),
)
async def list_alerts(request: web.Request) -> web.Response:
    """The workspace's latest alerts (SLA breaches), newest first."""
    principal = await require(request, "supervisor")
    limit = query_int(request, "limit", 50, high=500)
    async with request.app[RUNTIME].database.session() as session:
        records = await AlertStore(session).recent(principal.workspace_id, limit=limit)
    return respond(AlertList(items=[Alert.of(r) for r in records]))
