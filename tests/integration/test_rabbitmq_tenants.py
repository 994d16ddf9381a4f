"""A tenant's own RabbitMQ user sees its workspace's events and nothing of another's (real broker).

The users are made by running, with ``bash``, exactly what ``centralita broker tenant-user``
prints (``rabbitmqctl`` lines; docs/rabbitmq-events.md), then used with their own credentials.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aio_pika
import aiormq.exceptions
import pytest

from broker.rabbitmq import RabbitMQTransport
from core.transport.protocol import Exchange, Message, Topology
from core.transport.tenancy import tenant_user
from core.transport.topology import (
    ALL_QUEUE_STATS,
    EVENTS_EXCHANGE,
    alert_key,
    queue_stats_key,
    workspace_events,
)
from storage.database import Database
from storage.tables import WorkspaceRow
from tests.integration.test_cli import _run
from tests.support.schema import migrated

pytestmark = pytest.mark.rabbitmq

EVENTS = Topology(exchanges=(Exchange(EVENTS_EXCHANGE, "topic"),))


@dataclass(frozen=True)
class Tenant:
    slug: str
    workspace_id: str
    user: str
    password: str
    queue_prefix: str


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module", autouse=True)
def rabbitmqctl_works() -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is required on PATH to create the tenants' users", pytrace=False)
    status = _rabbitmqctl("status")
    if status.returncode != 0:
        pytest.fail(f"rabbitmqctl cannot reach the node as this user: {status.stderr}", pytrace=False)


async def _add_workspaces(url: str, slugs: list[str]) -> dict[str, str]:
    await migrated(url)
    database = Database(url)
    ids = {slug: uuid.uuid4() for slug in slugs}
    try:
        async with database.session() as session:
            for slug, workspace_id in ids.items():
                session.add(WorkspaceRow(id=workspace_id, slug=slug, name=slug))
            await session.commit()
    finally:
        await database.dispose()
    return {slug: str(workspace_id) for slug, workspace_id in ids.items()}


@pytest.fixture
async def tenants(
    rabbitmq_url: str, unique_prefix: str, database_url: str
) -> AsyncIterator[dict[str, Tenant]]:
    """Two workspaces ``a`` and ``b``, each with its user made from the command's printed recipe."""
    suffix = secrets.token_hex(3)
    slugs = {"a": f"acme-{suffix}", "b": f"bolt-{suffix}"}
    ids = await _add_workspaces(database_url, list(slugs.values()))
    env = {
        "CENTRALITA_BROKER_URL": rabbitmq_url,
        "CENTRALITA_BROKER_PREFIX": unique_prefix,
        "CENTRALITA_DATABASE_URL": database_url,
    }
    made: dict[str, Tenant] = {}
    try:
        for name, slug in slugs.items():
            printed = await asyncio.to_thread(_run, "broker", "tenant-user", "--workspace", slug, **env)
            assert printed.returncode == 0, printed.stderr
            recipe = tenant_user(slug, ids[slug], prefix=unique_prefix)
            assert printed.stdout.splitlines()[-3:] == recipe.rabbitmqctl_lines()
            password = "-" + secrets.token_urlsafe(12)  # a leading "-" must not read as an option
            made[name] = Tenant(slug, ids[slug], recipe.user, password, recipe.queue_prefix)
            applied = await asyncio.to_thread(
                subprocess.run,
                ["bash", "-euo", "pipefail", "-c", printed.stdout],
                capture_output=True,
                text=True,
                timeout=300,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TENANT_PASSWORD": password},
                check=False,
            )
            assert applied.returncode == 0, applied.stderr
        yield made
    finally:
        for tenant in made.values():
            await asyncio.to_thread(_rabbitmqctl, "delete_user", tenant.user)


@pytest.fixture
async def engine(rabbitmq_url: str, unique_prefix: str) -> AsyncIterator[RabbitMQTransport]:
    """The engine's own connection (the broker's admin credentials), which publishes the events."""
    transport = await RabbitMQTransport.connect(rabbitmq_url, prefix=unique_prefix)
    await transport.declare(EVENTS)
    try:
        yield transport
    finally:
        await transport.delete_topology(EVENTS)
        await transport.close()


def _as(rabbitmq_url: str, tenant: Tenant) -> str:
    parts = urlsplit(rabbitmq_url)
    credentials = f"{quote(tenant.user, safe='')}:{quote(tenant.password, safe='')}"
    return f"amqp://{credentials}@{parts.hostname}:{parts.port or 5672}/"


