"""``create_app(settings)``: the HTTP application, every resource opened in ``cleanup_ctx``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from centralita import console
from centralita.runtime import Clock, open_runtime, utc_now
from centralita.web import health, metrics, wall, webhooks, ws
from centralita.web.api import all_routes
from centralita.web.errors import error_middleware
from centralita.web.keys import FOLLOWUPS, INGRESS, OUTBOUND, PIPELINE, RUNTIME, SURVEYS
from centralita.workers import process_roles, start_workers
from core.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings, *, clock: Clock = utc_now) -> web.Application:
    app = web.Application(
        middlewares=[metrics.metrics_middleware, error_middleware],
        client_max_size=settings.max_webhook_bytes + 1,
    )

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with (
            open_runtime(settings, clock=clock) as runtime,
            start_workers(runtime, process_roles(settings)) as workers,
        ):
            app[RUNTIME] = runtime
            app[INGRESS] = workers.ingress
            if workers.runs("pipeline"):
                app[PIPELINE] = workers.pipeline
            if workers.followups is not None:
                app[FOLLOWUPS] = workers.followups
            if workers.surveys is not None:
                app[SURVEYS] = workers.surveys
            if workers.outbound is not None:
                app[OUTBOUND] = workers.outbound
            yield

    app.cleanup_ctx.append(runtime_ctx)
    ws.setup(app)
    wall.setup(app)
    app.add_routes(health.routes)
    app.add_routes(metrics.routes)
    app.add_routes(webhooks.routes)
    console.setup(app)
    for routes in all_routes():
        app.add_routes(routes)
    return app
