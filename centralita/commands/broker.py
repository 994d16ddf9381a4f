"""``centralita broker tenant-user --workspace SLUG``: the RabbitMQ user of one tenant, as commands.

It prints the ``rabbitmqctl`` lines that create the workspace's own user and confine it to its
own queues and to the ``ws.<workspace_id>.`` keys of the ``events`` exchange
(``core.transport.tenancy``; docs/rabbitmq-events.md).  The password is read from the shell
variable ``--password-variable`` (``TENANT_PASSWORD``) when the lines run, so it is never printed
and never passes through Centralita.  The exchange and queue names carry the server's
``CENTRALITA_BROKER_PREFIX`` and the virtual host is the one of ``CENTRALITA_BROKER_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from urllib.parse import unquote, urlsplit

from core.errors import InvalidInput, NotFound
from core.settings import Settings
from core.transport.tenancy import TenantUser, tenant_user
from storage.campaigns import CampaignStore
from storage.database import Database

__all__ = ["register", "render_recipe", "vhost_of"]

_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("broker", help="RabbitMQ recipes (a tenant's own user for the events)")
    actions = parser.add_subparsers(dest="broker_command", metavar="ACTION", required=True)
    user = actions.add_parser(
        "tenant-user", help="print the rabbitmqctl commands for a user that sees only one workspace's events"
    )
    user.add_argument("--workspace", required=True, metavar="SLUG", help="the tenant's workspace")
    user.add_argument(
        "--password-variable",
        default="TENANT_PASSWORD",
        metavar="NAME",
        help="the shell variable holding the new user's password when the lines run",
    )
    user.set_defaults(func=cmd_tenant_user)


def cmd_tenant_user(args: argparse.Namespace) -> int:
    from centralita.cli import _settings

    if not _VARIABLE.match(args.password_variable):
        raise InvalidInput("not a shell variable name", field="--password-variable")
    settings = _settings()
    if settings.uses_memory_broker:
        raise InvalidInput(
            "the broker is in-process (memory://): set CENTRALITA_BROKER_URL to the RabbitMQ server",
            field="CENTRALITA_BROKER_URL",
        )
    workspace_id = asyncio.run(_workspace_id(settings, args.workspace))
    recipe = tenant_user(
        args.workspace, workspace_id, prefix=settings.broker_prefix, vhost=vhost_of(settings.broker_url)
    )
    print(render_recipe(recipe, args.workspace, workspace_id, args.password_variable))
    return 0


def vhost_of(url: str) -> str:
    """The virtual host of an ``amqp://`` URL: its path without the leading ``/``, ``/`` if none."""
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


async def _workspace_id(settings: Settings, slug: str) -> str:
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            found = await CampaignStore(session).workspace_id(slug)
    finally:
        await database.dispose()
    if found is None:
        raise NotFound(f"no workspace {slug!r}", field="--workspace")
    return str(found)


def render_recipe(recipe: TenantUser, slug: str, workspace_id: str, variable: str) -> str:
    """A shell script: what the user may do in comments, then the ``rabbitmqctl`` lines."""
    return "\n".join(
        [
            f"# RabbitMQ user {recipe.user!r} for workspace {slug} ({workspace_id}), vhost {recipe.vhost!r}:",
            f"# its own queues are named {recipe.queue_prefix}…; on exchange {recipe.exchange!r} it may",
            f"# bind only keys matching {recipe.topic_read} (ws.{workspace_id}.#), and publish nothing.",
            f"# Set {variable} to the new user's password first; remove the user with:",
            f"#   {recipe.removal_line()}",
            *recipe.rabbitmqctl_lines(variable),
        ]
    )
