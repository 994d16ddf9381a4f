"""Who is calling, the workspace's agents, and an agent's presence.

- ``GET /api/me`` — the token's workspace, role and agent.
- ``GET /api/agents`` — supervisor: agents with presence, load per channel, pending offers, skills
  and capacity (``?include_inactive=true`` adds agents removed from every campaign).
- ``PUT /api/agents/me/presence`` ``{"presence": "available|away|offline"}`` — the calling agent's
  presence: publishes ``PresenceInput`` to the workspace's router (which keeps ``wrap_up``); 202.

Presence is what the live router last stored (``agent.presence``): a change asked for here shows
once the router has applied it.  ``connected``: a gateway holds the agent's WebSocket.
"""

from __future__ import annotations

from aiohttp import web

from centralita.schemas.agents import Agent, AgentList, Me, PresenceRequest
from centralita.schemas.common import Accepted
from centralita.web.api._json import parse_body, respond
from centralita.web.api._publish import publish_router_inputs
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.errors import Forbidden, InvalidInput
from router.wire import PresenceInput
from storage.work import WorkStore

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.get("/api/me")
@documented("agent", {200: ("The calling token.", Me)})
async def me(request: web.Request) -> web.Response:
    """The calling token: its workspace, role and agent."""
    principal = await require(request, "agent")
    async with request.app[RUNTIME].database.session() as session:
        store = WorkStore(session)
        slug = await store.workspace_slug(principal.workspace_id)
        agent = await store.agent(principal.workspace_id, principal.agent_id) if principal.agent_id else None
    return respond(Me.of(principal, slug, agent))


@routes.get("/api/agents")
@documented(
    "supervisor",
    {200: ("The workspace's agents.", AgentList)},
    query=(Param("include_inactive", "Also agents no campaign declares now.", {"type": "boolean"}),),
)
async def list_agents(request: web.Request) -> web.Response:
    """The workspace's agents with presence, load and skills (supervisor)."""
    principal = await require(request, "supervisor")
    include_inactive = request.query.get("include_inactive", "false").lower()
    if include_inactive not in ("true", "false", "1", "0"):
        raise InvalidInput("include_inactive must be true or false", field="include_inactive")
    async with request.app[RUNTIME].database.session() as session:
        agents = await WorkStore(session).agents(principal.workspace_id)
    if include_inactive in ("false", "0"):
        agents = [a for a in agents if a.active]
    return respond(AgentList(items=[Agent.of(a) for a in agents]))


@routes.put("/api/agents/me/presence")
@documented("agent", {202: ("Published to the workspace's router.", Accepted)}, body=PresenceRequest)
async def set_presence(request: web.Request) -> web.Response:
    """Set the calling agent's presence (available, away, offline)."""
    principal = await require(request, "agent")
    if principal.agent_id is None:
        raise Forbidden("this token is not an agent's")
    body = await parse_body(request, PresenceRequest)
    model = PresenceInput(agent_id=principal.agent_id, presence=body.presence)
    await publish_router_inputs(request.app[RUNTIME], principal.workspace_id, [model])
    return respond(Accepted(router_input=model), status=202)
