"""Small shared helpers for API handlers: typed path/query parsing and JSON bodies."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from centralita.web.bodies import read_body
from centralita.web.keys import RUNTIME
from core.errors import InvalidInput

__all__ = ["json_body", "path_uuid", "query_int"]


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
