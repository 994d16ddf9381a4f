"""Test support shipped with the adapter: a loopback SMTP peer and the conformance kit.

``smtp_peer()`` runs an aiosmtpd server on 127.0.0.1 (a free port) that records every attempt
in ``peer.received`` — refused ones too (``accepted: False``, the ``code`` and ``stage``), so a
retry is visible — and every accepted mail decoded (envelope, headers, text, raw; see
``peer.delivered`` for only those).  It fails attempts on demand:
``peer.fail_next(times, code, message, stage=...)`` or, as the conformance suite does,
``peer.failures.append({"code": 451, "message": "...", "times": 3, "stage": "rcpt"})``.  A failure
answers ``times`` SMTP attempts (one per retry) at ``stage`` (``mail``, ``rcpt`` — the default —
or ``data``), then is used up.

``conformance_kit()`` is what ``tests/contract/test_adapter_conformance.py`` loads.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from uuid import UUID

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from core.channel import AdapterContext, ChannelAccount, WebhookRequest
from core.conformance import ConformanceKit, ErrorCase, LoopbackPeer, Sample
from core.errors import PermanentChannelError, TransientChannelError
from core.events import Address, AddressKind, OutboundMessage
from core.ids import CampaignId, ChannelAccountId, MessageId, WorkspaceId

__all__ = [
    "FIXTURES",
    "EmailConformanceKit",
    "SmtpPeer",
    "conformance_kit",
    "fixture",
    "smtp_peer",
]

FIXTURES = Path(__file__).parent / "fixtures"
WEBHOOK_PATH = "/webhooks/email"
SHARED_TOKEN = "tok-email-compartido-4f1d2c9a7b"
WORKSPACE = WorkspaceId(UUID("0198f000-0000-7000-8000-00000000e001"))
CAMPAIGN = CampaignId(UUID("0198f000-0000-7000-8000-00000000e002"))


def fixture(name: str) -> bytes:
    """The raw bytes of ``fixtures/<name>`` (``.eml`` added when missing)."""
    path = FIXTURES / (name if name.endswith(".eml") else f"{name}.eml")
    return path.read_bytes()


# ------------------------------------------------------------------ loopback SMTP peer


@dataclass
class SmtpPeer(LoopbackPeer):
    """A running loopback SMTP server; ``context`` points an ``EmailAdapter`` at it."""

    host: str = "127.0.0.1"
    port: int = 0
    attempts: int = 0  # SMTP transactions started (MAIL FROM), failed ones included
    logins: list[str] = field(default_factory=list)  # users that authenticated (AUTH PLAIN/LOGIN)
    _active: dict[str, Any] | None = field(default=None, repr=False)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """The mails the peer accepted (``received`` minus refused attempts)."""
        return [entry for entry in self.received if entry.get("accepted")]

    async def wait_delivered(self, count: int, within_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` mails were accepted."""
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(lambda: len(self.delivered) >= count)
        return self.delivered

    def fail_next(self, times: int, code: int, message: str = "", *, stage: str = "rcpt") -> None:
        """Answer the next ``times`` attempts with ``code`` at ``stage``."""
        self.failures.append({"code": code, "message": message, "times": times, "stage": stage})

    def _failure(self, stage: str, envelope: Envelope) -> str | None:
        reply = self._next_failure(stage)
        if reply is not None:
            self.received.append(
                {
                    "accepted": False,
                    "stage": stage,
                    "code": int(reply.split(" ", 1)[0]),
                    "reply": reply,
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                }
            )
        return reply

    def _next_failure(self, stage: str) -> str | None:
        if self._active is None and self.failures and self.failures[0].get("stage", "rcpt") == stage:
            head = self.failures.pop(0)
            self._active = {**head, "remaining": int(head.get("times", 1))}
        active = self._active
        if active is None or active.get("stage", "rcpt") != stage:
            return None
        active["remaining"] -= 1
        if active["remaining"] <= 0:
            self._active = None
        code = int(active["code"])
        text = str(active.get("message") or ("4.3.0 Try again later" if code < 500 else "5.0.0 Rejected"))
        return f"{code} {text}"


