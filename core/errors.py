"""The one error tree.

Every failure that crosses a module boundary is one of these.  Foreign exceptions (aiohttp,
aio-pika, SQLAlchemy, smtplib, provider error bodies) are translated at the edge with
``raise CentralitaError(...) from exc``.  The HTTP layer maps each class to a status code and
the JSON body ``{"error": {"code", "message", "field"?}}``; the CLI prints ``message`` on one
line.  ``transient`` tells retry policies (tenacity) what may be tried again.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationRequired",
    "BrokerUnavailable",
    "CentralitaError",
    "ChannelError",
    "ClientDisconnected",
    "Conflict",
    "CustomerErased",
    "DatabaseConflict",
    "DatabaseUnavailable",
    "Forbidden",
    "InvalidInput",
    "InvalidSignature",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "PermanentChannelError",
    "ReplyWindowClosed",
    "RequestTimeout",
    "ServiceUnavailable",
    "TooManyAttempts",
    "TransientChannelError",
    "UnknownChannel",
    "UnsupportedMediaType",
]


class CentralitaError(Exception):
    """Base of every error Centralita raises on purpose."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(CentralitaError):
    """The request, file or payload is malformed or breaks a rule; ``field`` names where."""

    code = "invalid_input"
    http_status = 400


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(InvalidInput):
    """A file of a type the channel does not send (or not the type it claims)."""

    code = "unsupported_media_type"
    http_status = 415


class RequestTimeout(InvalidInput):
    """The client did not send its request body within the read timeout (HTTP 408)."""

    code = "request_timeout"
    http_status = 408


class ClientDisconnected(CentralitaError):
    """The client went away before its request was read; nobody is left to answer."""

    code = "client_disconnected"
    http_status = 400


class InvalidSignature(CentralitaError):
    """A webhook's signature (X-Hub-Signature-256, a token) does not verify."""

    code = "invalid_signature"
    http_status = 401


class AuthenticationRequired(CentralitaError):
    code = "unauthenticated"
    http_status = 401


class Forbidden(CentralitaError):
    code = "forbidden"
    http_status = 403


class TooManyAttempts(CentralitaError):
    """Too many refused attempts (sign-ins) within a window: retry after ``retry_after_s``."""

    code = "too_many_attempts"
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int, field: str | None = None):
        super().__init__(message, field=field, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class NotFound(CentralitaError):
    code = "not_found"
    http_status = 404


class Conflict(CentralitaError):
    code = "conflict"
    http_status = 409


class CustomerErased(Conflict):
    """A merge or link would involve a customer whose data was erased; ``details`` name it."""

    code = "customer_erased"


class UnknownChannel(NotFound):
    """No adapter is registered under that name; the message suggests close names."""

    code = "unknown_channel"


class ReplyWindowClosed(CentralitaError):
    """A free-form reply outside the channel's customer-service window; details list templates."""

    code = "reply_window_closed"
    http_status = 422


class ServiceUnavailable(CentralitaError):
    """A dependency is down; the caller may retry (HTTP 503)."""

    code = "unavailable"
    http_status = 503
    transient = True


class BrokerUnavailable(ServiceUnavailable):
    code = "broker_unavailable"


class Overloaded(BrokerUnavailable):
    """The broker refused a message because its queue is at its length bound (backpressure).

    Raised when RabbitMQ answers a publish with ``basic.nack`` (``x-overflow: reject-publish``)
    or the in-memory transport finds the queue full; HTTP 503 with ``Retry-After``.
    """

    code = "overloaded"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


class DatabaseConflict(ServiceUnavailable):
    """A deadlock, serialization failure or lock timeout: the same transaction may be tried again."""

    code = "database_conflict"


class ChannelError(CentralitaError):
    """A provider (Graph API, SMTP server) refused or failed a send."""

    code = "channel_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        provider_code: str | int | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, field=field, details=details)
        self.provider_code = provider_code

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.provider_code is not None:
            body["error"]["provider_code"] = self.provider_code
        return body


class TransientChannelError(ChannelError):
    """Rate limits, 5xx, timeouts: worth retrying with backoff."""

    code = "channel_transient"
    http_status = 503
    transient = True


class PermanentChannelError(ChannelError):
    """Window closed, undeliverable, unknown template, bad token: shown to the agent, not retried."""

    code = "channel_permanent"
    http_status = 422
