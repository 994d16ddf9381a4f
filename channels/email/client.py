"""Outbound SMTP with aiosmtplib, retried on transient failures with tenacity.

Per-account settings (``ChannelAccount.settings``; secrets already resolved by the caller):
``smtp_host``, ``smtp_port`` (default: ``AdapterContext.smtp_host``/``smtp_port``),
``smtp_starttls`` (true: require, false: never, absent: upgrade when offered), ``smtp_tls``
(implicit TLS, port 465), ``smtp_validate_certs`` (default true), ``username``/``password``
(or ``smtp_username``/``smtp_password``), ``smtp_timeout_s`` (default 30).
Retries: ``AdapterContext.send_retries`` attempts, exponential backoff starting at
``extra["smtp_retry_backoff_s"]`` (default 1 s, capped by ``extra["smtp_retry_backoff_max_s"]``,
default 30 s); only ``TransientChannelError`` is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiosmtplib
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential, wait_none

from channels.email.compose import ComposedMail, mailbox_domain
from channels.email.errors import smtp_error
from core.channel import AdapterContext, ChannelAccount
from core.errors import TransientChannelError
from core.logging import get_logger

__all__ = ["SmtpClient", "SmtpSettings"]

log = get_logger(__name__)


def _optional_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    local_hostname: str
    username: str | None = None
    password: str | None = None
    start_tls: bool | None = None
    use_tls: bool = False
    validate_certs: bool = True
    timeout_s: float = 30.0

    @classmethod
    def for_account(cls, account: ChannelAccount, context: AdapterContext) -> SmtpSettings:
        s: Mapping[str, Any] = account.settings
        return cls(
            host=str(s.get("smtp_host") or context.smtp_host),
            port=int(s.get("smtp_port") or context.smtp_port),
            local_hostname=str(s.get("smtp_local_hostname") or mailbox_domain(account.address)),
            username=s.get("username") or s.get("smtp_username"),
            password=s.get("password") or s.get("smtp_password"),
            start_tls=_optional_bool(s.get("smtp_starttls")),
            use_tls=bool(_optional_bool(s.get("smtp_tls"))),
            validate_certs=_optional_bool(s.get("smtp_validate_certs")) is not False,
            timeout_s=float(s.get("smtp_timeout_s") or context.extra.get("smtp_timeout_s", 30.0)),
        )


async def _deliver_once(composed: ComposedMail, settings: SmtpSettings) -> None:
    smtp = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        local_hostname=settings.local_hostname,
        username=settings.username,
        password=settings.password,
        start_tls=settings.start_tls,
        use_tls=settings.use_tls,
        validate_certs=settings.validate_certs,
        timeout=settings.timeout_s,
    )
    try:
        async with smtp:
            await smtp.send_message(composed.mail, sender=composed.sender, recipients=[composed.recipient])
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise smtp_error(exc) from exc


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "email.send.retry",
        attempt=state.attempt_number,
        provider_code=getattr(exc, "provider_code", None),
    )


class SmtpClient:
    """Sends composed mails, retrying transient failures; raises the error tree's channel errors."""

    def __init__(self, *, attempts: int, backoff_s: float = 1.0, backoff_max_s: float = 30.0):
        self.attempts = max(1, attempts)
        self.backoff_s = max(0.0, backoff_s)
        self.backoff_max_s = max(self.backoff_s, backoff_max_s)

    @classmethod
    def from_context(cls, context: AdapterContext) -> SmtpClient:
        return cls(
            attempts=context.send_retries,
            backoff_s=float(context.extra.get("smtp_retry_backoff_s", 1.0)),
            backoff_max_s=float(context.extra.get("smtp_retry_backoff_max_s", 30.0)),
        )

    async def send(self, composed: ComposedMail, settings: SmtpSettings) -> None:
        wait: wait_base = wait_none()
        if self.backoff_s > 0:
            wait = wait_exponential(multiplier=self.backoff_s, max=self.backoff_max_s)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            retry=retry_if_exception_type(TransientChannelError),
            reraise=True,
            before_sleep=_log_retry,
        )
        async for attempt in retrying:
            with attempt:
                await _deliver_once(composed, settings)
