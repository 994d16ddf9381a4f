"""``centralita dlq list|show|replay`` against the real RabbitMQ (a unique prefix per test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from broker.rabbitmq import RabbitMQTransport
from core.transport.deadletters import parked_copy
from core.transport.topology import app_topology
from tests.integration.test_cli import _run
from tests.support.schema import migrated

pytestmark = pytest.mark.rabbitmq

BODY = b'{"text": "hola, soy Ana"}'


@pytest.fixture
async def parked(rabbitmq_url: str, unique_prefix: str) -> AsyncIterator[RabbitMQTransport]:
    """The application topology under the prefix, with two deliveries parked in ingest.0.dlq."""
    transport = await RabbitMQTransport.connect(rabbitmq_url, prefix=unique_prefix)
    topology = app_topology(1)
    await transport.declare(topology)
    await transport.publish(
        [
            parked_copy(
                queue="ingest.0",
                body=body,
                routing_key="ingest.0",
                headers={},
                message_id=mid,
                content_type="application/json",
                reason="database refused",
            )
            for mid, body in (("m-1", BODY), ("m-2", b"{}"))
        ]
    )
    try:
        yield transport
    finally:
        await transport.delete_topology(topology)
        await transport.close()


def _env(rabbitmq_url: str, prefix: str, sqlite_url: str) -> dict[str, str]:
    return {
        "CENTRALITA_BROKER_URL": rabbitmq_url,
        "CENTRALITA_BROKER_PREFIX": prefix,
        "CENTRALITA_BROKER_EPHEMERAL": "false",
        "CENTRALITA_DATABASE_URL": sqlite_url,
        "CENTRALITA_INGEST_PARTITIONS": "1",
    }


async def test_dlq_list_show_and_replay_work_the_parked_deliveries(
    parked: RabbitMQTransport, rabbitmq_url: str, unique_prefix: str, sqlite_url: str
) -> None:
    await migrated(sqlite_url)
    env = _env(rabbitmq_url, unique_prefix, sqlite_url)

    listed = await asyncio.to_thread(_run, "dlq", "list", **env)
    assert listed.returncode == 0, listed.stderr
    items = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(i["id"], i["queue"], i["reason"], i["size"]) for i in items] == [
        ("m-1", "ingest.0", "database refused", len(BODY)),
        ("m-2", "ingest.0", "database refused", 2),
    ]
    assert "hola" not in listed.stdout  # never the body at list level

    shown = await asyncio.to_thread(_run, "dlq", "show", "m-1", "--queue", "ingest.0", **env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["body"] == BODY.decode()

    replayed = await asyncio.to_thread(_run, "dlq", "replay", "m-1", **env)
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 parked deliveries" in replayed.stderr
    assert [p.id for p in await parked.parked("ingest.0")] == ["m-2"]

    everything = await asyncio.to_thread(_run, "dlq", "replay", "--all", "--queue", "ingest.0", **env)
    assert everything.returncode == 0, everything.stderr
    assert await parked.parked("ingest.0") == []


async def test_dlq_show_of_an_unknown_id_prints_one_line(
    parked: RabbitMQTransport, rabbitmq_url: str, unique_prefix: str, sqlite_url: str
) -> None:
    env = _env(rabbitmq_url, unique_prefix, sqlite_url)
    result = await asyncio.to_thread(_run, "dlq", "show", "nope", "--queue", "ingest.0", **env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "centralita: error: no parked delivery 'nope'"


def test_dlq_on_the_embedded_broker_says_where_to_look_instead(sqlite_url: str) -> None:
    result = _run("dlq", "list", CENTRALITA_BROKER_URL="memory://", CENTRALITA_DATABASE_URL=sqlite_url)
    assert result.returncode == 2
    assert "GET /api/admin/dlq" in result.stderr and "Traceback" not in result.stderr
