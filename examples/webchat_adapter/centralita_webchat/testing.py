"""What the shared conformance suite needs: ``conformance_kit()`` and a loopback widget peer.

``WebChatPeer`` plays the site's chat server: an aiohttp app on 127.0.0.1 (port 0) that takes the
adapter's signed replies on any path, checks the signature with the site's secret, records every
request (refused ones too) in ``received`` and answers ``{"id": ...}`` — or the next queued
failure (``{"status", "body", "times"}``) from ``failures``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from centralita_webchat.signature import SIGNATURE_HEADER, sign_body
from core.channel import AdapterContext, ChannelAccount, WebhookRequest
from core.conformance import ConformanceKit, ErrorCase, LoopbackPeer, Sample
from core.errors import PermanentChannelError, TransientChannelError
from core.events import Address, AddressKind, OutboundMessage
from core.ids import CampaignId, ChannelAccountId, MessageId, WorkspaceId

__all__ = ["FIXTURES", "WebChatKit", "WebChatPeer", "conformance_kit", "fixture", "sign_request"]

FIXTURES = Path(__file__).parent / "fixtures"
SITE = "site-posgrados"
OTHER_SITE = "site-cobranza"
SECRETS = {SITE: "wc-secret-posgrados-5d1e", OTHER_SITE: "wc-secret-cobranza-90ab"}
_WORKSPACE = WorkspaceId(uuid.UUID("0190a000-0000-7000-8000-0000000000c1"))


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def sign_request(body: bytes, secret: str, path: str = "/webhooks/webchat") -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        path=path,
        headers={SIGNATURE_HEADER: sign_body(body, secret), "content-type": "application/json"},
        query={},
        body=body,
        remote="127.0.0.1",
    )


# ------------------------------------------------------------------ the loopback widget peer


class WebChatPeer:
    def __init__(self, site_secrets: Mapping[str, str], *, host: str = "127.0.0.1"):
        self.secrets = dict(site_secrets)
        self.host = host
        self.received: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._arrived = asyncio.Condition()

    async def __aenter__(self) -> WebChatPeer:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._callback)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the peer is not started")
        return f"http://{self.host}:{self._port}"

    def context(self, *, send_retries: int = 3) -> AdapterContext:
        """An ``AdapterContext`` that sends every callback here, with millisecond backoff."""
        return AdapterContext(
            send_retries=send_retries,
            http_timeout_s=2.0,
            extra={"webchat_callback_origin": self.base_url, "webchat_retry_initial_s": 0.001},
        )

    async def wait_for(self, count: int, within_s: float = 5.0) -> list[dict[str, Any]]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.received) >= count), within_s)
        return list(self.received)

    def _failure(self) -> dict[str, Any] | None:
        if not self.failures:
            return None
        head = self.failures[0]
        if int(head.get("times", 1)) <= 1:
            self.failures.pop(0)
        else:
            head["times"] = int(head["times"]) - 1
        return head

    async def _callback(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            payload: Any = json.loads(raw)
        except ValueError:
            payload = None
        site = payload.get("site_id") if isinstance(payload, dict) else None
        expected = sign_body(raw, self.secrets.get(str(site), secrets.token_hex(8)))
        signature_ok = hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), expected)
        failure = self._failure()
        if failure is not None:
            status, body = int(failure["status"]), dict(failure.get("body") or {})
        elif not signature_ok:
            status, body = 401, {"error": {"code": "bad_signature", "message": "signature does not verify"}}
        elif not (isinstance(payload, dict) and payload.get("session_id") and payload.get("text")):
            status, body = (
                400,
                {"error": {"code": "bad_request", "message": "session_id and text are required"}},
            )
        else:
            status, body = 200, {"id": "wc-out-" + hashlib.sha256(raw).hexdigest()[:16]}
        entry = {"path": request.path, "json": payload, "signature_ok": signature_ok, "status": status}
        async with self._arrived:
            self.received.append(entry)
            self._arrived.notify_all()
        return web.json_response(body, status=status)


# ------------------------------------------------------------------ the conformance kit


_EXPECTED: dict[str, dict[str, Any]] = {
    "text": {
        "channel": "webchat",
        "kind": "message",
        "external_id": "wc-msg-0001",
        "sender": "sess-7f3a9c21d4",
        "business_address": SITE,
        "text": "Hola, ¿cuándo cierran las inscripciones?",
        "timestamp": "2026-03-03T16:15:28Z",
        "attachments": [],
    },
    "visitor_name": {
        "kind": "message",
        "external_id": "wc-msg-0002",
        "sender_name": "María López",
        "text": "Soy María, escribí ayer por el MBA 👋",
        "timestamp": "2026-03-03T16:16:02.250000Z",
    },
    "second_site": {"kind": "message", "business_address": OTHER_SITE, "sender": "sess-0b81e44a90"},
}


class WebChatKit:
    channel = "webchat"

    def accounts(self) -> Sequence[ChannelAccount]:
        return [
            ChannelAccount(
                id=ChannelAccountId(uuid.UUID(f"0190a000-0000-7000-8000-0000000000d{n}")),
                workspace_id=_WORKSPACE,
                campaign_id=CampaignId(uuid.UUID("0190a000-0000-7000-8000-0000000000c2")),
                channel="webchat",
                address=site,
                app_secret=SECRETS[site],
                settings={"callback_url": f"https://chat.{site}.example/centralita/replies"},
            )
            for n, site in enumerate((SITE, OTHER_SITE), start=1)
        ]

    def sign(self, body: bytes) -> WebhookRequest:
        return sign_request(body, SECRETS[SITE])

    def samples(self) -> Sequence[Sample]:
        out = []
        for name, expected in _EXPECTED.items():
            body = fixture(name)
            site = json.loads(body)["site_id"]
            out.append(Sample(name=name, request=sign_request(body, SECRETS[site]), expected=[expected]))
        return out

    def tampered(self, request: WebhookRequest) -> WebhookRequest:
        return replace(request, body=request.body.replace(b"Hola", b"H0la", 1) + b" ")

    def malformed_bodies(self) -> Sequence[bytes]:
        good = json.loads(fixture("text"))

        def variant(**changes: Any) -> bytes:
            data = {**good, **changes}
            return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()

        return [
            b"",
            b"no es json",
            b"\xff\xfe\x00",
            b"[]",
            b"null",
            b"[" * 50_000 + b"]" * 50_000,
            fixture("text")[:40],
            variant(text=...),
            variant(text=""),
            variant(text=["hola"]),
            variant(session_id=None),
            variant(message_id=7),
            variant(sent_at="ayer"),
            variant(sent_at="2026-03-03T16:15:28"),
            variant(visitor_name={"first": "Ana"}),
            variant(text="x" * 5000),
        ]

    def peer(self) -> AbstractAsyncContextManager[LoopbackPeer]:
        return self._peer()

    @asynccontextmanager
    async def _peer(self) -> AsyncIterator[LoopbackPeer]:
        async with WebChatPeer(SECRETS) as peer:
            yield LoopbackPeer(context=peer.context(), received=peer.received, failures=peer.failures)

    def outbound(self, account: ChannelAccount) -> Sequence[OutboundMessage]:
        return [
            OutboundMessage(
                message_id=MessageId(uuid.UUID(f"0190a000-0000-7000-8000-0000000000e{n}")),
                workspace_id=account.workspace_id,
                channel="webchat",
                business_address=account.address,
                recipient=Address(kind=AddressKind.EXTERNAL, value="sess-7f3a9c21d4", scope=account.address),
                text=text,
                reply_to=reply_to,
            )
            for n, (text, reply_to) in enumerate(
                (("¡Hola! Las inscripciones cierran el 15 de marzo.", None), ("Con gusto.", "wc-msg-0001"))
            )
        ]

    def check_received(
        self, message: OutboundMessage, account: ChannelAccount, received: Sequence[dict[str, Any]]
    ) -> None:
        last = received[-1]
        if last["status"] != 200 or not last["signature_ok"]:
            raise AssertionError(f"the widget refused the reply: {last}")
        if last["path"] != "/centralita/replies":
            raise AssertionError(f"posted to {last['path']!r}, not the site's callback path")
        body = last["json"]
        expected = {
            "site_id": account.address,
            "session_id": message.recipient.value,
            "message_id": str(message.message_id),
            "text": message.text,
        }
        if {k: body.get(k) for k in expected} != expected:
            raise AssertionError(f"wrong reply body: {body}")
        if message.reply_to and body.get("reply_to") != message.reply_to:
            raise AssertionError("the quoted message was not sent")

    def error_cases(self) -> Sequence[ErrorCase]:
        def failure(status: int, code: str, times: int = 1) -> dict[str, Any]:
            return {"status": status, "times": times, "body": {"error": {"code": code, "message": code}}}

        return [
            ErrorCase("rate_limited_429", failure(429, "rate_limited", times=10), TransientChannelError),
            ErrorCase("unavailable_503", failure(503, "maintenance", times=10), TransientChannelError),
            ErrorCase("session_gone_404", failure(404, "session_not_found"), PermanentChannelError),
            ErrorCase("bad_secret_401", failure(401, "bad_signature"), PermanentChannelError),
        ]


def conformance_kit() -> ConformanceKit:
    return WebChatKit()
