"""``GET/POST /webhooks/{channel}``: the provider-facing edge, the same for every adapter."""

from __future__ import annotations

from aiohttp import web

from centralita.schemas.webhooks import WebhookAccepted
from centralita.web.api._json import respond
from centralita.web.bodies import read_body
from centralita.web.keys import INGRESS, RUNTIME
from centralita.web.spec import Param, documented
from core.channel import WebhookRequest
from core.errors import CentralitaError

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
@documented(
    None,
    {200: ("The provider's challenge, echoed (Meta's hub.challenge handshake).", {"type": "string"})},
    query=(
        Param("hub.mode", "subscribe"),
        Param("hub.verify_token", "The account's verify token."),
        Param("hub.challenge", "Echoed back on success."),
    ),
    response_type="text/plain",
    extra_errors={403: "The verify token does not match.", 404: "No adapter for that channel."},
)
async def handshake(request: web.Request) -> web.Response:
    """Answer a provider's webhook verification handshake."""
    challenge = request.app[INGRESS].handshake(request.match_info["channel"], _webhook_request(request, b""))
    return web.Response(text=challenge, content_type="text/plain")


@routes.post("/webhooks/{channel}")
@documented(
    None,
    {200: ("Verified and durably queued (never before).", WebhookAccepted)},
    body={"description": "The provider's raw delivery, exactly as sent (signed bytes)."},
    body_types=("application/json", "message/rfc822"),
    extra_errors={
        400: "The body does not parse.",
        401: "The signature (X-Hub-Signature-256 or token) does not verify.",
        404: "No adapter for that channel.",
        413: "The body is too large.",
        503: "The broker is down: retry later.",
    },
)
async def receive(request: web.Request) -> web.Response:
    """Receive a provider's signed delivery: verify, queue durably, acknowledge."""
    runtime = request.app[RUNTIME]
    settings = runtime.settings
    channel = request.match_info["channel"]
    counted = channel if channel in runtime.adapters.names() else "unknown"  # no caller-made labels
    try:
        body = await read_body(
            request, limit=settings.max_webhook_bytes, timeout_s=settings.http_body_timeout_s
        )
        accepted = await request.app[INGRESS].receive(channel, _webhook_request(request, body))
    except CentralitaError as exc:
        runtime.metrics.webhook_refused(counted, exc.code)
        raise
    runtime.metrics.webhook_accepted(counted)
    return respond(WebhookAccepted.of(accepted))
