"""Open the transport the settings ask for: ``memory://`` (embedded) or ``amqp(s)://`` (RabbitMQ)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.memory import InMemoryTransport
from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.settings import Settings
    from core.transport.protocol import Transport

__all__ = ["open_transport"]

_SCHEMES = ("memory", "amqp", "amqps")


async def open_transport(settings: Settings) -> Transport:
    """A connected transport; raises ``BrokerUnavailable`` when RabbitMQ cannot be reached."""
    scheme = settings.broker_url.split("://", 1)[0].lower() if "://" in settings.broker_url else ""
    if scheme == "memory":
        return InMemoryTransport()
    if scheme in ("amqp", "amqps"):
        # Imported here so the embedded default never loads aio-pika.
        from broker.rabbitmq import RabbitMQTransport

        transport = await RabbitMQTransport.connect(
            settings.broker_url,
            prefix=settings.broker_prefix,
            connect_attempts=settings.broker_connect_attempts,
        )
        transport.delete_on_close = settings.broker_ephemeral
        transport.quorum_enabled = settings.broker_quorum
        return transport
    raise InvalidInput(
        f"unknown broker URL scheme {scheme or settings.redacted_broker_url()!r}; "
        f"expected one of: {', '.join(s + '://' for s in _SCHEMES)}",
        field="broker_url",
    )
