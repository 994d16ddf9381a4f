"""``GET/POST /webhooks/{channel}``: the provider-facing edge, the same for every adapter."""

from __future__ import annotations

from aiohttp import web

from centralita.web.keys import INGRESS, RUNTIME
from core.channel import WebhookRequest
from core.errors import PayloadTooLarge

__all__ = ["routes"]

routes = web.RouteTableDef()


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes", field="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


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
    limit = request.app[RUNTIME].settings.max_webhook_bytes
    body = await _read_body(request, limit)
    accepted = await request.app[INGRESS].receive(
        request.match_info["channel"], _webhook_request(request, body)
    )
    return web.json_response(
        {"status": "accepted", "raw_delivery_id": str(accepted.raw_delivery_id), "events": accepted.events}
    )
