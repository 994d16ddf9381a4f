"""Every JSON response checked against the OpenAPI document (``Settings.check_responses``).

A developer's aid, on in the test suite: after the handler (and the error middleware) answered,
the body is validated against the generated schema of its route and status.  A status the route
does not declare, or a body its schema refuses (a field the model lacks, a missing required
field, a wrong type), is logged, recorded in ``MISMATCHES`` and answered 500 instead — so a
handler can no longer return what the document does not say.  Routes the router did not match
(aiohttp's own 404/405) and streamed responses (WebSockets) are not checked.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from core.logging import get_logger

__all__ = ["MISMATCHES", "Mismatch", "response_check_middleware"]

log = get_logger("centralita.http")

_DOCUMENTS: dict[int, tuple[web.Application, dict[str, Any]]] = {}  # id(app) → (app, its document)


@dataclass(frozen=True, slots=True)
class Mismatch:
    method: str
    path: str
    status: int
    problem: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}: {self.problem}"


MISMATCHES: list[Mismatch] = []


def _document(app: web.Application) -> dict[str, Any]:
    found = _DOCUMENTS.get(id(app))
    if found is None or found[0] is not app:
        from centralita.web.api.openapi import build_document  # the document is built from the live app

        if len(_DOCUMENTS) > 64:  # a test run starts many apps; keep the recent ones
            _DOCUMENTS.clear()
        found = _DOCUMENTS[id(app)] = (app, build_document(app))
    return found[1]


def _problem(document: dict[str, Any], method: str, path: str, response: web.Response) -> str | None:
    operation = document["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return "the route is not in the OpenAPI document"
    declared = operation["responses"].get(str(response.status))
    if declared is None:
        return f"status {response.status} is not declared (declared: {', '.join(operation['responses'])})"
    content = declared.get("content")
    if not content or response.content_type != "application/json":
        return None
    media = content.get("application/json")
    if media is None:
        return f"application/json is not a declared content type ({', '.join(content)})"
    assert isinstance(response.body, bytes)
    try:
        body = json.loads(response.body) if response.body else None
    except ValueError:
        return "the body is not JSON"
    schema = {**media["schema"], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(body)"
    return f"{where}: {first.message}"


@web.middleware
async def response_check_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    resource = request.match_info.route.resource
    if (
        request.method == "HEAD"
        or resource is None
        or not isinstance(response, web.Response)
        or response.prepared
    ):
        return response
    problem = _problem(_document(request.app), request.method, resource.canonical, response)
    if problem is None:
        return response
    mismatch = Mismatch(request.method, resource.canonical, response.status, problem)
    MISMATCHES.append(mismatch)
    log.error(
        "response_schema_mismatch", method=request.method, path=resource.canonical, status=response.status
    )
    return web.json_response(
        {"error": {"code": "response_schema_mismatch", "message": str(mismatch)}}, status=500
    )
