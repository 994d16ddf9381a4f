"""Erasing a person's data, and the legal hold that forbids it (admin).

- ``POST /api/customers/{customer_id}/erase`` ``{"reason": "…"}`` — erase the person the id
  stands for (the survivor and every record merged into it): texts, payloads, raw bodies and
  names go, identifiers become irreversible tokens, the rows and counts stay (``storage.erasure``
  says exactly what).  409 ``legal_hold`` names the hold; 409 ``conversation_open`` lists the
  conversations to close first; 409 ``reply_sending`` while a reply is on its way.
- ``POST /api/customers/{customer_id}/legal-hold`` ``{"reason": "…"}`` — set (or replace) the
  hold; ``DELETE`` clears it (404 when there is none).

Every call acts as the token's agent (``str(agent_id)``, or ``token:<id>``) and lands in
``audit_log``.  An id of another workspace is a 404.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from centralita.schemas.erasure import Erasure, ErasureRequest, LegalHold, LegalHoldRequest
from centralita.web.api._json import parse_body, path_uuid, respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from storage.erasure import ErasureStore, erase_customer
from storage.tokens import Principal

__all__ = ["routes"]

routes = web.RouteTableDef()


def _actor(principal: Principal) -> str:
    return str(principal.agent_id) if principal.agent_id is not None else f"token:{principal.token_id}"


async def _known_customer(request: web.Request, principal: Principal) -> uuid.UUID:
    """The path's customer id, 404 outside the workspace before the body is read."""
    customer_id = path_uuid(request, "customer_id")
    async with request.app[RUNTIME].database.session() as session:
        await ErasureStore(session).live_customer(principal.workspace_id, customer_id)
    return customer_id


@routes.post("/api/customers/{customer_id}/erase")
@documented(
    "admin",
    {200: ("Erased.", Erasure)},
    body=ErasureRequest,
    extra_errors={
        409: (
            "Not erased: a record of the person is under legal hold (legal_hold, the hold named), "
            "a conversation of theirs is open (conversation_open, close it first) or a reply to "
            "them is being sent (reply_sending)."
        )
    },
)
async def erase(request: web.Request) -> web.Response:
    """Erase a person's data: the record and every record merged into it."""
    principal = await require(request, "admin")
    customer_id = await _known_customer(request, principal)
    body = await parse_body(request, ErasureRequest)
    runtime = request.app[RUNTIME]
    result = await erase_customer(
        runtime.database,
        principal.workspace_id,
        customer_id,
        body.reason,
        actor=_actor(principal),
        now=runtime.clock(),
    )
    return respond(Erasure.of(result))


@routes.post("/api/customers/{customer_id}/legal-hold")
@documented(
    "admin",
    {200: ("Held: erasure is refused until the hold is cleared.", LegalHold)},
    body=LegalHoldRequest,
    extra_errors={409: "The customer was erased."},
)
async def set_legal_hold(request: web.Request) -> web.Response:
    """Put a customer under legal hold (or replace the hold's reason)."""
    principal = await require(request, "admin")
    customer_id = await _known_customer(request, principal)
    body = await parse_body(request, LegalHoldRequest)
    runtime = request.app[RUNTIME]
    async with runtime.database.transaction() as session:
        result = await ErasureStore(session).set_legal_hold(
            principal.workspace_id, customer_id, body.reason, actor=_actor(principal), now=runtime.clock()
        )
    return respond(LegalHold.of(result))


@routes.delete("/api/customers/{customer_id}/legal-hold")
@documented("admin", {200: ("Cleared.", LegalHold)}, extra_errors={404: "The customer has no legal hold."})
async def clear_legal_hold(request: web.Request) -> web.Response:
    """Clear a customer's legal hold."""
    principal = await require(request, "admin")
    customer_id = path_uuid(request, "customer_id")
    runtime = request.app[RUNTIME]
    async with runtime.database.transaction() as session:
        result = await ErasureStore(session).clear_legal_hold(
            principal.workspace_id, customer_id, actor=_actor(principal), now=runtime.clock()
        )
    return respond(LegalHold.of(result))
