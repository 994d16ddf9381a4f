"""The message transport's port: the Protocol, the topology the app declares, dead-letter records.

The implementations (in-process and RabbitMQ) live in ``broker/``; importing this package never
loads a broker library.
"""

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
    "Message",
    "Queue",
    "Topology",
    "Transport",
]
