"""``GET /metrics``: the runtime's Prometheus series, and the middleware that counts requests.

Who may scrape (docs/metrics.md): with ``CENTRALITA_METRICS_TOKEN`` set, a request must carry
``Authorization: Bearer <token>`` (compared in constant time), else 401.  Without a token the
series are served only with ``CENTRALITA_METRICS_PUBLIC=true`` (a port only the monitoring
network reaches); otherwise ``/metrics`` answers 404, as if it did not exist.

Every request is counted under its route's template (``/api/conversations/{conversation_id}``,
never the raw path), ``unmatched`` for a path no route serves, so labels carry no ids.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import generate_latest

from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import AuthenticationRequired, NotFound
from storage.queue_now import queues_now
from storage.webhooks import WebhookStore

__all__ = ["CONTENT_TYPE", "metrics_middleware", "route_label", "routes"]

# The classic Prometheus text format, which every scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

routes = web.RouteTableDef()


def route_label(request: web.Request) -> str:
    """The matched route's template; ``unmatched`` when no route serves the path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count each request by method, route template and status, and time it (outermost, so the
    status is the one the error middleware answered)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away before the answer (nginx's "client closed request")
        raise
    finally:
        runtime = request.config_dict.get(RUNTIME)
        if runtime is not None:
            runtime.metrics.http_request(
                request.method, route_label(request), status, time.perf_counter() - started
            )


def _allowed(request: web.Request) -> None:
    settings = request.app[RUNTIME].settings
    token = settings.metrics_token
    if token is None:
        if not settings.metrics_public:
            raise NotFound("no such resource")
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise AuthenticationRequired("the metrics token is missing or wrong")


@routes.get("/metrics")
@documented(
    None,
    {200: ("The series in the Prometheus text format (docs/metrics.md).", {"type": "string"})},
    response_type="text/plain",
    authorization="CENTRALITA_METRICS_TOKEN as a bearer token when set; else open only with "
    "CENTRALITA_METRICS_PUBLIC=true.",
    extra_errors={
        401: "A metrics token is set and the request does not bear it.",
        404: "No metrics token is set and CENTRALITA_METRICS_PUBLIC is false.",
    },
)
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics: requests, webhooks, pipeline, router, outbound, queues and event delivery."""
    _allowed(request)
    runtime = request.app[RUNTIME]
    async with runtime.database.session() as session:
        queues = await queues_now(session)
        backlog = await WebhookStore(session).backlog_by_workspace()
    runtime.metrics.set_queues(queues, runtime.clock())
    runtime.metrics.set_backlog(backlog)
    return web.Response(
        body=generate_latest(runtime.metrics.registry), headers={"Content-Type": CONTENT_TYPE}
    )