def _header(mail: Message, name: str) -> str:
    return " ".join(str(mail[name] or "").split())


def _decoded(envelope: Envelope, raw: bytes) -> dict[str, Any]:
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    body = mail.get_body(preferencelist=("plain", "html"))
    text = body.get_content().replace("\r\n", "\n") if isinstance(body, EmailMessage) else None
    return {
        "accepted": True,
        "code": 250,
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "from": _header(mail, "From"),
        "to": _header(mail, "To"),
        "subject": _header(mail, "Subject"),
        "message_id": _header(mail, "Message-ID"),
        "in_reply_to": _header(mail, "In-Reply-To"),
        "references": _header(mail, "References"),
        "auto_submitted": _header(mail, "Auto-Submitted"),
        "date": _header(mail, "Date"),
        "content_type": _header(mail, "Content-Type"),
        "content_transfer_encoding": _header(mail, "Content-Transfer-Encoding"),
        "text": text,
        "raw": raw,
    }


class _PeerHandler:
    def __init__(self, peer: SmtpPeer):
        self._peer = peer

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        self._peer.attempts += 1
        failure = self._peer._failure("mail", envelope)
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        failure = self._peer._failure("rcpt", envelope)
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self._peer._failure("data", envelope)
        if failure:
            return failure
        raw = envelope.original_content or b""
        self._peer.received.append(_decoded(envelope, raw))
        async with self._peer._changed:
            self._peer._changed.notify_all()
        return "250 2.0.0 OK: queued"


@asynccontextmanager
async def smtp_peer(
    *,
    send_retries: int = 3,
    extra: dict[str, Any] | None = None,
    data_size_limit: int | None = None,
    credentials: tuple[str, str] | None = None,
) -> AsyncIterator[SmtpPeer]:
    """Run a loopback SMTP peer; its ``context`` sends there with no retry backoff.
    ``credentials``: the peer offers AUTH (over plain TCP: it is loopback) and requires that
    user and password before it accepts a mail."""
    loop = asyncio.get_running_loop()
    peer = SmtpPeer(context=AdapterContext())
    handler = _PeerHandler(peer)

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if credentials is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if (login, password) != credentials:
            return AuthResult(success=False, handled=False)
        peer.logins.append(login)
        return AuthResult(success=True)

    def protocol() -> SMTP:
        with warnings.catch_warnings():
            # AUTH without TLS is what this loopback peer is for; aiosmtpd warns about it.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
            return _smtp()

    def _smtp() -> SMTP:
        return SMTP(
            handler,
            hostname="smtp-peer.localhost",
            ident="Centralita test peer",
            enable_SMTPUTF8=True,
            data_size_limit=data_size_limit,
            authenticator=authenticate if credentials is not None else None,
            auth_required=credentials is not None,
            auth_require_tls=False,
            loop=loop,
        )

    server = await loop.create_server(protocol, host=peer.host, port=0)
    peer.port = int(server.sockets[0].getsockname()[1])
    peer.context = AdapterContext(
        smtp_host=peer.host,
        smtp_port=peer.port,
        send_retries=send_retries,
        extra={
            "smtp_retry_backoff_s": 0.0,
            "smtp_timeout_s": 5.0,
            "webhook_token": SHARED_TOKEN,
            **(extra or {}),
        },
    )
    try:
        yield peer
    finally:
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------------ conformance kit


