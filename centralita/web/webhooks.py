"""``GET/POST /webhooks/{channel}``: the provider-facing edge, the same for every adapter."""

from __future__ import annotations

from aiohttp import web

from centralita.web.bodies import read_body
from centralita.web.keys import INGRESS, RUNTIME
from core.channel import WebhookRequest

__all__ = ["routes"]

routes = web.RouteTableDef()


def _webhook_request(request: web.Request, body: bytes) -> WebhookRequest:
    return WebhookRequest(
        method=request.method,
        path=request.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query),
        body=body,
        remote=request.remote,
    )


@routes.get("/webhooks/{channel}")
async def handshake(request: web.Request) -> web.Response:
    challenge = request.app[INGRESS].handshake(request.match_info["channel"], _webhook_request(request, b""))
    return web.Response(text=challenge, content_type="text/plain")


@routes.post("/webhooks/{channel}")
async def receive(request: web.Request) -> web.Response:
    settings = request.app[RUNTIME].settings
    body = await read_body(request, limit=settings.max_webhook_bytes, timeout_s=settings.http_body_timeout_s)
    accepted = await request.app[INGRESS].receive(
        request.match_info["channel"], _webhook_request(request, body)
    )
    return web.json_response(
        {"status": "accepted", "raw_delivery_id": str(accepted.raw_delivery_id), "events": accepted.events}
    )
