"""Moving conversations between queues and agents, and why the router decided what it did.

- ``POST /api/conversations/{conversation_id}/transfer`` ``{"queue_id"}`` or ``{"agent_id"}`` —
  the agent holding it (or a supervisor) hands it on: publishes ``TransferInput``; 202.
- ``POST /api/conversations/{conversation_id}/assign`` ``{"agent_id"}`` — supervisor's
  force-assign: publishes ``ForceAssignInput``; 202.
- ``POST /api/conversations/{conversation_id}/requeue`` ``{"queue_id"?}`` — supervisor: back to
  waiting (in another queue if given): publishes ``RequeueInput``; 202.
- ``GET /api/conversations/{conversation_id}/routing`` — every stored routing decision for the
  conversation, oldest first: candidates, who was filtered and why, scores, winner, and the
  names of the agents and queues they mention; and, while it waits, why it is not being offered
  now (``not_offered``, as in ``GET /api/queues/stats``).  A supervisor reads any conversation's;
  an agent only those of the conversations assigned to them ("why was this routed to me").

The router carries the moves out and writes the new state; 202 means it was told (confirmed by
the broker).  Ids in bodies are looked up in the token's workspace: unknown ones are a 404
naming the field.  A closed conversation cannot be moved (409).
"""

from __future__ import annotations

import uuid

from aiohttp import web

from centralita.schemas.common import Accepted
from centralita.schemas.queues import NotOfferedNow
from centralita.schemas.routing import (
    AssignRequest,
    RequeueRequest,
    RoutingDecisions,
    TransferRequest,
)
from centralita.web.api._json import parse_body, respond
from centralita.web.api._publish import publish_router_inputs
from centralita.web.api.conversations import actor_of, load_conversation
from centralita.web.api.queues import not_offered
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import Conflict, InvalidInput, NotFound
from core.ids import WorkspaceId
from core.states import ConversationStatus
from router.wire import ForceAssignInput, RequeueInput, RouterInput, TransferInput
from storage.tokens import Principal
from storage.work import WorkConversation, WorkStore

__all__ = ["routes"]

routes = web.RouteTableDef()


def _levels(raw: object) -> dict[str, int]:
    """A queue's ``required_skills`` as stored (``{skill: level}``), readable parts only."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


def _open(conv: WorkConversation) -> None:
    if conv.status == ConversationStatus.CLOSED:
        raise Conflict("the conversation is closed", field="conversation_id")


async def _check_queue(request: web.Request, ws: WorkspaceId, queue_id: uuid.UUID) -> None:
    async with request.app[RUNTIME].database.session() as session:
        queue = await WorkStore(session).queue(ws, queue_id)
    if queue is None or not queue.active:
        raise NotFound("no such queue in this workspace", field="queue_id")


async def _check_agent(request: web.Request, ws: WorkspaceId, agent_id: uuid.UUID) -> None:
    async with request.app[RUNTIME].database.session() as session:
        agent = await WorkStore(session).agent(ws, agent_id)
    if agent is None or not agent.active:
        raise NotFound("no such agent in this workspace", field="agent_id")


async def _accepted(request: web.Request, principal: Principal, model: RouterInput) -> web.Response:
    await publish_router_inputs(request.app[RUNTIME], principal.workspace_id, [model])
    return respond(Accepted(router_input=model), status=202)


_CLOSED = {409: "The conversation is closed."}


@routes.post("/api/conversations/{conversation_id}/transfer")
@documented(
    "agent",
    {202: ("TransferInput published.", Accepted)},
    body=TransferRequest,
    extra_errors=_CLOSED,
)
async def transfer(request: web.Request) -> web.Response:
    """Transfer the conversation to a queue or to an agent."""
    principal = await require(request, "agent")
    conv = await load_conversation(request, principal, assigned=True)
    _open(conv)
    body = await parse_body(request, TransferRequest)
    queue_id, agent_id = body.queue_id, body.agent_id
    if (queue_id is None) == (agent_id is None):
        raise InvalidInput("send exactly one of queue_id or agent_id", field="queue_id")
    if queue_id is not None:
        await _check_queue(request, principal.workspace_id, queue_id)
    if agent_id is not None:
        await _check_agent(request, principal.workspace_id, agent_id)
    model = TransferInput(
        conversation_id=conv.id, to_queue_id=queue_id, to_agent_id=agent_id, actor=actor_of(principal)
    )
    return await _accepted(request, principal, model)


@routes.post("/api/conversations/{conversation_id}/assign")
@documented(
    "supervisor",
    {202: ("ForceAssignInput published.", Accepted)},
    body=AssignRequest,
    extra_errors=_CLOSED,
)
async def force_assign(request: web.Request) -> web.Response:
    """Force-assign the conversation to an agent (supervisor)."""
    principal = await require(request, "supervisor")
    conv = await load_conversation(request, principal)
    _open(conv)
    body = await parse_body(request, AssignRequest)
    await _check_agent(request, principal.workspace_id, body.agent_id)
    model = ForceAssignInput(conversation_id=conv.id, agent_id=body.agent_id, actor=actor_of(principal))
    return await _accepted(request, principal, model)


@routes.post("/api/conversations/{conversation_id}/requeue")
@documented(
    "supervisor",
    {202: ("RequeueInput published.", Accepted)},
    body=RequeueRequest,
    body_required=False,
    extra_errors=_CLOSED,
)
async def requeue(request: web.Request) -> web.Response:
    """Put the conversation back to waiting, in its queue or another (supervisor)."""
    principal = await require(request, "supervisor")
    conv = await load_conversation(request, principal)
    _open(conv)
    body = await parse_body(request, RequeueRequest) if request.can_read_body else RequeueRequest()
    if body.queue_id is not None:
        await _check_queue(request, principal.workspace_id, body.queue_id)
    model = RequeueInput(conversation_id=conv.id, queue_id=body.queue_id, actor=actor_of(principal))
    return await _accepted(request, principal, model)


@routes.get("/api/conversations/{conversation_id}/routing")
@documented(
    "agent",
    {200: ("Oldest first.", RoutingDecisions)},
    authorization="Supervisors and admins: any conversation of the workspace; agents: those "
    "assigned to them (else 403).",
)
async def routing_decisions(request: web.Request) -> web.Response:
    """Every routing decision stored for the conversation, oldest first, with its explanation
    (a supervisor: any of the workspace; an agent: a conversation assigned to them)."""
    principal = await require(request, "agent")
    conv = await load_conversation(request, principal, assigned=True)
    ws = principal.workspace_id
    runtime = request.app[RUNTIME]
    now = runtime.clock()
    why = None
    async with runtime.database.session() as session:
        store = WorkStore(session)
        decisions = await store.routing_decisions(ws, conv.id)
        workspace_agents = await store.agents(ws)
        agents: dict[uuid.UUID, str] = {a.id: a.name for a in workspace_agents}
        all_queues = await store.queues(ws, active_only=False)
        queues: dict[uuid.UUID, tuple[str, dict[str, int]]] = {
            q.id: (q.name, _levels(q.config.get("required_skills"))) for q in all_queues
        }
    queue = next((q for q in all_queues if q.id == conv.queue_id), None)
    if conv.status == ConversationStatus.WAITING and queue is not None:
        why = not_offered(queue, workspace_agents, frozenset({conv.channel}), now)
    return respond(RoutingDecisions.of(conv.id, decisions, agents, queues, NotOfferedNow.of(why)))
