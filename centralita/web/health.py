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

from centralita.web.keys import RUNTIME
from core.errors import ServiceUnavailable

__all__ = ["routes"]

routes = web.RouteTableDef()


@runtime_checkable
class _ReportsConsumers(Protocol):
    def detached_consumers(self) -> list[str]: ...


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
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
    checks: dict[str, str] = {name: ("ok" if err is None else err) for name, err in results}
    down = [f"{name} unreachable" for name, err in results if err is not None]

    workers = runtime.workers.all()
    sick = [w for w in workers if not w.healthy]
    checks["workers"] = (
        "ok" if not sick else ", ".join(f"{w.name} {w.state.value} ({w.last_error})" for w in sick)
    )
    down.extend(f"worker {w.name} {w.state.value}" for w in sick)

    transport = runtime.transport
    detached = transport.detached_consumers() if isinstance(transport, _ReportsConsumers) else []
    checks["consumers"] = "ok" if not detached else f"detached: {', '.join(detached)}"
    down.extend(f"consumer {name} detached" for name in detached)

    body: dict[str, object] = {
        "status": "ready" if not down else "unavailable",
        "checks": checks,
        "workers": {
            w.name: {
                "state": w.state.value,
                "since": w.since.isoformat(),
                "last_error": w.last_error,
                "restarts": w.restarts,
            }
            for w in workers
        },
    }
    if down:
        body["error"] = {"code": "unavailable", "message": f"not ready: {', '.join(down)}"}
        return web.json_response(body, status=503)
    return web.json_response(body)