async def _refused(connection: aio_pika.abc.AbstractConnection, action: str, attempt: object) -> None:
    """``attempt(channel)`` on a fresh channel is refused by the broker (the channel closes)."""
    channel = await connection.channel()
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await attempt(channel)  # type: ignore[operator]
    assert channel.is_closed, action


async def test_a_tenant_binds_its_own_keys_and_is_refused_another_tenants(
    tenants: dict[str, Tenant], engine: RabbitMQTransport, rabbitmq_url: str, unique_prefix: str
) -> None:
    a, b = tenants["a"], tenants["b"]
    exchange = f"{unique_prefix}{EVENTS_EXCHANGE}"
    conn_a = await aio_pika.connect(_as(rabbitmq_url, a))
    conn_b = await aio_pika.connect(_as(rabbitmq_url, b))
    try:
        # A's own queue, bound to every event of A's workspace: allowed, and A's event arrives.
        channel = await conn_a.channel()
        events = await channel.get_exchange(exchange, ensure=False)
        wall = await channel.declare_queue(f"{a.queue_prefix}wall", exclusive=True)
        await wall.bind(events, routing_key=workspace_events(a.workspace_id))
        await engine.publish(
            [
                Message(b'{"for": "b"}', queue_stats_key(b.workspace_id), exchange=EVENTS_EXCHANGE),
                Message(b'{"for": "a"}', queue_stats_key(a.workspace_id), exchange=EVENTS_EXCHANGE),
                Message(b'{"alert": "a"}', alert_key(a.workspace_id), exchange=EVENTS_EXCHANGE),
            ]
        )
        got = [await wall.get(timeout=5) for _ in range(2)]
        assert [(m.routing_key, m.body) for m in got] == [
            (queue_stats_key(a.workspace_id), b'{"for": "a"}'),
            (alert_key(a.workspace_id), b'{"alert": "a"}'),
        ]
        for message in got:
            await message.ack()
        assert await wall.get(fail=False) is None  # B's statistics never reached A's queue

        # Binding B's keys, or every tenant's, is refused: ACCESS_REFUSED closes the channel.
        for pattern in (
            workspace_events(b.workspace_id),
            queue_stats_key(b.workspace_id),
            ALL_QUEUE_STATS,
            "#",
        ):

            async def bind(ch: aio_pika.abc.AbstractChannel, pattern: str = pattern) -> None:
                queue = await ch.get_queue(f"{a.queue_prefix}wall", ensure=False)
                await queue.bind(await ch.get_exchange(exchange, ensure=False), routing_key=pattern)

            await _refused(conn_a, f"bind {pattern}", bind)

        # B's queue: A can neither read it nor declare a queue under B's names.
        channel_b = await conn_b.channel()
        inbox = await channel_b.declare_queue(f"{b.queue_prefix}inbox", auto_delete=False, durable=False)
        await inbox.bind(
            await channel_b.get_exchange(exchange, ensure=False), workspace_events(b.workspace_id)
        )

        async def read_b(ch: aio_pika.abc.AbstractChannel) -> None:
            queue = await ch.get_queue(f"{b.queue_prefix}inbox", ensure=False)
            await queue.get(fail=False)

        async def declare_as_b(ch: aio_pika.abc.AbstractChannel) -> None:
            await ch.declare_queue(f"{b.queue_prefix}stolen", exclusive=True)

        async def publish(ch: aio_pika.abc.AbstractChannel) -> None:
            ex = await ch.get_exchange(exchange, ensure=False)
            await ex.publish(aio_pika.Message(b"{}"), routing_key=queue_stats_key(a.workspace_id))

        await _refused(conn_a, "read B's queue", read_b)
        await _refused(conn_a, "declare under B's prefix", declare_as_b)
        await _refused(conn_a, "publish on events", publish)
        await inbox.delete(if_unused=False, if_empty=False)
    finally:
        await conn_a.close()
        await conn_b.close()


def test_the_command_names_the_workspace_it_does_not_know(database_url: str, rabbitmq_url: str) -> None:
    asyncio.run(migrated(database_url))
    env = {"CENTRALITA_BROKER_URL": rabbitmq_url, "CENTRALITA_DATABASE_URL": database_url}
    result = _run("broker", "tenant-user", "--workspace", "nadie", **env)
    assert result.returncode != 0
    assert "no workspace 'nadie'" in result.stdout + result.stderr
