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

from typing import Any

from aiohttp import web

from centralita.web.api._json import json_body
from centralita.web.api._publish import publish_router_inputs
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from core.errors import Forbidden, InvalidInput
from router.wire import PresenceInput
from storage.work import AgentRecord, WorkStore

__all__ = ["PRESENCES", "agent_json", "routes"]

routes = web.RouteTableDef()

PRESENCES = ("available", "away", "offline")


def agent_json(agent: AgentRecord) -> dict[str, Any]:
    return {
        "id": str(agent.id),
        "name": agent.name,
        "email": agent.email,
        "role": agent.role,
        "active": agent.active,
        "presence": agent.presence,
        "presence_until": agent.presence_until.isoformat() if agent.presence_until else None,
        "connected": agent.connected,
        "skills": dict(agent.skills),
        "capacity": dict(agent.capacity),
        "load": dict(agent.load),
        "open_conversations": agent.open_conversations,
        "pending_offers": agent.pending_offers,
    }


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    """The calling token: its workspace, role and agent."""
    principal = await require(request, "agent")
    async with request.app[RUNTIME].database.session() as session:
        store = WorkStore(session)
        slug = await store.workspace_slug(principal.workspace_id)
        agent = await store.agent(principal.workspace_id, principal.agent_id) if principal.agent_id else None
    return web.json_response(
        {
            "workspace": {"id": str(principal.workspace_id), "slug": slug},
            "role": principal.role,
            "token_id": principal.token_id,
            "agent": agent_json(agent) if agent is not None else None,
        }
    )


@routes.get("/api/agents")
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
    return web.json_response({"items": [agent_json(a) for a in agents]})


@routes.put("/api/agents/me/presence")
async def set_presence(request: web.Request) -> web.Response:
    """Set the calling agent's presence (available, away, offline)."""
    principal = await require(request, "agent")
    if principal.agent_id is None:
        raise Forbidden("this token is not an agent's")
    body = await json_body(request)
    for key in body:
        if key != "presence":
            raise InvalidInput(f"unknown field {key!r}", field=key)
    presence = body.get("presence")
    if presence not in PRESENCES:
        raise InvalidInput(f"presence must be one of {', '.join(PRESENCES)}", field="presence")
    model = PresenceInput(agent_id=principal.agent_id, presence=presence)
    await publish_router_inputs(request.app[RUNTIME], principal.workspace_id, [model])
    return web.json_response(
        {"status": "accepted", "router_input": model.model_dump(mode="json")}, status=202
    )
