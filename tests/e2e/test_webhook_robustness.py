"""Hostile and broken webhook deliveries: a 4xx JSON error, nothing stored, and the server keeps serving.

Only what cannot be read is refused: signed JSON that is no webhook at all is accepted and kept
raw (``tests/e2e/test_unsupported_content.py``).

Each bad delivery is followed by a valid one, which must still be accepted and stored.  With the
broker gone (RabbitMQ cut behind a loopback proxy) a webhook gets 503 so Meta retries, and once
the broker is back the same delivery is accepted.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from centralita.envelope import RawEnvelope
from centralita.pipeline.worker import Outcome
from centralita.web.app import create_app
from centralita.web.keys import PIPELINE
from channels.meta.signature import sign_body
from channels.whatsapp.testing import text_webhook_body
from core.settings import Settings
from storage.database import Database
from storage.tables import MessageRow, RawDeliveryRow
from tests.e2e.conftest import Engine, StartEngine
from tests.support.schema import migrated
from tests.support.seed import seed_workspace
from tests.support.tcpproxy import TcpProxy

SECRET = "robust-app-secret"
PHONE_NUMBER_ID = "106540352247777"


def _delivery(wamid: str, text: str = "Hola") -> bytes:
    return text_webhook_body(
        PHONE_NUMBER_ID, "5215512340000", wamid, text, name="Ana", waba_id="102290129347777"
    )


def _signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign_body(body, secret), "Content-Type": "application/json"}


async def _seed(db: Database) -> None:
    await seed_workspace(
        db,
        "robusto",
        [
            {
                "channel": "whatsapp",
                "address": PHONE_NUMBER_ID,
                "app_id": "app-r",
                "app_secret_env": "ROBUST_SECRET",
            }
        ],
    )


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBUST_SECRET", SECRET)


async def _count(db: Database, table: type) -> int:
    async with db.session() as s:
        return int((await s.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def _still_serving(engine: Engine, wamid: str) -> None:
    """A valid delivery right after is accepted and stored."""
    body = _delivery(wamid)
    response = await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
    assert response.status == 200, await response.text()
    assert (await engine.next_outcome()).stored_messages == 1


def _bad_signature_cases() -> dict[str, Callable[[bytes], dict[str, str]]]:
    return {
        "unsigned": lambda body: {"Content-Type": "application/json"},
        "wrongly_signed": lambda body: _signed(body, "not-the-app-secret"),
        "signature_not_hex": lambda body: {
            "X-Hub-Signature-256": "sha256=zz",
            "Content-Type": "application/json",
        },
        "signed_with_sha1": lambda body: {"X-Hub-Signature": "sha1=" + "0" * 40},
    }


@pytest.mark.parametrize("case", sorted(_bad_signature_cases()))
async def test_a_delivery_that_does_not_verify_gets_401_naming_the_signature_and_stores_nothing(
    case: str, start_engine: StartEngine
) -> None:
    engine = await start_engine(seed=_seed)
    body = _delivery("wamid.forged")
    response = await engine.client.post(
        "/webhooks/whatsapp", data=body, headers=_bad_signature_cases()[case](body)
    )
    assert response.status == 401
    error = (await response.json())["error"]
    assert error["code"] == "invalid_signature"
    assert "X-Hub-Signature-256" in error["message"]
    assert await _count(engine.database, RawDeliveryRow) == 0
    await _still_serving(engine, "wamid.after-forged")


BAD_BODIES = {
    "truncated": _delivery("wamid.truncated")[:150],
    "not_json": b"hola, esto no es JSON",
    "binary": b"\xff\xfe\x00\x01garbage",
    "deeply_nested_arrays": b"[" * 100_000 + b"]" * 100_000,
    "deeply_nested_object": b'{"object":"whatsapp_business_account","entry":'
    + b'{"a":' * 50_000
    + b"1"
    + b"}" * 50_001,
    "empty": b"",
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_a_signed_body_that_cannot_be_read_gets_400_naming_the_body_and_stores_nothing(
    case: str, start_engine: StartEngine
) -> None:
    engine = await start_engine(seed=_seed)
    body = BAD_BODIES[case]
    response = await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
    assert 400 <= response.status < 500, await response.text()
    error = (await response.json())["error"]
    assert error["code"] in {"invalid_input", "payload_too_large"}
    assert error["field"] in {"body", "object", "entry"} or error["field"].startswith("entry")
    assert await _count(engine.database, RawDeliveryRow) == 0
    await _still_serving(engine, f"wamid.after-{case}")


async def test_a_3_mb_body_gets_413_naming_the_body_and_the_server_keeps_serving(
    start_engine: StartEngine,
) -> None:
    engine = await start_engine(seed=_seed)
    body = b'{"object":"whatsapp_business_account","entry":[' + b" " * 3_000_000 + b"]}"
    response = await engine.client.post("/webhooks/whatsapp", data=io.BytesIO(body), headers=_signed(body))
    assert response.status == 413
    error = (await response.json())["error"]
    assert error["code"] == "payload_too_large" and error["field"] == "body"
    assert await _count(engine.database, RawDeliveryRow) == 0
    await _still_serving(engine, "wamid.after-3mb")


async def test_many_bad_deliveries_at_once_leave_the_server_serving(start_engine: StartEngine) -> None:
    engine = await start_engine(seed=_seed)

    async def bad(body: bytes) -> int:
        response = await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
        await response.read()
        return response.status

    statuses = await asyncio.gather(*(bad(body) for body in list(BAD_BODIES.values()) * 5))
    assert all(400 <= s < 500 for s in statuses)
    await _still_serving(engine, "wamid.after-burst")
    assert await _count(engine.database, MessageRow) == 1


# ------------------------------------------------------------------ the broker goes away


@pytest.fixture
async def proxied_engine(postgres_url: str, unique_prefix: str) -> AsyncIterator[tuple[Engine, TcpProxy]]:
    """The production backend with RabbitMQ behind a proxy the test can cut."""
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    settings = Settings(
        database_url=postgres_url,
        broker_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
        broker_prefix=unique_prefix,
        broker_ephemeral=True,
        ingest_partitions=2,
    )
    await migrated(settings.database_url)
    db = Database(settings.database_url)
    try:
        await _seed(db)
    finally:
        await db.dispose()
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    engine = Engine(client, settings)
    processed: asyncio.Queue[tuple[RawEnvelope, Outcome]] = engine.processed
    client.server.app[PIPELINE].observers.append(lambda env, out: processed.put_nowait((env, out)))
    try:
        yield engine, proxy
    finally:
        await client.close()
        await proxy.cut()


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_with_the_broker_down_a_webhook_gets_503_and_after_it_returns_200(
    proxied_engine: tuple[Engine, TcpProxy],
) -> None:
    engine, proxy = proxied_engine
    await _still_serving(engine, "wamid.before-outage")

    await proxy.cut()
    body = _delivery("wamid.during-outage", "¿Hay alguien?")
    down = await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
    assert down.status == 503
    error = (await down.json())["error"]
    assert error["code"] == "broker_unavailable" and "RabbitMQ" in error["message"]

    await proxy.restore()
    async with asyncio.timeout(30):
        while True:  # Meta's retries, compressed: the same delivery until it is accepted
            response = await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
            if response.status == 200:
                break
            assert response.status == 503
            await asyncio.sleep(0.2)
    # A delivery whose ack the outage swallowed comes back once more: it must change nothing.
    outcome = await engine.next_outcome()
    while outcome.stored_messages == 0:
        assert outcome.duplicate or outcome.duplicates, outcome
        outcome = await engine.next_outcome()
    assert outcome.stored_messages == 1
    async with engine.database.session() as s:
        texts = (await s.execute(sa.select(MessageRow.text))).scalars().all()  # type: ignore[call-overload]
    assert sorted(texts) == ["Hola", "¿Hay alguien?"]
