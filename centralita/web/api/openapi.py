"""``GET /api/openapi.json``: an OpenAPI 3.1 document of the whole HTTP API, built from the live routes.

The paths come from the application's router table, so the document never lists a route that
does not exist.  Each operation's summary is its handler's docstring (first line); path
parameters come from the ``{name}`` placeholders; ``/api/*`` operations need a bearer token.
What the router table cannot tell — the least role, query parameters, the request and response
models — each handler declares with ``@documented`` (``centralita.web.spec``), and
``components.schemas`` is generated from those pydantic models (``centralita.schemas``).

``tests/e2e/test_openapi.py`` fails when a route's handler declares nothing; the suite-wide
response check (``centralita/web/response_check.py``) fails when a handler answers a status or a
body its declaration does not say.  ``HEAD`` routes (aiohttp adds one per ``GET``) are left out.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from centralita.schemas.common import ErrorResponse
from centralita.web.spec import Operation, Schema, Shape, documented, operation_of

__all__ = [
    "LiveRoute",
    "Operation",
    "build_document",
    "declared_operation",
    "live_routes",
    "routes",
    "undocumented_routes",
]

routes = web.RouteTableDef()


OPENAPI_VERSION = "3.1.0"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


UUID: Schema = {"type": "string", "format": "uuid"}
_JSON = ("application/json",)


# ------------------------------------------------------------------------------------ building


@dataclass(frozen=True, slots=True)
class LiveRoute:
    method: str
    path: str
    handler: Any


def live_routes(app: web.Application) -> list[LiveRoute]:
    """Every (method, path) the application serves, sub-applications included, ``HEAD`` left out."""
    return sorted(_walk(app), key=lambda r: (r.path, r.method))


def _walk(app: web.Application) -> Iterator[LiveRoute]:
    for resource in app.router.resources():
        sub = getattr(resource, "_app", None)
        if isinstance(sub, web.Application):  # a mounted sub-application: its paths carry the prefix
            yield from _walk(sub)
            continue
        for route in resource:
            if route.method in ("HEAD", "*"):
                continue
            yield LiveRoute(route.method, resource.canonical, route.handler)


def _declared(route: LiveRoute) -> Operation | None:
    """The route's declaration, on its handler (``@documented``)."""
    return operation_of(route.handler)


def undocumented_routes(app: web.Application) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in live_routes(app) if _declared(r) is None]


def declared_operation(app: web.Application, method: str, path: str) -> Operation | None:
    for route in live_routes(app):
        if (route.method, route.path) == (method, path):
            return _declared(route)
    return None


def _summary(handler: Any, op: Operation | None) -> str:
    doc = inspect.getdoc(handler)
    if doc:
        return doc.strip().split("\n\n", 1)[0].replace("\n", " ")
    if op is not None and op.summary:
        return op.summary
    return str(getattr(handler, "__name__", "operation")).replace("_", " ").capitalize()


_ROLE_TEXT = {
    "agent": "Any token of the workspace (agent, supervisor or admin).",
    "supervisor": "A supervisor's or admin's token.",
    "admin": "An admin's token.",
}

_Mode = Literal["validation", "serialization"]


class _Models:
    """The models the operations name, turned into ``components.schemas`` in one pass."""

    def __init__(self) -> None:
        self.pairs: list[tuple[type[BaseModel], _Mode]] = []
        self.refs: dict[tuple[type[BaseModel], _Mode], Schema] = {}
        self.defs: dict[str, Schema] = {}

    def note(self, shape: Shape, mode: _Mode) -> None:
        if isinstance(shape, type) and issubclass(shape, BaseModel) and (shape, mode) not in self.pairs:
            self.pairs.append((shape, mode))

    def build(self) -> None:
        if not self.pairs:
            return
        refs, top = models_json_schema(self.pairs, ref_template="#/components/schemas/{model}")
        self.refs = {(model, mode): dict(refs[(model, mode)]) for model, mode in self.pairs}
        self.defs = dict(top.get("$defs", {}))

    def schema(self, shape: Shape, mode: _Mode) -> Schema | None:
        if shape is None:
            return None
        if isinstance(shape, dict):
            return shape
        return self.refs[(shape, mode)]


def _content(schema: Schema | None, types: tuple[str, ...]) -> dict[str, Any]:
    return {t: {"schema": schema if schema is not None else {}} for t in types}


