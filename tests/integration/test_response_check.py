"""The response check: a handler cannot answer what its OpenAPI declaration does not say.

The whole suite runs with ``check_responses`` on (tests/conftest.py); these tests show the check
failing on purpose, on a small application of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from centralita.schemas.common import ResponseBody
from centralita.web.errors import error_middleware
from centralita.web.response_check import MISMATCHES, response_check_middleware
from centralita.web.spec import documented
from core.errors import NotFound


class Greeting(ResponseBody):
    text: str


routes = web.RouteTableDef()


@routes.get("/api/greeting/{kind}")
@documented(None, {200: ("A greeting.", Greeting)})
async def greeting(request: web.Request) -> web.Response:
    """A greeting, right or wrong on purpose."""
    kind = request.match_info["kind"]
    if kind == "extra":
        return web.json_response({"text": "hola", "phone": "+5215512345678"})
    if kind == "missing":
        return web.json_response({})
    if kind == "teapot":
        return web.json_response({"text": "hola"}, status=418)
    if kind == "gone":
        raise NotFound("no such greeting")
    return web.json_response({"text": "hola"})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[response_check_middleware, error_middleware])
    app.add_routes(routes)
    async with TestClient(TestServer(app)) as client:
        yield client
    MISMATCHES.clear()  # recorded on purpose here; the suite-wide check must not see them


async def _answer(client: TestClient, kind: str) -> tuple[int, dict[str, object]]:
    response = await client.get(f"/api/greeting/{kind}")
    return response.status, await response.json()


async def test_a_body_that_matches_its_model_goes_out_unchanged(client: TestClient) -> None:
    assert await _answer(client, "right") == (200, {"text": "hola"})
    assert MISMATCHES == []


async def test_a_field_the_model_lacks_is_answered_500_and_recorded(client: TestClient) -> None:
    status, body = await _answer(client, "extra")
    assert status == 500
    assert body["error"]["code"] == "response_schema_mismatch"  # type: ignore[index]
    assert [str(m) for m in MISMATCHES] == [
        "GET /api/greeting/{kind} → 200: (body): "
        "Additional properties are not allowed ('phone' was unexpected)"
    ]


async def test_a_missing_required_field_is_a_mismatch(client: TestClient) -> None:
    status, _ = await _answer(client, "missing")
    assert status == 500
    assert "'text' is a required property" in str(MISMATCHES[0])


async def test_a_status_the_route_does_not_declare_is_a_mismatch(client: TestClient) -> None:
    status, _ = await _answer(client, "teapot")
    assert status == 500
    assert "status 418 is not declared" in str(MISMATCHES[0])


async def test_errors_are_checked_against_the_error_model_of_their_status(client: TestClient) -> None:
    status, body = await _answer(client, "gone")  # 404 is declared for every route with a path parameter
    assert (status, body) == (404, {"error": {"code": "not_found", "message": "no such greeting"}})
    assert MISMATCHES == []
