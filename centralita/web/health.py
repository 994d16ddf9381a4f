"""``/healthz``: the process is alive.  ``/readyz``: the process can do its work now.

Ready means the database and the broker answer, every supervised worker of the process
(``Runtime.workers``: pipeline lanes, routers and their heartbeats) is running, and every
consumer is attached to the broker (the transport's ``detached_consumers()``: pipeline lanes,
routers' ``route.<ws>``, outbound, the agents' queues, the config watch).  Otherwise 503, with
``checks`` naming what is down and ``workers`` giving each worker's state.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from aiohttp import web

from centralita.schemas.health import (
    Health,
    NotReady,
    NotReadyError,
    Readiness,
    ReadinessChecks,
    WorkerStatus,
)
from centralita.web.api._json import respond
from centralita.web.keys import RUNTIME
from centralita.web.spec import documented
from core.errors import ServiceUnavailable

__all__ = ["routes"]

routes = web.RouteTableDef()


@runtime_checkable
class _ReportsConsumers(Protocol):
    def detached_consumers(self) -> list[str]: ...


@routes.get("/healthz")
@documented(None, {200: ("The process is alive.", Health)})
async def healthz(_request: web.Request) -> web.Response:
    """The process is alive."""
    return respond(Health())


@routes.get("/readyz")
@documented(
    None,
    {
        200: ("The database and the broker answer, workers run, consumers are attached.", Readiness),
        503: ("A dependency, a worker or a consumer is down; checks name it.", NotReady),
    },
)
async def readyz(request: web.Request) -> web.Response:
    """The process can do its work now: database, broker, workers and consumers."""
    runtime = request.app[RUNTIME]

    async def check(name: str, ping: object) -> tuple[str, str | None]:
        try:
            await ping()  # type: ignore[operator]
        except ServiceUnavailable as exc:
            return name, exc.message
        return name, None

    results = await asyncio.gather(
        check("database", runtime.database.ping), check("broker", runtime.transport.ping)
    )
    (_, database_error), (_, broker_error) = results
    down = [f"{name} unreachable" for name, err in results if err is not None]

    workers = runtime.workers.all()
    sick = [w for w in workers if not w.healthy]
    down.extend(f"worker {w.name} {w.state.value}" for w in sick)

    transport = runtime.transport
    detached = transport.detached_consumers() if isinstance(transport, _ReportsConsumers) else []
    down.extend(f"consumer {name} detached" for name in detached)

    checks = ReadinessChecks(
        database="ok" if database_error is None else database_error,
        broker="ok" if broker_error is None else broker_error,
        workers="ok" if not sick else ", ".join(f"{w.name} {w.state.value} ({w.last_error})" for w in sick),
        consumers="ok" if not detached else f"detached: {', '.join(detached)}",
    )
    statuses = {w.name: WorkerStatus.of(w) for w in workers}
    if down:
        error = NotReadyError(message=f"not ready: {', '.join(down)}")
        return respond(NotReady(checks=checks, workers=statuses, error=error), status=503)
    return respond(Readiness(status="ready", checks=checks, workers=statuses))
