"""``/healthz``: the process is alive.  ``/readyz``: the database and the broker answer now."""

from __future__ import annotations

import asyncio

from aiohttp import web

from centralita.web.keys import RUNTIME
from core.errors import ServiceUnavailable

__all__ = ["routes"]

routes = web.RouteTableDef()


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
    checks = {name: ("ok" if err is None else err) for name, err in results}
    down = [name for name, err in results if err is not None]
    if down:
        return web.json_response(
            {
                "status": "unavailable",
                "checks": checks,
                "error": {"code": "unavailable", "message": f"not ready: {', '.join(down)} unreachable"},
            },
            status=503,
        )
    return web.json_response({"status": "ready", "checks": checks})
