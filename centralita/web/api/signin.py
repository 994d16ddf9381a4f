"""The console's sign-in over HTTP: ``/api/auth/*`` and ``/api/admin/invitations``.

- ``POST /api/auth/sign-in`` ``{"email", "password", "workspace"?}`` — 200 with the session
  (``SessionInfo``) and its cookie (``centralita_session``: HttpOnly, SameSite=Strict, Secure
  over HTTPS and in production); 401 ``field: "password"`` for a wrong email or password (the
  same answer for an email nobody has); 429 with ``Retry-After`` after too many wrong ones.
- ``POST /api/auth/invitation`` ``{"invitation", "password"}`` — uses a one-time link: sets the
  password and signs in (200 and the cookie); a used or expired link is 401 ``field:
  "invitation"``.
- ``GET /api/auth/session`` — who is signed in, until when, and the CSRF token.
- ``POST /api/auth/sign-out`` — ends this session (its sockets close within seconds) and clears
  the cookie; ``POST /api/auth/sign-out-everywhere`` ends every session of the agent.
- ``POST /api/admin/invitations`` ``{"email", "expires_in"?}`` (admin) — 201 with the link.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiohttp import web

from centralita.schemas.signin import (
    AcceptInvitation,
    InvitationCreate,
    IssuedInvitation,
    SessionInfo,
    SignedInAgent,
    SignedOut,
    SignInRequest,
)
from centralita.signin import SignedIn, accept_invitation, invite, sign_in, sign_out_everywhere
from centralita.web.api._json import parse_body, respond
from centralita.web.api.conversations import actor_of
from centralita.web.auth import SESSION_COOKIE, csrf_token, require, session_token
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import AuthenticationRequired, NotFound
from storage.signin import SignInStore
from storage.tokens import TokenStore

__all__ = ["routes"]

routes = web.RouteTableDef()

_COOKIE = "Sets the session cookie centralita_session (HttpOnly, SameSite=Strict)."


def _device(request: web.Request) -> str:
    return request.headers.get("User-Agent", "unknown browser")[:150]


def _signed_in(request: web.Request, signed: SignedIn) -> web.Response:
    settings = request.app[RUNTIME].settings
    info = SessionInfo(
        workspace=signed.account.workspace,
        workspace_id=signed.account.workspace_id,
        role=signed.account.role,  # type: ignore[arg-type]
        agent=SignedInAgent.of(signed.account),
        kind="session",
        csrf_token=csrf_token(signed.token),
        expires_at=signed.expires_at,
        idle_timeout_s=settings.session_idle_s,
    )
    response = respond(info)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        httponly=True,
        samesite="Strict",
        secure=request.secure or settings.environment == "production",
        path="/",
        max_age=int(settings.session_absolute_s),
    )
    return response


@routes.post("/api/auth/sign-in")
@documented(
    None,
    {200: ("Signed in. " + _COOKIE, SessionInfo)},
    body=SignInRequest,
    extra_errors={
        401: "Wrong email or password (field: password).",
        429: "Too many wrong sign-ins for this email or from this address: see Retry-After.",
    },
)
async def post_sign_in(request: web.Request) -> web.Response:
    """Sign in to the console with an email and a password."""
    body = await parse_body(request, SignInRequest)
    signed = await sign_in(
        request.app[RUNTIME],
        body.email,
        body.password,
        workspace=body.workspace,
        client=request.remote or "unknown",
        device=_device(request),
    )
    return _signed_in(request, signed)


@routes.post("/api/auth/invitation")
@documented(
    None,
    {200: ("The password is set and the agent signed in. " + _COOKIE, SessionInfo)},
    body=AcceptInvitation,
    extra_errors={401: "The link is unknown, used or expired (field: invitation)."},
)
async def post_invitation(request: web.Request) -> web.Response:
    """Use a one-time invitation link: choose a password and sign in."""
    body = await parse_body(request, AcceptInvitation)
    signed = await accept_invitation(
        request.app[RUNTIME], body.invitation, body.password, device=_device(request)
    )
    return _signed_in(request, signed)


@routes.get("/api/auth/session")
@documented("agent", {200: ("Who is signed in, until when, and the CSRF token.", SessionInfo)})
async def get_session(request: web.Request) -> web.Response:
    """The caller's session (or bearer token)."""
    principal = await require(request, "agent")
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        store = SignInStore(session)
        account = await store.account(principal.agent_id) if principal.agent_id else None
        workspace = await store.workspace_slug(principal.workspace_id)
        record = await TokenStore(session).get(uuid.UUID(principal.token_id), principal.workspace_id)
    if workspace is None or record is None:
        raise AuthenticationRequired("not signed in", field="cookie")
    cookie = session_token(request)
    return respond(
        SessionInfo(
            workspace=workspace,
            workspace_id=principal.workspace_id,
            role=principal.role,  # type: ignore[arg-type]
            agent=SignedInAgent.of(account) if account is not None else None,
            kind=principal.kind,
            csrf_token=csrf_token(cookie) if principal.kind == "session" and cookie else None,
            expires_at=record.expires_at,
            idle_timeout_s=runtime.settings.session_idle_s,
        )
    )


def _signed_out(count: int) -> web.Response:
    response = respond(SignedOut(sessions_ended=count))
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.post("/api/auth/sign-out")
@documented("agent", {200: ("This session ended; the cookie is cleared.", SignedOut)}, body_required=False)
async def post_sign_out(request: web.Request) -> web.Response:
    """Sign out of this browser."""
    principal = await require(request, "agent")
    if principal.kind != "session":
        return _signed_out(0)  # a bearer token is revoked through /api/admin/tokens
    runtime = request.app[RUNTIME]
    async with runtime.database.transaction() as session:
        await TokenStore(session).revoke(
            uuid.UUID(principal.token_id), runtime.clock(), actor=actor_of(principal), reason="sign_out"
        )
    return _signed_out(1)


@routes.post("/api/auth/sign-out-everywhere")
@documented("agent", {200: ("Every session of the agent ended.", SignedOut)}, body_required=False)
async def post_sign_out_everywhere(request: web.Request) -> web.Response:
    """Sign the agent out of every browser (API tokens stay)."""
    principal = await require(request, "agent")
    if principal.agent_id is None:
        return _signed_out(0)
    ended = await sign_out_everywhere(request.app[RUNTIME], principal.agent_id, actor=actor_of(principal))
    return _signed_out(len(ended))


@routes.post("/api/admin/invitations")
@documented(
    "admin",
    {201: ("The one-time link, shown in this answer only.", IssuedInvitation)},
    body=InvitationCreate,
)
async def create_invitation(request: web.Request) -> web.Response:
    """Invite an agent of the workspace to the console."""
    principal = await require(request, "admin")
    body = await parse_body(request, InvitationCreate)
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        workspace = await SignInStore(session).workspace_slug(principal.workspace_id)
    if workspace is None:
        raise NotFound("the token's workspace is gone", field="Authorization")
    lifetime = body.expires_in or timedelta(seconds=runtime.settings.invitation_lifetime_s)
    issued = await invite(
        runtime.database,
        workspace=workspace,
        email=body.email,
        created_by=f"token:{principal.token_id}",
        now=runtime.clock(),
        lifetime=lifetime,
    )
    base = runtime.settings.public_url or f"{request.scheme}://{request.host}"
    return respond(IssuedInvitation.of(issued, base), status=201)
