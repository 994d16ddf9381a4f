"""Campaign admin API: validate, plan, apply and export manifests of the token's workspace.

Bodies are the manifest's YAML text (``Content-Type: application/yaml``, ``text/yaml`` or
``text/plain``) or JSON ``{"manifest": "<yaml text>", "expected_version": N?}``.

- ``POST /api/campaigns/validate`` → 200 ``{"ok", "summary", "problems": [...]}``; each problem has
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

from typing import Any

from aiohttp import web

from centralita.campaigns import apply_live, export_manifest_in, export_yaml, plan_manifest, validate_manifest
from centralita.web.api._json import json_body, query_int
from centralita.web.auth import require
from centralita.web.keys import RUNTIME
from core.campaign import Manifest, Problem, ValidationResult, render_plan, summarize
from core.campaign.problems import format_path
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


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "code": problem.code,
        "message": problem.message,
        "line": problem.line,
        "column": problem.column,
        "path": format_path(problem.path),
        "hint": problem.hint,
        "severity": problem.severity,
        "text": problem.format(),
    }


def _validation_body(result: ValidationResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "summary": summarize(result.problems),
        "problems": [problem_dict(p) for p in result.problems],
    }


async def _manifest_text(request: web.Request) -> tuple[str, int | None]:
    """The YAML text of the body and the optional ``expected_version``."""
    expected: int | None = None
    if "expected_version" in request.query:
        expected = query_int(request, "expected_version", 0, low=0, high=2**31)
    if request.content_type == "application/json":
        body = await json_body(request)  # bounded in size and time; deep nesting is a 400
        if not isinstance(body, dict) or not isinstance(body.get("manifest"), str):
            raise InvalidInput('send {"manifest": "<yaml text>"} or the YAML itself', field="manifest")
        version = body.get("expected_version")
        if version is not None:
            if not isinstance(version, int) or isinstance(version, bool) or version < 0:
                raise InvalidInput(
                    "expected_version must be a non-negative integer", field="expected_version"
                )
            expected = version
        return body["manifest"], expected
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
        body = _validation_body(result)
        body["error"] = {
            "code": "invalid_manifest",
            "message": f"invalid campaign manifest ({body['summary']})",
        }
        return web.json_response(body, status=422), expected
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        slug = await CampaignStore(session).workspace_slug(principal.workspace_id)
    if result.manifest.workspace != slug:
        raise Forbidden(
            f"the manifest is for workspace {result.manifest.workspace!r}; this token belongs to {slug!r}",
            field="workspace",
        )
    return result.manifest, expected


@routes.post("/api/campaigns/validate")
async def validate(request: web.Request) -> web.Response:
    await require(request, "admin")
    text, _ = await _manifest_text(request)
    return web.json_response(_validation_body(validate_manifest(text, _FILENAME)))


@routes.post("/api/campaigns/plan")
async def plan(request: web.Request) -> web.Response:
    principal = await require(request, "admin")
    manifest, _ = await _valid_manifest(request, principal)
    if isinstance(manifest, web.Response):
        return manifest
    result = await plan_manifest(request.app[RUNTIME].database, manifest)
    return web.json_response(
        {
            "plan": result.plan.to_dict(),
            "text": render_plan(result.plan),
            "current_version": result.current_version,
            "conflicts": list(result.conflicts),
        }
    )


@routes.post("/api/campaigns/apply")
async def apply(request: web.Request) -> web.Response:
    principal = await require(request, "admin")
    manifest, expected = await _valid_manifest(request, principal)
    if isinstance(manifest, web.Response):
        return manifest
    result = await apply_live(
        request.app[RUNTIME], manifest, actor=f"token:{principal.token_id}", expected_version=expected
    )
    return web.json_response(
        {**result.to_dict(), "text": render_plan(result.plan), "announced": result.announced}
    )


@routes.get("/api/campaigns")
async def list_campaigns(request: web.Request) -> web.Response:
    principal = await require(request, "supervisor")
    async with request.app[RUNTIME].database.session() as session:
        campaigns = await CampaignStore(session).list_in(principal.workspace_id)
    return web.json_response(
        {
            "campaigns": [
                {
                    "id": str(c.campaign_id),
                    "name": c.name,
                    "display_name": c.manifest["campaign"]["display_name"],
                    "version": c.version,
                    "applied_at": c.applied_at.isoformat(),
                }
                for c in campaigns
            ]
        }
    )


@routes.get("/api/campaigns/{name}/export")
async def export(request: web.Request) -> web.Response:
    principal = await require(request, "admin")
    manifest = await export_manifest_in(
        request.app[RUNTIME].database, principal.workspace_id, request.match_info["name"]
    )
    return web.Response(text=export_yaml(manifest), content_type="application/yaml", charset="utf-8")
