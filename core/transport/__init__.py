"""Message transports behind one Protocol.

``RabbitMQTransport`` lives in ``core.transport.rabbitmq`` and is not imported here, so that
importing the Protocol never loads aio-pika; ``open_transport`` picks it from the settings.
"""

from core.transport.factory import open_transport
from core.transport.memory import InMemoryTransport
from core.transport.protocol import (
    Binding,
    Consumer,
    Delivery,
    Exchange,
    Handler,
    Message,
    Queue,
    Topology,
    Transport,
)

__all__ = [
    "Binding",
    "Consumer",
    "Delivery",
    "Exchange",
    "Handler",
    "InMemoryTransport",
    "Message",
    "Queue",
    "Topology",
    "Transport",
    "open_transport",
]
