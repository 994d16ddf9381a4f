"""An auto-reply is written in the transaction of the message that caused it: a pipeline that
stops right after its commit (before any post-commit step) loses nothing, and the outbound
worker sends the welcome once, from the database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from centralita.outbound import SendOutcome
from centralita.pipeline.worker import AutoReplyOrder
from centralita.web.keys import OUTBOUND, PIPELINE
from tests.e2e.test_welcome_and_triage import (  # noqa: F401  (the campaign live, its peers and secrets)
    PHONE_NUMBER_ID,
    Customers,
    _conversation,
    _secrets,
    customers,
    graph,
    settings,
    smtp,
)


async def test_the_welcome_of_a_committed_message_is_sent_once_although_the_pipeline_stopped_after_its_commit(
    customers: Customers,  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = customers.scene.client.server.app
    sent: asyncio.Queue[SendOutcome] = asyncio.Queue()
    app[OUTBOUND].observers.append(sent.put_nowait)
    never_ran: list[Sequence[AutoReplyOrder]] = []

    async def stopped_after_the_commit(orders: Sequence[AutoReplyOrder]) -> None:
        never_ran.append(orders)  # the process is gone: nothing after the commit happens

    monkeypatch.setattr(app[PIPELINE], "send_auto_replies", stopped_after_the_commit)

    outcome = await customers.whatsapp("5215512340091", "Hola, buenas tardes")
    conversation = _conversation(outcome)
    assert [len(orders) for orders in never_ran] == [1]

    async with asyncio.timeout(10):
        outcome_of_send = await sent.get()
    assert outcome_of_send.state == "sent" and outcome_of_send.message_id == never_ran[0][0].message_id
    (welcome,) = await customers.sent_to_whatsapp(1)
    assert welcome.startswith("¡Hola! Gracias por escribir")
    (row,) = await customers.auto_replies(conversation)
    assert row.delivery_state == "sent" and row.payload["auto_reply"] is True
    # Nothing is left to send: one more round of the worker sends nothing.
    await app[OUTBOUND].run_due()
    assert len(customers.graph.requests_to(PHONE_NUMBER_ID)) == 1
