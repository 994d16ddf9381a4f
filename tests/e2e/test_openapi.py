"""``GET /api/openapi.json`` documents exactly the routes the application serves.

Adding a route whose handler declares nothing (``@documented``) fails here; the components are
generated from the handlers' pydantic models.  The document is checked against the OpenAPI 3.1
specification with ``openapi-spec-validator``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from centralita.web.api.openapi import declared_operation, live_routes, undocumented_routes
from tests.e2e.conftest import Engine, StartEngine

PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


@pytest.fixture
async def engine(start_engine: StartEngine) -> Engine:
    return await start_engine()


async def _document(engine: Engine) -> dict[str, Any]:
    response = await engine.client.get("/api/openapi.json")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


async def test_every_route_is_documented_and_every_documented_path_is_a_route(engine: Engine) -> None:
    app = engine.client.server.app
    served = {(r.method, r.path) for r in live_routes(app)}
    documented = set(_operations(await _document(engine)))
    assert served == documented
    assert {"/healthz", "/readyz", "/webhooks/{channel}", "/api/openapi.json"} <= {p for _, p in served}


async def test_every_route_declares_its_operation_on_its_handler(engine: Engine) -> None:
    app = engine.client.server.app
    assert undocumented_routes(app) == [], "declare these handlers with @documented (centralita.web.spec)"


async def test_every_api_operation_declares_its_responses_and_bearer_security(engine: Engine) -> None:
    app = engine.client.server.app
    for (method, path), operation in _operations(await _document(engine)).items():
        if not path.startswith("/api/"):
            continue
        where = f"{method} {path}"
        declared = declared_operation(app, method, path)
        assert declared is not None, where
        statuses = set(operation["responses"])
        assert any(s.startswith("2") for s in statuses), where
        assert "default" not in statuses and not operation.get("x-undocumented"), where
        if declared.role is not None:
            assert operation["security"] == [{"bearer": []}], where
            assert {"401", "403"} <= statuses, where
        assert operation["summary"] and operation["operationId"], where


async def test_path_parameters_come_from_the_route_placeholders(engine: Engine) -> None:
    for (method, path), operation in _operations(await _document(engine)).items():
        declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert declared == PARAM.findall(path), f"{method} {path}"
        if declared:
            assert "404" in operation["responses"], f"{method} {path}"


async def test_summaries_are_the_handlers_docstrings(engine: Engine) -> None:
    operations = _operations(await _document(engine))
    assert operations[("GET", "/api/queues/stats")]["summary"] == (
        "Live statistics per queue: waiting, longest wait, agents, answered and SLA % today."
    )
    assert operations[("POST", "/api/conversations/{conversation_id}/close")]["requestBody"]["content"][
        "application/json"
    ]["schema"] == {"$ref": "#/components/schemas/CloseRequest"}


async def test_the_document_is_valid_openapi_3_1(engine: Engine) -> None:
    document = await _document(engine)
    assert document["openapi"].startswith("3.1")
    validate(document)
