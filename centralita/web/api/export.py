"""``GET /api/customers/{customer_id}/export``: everything the workspace holds about one person.

Supervisor or admin.  The answer is a ``CustomerBundle`` (``centralita.schemas.export``), the
same JSON ``centralita customers export-one`` writes.  A merged-away id stands for its survivor
(``requested_id`` keeps the id asked for); an id of another workspace is a 404.  Every export
is recorded in ``audit_log`` (``customer.export``, as the token's agent or ``token:<id>``, with
the token id, customer ids and counts) after the read: the bundle lists the entries written
before it, and its ``audit_id`` names its own.  The log line names ids and counts only.
"""

from __future__ import annotations

from aiohttp import web

from centralita.schemas.export import CustomerBundle
from centralita.web.api._json import path_uuid, respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.logging import get_logger
from storage import export as export_store
from storage.tokens import Principal

__all__ = ["routes"]

log = get_logger("centralita.export")

routes = web.RouteTableDef()


def _actor(principal: Principal) -> str:
    """As ``centralita.web.api.erasure`` records who acted."""
    return str(principal.agent_id) if principal.agent_id is not None else f"token:{principal.token_id}"


@routes.get("/api/customers/{customer_id}/export")
@documented("supervisor", {200: ("The person's data bundle.", CustomerBundle)})
async def export_customer(request: web.Request) -> web.Response:
    """Export a customer's data: record, identifiers, conversations, timeline, raw deliveries, audit."""
    principal = await require(request, "supervisor")
    requested = path_uuid(request, "customer_id")
    runtime = request.app[RUNTIME]
    export = await export_store.export_customer(
        runtime.database,
        principal.workspace_id,
        requested,
        actor=_actor(principal),
        clock=runtime.clock,
        token_id=principal.token_id,
    )
    bundle = CustomerBundle.of(export)
    log.info(
        "customer_exported",
        workspace_id=str(principal.workspace_id),
        customer_id=str(export.data.customer.id),
        token_id=principal.token_id,
        audit_id=str(export.audit_id),
        messages=len(bundle.timeline),
        conversations=len(bundle.conversations),
    )
    return respond(bundle)
