"""Nothing sent after a commit is lost or sent twice: replies are outbox rows.

Through the real path on both backends: a signed webhook or the reply API → the database → the
outbound worker → the loopback Graph peer.  The worker of the last tests is a process of its own
(``centralita serve`` with ``CENTRALITA_ROLES=outbound``), killed with SIGKILL while the peer has
accepted a send and holds its answer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from centralita.web.keys import OUTBOUND, RUNTIME
from channels.meta.peer import GraphPeer
from channels.meta.signature import sign_body
from channels.whatsapp.testing import webhook_body
from core.errors import BrokerUnavailable
from core.settings import Settings
from core.transport.protocol import Message
from core.transport.topology import OUTBOUND_QUEUE
from storage.database import Database
from storage.tables import MessageRow
from tests.e2e.conftest import Engine, StartEngine
from tests.e2e.test_outbound import (
    PHONE_NUMBER_ID,
    SECOND_PHONE_NUMBER_ID,
    WA_SECRET,
    WA_TOKEN,
    _assign,
    _conversation,
    _deliver,
    _secrets,  # noqa: F401  (the accounts' secrets in the environment)
    _seed,
    _wa_text,
)

DEADLINE_S = 20.0


@dataclass
class Outbox:
    engine: Engine
    graph: GraphPeer
    agent_id: uuid.UUID
    agent_token: str

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_token}"}

    async def customer_writes(self) -> uuid.UUID:
        at = datetime.now(UTC) - timedelta(minutes=5)
        await _deliver(
            self.engine, "whatsapp", _wa_text("wamid.in.1", "Hola, quiero información", at), WA_SECRET
        )
        conversation_id = await _conversation(self.engine)
        await _assign(self.engine, conversation_id, self.agent_id)
        return conversation_id

    async def reply(self, conversation_id: uuid.UUID, text: str) -> dict[str, Any]:
        response = await self.engine.client.post(
            f"/api/conversations/{conversation_id}/messages", json={"text": text}, headers=self.auth()
        )
        assert response.status == 202, await response.text()
        return dict(await response.json())

    async def resend(self, conversation_id: uuid.UUID, message_id: str) -> Any:
        return await self.engine.client.post(
            f"/api/conversations/{conversation_id}/messages/{message_id}/resend", headers=self.auth()
        )

    async def timeline_entry(self, conversation_id: uuid.UUID, message_id: str) -> dict[str, Any]:
        response = await self.engine.client.get(f"/api/conversations/{conversation_id}", headers=self.auth())
        assert response.status == 200, await response.text()
        (entry,) = [e for e in (await response.json())["timeline"] if e["id"] == message_id]
        return dict(entry)

    async def status_webhook(self, statuses: Sequence[dict[str, Any]]) -> None:
        body = webhook_body(PHONE_NUMBER_ID, statuses=statuses)
        headers = {"X-Hub-Signature-256": sign_body(body, WA_SECRET), "Content-Type": "application/json"}
        response = await self.engine.client.post("/webhooks/whatsapp", data=body, headers=headers)
        assert response.status == 200, await response.text()
        await self.engine.next_outcome()


async def _row(db: Database, message_id: str) -> MessageRow:
    async with db.session() as s:
        row = await s.get(MessageRow, uuid.UUID(message_id))
    assert row is not None
    return row


async def _until_state(db: Database, message_id: str, *states: str) -> MessageRow:
    """Wait (bounded) until the row is in one of ``states``."""
    async with asyncio.timeout(DEADLINE_S):
        while (row := await _row(db, message_id)).delivery_state not in states:  # noqa: ASYNC110 - another process writes it
            await asyncio.sleep(0.05)
    return row


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN, SECOND_PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


OutboxFactory = Callable[..., Awaitable[Outbox]]


@pytest.fixture
def start_outbox(start_engine: StartEngine, graph: GraphPeer) -> OutboxFactory:
    async def start(**overrides: Any) -> Outbox:
        seeded: dict[str, Any] = {}

        async def seed(db: Database) -> None:
            seeded.update(await _seed(db))

        engine = await start_engine(
            seed=seed,
            graph_base_url=graph.base_url,
            send_retries=1,
            outbound_poll_s=0.1,
            **overrides,
        )
        return Outbox(engine, graph, seeded["agent_id"], seeded["agent_token"])

    return start


def _lose_outbound_nudges(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    """The broker refuses every nudge to the outbound queue (after the reply's commit)."""
    transport = engine.client.server.app[RUNTIME].transport
    publish = transport.publish
    lost: list[Message] = []

    async def publish_losing_nudges(messages: Sequence[Message]) -> None:
        nudges = [m for m in messages if m.routing_key == OUTBOUND_QUEUE]
        if nudges:
            lost.extend(nudges)
            raise BrokerUnavailable("the broker dropped the connection")
        await publish(messages)

    monkeypatch.setattr(transport, "publish", publish_losing_nudges)
    return lost


# ------------------------------------------------------------------ a lost nudge


async def test_an_agent_reply_whose_nudge_is_lost_is_still_sent_exactly_once(
    start_outbox: OutboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = await start_outbox()
    conversation_id = await outbox.customer_writes()
    lost = _lose_outbound_nudges(outbox.engine, monkeypatch)

    queued = await outbox.reply(conversation_id, "Con gusto te ayudo.")
    assert lost, "the nudge was refused by the broker"
    assert queued["delivery_state"] == "queued"

    row = await _until_state(outbox.engine.database, queued["id"], "sent", "failed")
    assert row.delivery_state == "sent" and row.attempts == 1
    sends = outbox.graph.requests_to(PHONE_NUMBER_ID)
    assert [r["json"]["text"]["body"] for r in sends] == ["Con gusto te ayudo."]
    assert row.external_id == sends[0]["answer"]["messages"][0]["id"]
    # One more round of the worker finds nothing left to send.
    assert await outbox.engine.client.server.app[OUTBOUND].run_due() == 0
    assert len(outbox.graph.requests_to(PHONE_NUMBER_ID)) == 1


async def test_a_transient_failure_is_retried_from_the_database_with_its_attempt_count(
    start_outbox: OutboxFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = await start_outbox(outbound_attempts=2, outbound_retry_s=0.05)
    conversation_id = await outbox.customer_writes()
    _lose_outbound_nudges(outbox.engine, monkeypatch)
    outbox.graph.fail_next(status=500, times=1)

    queued = await outbox.reply(conversation_id, "Segundo intento.")
    row = await _until_state(outbox.engine.database, queued["id"], "sent", "failed")
    assert (row.delivery_state, row.attempts) == ("sent", 2)
    assert [r["status"] for r in outbox.graph.requests_to(PHONE_NUMBER_ID)] == [500, 200]


# ------------------------------------------------------------------ a worker killed mid-send


@contextmanager
def _worker_process(settings: Settings) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """``centralita serve`` with only the outbound worker, on the engine's database and broker."""
    env = {**os.environ}
    worker = settings.model_copy(
        update={"roles": "outbound", "port": 0, "outbound_poll_s": 0.1, "outbound_lease_s": 1.0}
    )
    for name, value in worker.model_dump().items():
        if value is not None:
            env[f"CENTRALITA_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env["CENTRALITA_BROKER_EPHEMERAL"] = "false"  # the engine in the test owns the queues
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "centralita.cli", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        return process

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@asynccontextmanager
async def _killed_mid_send(
    outbox: Outbox,
) -> AsyncIterator[tuple[uuid.UUID, dict[str, Any], dict[str, Any]]]:
    """A reply the peer accepted while its worker was SIGKILLed before recording the answer;
    a new worker runs inside the block.  Yields the conversation, the queued reply and the
    request the peer accepted."""
    conversation_id = await outbox.customer_writes()
    outbox.graph.hold_next()
    with _worker_process(outbox.engine.settings) as start_worker:
        first = start_worker()
        queued = await outbox.reply(conversation_id, "¿Te llamo mañana a las 10?")
        (accepted,) = await outbox.graph.wait_for(1, within_s=DEADLINE_S)
        assert (await _row(outbox.engine.database, queued["id"])).delivery_state == "sending"
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, DEADLINE_S)
        outbox.graph.release()  # the answer goes to nobody

        start_worker()
        row = await _until_state(outbox.engine.database, queued["id"], "unknown", "sent", "queued")
        assert row.delivery_state == "unknown"
        assert row.external_id is None
        assert len(outbox.graph.received) == 1  # the new worker did not send it again
        yield conversation_id, queued, accepted


async def test_a_worker_killed_after_the_provider_accepted_leaves_an_unknown_reply_the_agent_resends_once(
    start_outbox: OutboxFactory,
) -> None:
    outbox = await start_outbox(roles="pipeline,config")  # the worker runs in its own process
    async with _killed_mid_send(outbox) as (conversation_id, queued, _accepted):
        entry = await outbox.timeline_entry(conversation_id, queued["id"])
        assert entry["delivery_state"] == "unknown"
        assert entry["delivery_error"]["code"] == "delivery_unconfirmed"
        assert "resend" in entry["delivery_error"]["message"]
        shown = await outbox.engine.client.get(
            f"/api/conversations/{conversation_id}/messages/{queued['id']}", headers=outbox.auth()
        )
        assert (await shown.json())["resendable"] is True

        response = await outbox.resend(conversation_id, queued["id"])
        assert response.status == 202, await response.text()
        resent = await response.json()
        assert resent["resend_of"] == queued["id"] and resent["delivery_state"] == "queued"
        again = await outbox.resend(conversation_id, queued["id"])
        assert again.status == 409  # one resend per message, however often the agent clicks

        row = await _until_state(outbox.engine.database, resent["id"], "sent", "failed")
        assert row.delivery_state == "sent"
        requests = outbox.graph.requests_to(PHONE_NUMBER_ID)
        assert len(requests) == 2
        assert requests[1]["json"]["biz_opaque_callback_data"] == resent["id"]
        assert (await outbox.resend(conversation_id, resent["id"])).status == 409  # sent: nothing to resend
    assert (await _row(outbox.engine.database, queued["id"])).delivery_state == "unknown"


async def test_a_delivery_status_reconciles_an_unknown_reply_by_its_callback_reference(
    start_outbox: OutboxFactory,
) -> None:
    outbox = await start_outbox(roles="pipeline,config")
    async with _killed_mid_send(outbox) as (conversation_id, queued, accepted):
        assert accepted["json"]["biz_opaque_callback_data"] == queued["id"]
        await outbox.status_webhook([GraphPeer.whatsapp_status(accepted, "delivered")])

    row = await _row(outbox.engine.database, queued["id"])
    assert row.delivery_state == "delivered"
    assert row.external_id == accepted["answer"]["messages"][0]["id"]
    entry = await outbox.timeline_entry(conversation_id, queued["id"])
    assert (entry["delivery_state"], entry["delivery_error"]) == ("delivered", None)
    assert (await outbox.resend(conversation_id, queued["id"])).status == 409
