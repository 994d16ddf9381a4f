"""Small shared helpers for API handlers: typed path/query parsing, typed bodies in and out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from centralita.web.bodies import read_body
from centralita.web.keys import RUNTIME
from core.errors import InvalidInput

__all__ = ["field_path", "json_body", "parse_body", "path_uuid", "query_int", "respond"]

M = TypeVar("M", bound=BaseModel)


def path_uuid(request: web.Request, name: str) -> uuid.UUID:
    raw = request.match_info.get(name, "")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a UUID", field=name) from None


def query_int(request: web.Request, name: str, default: int, *, low: int = 1, high: int = 500) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer", field=name) from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}", field=name)
    return value


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, read within the size and time bounds of ``read_body``."""
    settings = request.app[RUNTIME].settings
    raw = await read_body(request, limit=settings.max_webhook_bytes, timeout_s=settings.http_body_timeout_s)
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("the body must be a JSON object", field="body") from None
    except RecursionError:  # e.g. 100,000 "[": deeper than the parser can go
        raise InvalidInput("the body is nested too deeply", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    return body


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a JSON path: ``("items", 0, "name")`` → ``items[0].name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def invalid_input(error: ValidationError) -> InvalidInput:
    """The first problem of a validation error, as the API's 400 naming the field."""
    first = error.errors(include_url=False)[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    where = field_path(loc)
    if first["type"] == "extra_forbidden":
        return InvalidInput(f"unknown field {str(loc[-1])!r}", field=where)
    if first["type"] == "missing":
        return InvalidInput(f"{where} is required", field=where)
    message = first["msg"].removeprefix("Value error, ")
    return InvalidInput(f"{where}: {message}", field=where)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON object validated by ``model``; a 400 names the first bad field."""
    body = await json_body(request)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def respond(body: BaseModel, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Answer with a response model as JSON (the model's own fields, nothing else)."""
    return web.json_response(body.model_dump(mode="json"), status=status, headers=headers)
