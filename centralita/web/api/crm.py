"""The inbound CRM API: a collections system tells the engine what happened outside it.

- ``POST /api/conversations/{id}/promise`` — a closed conversation's promise to pay kept or
  broken, with what was paid; once per ``reference``.
- ``POST /api/customers/{id}/labels`` — add or remove a label on the customer.
- ``POST /api/customers/{id}/notes`` — a note on the customer's timeline (no conversation).
- ``POST /api/conversations/proactive`` — open a conversation with an approved template
  (``centralita.proactive``); once per ``reference``.

Role ``supervisor``: a CRM holds a supervisor token of its workspace (``centralita token create
--role supervisor --name crm``); the audit trail names it ``token:<id>``.  Each call lands in the
audit trail as a fact (``core.crm``), in the timeline, and a promise in the reports.  Another
workspace's id is a 404.
"""

from __future__ import annotations

from aiohttp import web

from centralita.proactive import ProactiveStart, start_proactive
from centralita.schemas.crm import (
    CustomerLabels,
    CustomerNote,
    CustomerNoteRequest,
    LabelRequest,
    ProactiveRequest,
    ProactiveStarted,
    PromiseMark,
    PromiseRequest,
)
from centralita.web.api._json import parse_body, path_uuid, respond
from centralita.web.api.conversations import actor_of
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import InvalidInput
from storage.crm import CrmStore

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/api/conversations/{conversation_id}/promise")
@documented(
    "supervisor",
    {
        201: ("Recorded: a note on the timeline, the fact in the audit trail and the reports.", PromiseMark),
        200: ("This reference was recorded already: nothing changed.", PromiseMark),
    },
    body=PromiseRequest,
    extra_errors={
        409: "Not closed with a promise to pay, or the reference marked the other outcome already."
    },
)
async def mark_promise(request: web.Request) -> web.Response:
    """Mark a closed conversation's promise to pay kept or broken, with what was paid."""
    principal = await require(request, "supervisor")
    conversation_id = path_uuid(request, "conversation_id")
    body = await parse_body(request, PromiseRequest)
    runtime = request.app[RUNTIME]
    async with runtime.database.transaction() as session:
        marked = await CrmStore(session).mark_promise(
            principal.workspace_id,
            conversation_id,
            body.outcome,
            reference=body.reference,
            paid_amount=body.paid_amount,
            paid_at=body.paid_at,
            actor=actor_of(principal),
            now=runtime.clock(),
        )
    return respond(PromiseMark.of(marked), status=201 if marked.created else 200)


@routes.post("/api/customers/{customer_id}/labels")
@documented(
    "supervisor",
    {200: ("The customer's labels after the change.", CustomerLabels)},
    body=LabelRequest,
)
async def change_label(request: web.Request) -> web.Response:
    """Add a label to a customer, or remove one (``"action": "remove"``)."""
    principal = await require(request, "supervisor")
    customer_id = path_uuid(request, "customer_id")
    body = await parse_body(request, LabelRequest)
    runtime = request.app[RUNTIME]
    async with runtime.database.transaction() as session:
        change = await CrmStore(session).change_label(
            principal.workspace_id,
            customer_id,
            body.label,
            add=body.action == "add",
            actor=actor_of(principal),
            now=runtime.clock(),
        )
    return respond(CustomerLabels.of(change))


@routes.post("/api/customers/{customer_id}/notes")
@documented(
    "supervisor",
    {
        201: ("The note, in the customer's timeline.", CustomerNote),
        200: ("This reference was recorded already: no second note.", CustomerNote),
    },
    body=CustomerNoteRequest,
)
async def add_customer_note(request: web.Request) -> web.Response:
    """Add a note to the customer's timeline, outside any conversation."""
    principal = await require(request, "supervisor")
    customer_id = path_uuid(request, "customer_id")
    body = await parse_body(request, CustomerNoteRequest)
    runtime = request.app[RUNTIME]
    async with runtime.database.transaction() as session:
        note = await CrmStore(session).add_note(
            principal.workspace_id,
            customer_id,
            body.text,
            reference=body.reference,
            actor=actor_of(principal),
            now=runtime.clock(),
        )
    return respond(CustomerNote.of(note), status=201 if note.created else 200)


@routes.post("/api/conversations/proactive")
@documented(
    "supervisor",
    {
        201: ("Opened, waiting; the template is in the outbox.", ProactiveStarted),
        200: ("This reference started a conversation already: nothing new.", ProactiveStarted),
    },
    body=ProactiveRequest,
    extra_errors={
        409: "The customer has an open conversation in the campaign (its id in details), or no address.",
        422: "The template is not one the campaign's manifest approves (field: template.name, …).",
    },
)
async def start_proactive_conversation(request: web.Request) -> web.Response:
    """Start a conversation with an approved template (a collections reminder); it waits in the
    queue for an agent and the customer's answer."""
    principal = await require(request, "supervisor")
    body = await parse_body(request, ProactiveRequest)
    if (body.customer_id is None) == (body.phone is None):
        raise InvalidInput("give customer_id or phone (one of them)", field="phone")
    started = await start_proactive(
        request.app[RUNTIME],
        ProactiveStart(
            workspace_id=principal.workspace_id,
            campaign=body.campaign,
            template=body.template.template(),
            reference=body.reference,
            actor=actor_of(principal),
            customer_id=body.customer_id,
            phone=body.phone,
            queue=body.queue,
        ),
    )
    return respond(
        ProactiveStarted(
            conversation_id=started.conversation_id,
            customer_id=started.customer_id,
            message_id=started.message_id,
            status="waiting",
            queue=started.queue,
            reference=body.reference,
            created=started.created,
        ),
        status=201 if started.created else 200,
    )
