"""A signed WhatsApp delivery goes in over HTTP and comes out as a stored message in a conversation."""

from __future__ import annotations

import hashlib
import hmac
import io

import pytest
import sqlalchemy as sa

from channels.whatsapp.testing import text_webhook_body
from storage.database import Database
from storage.tables import ConversationRow, CustomerRow, IdentifierRow, MessageRow, RawDeliveryRow
from tests.e2e.conftest import StartEngine
from tests.support.seed import seed_workspace

SECRET = "s3cr3t-app-secret"
PHONE_NUMBER_ID = "106540352242922"


def _text_delivery(wamid: str, text: str, wa_id: str = "5215512345678") -> bytes:
    return text_webhook_body(PHONE_NUMBER_ID, wa_id, wamid, text)


def _signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


async def _seed(db: Database) -> None:
    await seed_workspace(
        db,
        "clinica",
        [
            {
                "channel": "whatsapp",
                "address": PHONE_NUMBER_ID,
                "app_id": "app-1",
                "app_secret_env": "WA_APP_SECRET",
            }
        ],
    )


async def _count(db: Database, table: type) -> int:
    async with db.session() as s:
        return int((await s.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WA_APP_SECRET", SECRET)


async def test_a_signed_message_becomes_a_stored_message_in_a_waiting_conversation(
    start_engine: StartEngine,
) -> None:
    engine = await start_engine(seed=_seed)
    body = _text_delivery("wamid.HBgNNTIxNTUxMjM0NTY3OBUCABIYFjNFQjA", "Hola, necesito una autorización")
    response = await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
    assert response.status == 200, await response.text()
    outcome = await engine.next_outcome()
    assert outcome.stored_messages == 1
    async with engine.database.session() as s:
        message = (await s.execute(sa.select(MessageRow))).scalars().one()
        conversation = (await s.execute(sa.select(ConversationRow))).scalars().one()
    assert message.text == "Hola, necesito una autorización"
    assert message.direction == "in" and message.conversation_id == conversation.id
    assert conversation.status == "waiting" and conversation.channel == "whatsapp"


async def test_a_redelivered_webhook_changes_nothing(start_engine: StartEngine) -> None:
    engine = await start_engine(seed=_seed)
    body = _text_delivery("wamid.redelivered", "Hola")
    for _ in range(2):
        response = await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
        assert response.status == 200
    first, second = await engine.next_outcome(), await engine.next_outcome()
    assert first.stored_messages == 1 and second.duplicate
    for table in (RawDeliveryRow, MessageRow, ConversationRow, CustomerRow, IdentifierRow):
        assert await _count(engine.database, table) == 1, table.__name__


async def test_the_same_message_id_in_a_different_body_is_still_one_message(
    start_engine: StartEngine,
) -> None:
    engine = await start_engine(seed=_seed)
    for text in ("Hola", "Hola (reenviado)"):
        body = _text_delivery("wamid.same-id", text)
        assert (
            await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
        ).status == 200
    await engine.next_outcome()
    assert (await engine.next_outcome()).duplicates == 1
    assert await _count(engine.database, MessageRow) == 1


async def test_a_wrong_signature_gets_a_json_401_and_stores_nothing(start_engine: StartEngine) -> None:
    engine = await start_engine(seed=_seed)
    body = _text_delivery("wamid.forged", "Hola")
    response = await engine.client.post(
        "/webhooks/whatsapp", data=body, headers=_signed(body, "not-the-secret")
    )
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_signature"
    assert await _count(engine.database, RawDeliveryRow) == 0


async def test_a_second_message_continues_the_open_conversation(start_engine: StartEngine) -> None:
    engine = await start_engine(seed=_seed)
    for i, text in enumerate(("Hola", "¿Siguen ahí?")):
        body = _text_delivery(f"wamid.cont.{i}", text)
        assert (
            await engine.client.post("/webhooks/whatsapp", data=body, headers=_signed(body))
        ).status == 200
        await engine.next_outcome()
    assert await _count(engine.database, ConversationRow) == 1
    assert await _count(engine.database, MessageRow) == 2


async def test_a_body_over_the_size_limit_gets_413_and_stores_nothing(start_engine: StartEngine) -> None:
    engine = await start_engine(seed=_seed)
    body = b'{"object":"whatsapp_business_account","entry":[' + b" " * 3_000_000 + b"]}"
    response = await engine.client.post("/webhooks/whatsapp", data=io.BytesIO(body), headers=_signed(body))
    assert response.status == 413
    assert (await response.json())["error"]["field"] == "body"
    assert await _count(engine.database, RawDeliveryRow) == 0
