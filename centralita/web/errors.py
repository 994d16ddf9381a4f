"""Every error leaves as ``{"error": {"code", "message", "field"?}}`` with the right status.

A 503 carries ``Retry-After`` (``Settings.retry_after_s``); a 408 closes the connection; a
client that went away mid-request is logged at INFO.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from centralita.web.keys import RUNTIME
from core.errors import (
    CentralitaError,
    ClientDisconnected,
    RequestTimeout,
    ServiceUnavailable,
    TooManyAttempts,
)
from core.logging import get_logger

__all__ = ["error_middleware", "json_error"]

log = get_logger("centralita.http")

_HTTP_CODES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def json_error(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body: dict[str, object] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        # A database that is down or meets a conflict arrives translated by the storage edge
        # (DatabaseUnavailable, DatabaseConflict: 503 + Retry-After below); data the database
        # refuses stays an unexpected 500.
        return await handler(request)
    except ClientDisconnected as exc:
        # Nobody is left to answer, and the failure is not ours: INFO, no traceback.
        log.info("client_disconnected", path=request.path, method=request.method, reason=exc.message)
        return web.json_response(exc.to_dict(), status=exc.http_status)
    except CentralitaError as exc:
        headers: dict[str, str] = {}
        if isinstance(exc, ServiceUnavailable):
            # Meta and most providers honour Retry-After: back off instead of hammering a full queue.
            runtime = request.app.get(RUNTIME)
            headers["Retry-After"] = str(runtime.settings.retry_after_s if runtime else 5)
        if isinstance(exc, TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after_s)
        if exc.http_status >= 500:
            log.warning("request_failed", path=request.path, code=exc.code, status=exc.http_status)
        response = web.json_response(exc.to_dict(), status=exc.http_status, headers=headers)
        if isinstance(exc, RequestTimeout):
            response.force_close()  # a client too slow to send its body gets no keep-alive
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return json_error(exc.status, code, exc.reason)
    except Exception:  # the one place that turns an unexpected failure into a JSON 500
        log.exception("unhandled_error", path=request.path, method=request.method)
        return json_error(500, "internal", "internal error; the failure was logged")
