"""``/api/admin/tokens``: the workspace's API tokens, for an admin to issue, list, revoke, rotate.

- ``GET /api/admin/tokens`` — ``{"items": [...]}``, newest first: id, name, role, agent, created,
  expires, last used, revoked, status; never the token nor its hash.
- ``POST /api/admin/tokens`` ``{"role", "agent_id"?, "name"?, "expires_in"?}`` — 201 with the
  token, shown this once; ``expires_in`` (``12h``, ``30d``) defaults to the role's lifetime.
- ``POST /api/admin/tokens/{token_id}/revoke`` — refused from the next request on, and open
  sockets authenticated by it are closed within ``CENTRALITA_TOKEN_RECHECK_S``.
- ``POST /api/admin/tokens/{token_id}/rotate`` ``{"expires_in"?}`` — 201: a new token with the
  same role, agent and name; the old one is revoked in the same transaction.

Everything within the caller's workspace: another workspace's token id is a 404.  Each issue and
revoke is in the audit trail (``token.issued``, ``token.revoked``) as the calling admin.
"""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from centralita.schemas.tokens import IssuedToken, RotateRequest, Token, TokenCreate, TokenList
from centralita.web.api._json import parse_body, path_uuid, respond
from centralita.web.api.conversations import actor_of
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import InvalidInput, NotFound
from core.ids import AgentId, WorkspaceId
from storage.tokens import TokenStore, expiry

__all__ = ["routes"]

routes = web.RouteTableDef()

_ROTATE_CONFLICT = {409: "The token was revoked already: create a new one instead."}


async def _agent_of(request: web.Request, workspace_id: WorkspaceId, agent_id: UUID) -> AgentId:
    async with request.app[RUNTIME].database.session() as session:
        found = await TokenStore(session).agent_in(workspace_id, agent_id=agent_id)
    if found is None:
        raise NotFound(f"no agent {agent_id} in this workspace", field="agent_id")
    return found


@routes.get("/api/admin/tokens")
@documented("admin", {200: ("The workspace's tokens, newest first (never the tokens).", TokenList)})
async def list_tokens(request: web.Request) -> web.Response:
    """List the workspace's API tokens."""
    principal = await require(request, "admin")
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        records = await TokenStore(session).list(principal.workspace_id)
    now = runtime.clock()
    return respond(TokenList(items=[Token.of(r, now) for r in records]))


@routes.post("/api/admin/tokens")
@documented(
    "admin",
    {201: ("Issued: the token is in this answer only.", IssuedToken)},
    body=TokenCreate,
    description="An agent token needs agent_id (an agent of the workspace); expires_in defaults "
    "to the role's lifetime.",
)
async def create_token(request: web.Request) -> web.Response:
    """Issue an API token."""
    principal = await require(request, "admin")
    body = await parse_body(request, TokenCreate)
    runtime = request.app[RUNTIME]
    if body.role == "agent" and body.agent_id is None:
        raise InvalidInput("an agent token needs agent_id", field="agent_id")
    agent_id = await _agent_of(request, principal.workspace_id, body.agent_id) if body.agent_id else None
    now = runtime.clock()
    expires_at = expiry(runtime.settings, body.role, now, body.expires_in, field="expires_in")
    async with runtime.database.transaction() as session:
        issued = await TokenStore(session).create(
            principal.workspace_id,
            body.role,
            agent_id,
            body.name,
            now,
            expires_at=expires_at,
            actor=actor_of(principal),
        )
    return respond(IssuedToken.of(issued, now), status=201)


@routes.post("/api/admin/tokens/{token_id}/revoke")
@documented(
    "admin",
    {200: ("Revoked (a revoked token keeps its first revoked_at).", Token)},
    description="Refused from the next request on; open sockets authenticated by it are closed "
    "within CENTRALITA_TOKEN_RECHECK_S seconds.",
)
async def revoke_token(request: web.Request) -> web.Response:
    """Revoke an API token."""
    principal = await require(request, "admin")
    token_id = path_uuid(request, "token_id")
    runtime = request.app[RUNTIME]
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        record = await TokenStore(session).revoke(
            token_id, now, principal.workspace_id, actor=actor_of(principal)
        )
    if record is None:
        raise NotFound(f"no token {token_id}", field="token_id")
    return respond(Token.of(record, now))


@routes.post("/api/admin/tokens/{token_id}/rotate")
@documented(
    "admin",
    {201: ("The new token (in this answer only); the old one is revoked.", IssuedToken)},
    body=RotateRequest,
    body_required=False,
    extra_errors=_ROTATE_CONFLICT,
)
async def rotate_token(request: web.Request) -> web.Response:
    """Rotate an API token: a new one with the same role, agent and name; the old one revoked."""
    principal = await require(request, "admin")
    token_id = path_uuid(request, "token_id")
    body = await parse_body(request, RotateRequest) if request.body_exists else RotateRequest()
    runtime = request.app[RUNTIME]
    now = runtime.clock()
    async with runtime.database.transaction() as session:
        store = TokenStore(session)
        old = await store.get(token_id, principal.workspace_id)
        if old is None:
            raise NotFound(f"no token {token_id}", field="token_id")
        expires_at = expiry(runtime.settings, old.role, now, body.expires_in, field="expires_in")
        rotated = await store.rotate(
            token_id,
            now,
            expires_at=expires_at,
            workspace_id=principal.workspace_id,
            actor=actor_of(principal),
        )
    if rotated is None:
        raise NotFound(f"no token {token_id}", field="token_id")
    issued, revoked = rotated
    return respond(IssuedToken.of(issued, now, replaces=revoked.id), status=201)
