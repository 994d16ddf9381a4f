"""Bearer-token authentication; every API handler states the least role it needs.

A principal belongs to one workspace.  Handlers look rows up *within* that workspace, so an id
from another workspace is indistinguishable from one that does not exist: 404, never 403.
"""

from __future__ import annotations

from aiohttp import web

from centralita.web.keys import RUNTIME
from core.errors import AuthenticationRequired, Forbidden
from storage.tokens import Principal, TokenStore

__all__ = ["authenticate", "require"]


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # Browsers cannot set headers on WebSocket upgrades: accept ?access_token= there only.
        token = request.query.get("access_token", "") if request.path.startswith("/ws/") else ""
        if not token:
            raise AuthenticationRequired("send 'Authorization: Bearer <token>'", field="Authorization")
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        principal = await TokenStore(session).principal(token.strip())
    if principal is None:
        raise AuthenticationRequired("unknown or revoked token", field="Authorization")
    return principal


async def require(request: web.Request, role: str) -> Principal:
    principal = await authenticate(request)
    if not principal.at_least(role):
        raise Forbidden(f"this needs the {role} role; the token has {principal.role}")
    return principal
