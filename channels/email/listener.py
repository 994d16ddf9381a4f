"""The inbound SMTP listener: an aiosmtpd server that hands each accepted mail to the ingress sink.

* ``RCPT TO`` a configured mailbox (``directory.find("email", address)``) → ``250``; anything
  else → ``550 5.1.1``, so the sending server bounces at once and the sink never sees it.
* ``DATA``: for every accepted mailbox, once, ``Delivered-To: <mailbox>`` and a ``Received:``
  trace line are prepended and ``sink.accept("email", raw, headers=...)`` is awaited.  Only
  when every call returned is the answer ``250``: the mail is durable before we take it.
* A sink failure that may pass (``transient`` errors, OS errors, anything unexpected)
  → ``451 4.3.0``: the sender keeps the mail and retries.  A permanent refusal → ``554 5.6.0``
  (``552 5.3.4`` when too large).  Over ``data_size_limit`` → ``552`` from aiosmtpd itself.

It runs on the caller's event loop (``loop.create_server`` with aiosmtpd's ``SMTP`` protocol,
exactly what aiosmtpd's threaded ``Controller`` does in its own thread), so the sink is awaited
on the loop that owns it, and port 0 picks a free port, exposed as ``port``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from core.channel import AccountDirectory, IngressSink
from core.errors import CentralitaError, PayloadTooLarge
from core.logging import get_logger

__all__ = ["DEFAULT_DATA_SIZE_LIMIT", "SmtpListener"]

log = get_logger(__name__)

CHANNEL = "email"
DEFAULT_DATA_SIZE_LIMIT = 25 * 1024 * 1024
_UNSAFE = re.compile(r"[^\x21-\x7e]")


def _safe(value: str | None, fallback: str = "unknown") -> str:
    cleaned = _UNSAFE.sub("", value or "")[:255]
    return cleaned or fallback


class _MailboxHandler:
    """aiosmtpd handler hooks (``handle_RCPT``, ``handle_DATA``, ``handle_exception``)."""

    def __init__(
        self,
        sink: IngressSink,
        directory: AccountDirectory,
        *,
        hostname: str,
        clock: Callable[[], datetime],
    ):
        self._sink = sink
        self._directory = directory
        self._hostname = hostname
        self._clock = clock

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        mailbox = address.strip().lower()
        if self._directory.find(CHANNEL, mailbox) is None:
            log.info("email.smtp.rcpt_rejected")
            return "550 5.1.1 Recipient address rejected: no such mailbox here"
        envelope.rcpt_tos.append(mailbox)
        return "250 2.1.5 OK"

    def _trace(self, mailbox: str, session: Session, newline: bytes) -> bytes:
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else None
        received = (
            f"Received: from {_safe(session.host_name)} ({_safe(str(peer) if peer else None)})"
            f" by {_safe(self._hostname)} (Centralita) with ESMTP for <{mailbox}>;"
            f" {format_datetime(self._clock())}"
        )
        return f"Delivered-To: {mailbox}".encode() + newline + received.encode() + newline

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not content:
            content = envelope.content
        newline = b"\r\n" if b"\r\n" in content[:4096] or not content else b"\n"
        mail_from = envelope.mail_from or ""
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else ""
        for mailbox in dict.fromkeys(envelope.rcpt_tos):
            headers = {
                "content-type": "message/rfc822",
                "x-centralita-source": "smtp",
                "x-smtp-mail-from": mail_from,
                "x-smtp-rcpt-to": mailbox,
                "x-smtp-peer": str(peer),
                "x-smtp-helo": _safe(session.host_name),
            }
            try:
                raw = self._trace(mailbox, session, newline) + content
                await self._sink.accept(CHANNEL, raw, headers=headers)
            except PayloadTooLarge:
                return "552 5.3.4 Message too big for this mailbox"
            except CentralitaError as exc:
                if exc.transient:
                    log.warning("email.smtp.sink_unavailable", error=exc.code)
                    return "451 4.3.0 Temporarily unable to accept the message, try again later"
                log.warning("email.smtp.sink_refused", error=exc.code)
                return "554 5.6.0 Message refused"
            except (OSError, TimeoutError) as exc:
                log.warning("email.smtp.sink_unavailable", error=type(exc).__name__)
                return "451 4.3.0 Temporarily unable to accept the message, try again later"
        log.info("email.smtp.accepted", mailboxes=len(envelope.rcpt_tos), size=len(content))
        return "250 2.0.0 OK: queued"

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's hook for errors in any command: answer 451 so the sender keeps the mail."""
        log.error("email.smtp.error", error=type(error).__name__, exc_info=error)
        return "451 4.3.0 Temporary server error, try again later"


class SmtpListener:
    """An SMTP server on ``host``/``port`` (0: any free port; read ``port`` after ``start``)."""

    def __init__(
        self,
        sink: IngressSink,
        directory: AccountDirectory,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "centralita.localhost",
        data_size_limit: int = DEFAULT_DATA_SIZE_LIMIT,
        session_timeout_s: float = 300.0,
        clock: Callable[[], datetime] | None = None,
    ):
        self.host = host
        self.port = port
        self.hostname = hostname
        self.data_size_limit = data_size_limit
        self.session_timeout_s = session_timeout_s
        self._handler = _MailboxHandler(
            sink, directory, hostname=hostname, clock=clock or (lambda: datetime.now(UTC))
        )
        self._server: asyncio.AbstractServer | None = None

    def _protocol(self) -> Any:
        return SMTP(
            self._handler,
            hostname=self.hostname,
            ident="Centralita ESMTP",
            data_size_limit=self.data_size_limit,
            enable_SMTPUTF8=True,
            timeout=self.session_timeout_s,
            loop=asyncio.get_running_loop(),
        )

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host=self.host, port=self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("email.smtp.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
