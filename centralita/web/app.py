"""``create_app(settings)``: the HTTP application, every resource opened in ``cleanup_ctx``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

from aiohttp import web

from centralita.config_watch import ConfigWatcher
from centralita.followups import FollowUpScheduler
from centralita.ingress import Ingress
from centralita.outbound import OutboundWorker
from centralita.pipeline.worker import Pipeline
from centralita.runtime import Clock, open_runtime, utc_now
from centralita.web import health, webhooks, ws
from centralita.web.api import all_routes
from centralita.web.errors import error_middleware
from centralita.web.response_check import response_check_middleware
from centralita.web.keys import FOLLOWUPS, INGRESS, OUTBOUND, PIPELINE, RUNTIME
from core.channel import ListeningAdapter
from core.settings import Settings
from router.service import RouterSupervisor

__all__ = ["create_app"]


def create_app(settings: Settings, *, clock: Clock = utc_now) -> web.Application:
    middlewares = [response_check_middleware, error_middleware] if settings.check_responses else [error_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_webhook_bytes + 1)

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_runtime(settings, clock=clock) as runtime:
            app[RUNTIME] = runtime
            ingress = Ingress(
                runtime.adapters, runtime.directory, runtime.transport, settings.ingest_partitions, clock
            )
            app[INGRESS] = ingress
            async with AsyncExitStack() as stack:
                if settings.runs("pipeline"):
                    pipeline = Pipeline(runtime)
                    await pipeline.start()
                    stack.push_async_callback(pipeline.stop)
                    app[PIPELINE] = pipeline
                if settings.runs("followups"):
                    followups = FollowUpScheduler(runtime)
                    await followups.start()
                    stack.push_async_callback(followups.stop)
                    app[FOLLOWUPS] = followups
                if settings.runs("config"):
                    watcher = ConfigWatcher(runtime)
                    await watcher.start()
                    stack.push_async_callback(watcher.stop)
                if settings.runs("outbound"):
                    outbound = OutboundWorker(runtime)
                    await outbound.start()
                    stack.push_async_callback(outbound.stop)
                    app[OUTBOUND] = outbound
                if settings.runs("router"):
                    routers = RouterSupervisor(runtime)
                    await routers.start()
                    stack.push_async_callback(routers.stop)
                for _name, adapter in runtime.adapters.items():
                    if isinstance(adapter, ListeningAdapter):
                        await adapter.start_listener(ingress, runtime.directory)
                        stack.push_async_callback(adapter.stop_listener)
                yield

    app.cleanup_ctx.append(runtime_ctx)
    ws.setup(app)
    app.add_routes(health.routes)
    app.add_routes(webhooks.routes)
    for routes in all_routes():
        app.add_routes(routes)
    return app
