"""Bearer-token authentication; every API handler states the least role it needs.

A principal belongs to one workspace.  Handlers look rows up *within* that workspace, so an id
from another workspace is indistinguishable from one that does not exist: 404, never 403.

A token is refused (401, ``field: "Authorization"``) when it is unknown, revoked or expired at
the runtime's clock.  An accepted token's last-used time is written when it is older than
``token_touch_s`` (60 s): one write per token per minute at most, not one per request.  The token
itself is never logged (the logs name the token's id).
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from centralita.web.keys import RUNTIME
from core.errors import AuthenticationRequired, DatabaseConflict, DatabaseUnavailable, Forbidden
from core.logging import get_logger
from storage.tokens import Principal, Refusal, TokenStore

__all__ = ["authenticate", "require"]

log = get_logger("centralita.web.auth")


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # Browsers cannot set headers on WebSocket upgrades: accept ?access_token= there only.
        token = request.query.get("access_token", "") if request.path.startswith("/ws/") else ""
        if not token:
            raise AuthenticationRequired("send 'Authorization: Bearer <token>'", field="Authorization")
    runtime = request.app[RUNTIME]
    now = runtime.clock()
    async with runtime.database.session() as session:
        found = await TokenStore(session).check(token.strip(), now)
    if isinstance(found, Refusal):
        raise AuthenticationRequired(found.message, field="Authorization")
    every = timedelta(seconds=runtime.settings.token_touch_s)
    if found.stale(now, every):
        try:
            async with runtime.database.transaction() as session:
                await TokenStore(session).touch([found.principal.token_id], now, every)
        except (DatabaseUnavailable, DatabaseConflict) as exc:
            # The request goes on: the next use within token_touch_s records it.
            log.warning("token.last_used_not_recorded", token_id=found.principal.token_id, reason=exc.message)
    return found.principal


async def require(request: web.Request, role: str) -> Principal:
    principal = await authenticate(request)
    if not principal.at_least(role):
        raise Forbidden(f"this needs the {role} role; the token has {principal.role}")
    return principal
