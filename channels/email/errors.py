"""SMTP failures → the error tree.

* 4xx replies (421 service unavailable, 450/451/452 try again), refused or dropped connections
  and timeouts → ``TransientChannelError`` (retried with backoff);
* 5xx replies (550 mailbox unavailable, 552, 553 bad address, 554 rejected, 535 bad
  credentials) and a server that cannot do what the account requires (STARTTLS, AUTH)
  → ``PermanentChannelError`` (shown to the agent, not retried).

``provider_code`` is the SMTP reply code (``"550"``), or ``"connect"``/``"timeout"``/
``"disconnected"`` when there was no reply.
"""

from __future__ import annotations

import aiosmtplib

from core.errors import ChannelError, PermanentChannelError, TransientChannelError

__all__ = ["channel_error_for_code", "smtp_error"]


def channel_error_for_code(code: int, reply: str) -> ChannelError:
    """The error for an SMTP reply ``code`` (4xx transient, 5xx permanent)."""
    message = f"SMTP {code} {reply}".strip()
    if 400 <= code < 500:
        return TransientChannelError(message, provider_code=str(code))
    if 500 <= code < 600:
        return PermanentChannelError(message, provider_code=str(code))
    return TransientChannelError(message, provider_code=str(code))


def smtp_error(exc: BaseException) -> ChannelError:
    """Translate an aiosmtplib / socket failure; callers ``raise smtp_error(exc) from exc``."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        if first is None:
            return PermanentChannelError("SMTP server refused every recipient", provider_code="550")
        return channel_error_for_code(first.code, first.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if exc.code < 0:
            return TransientChannelError(f"SMTP failure: {exc.message}", provider_code="disconnected")
        return channel_error_for_code(exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentChannelError(
            f"SMTP server does not support it: {exc.message}", provider_code="unsupported"
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientChannelError("SMTP server timed out", provider_code="timeout")
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return TransientChannelError("SMTP server disconnected", provider_code="disconnected")
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionError | OSError):
        return TransientChannelError("cannot connect to the SMTP server", provider_code="connect")
    return TransientChannelError(f"SMTP failure: {type(exc).__name__}", provider_code="smtp")
