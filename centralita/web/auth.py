"""Who is calling: a bearer token (scripts) or the console's session cookie (a signed-in
browser); every API handler states the least role it needs.

A principal belongs to one workspace.  Handlers look rows up *within* that workspace, so an id
from another workspace is indistinguishable from one that does not exist: 404, never 403.

A token is refused (401, ``field: "Authorization"``; ``"cookie"`` for a session cookie) when it
is unknown, revoked or expired at the runtime's clock — a session also once unused for
``session_idle_s``.  An accepted token's last-used time is written when it is older than
``token_touch_s`` (60 s): one write per token per minute at most, not one per request.  The token
itself is never logged (the logs name the token's id).

A request authenticated by the cookie is the browser's: it must come from the console's own
origin (an ``Origin`` header naming another host is 403, ``field: "Origin"``), and one that
changes anything (any method but GET, HEAD, OPTIONS) must carry the session's CSRF token in
``X-CSRF-Token`` (403 otherwise) — a value the page learns from the sign-in answer and
``GET /api/auth/session``, which another site's page cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from urllib.parse import urlsplit

from aiohttp import web

from centralita.web.keys import RUNTIME
from core.errors import AuthenticationRequired, DatabaseConflict, DatabaseUnavailable, Forbidden
from core.logging import get_logger
from storage.tokens import Principal, Refusal, TokenStore

__all__ = ["CSRF_HEADER", "SESSION_COOKIE", "authenticate", "csrf_token", "require", "session_token"]

log = get_logger("centralita.web.auth")

SESSION_COOKIE = "centralita_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived from the session's secret, so nothing is stored."""
    return hashlib.sha256(f"csrf:{session_token}".encode()).hexdigest()[:40]


def session_token(request: web.Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE, "").strip()
    return value or None


def _same_origin(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin is None:
        return
    if urlsplit(origin).netloc.lower() != request.host.lower():
        raise Forbidden(
            "a request signed in by the console's cookie must come from the console", field="Origin"
        )


def _browser_checks(request: web.Request, token: str) -> None:
    _same_origin(request)
    if request.method in _SAFE:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, csrf_token(token)):
        raise Forbidden(
            f"send the session's CSRF token in {CSRF_HEADER} (from GET /api/auth/session)", field=CSRF_HEADER
        )


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    by_cookie = False
    if scheme.lower() != "bearer" or not token:
        token = session_token(request) or ""
        by_cookie = bool(token)
        if not token and request.path.startswith("/ws/"):
            # Browsers cannot set headers on WebSocket upgrades: accept ?access_token= there only.
            token = request.query.get("access_token", "").strip()
        if not token:
            raise AuthenticationRequired(
                "send 'Authorization: Bearer <token>', or sign in to the console", field="Authorization"
            )
    runtime = request.app[RUNTIME]
    now = runtime.clock()
    async with runtime.database.session() as session:
        found = await TokenStore(session).check(
            token, now, idle=timedelta(seconds=runtime.settings.session_idle_s)
        )
    if isinstance(found, Refusal):
        if by_cookie:
            message = "the session ended; sign in again" if found is not Refusal.UNKNOWN else "not signed in"
            raise AuthenticationRequired(message, field="cookie")
        raise AuthenticationRequired(found.message, field="Authorization")
    if by_cookie:
        _browser_checks(request, token)
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