def _operation(route: LiveRoute, op: Operation | None, used_ids: set[str], models: _Models) -> dict[str, Any]:
    module = str(getattr(route.handler, "__module__", "")).rsplit(".", 1)[-1]
    name = str(getattr(route.handler, "__name__", route.method.lower()))
    operation_id = f"{module}.{name}"
    while operation_id in used_ids:
        operation_id += "_"
    used_ids.add(operation_id)
    out: dict[str, Any] = {
        "operationId": operation_id,
        "summary": _summary(route.handler, op),
        "tags": [module],
    }
    params = [
        {
            "name": p,
            "in": "path",
            "required": True,
            "schema": UUID if p.endswith("_id") else {"type": "string"},
        }
        for p in _PARAM.findall(route.path)
    ]
    responses: dict[str, Any] = {}
    bearer = route.path.startswith("/api/") or route.path.startswith("/ws/")
    error = _content(models.schema(ErrorResponse, "serialization"), _JSON)
    if op is None:
        out["x-undocumented"] = True
        responses["default"] = {"description": "Not documented yet.", "content": _content(None, _JSON)}
    else:
        params += [p.to_dict() for p in op.query]
        if op.description:
            out["description"] = op.description
        for status, (text, shape) in op.responses.items():
            kinds = op.response_types if 200 <= status < 300 else ("application/json",)
            responses[str(status)] = {"description": text}
            schema = models.schema(shape, "serialization")
            if schema is not None:
                responses[str(status)]["content"] = _content(schema, kinds)
        for status, text in op.extra_errors.items():
            responses.setdefault(str(status), {"description": text, "content": error})
        if op.body is not None:
            out["requestBody"] = {
                "required": op.body_required,
                "content": _content(models.schema(op.body, "validation"), op.body_types),
            }
            responses.setdefault("408", {"description": "The body did not arrive in time.", "content": error})
            responses.setdefault("413", {"description": "The body is too large.", "content": error})
        if op.role is not None:
            out["x-role"] = op.role
            out["description"] = (
                out.get("description", "") + f"\n\nAuthorization: {op.authorization or _ROLE_TEXT[op.role]}"
            ).strip()
    if bearer and not (op is not None and op.role is None):
        responses.setdefault(
            "401", {"description": "No token, or an unknown, revoked or expired one.", "content": error}
        )
        responses.setdefault(
            "403", {"description": "The token's role is not enough for this operation.", "content": error}
        )
        out["security"] = [{"bearer": []}]
    else:
        out["security"] = []
    if params and any(p["in"] == "path" for p in params):
        responses.setdefault("404", {"description": "No such id in the token's workspace.", "content": error})
    if op is not None and (op.body is not None or op.query):
        responses.setdefault("400", {"description": "Invalid input; field names it.", "content": error})
    responses.setdefault("500", {"description": "An unexpected failure; it was logged.", "content": error})
    responses.setdefault(
        "503",
        {
            "description": "The database or the broker is unavailable: retry after Retry-After.",
            "content": error,
        },
    )
    if params:
        out["parameters"] = params
    out["responses"] = dict(sorted(responses.items()))
    return out


def build_document(app: web.Application, *, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app`` as it is routed now."""
    routes_now = live_routes(app)
    models = _Models()
    models.note(ErrorResponse, "serialization")
    for route in routes_now:
        op = _declared(route)
        if op is not None:
            models.note(op.body, "validation")
            for _text, shape in op.responses.values():
                models.note(shape, "serialization")
    models.build()
    paths: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for route in routes_now:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route, _declared(route), used, models
        )
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Centralita",
            "version": "0.1.0",
            "summary": "Omnichannel contact-center routing engine.",
            "description": (
                "See docs/api.md for examples, roles, errors, pagination and the WebSocket protocol."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": paths,
        "components": {
            "schemas": models.defs,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (centralita token issue); roles agent < supervisor < admin.",
                }
            },
        },
    }
    if server_url is not None:
        document["servers"] = [{"url": server_url}]
    return document


@routes.get("/api/openapi.json")
@documented(None, {200: ("This document.", {"type": "object"})})
async def openapi_document(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 document (public: it holds no workspace data)."""
    return web.json_response(build_document(request.app))
