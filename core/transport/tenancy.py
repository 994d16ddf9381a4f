r"""A RabbitMQ user per tenant that sees only its workspace's events (docs/rabbitmq-events.md).

The recipe, as pure data, for workspace ``<slug>`` (id ``<id>``) of a server whose broker prefix
is ``<p>`` (``CENTRALITA_BROKER_PREFIX``, usually empty):

- user ``<p>tenant.<slug>``;
- configure and write only on its own queues, whose names start with ``<p>tenant.<slug>.``
  (declare, bind, purge, delete them); read on those and on the ``<p>events`` exchange (what a
  binding to it needs).  No write on ``events``: a tenant reads events, it does not publish them;
- topic permissions on ``<p>events``: read and write only keys matching ``^ws\.<id>\.``.  RabbitMQ
  checks a ``queue.bind`` pattern against the read expression, so ``ws.<id>.#`` is allowed and
  ``ws.<other>.#``, ``ws.*.queue.stats`` or ``#`` are refused (``ACCESS_REFUSED``).

``rabbitmqctl_lines`` spells it as the ``rabbitmqctl`` commands an operator runs; the password is
the value of a shell variable, never written out.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from core.errors import InvalidInput
from core.transport.topology import EVENTS_EXCHANGE, workspace_key_prefix

__all__ = ["TenantUser", "tenant_user"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class TenantUser:
    """A tenant's broker user and its permissions (regular expressions, as RabbitMQ takes them)."""

    user: str
    vhost: str
    exchange: str
    queue_prefix: str
    configure: str
    write: str
    read: str
    topic_write: str
    topic_read: str

    def rabbitmqctl_lines(self, password_variable: str = "TENANT_PASSWORD") -> list[str]:
        """The commands that create the user and set its permissions (``$password_variable``)."""
        user, vhost = shlex.quote(self.user), shlex.quote(self.vhost)
        return [
            # ``--``: a password may start with "-" and must not be read as an option
            f'rabbitmqctl add_user -- {user} "${password_variable}"',
            f"rabbitmqctl set_permissions -p {vhost} {user} "
            f"{shlex.quote(self.configure)} {shlex.quote(self.write)} {shlex.quote(self.read)}",
            f"rabbitmqctl set_topic_permissions -p {vhost} {user} {shlex.quote(self.exchange)} "
            f"{shlex.quote(self.topic_write)} {shlex.quote(self.topic_read)}",
        ]

    def removal_line(self) -> str:
        return f"rabbitmqctl delete_user {shlex.quote(self.user)}"


def _escape(text: str) -> str:
    return re.escape(text).replace("\\-", "-")  # '-' is literal outside a class; keep it readable


def tenant_user(slug: str, workspace_id: str, *, prefix: str = "", vhost: str = "/") -> TenantUser:
    """The recipe for workspace ``slug`` (id ``workspace_id``) under the broker ``prefix``."""
    if not _SLUG.match(slug):
        raise InvalidInput(f"{slug!r} is not a workspace slug", field="workspace")
    queue_prefix = f"{prefix}tenant.{slug}."
    own_queues = f"^{_escape(queue_prefix)}.*$"
    exchange = f"{prefix}{EVENTS_EXCHANGE}"
    keys = f"^{_escape(workspace_key_prefix(workspace_id))}"
    return TenantUser(
        user=f"{prefix}tenant.{slug}",
        vhost=vhost,
        exchange=exchange,
        queue_prefix=queue_prefix,
        configure=own_queues,
        write=own_queues,
        read=f"^({_escape(exchange)}|{_escape(queue_prefix)}.*)$",
        topic_write=keys,
        topic_read=keys,
    )