_SAMPLES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "gmail_reply_alternative",
        {
            "channel": "email",
            "kind": "message",
            "external_id": "CAJx9kR2mPq7+Hn4sVbT1Z0yW3xQ8uE5fLgK6oNdA-Gh2Yc7pSw@mail.gmail.com",
            "sender": "maria.lopez@correo.example",
            "sender_name": "María López García",
            "business_address": "admisiones@universidad.example",
            "text": "Hola, muchas gracias por la información.\n\n¿El programa tiene modalidad en línea? "
            "Trabajo de lunes a viernes y solo podría asistir los sábados.",
            "reply_to": "0198f0e2-7c1a-7d3e-9b2a-5e4f3a2b1c0d@universidad.example",
            "subject": "Re: Información sobre la Maestría en Finanzas",
            "timestamp": "2026-03-03T16:15:28Z",
            "attachments": [],
        },
    ),
    (
        "outlook_reply_attachments",
        {
            "kind": "message",
            "sender": "jperez@gin.example",
            "business_address": "admisiones@universidad.example",
            "reply_to": "0198f0c1-1b2c-7d3e-8f4a-5b6c7d8e9f00@universidad.example",
            "attachments": [
                {
                    "kind": "document",
                    "mime_type": "application/pdf",
                    "filename": "comprobante_domicilio.pdf",
                    "size": 125,
                },
                {
                    "kind": "document",
                    "mime_type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    "filename": "Carta de motivos - Juan Pérez.docx",
                    "size": 526,
                },
            ],
        },
    ),
    (
        "gmail_inline_image",
        {
            "kind": "message",
            "sender": "carlos.ruiz@correo.example",
            "business_address": "cobranza@financiera.example",
            "attachments": [
                {"kind": "image", "mime_type": "image/png", "filename": "captura_error_pago.png", "size": 70}
            ],
        },
    ),
    (
        "webform_wordpress",
        {
            "kind": "message",
            "sender": "laura.gomez@correo.example",
            "business_address": "admisiones@universidad.example",
        },
    ),
    (
        "exchange_out_of_office",
        {"kind": "message", "sender": "ana.torres@gin.example", "automated": "auto_reply"},
    ),
    (
        "postfix_bounce",
        {
            "kind": "message",
            "sender": "mailer-daemon@mx.universidad.example",
            "automated": "bounce",
            "reply_to": "0198f1a0-3c4d-7e5f-8a9b-0c1d2e3f4a5b@universidad.example",
        },
    ),
)


