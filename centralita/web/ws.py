"""``WS /ws/agent``: the agent's live channel (offers, assignments, withdrawals, the customers'
new messages and the delivery ticks of theirs) over WebSocket.

Authentication is the API's — a bearer token in ``Authorization: Bearer …`` or, since browsers
cannot set headers on an upgrade, ``?access_token=…``, or the console's session cookie (from the
console's own origin) — of role ``agent``, naming an agent.  The frames are the models of
``centralita.schemas.ws`` (their JSON Schema: ``docs/ws.schema.json``); ``centralita.gateway``
turns them into router inputs.  The gateway closes a socket whose token is revoked or expires
while it is open (close code 4401, reason ``token revoked`` / ``token expired``) within
``CENTRALITA_TOKEN_RECHECK_S``.  ``setup(app)`` registers the route, opens the gateway with the
app's runtime and closes open sockets on shutdown.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, WSMsgType, web

from centralita.gateway import AgentGateway, Close
from centralita.schemas.ws import CLIENT_FRAME_TYPES, SERVER_FRAME_TYPES, ErrorFrame
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.errors import Forbidden, InvalidInput
from core.logging import get_logger

__all__ = ["GATEWAY", "close_sockets", "setup"]

log = get_logger("centralita.web.ws")

GATEWAY = web.AppKey("gateway", AgentGateway)
_SOCKETS = web.AppKey("agent_sockets", weakref.WeakSet[web.WebSocketResponse])


@documented(
    "agent",
    {101: ("Switching to the WebSocket protocol: one JSON object per text frame.", None)},
    query=(Param("access_token", "The bearer token, for browsers (they cannot set headers on an upgrade)."),),
    description=(
        f"Server → agent frames: {', '.join(SERVER_FRAME_TYPES)}. "
        f"Agent → server frames: {', '.join(CLIENT_FRAME_TYPES)}. "
        "A bad frame is answered with an error frame and the socket stays open. "
        "A socket whose token is revoked or expires is closed with code 4401 (reason 'token "
        "revoked' or 'token expired') within CENTRALITA_TOKEN_RECHECK_S seconds. "
        "The frames' JSON Schema: docs/ws.schema.json (centralita.schemas.ws); see docs/api.md."
    ),
    authorization="A token (or the console's session) of role agent that names an agent (other roles: 403).",
)
async def agent_socket(request: web.Request) -> web.StreamResponse:
    """The agent's live channel (WebSocket): offers and assignments; presence and answers."""
    principal = await require(request, "agent")
    if principal.role != "agent" or principal.agent_id is None:
        raise Forbidden("this socket is for agents: use a token of role agent")
    gateway = request.app[GATEWAY]
    await gateway.prepare(principal)  # broker down: 503 before the upgrade
    socket = web.WebSocketResponse(heartbeat=30.0)
    await socket.prepare(request)
    request.app[_SOCKETS].add(socket)
    session = await gateway.open(principal, socket.send_str, close=_closer(socket))
    try:
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                answer = await session.handle_text(frame.data)
            elif frame.type == WSMsgType.BINARY:
                answer = ErrorFrame.of(InvalidInput("send text frames (JSON)", field="frame"))
            else:
                continue
            if answer is not None:
                await socket.send_json(answer.model_dump(mode="json"))
    finally:
        # aiohttp cancels the handler when the peer's connection drops: the cleanup (cancel the
        # consumer, tell the router) must finish anyway.
        await asyncio.shield(gateway.closing(session))
    return socket


def _closer(socket: web.WebSocketResponse) -> Close:
    async def close(code: int, reason: str) -> bool:
        return await socket.close(code=code, message=reason.encode())

    return close


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    app[GATEWAY] = AgentGateway(app[RUNTIME])
    app[_SOCKETS] = weakref.WeakSet()
    yield
    await app[GATEWAY].wait_closed()


async def close_sockets(
    app: web.Application, code: int = WSCloseCode.GOING_AWAY, reason: str = "server shutdown"
) -> int:
    """Close every agent socket this server holds (shutdown; a test's dropped connection); how many."""
    sockets = list(app.get(_SOCKETS, ()))
    for socket in sockets:
        await socket.close(code=code, message=reason.encode())
    return len(sockets)


async def _close_sockets(app: web.Application) -> None:
    await close_sockets(app)


def setup(app: web.Application) -> None:
    """Register ``/ws/agent``; call after the runtime's cleanup context was appended."""
    app.router.add_get("/ws/agent", agent_socket)
    app.cleanup_ctx.append(_gateway_ctx)
    app.on_shutdown.append(_close_sockets)
