"""Transport implementations behind ``core.transport.Transport``: in-process and RabbitMQ.

``RabbitMQTransport`` lives in ``broker.rabbitmq`` and is not imported here, so that the embedded
default never loads aio-pika; ``open_transport`` picks it from the settings.
"""

from broker.factory import open_transport
from broker.memory import InMemoryTransport

__all__ = ["InMemoryTransport", "open_transport"]
