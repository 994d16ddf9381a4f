"""Campaign admin API: validate, plan, apply and export manifests of the token's workspace.

Bodies are the manifest's YAML text (``Content-Type: application/yaml``, ``text/yaml`` or
``text/plain``) or JSON ``{"manifest": "<yaml text>", "expected_version": N?}``.

- ``POST /api/campaigns/validate`` → 200 ``{"ok", "summary", "problems": [...]}`` (the file on its own: an
  unset secret variable is a warning here, an error for plan and apply); each problem has
  ``code, message, line, column, path, hint, severity``.
- ``POST /api/campaigns/plan`` → 200 ``{"plan", "text", "current_version", "conflicts"}``.
- ``POST /api/campaigns/apply`` → 200 ``{"applied", "version", "plan", "text", ...}``; the servers
  reload at once (``centralita.config_watch``).  An invalid manifest is 422 with every problem;
  a channel address owned elsewhere, or a stale ``expected_version``, is 409.
- ``GET /api/campaigns`` → the workspace's campaigns; ``GET /api/campaigns/{name}/export`` → YAML.

Plan, apply and export need the ``admin`` role; the manifest's ``workspace`` must be the token's
(403 otherwise).  Another workspace's campaign name is a 404, like one that does not exist.
"""

from __future__ import annotations

from aiohttp import web

from centralita.campaigns import apply_live, export_manifest_in, export_yaml, plan_manifest, validate_manifest
from centralita.integrations import destination_problems
from centralita.schemas.campaigns import (
    Applied,
    CampaignList,
    CampaignSummary,
    InvalidManifest,
    ManifestRequest,
    Planned,
    Validation,
)
from centralita.web.api._json import parse_body, query_int, respond
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from centralita.web.spec import Param, documented
from core.campaign import Manifest, ValidationResult, locate_problems
from core.errors import Forbidden, InvalidInput
from storage.campaigns import CampaignStore
from storage.tokens import Principal

__all__ = ["routes"]

routes = web.RouteTableDef()

_YAML_TYPES = frozenset(
    {
        "application/yaml",
        "application/x-yaml",
        "text/yaml",
        "text/x-yaml",
        "text/plain",
        "application/octet-stream",
    }
)
_FILENAME = "manifest.yaml"
# The body: the YAML text, or JSON {"manifest": "<yaml text>", "expected_version"?}.
_BODY_TYPES = ("application/yaml", "text/yaml", "text/plain", "application/json")
_INVALID = "Invalid manifest: every problem."


async def _manifest_text(request: web.Request) -> tuple[str, int | None]:
    """The YAML text of the body and the optional ``expected_version``."""
    expected: int | None = None
    if "expected_version" in request.query:
        expected = query_int(request, "expected_version", 0, low=0, high=2**31)
    if request.content_type == "application/json":
        body = await parse_body(request, ManifestRequest)  # bounded in size and time; deep nesting is a 400
        if body.expected_version is not None:
            expected = body.expected_version
        return body.manifest, expected
    if request.content_type not in _YAML_TYPES:
        raise InvalidInput(
            f"unsupported Content-Type {request.content_type!r}: send application/yaml or application/json",
            field="Content-Type",
        )
    try:
        return await request.text(), expected
    except UnicodeDecodeError:
        raise InvalidInput("the manifest must be UTF-8 text", field="body") from None


async def _valid_manifest(
    request: web.Request, principal: Principal
) -> tuple[Manifest | web.Response, int | None]:
    """The manifest of the body, or the 422 response listing every problem."""
    text, expected = await _manifest_text(request)
    result = validate_manifest(text, _FILENAME)
    if result.manifest is None:
        return respond(InvalidManifest.of(result), status=422), expected
    runtime = request.app[RUNTIME]
    refused = await destination_problems(
        result.manifest, allow_private=runtime.settings.webhooks_allow_private
    )
    if refused:  # a webhook's destination: checked where the servers resolve it
        located = locate_problems([*result.problems, *refused], text, _FILENAME)
        return respond(InvalidManifest.of(ValidationResult(tuple(located), None)), status=422), expected
    async with runtime.database.session() as session:
        slug = await CampaignStore(session).workspace_slug(principal.workspace_id)
    if result.manifest.workspace != slug:
        raise Forbidden(
            f"the manifest is for workspace {result.manifest.workspace!r}; this token belongs to {slug!r}",
            field="workspace",
        )
    return result.manifest, expected


@routes.post("/api/campaigns/validate")
@documented(
    "admin",
    {200: ("Every problem with its line and column.", Validation)},
    body=ManifestRequest,
    body_types=_BODY_TYPES,
)
async def validate(request: web.Request) -> web.Response:
    """Validate a campaign manifest."""
    await require(request, "admin")
    text, _ = await _manifest_text(request)
    # The file on its own: a secret's variable unset in this server is a warning here; plan and
    # apply refuse it (as ``centralita campaign validate`` / ``plan`` do).
    return respond(Validation.of(validate_manifest(text, _FILENAME, missing_env="warning")))


@routes.post("/api/campaigns/plan")
@documented(
    "admin",
    {200: ("The changes.", Planned), 422: (_INVALID, InvalidManifest)},
    body=ManifestRequest,
    body_types=_BODY_TYPES,
)
async def plan(request: web.Request) -> web.Response:
    """Plan a manifest against the running configuration."""
    principal = await require(request, "admin")
    manifest, _ = await _valid_manifest(request, principal)
    if isinstance(manifest, web.Response):
        return manifest
    return respond(Planned.of(await plan_manifest(request.app[RUNTIME].database, manifest)))


@routes.post("/api/campaigns/apply")
@documented(
    "admin",
    {200: ("Applied; servers reload within seconds.", Applied), 422: (_INVALID, InvalidManifest)},
    body=ManifestRequest,
    body_types=_BODY_TYPES,
    query=(Param("expected_version", "As the body's expected_version.", {"type": "integer", "minimum": 0}),),
    extra_errors={409: "An address is owned elsewhere, or expected_version is stale."},
)
async def apply(request: web.Request) -> web.Response:
    """Apply a manifest transactionally and live."""
    principal = await require(request, "admin")
    manifest, expected = await _valid_manifest(request, principal)
    if isinstance(manifest, web.Response):
        return manifest
    result = await apply_live(
        request.app[RUNTIME], manifest, actor=f"token:{principal.token_id}", expected_version=expected
    )
    return respond(Applied.of(result))


@routes.get("/api/campaigns")
@documented("supervisor", {200: ("The workspace's campaigns.", CampaignList)})
async def list_campaigns(request: web.Request) -> web.Response:
    """List the campaigns."""
    principal = await require(request, "supervisor")
    async with request.app[RUNTIME].database.session() as session:
        campaigns = await CampaignStore(session).list_in(principal.workspace_id)
    return respond(CampaignList(campaigns=[CampaignSummary.of(c) for c in campaigns]))


@routes.get("/api/campaigns/{name}/export")
@documented(
    "admin",
    {200: ("The manifest's YAML.", {"type": "string"})},
    response_type="application/yaml",
)
async def export(request: web.Request) -> web.Response:
    """Export a campaign as a manifest."""
    principal = await require(request, "admin")
    manifest = await export_manifest_in(
        request.app[RUNTIME].database, principal.workspace_id, request.match_info["name"]
    )
    return web.Response(text=export_yaml(manifest), content_type="application/yaml", charset="utf-8")