class EmailConformanceKit:
    """``core.conformance.ConformanceKit`` for the email adapter."""

    channel = "email"

    def accounts(self) -> Sequence[ChannelAccount]:
        return [
            ChannelAccount(
                id=ChannelAccountId(UUID("0198f000-0000-7000-8000-00000000e101")),
                workspace_id=WORKSPACE,
                campaign_id=CAMPAIGN,
                channel="email",
                address="admisiones@universidad.example",
                verify_token="tok-admisiones-7e2b91c4d05a",
                settings={"display_name": "Admisiones Universidad"},
            ),
            ChannelAccount(
                id=ChannelAccountId(UUID("0198f000-0000-7000-8000-00000000e102")),
                workspace_id=WORKSPACE,
                campaign_id=CAMPAIGN,
                channel="email",
                address="cobranza@financiera.example",
                verify_token="tok-cobranza-3a9f6e1b8c27",
                settings={"display_name": "Cobranza Financiera"},
            ),
        ]

    def _token(self) -> str:
        token = self.accounts()[0].verify_token
        assert token is not None
        return token

    def sign(self, body: bytes) -> WebhookRequest:
        return WebhookRequest(
            method="POST",
            path=WEBHOOK_PATH,
            headers={"authorization": f"Bearer {self._token()}", "content-type": "message/rfc822"},
            query={},
            body=body,
            remote="127.0.0.1",
        )

    def samples(self) -> Sequence[Sample]:
        return [
            Sample(name=name, request=self.sign(fixture(name)), expected=[expected])
            for name, expected in _SAMPLES
        ]

    def tampered(self, request: WebhookRequest) -> WebhookRequest:
        drop = ("authorization", "x-centralita-token")
        headers = {k: v for k, v in request.headers.items() if k not in drop}
        token = self._token()
        wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
        headers["authorization"] = f"Bearer {wrong}"
        return replace(request, headers=headers)

    def malformed_bodies(self) -> Sequence[bytes]:
        return [
            b"",
            b"   \r\n\r\n",
            b"esto no es un correo, solo texto sin cabeceras\r\n",
            bytes(range(256)) * 4,
            b"Subject: " + b"x" * 40_000 + b"\r\n\r\ncuerpo\r\n",
            b"Subject: sin remitente\r\nTo: admisiones@universidad.example\r\n\r\nHola\r\n",
            b"From: Maria <maria@correo.example>\r\nSubject: sin destinatario\r\n\r\nHola\r\n",
        ]

    def peer(self) -> AbstractAsyncContextManager[LoopbackPeer]:
        return smtp_peer(send_retries=3)

    def outbound(self, account: ChannelAccount) -> Sequence[OutboundMessage]:
        base: dict[str, Any] = {
            "workspace_id": account.workspace_id,
            "channel": "email",
            "business_address": account.address,
        }
        return [
            OutboundMessage(
                message_id=MessageId(UUID("0198f100-0000-7000-8000-0000000a0001")),
                recipient=Address(
                    kind=AddressKind.EMAIL, value="maria.lopez@correo.example", display_name="María López"
                ),
                text="Hola María:\n\nSí, la maestría tiene modalidad en línea los sábados.\n\n"
                "Saludos cordiales,\nOficina de Admisiones",
                subject="Información sobre la Maestría en Finanzas",
                reply_to="CAJx9kR2mPq7+Hn4sVbT1Z0yW3xQ8uE5fLgK6oNdA-Gh2Yc7pSw@mail.gmail.com",
                references=("0198f0e2-7c1a-7d3e-9b2a-5e4f3a2b1c0d@universidad.example",),
                **base,
            ),
            OutboundMessage(
                message_id=MessageId(UUID("0198f100-0000-7000-8000-0000000a0002")),
                recipient=Address(kind=AddressKind.EMAIL, value="carlos.ruiz@correo.example"),
                text="Estimado Carlos: ya revisamos el error del portal; puede intentar el pago de nuevo.",
                subject="Seguimiento a su pago",
                **base,
            ),
            OutboundMessage(
                message_id=MessageId(UUID("0198f100-0000-7000-8000-0000000a0003")),
                recipient=Address(kind=AddressKind.EMAIL, value="laura.gomez@correo.example"),
                text="Gracias por escribirnos. Un asesor le responderá en menos de 24 horas hábiles.",
                subject="Informes de la licenciatura en Derecho",
                reply_to="Vx2kQ9mT7pLr0aBcD4eFgH1iJ5kLmN6oPq3rS8tUv@universidad.example",
                auto_reply=True,
                **base,
            ),
        ]

    def check_received(
        self, message: OutboundMessage, account: ChannelAccount, received: Sequence[dict[str, Any]]
    ) -> None:
        """The peer got the reply as a customer's client needs it to thread and read it."""
        mail = [entry for entry in received if entry.get("accepted")][-1]
        domain = account.address.rpartition("@")[2]
        assert mail["message_id"] == f"<{message.message_id}@{domain}>", mail["message_id"]
        assert account.address in mail["from"], mail["from"]
        assert message.recipient.value in mail["to"], mail["to"]
        assert mail["rcpt_tos"] == [message.recipient.value], mail["rcpt_tos"]
        if message.reply_to:
            assert mail["in_reply_to"] == f"<{message.reply_to}>", mail["in_reply_to"]
            assert mail["references"].split()[-1] == f"<{message.reply_to}>", mail["references"]
        assert (message.text or "").strip() in (mail["text"] or ""), mail["text"]
        assert mail["auto_submitted"] == ("auto-replied" if message.auto_reply else ""), mail[
            "auto_submitted"
        ]

    def error_cases(self) -> Sequence[ErrorCase]:
        # The transient failure lasts as many attempts as the peer's context retries (3), so the
        # adapter gives up with TransientChannelError and the failure is used up afterwards.
        return [
            ErrorCase(
                name="smtp_451_try_again",
                peer_failure={"code": 451, "message": "4.3.0 Try again later", "times": 3, "stage": "rcpt"},
                expected=TransientChannelError,
            ),
            ErrorCase(
                name="smtp_550_mailbox_unavailable",
                peer_failure={"code": 550, "message": "5.1.1 Mailbox unavailable", "stage": "rcpt"},
                expected=PermanentChannelError,
            ),
            ErrorCase(
                name="smtp_554_rejected_at_data",
                peer_failure={"code": 554, "message": "5.7.1 Message rejected", "stage": "data"},
                expected=PermanentChannelError,
            ),
        ]


def conformance_kit() -> ConformanceKit:
    return EmailConformanceKit()
