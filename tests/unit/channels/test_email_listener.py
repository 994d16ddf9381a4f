"""The SMTP listener on loopback, driven by a real SMTP client (aiosmtplib)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import aiosmtplib
import pytest

from centralita.directory import StaticDirectory
from channels.email.adapter import EmailAdapter
from channels.email.parse import parse_email
from channels.email.testing import fixture
from core.channel import AdapterContext, ChannelAccount, ListeningAdapter
from core.errors import BrokerUnavailable, InvalidInput
from core.ids import ChannelAccountId, WorkspaceId

MAILBOXES = ("admisiones@universidad.example", "cobranza@financiera.example")
CUSTOMER = "maria.lopez@correo.example"


def _account(address: str, n: int) -> ChannelAccount:
    return ChannelAccount(
        id=ChannelAccountId(UUID(int=n)),
        workspace_id=WorkspaceId(UUID(int=100)),
        campaign_id=None,
        channel="email",
        address=address,
    )


DIRECTORY = StaticDirectory([_account(a, i) for i, a in enumerate(MAILBOXES, start=1)])


@dataclass
class Sink:
    """An ingress sink port: records deliveries, can be down or hold the answer back."""

    accepted: list[tuple[str, bytes, Mapping[str, str]]] = field(default_factory=list)
    calls: int = 0
    error: Exception | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event | None = None

    async def accept(self, channel: str, body: bytes, *, headers: Mapping[str, str]) -> None:
        self.calls += 1
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        self.accepted.append((channel, body, headers))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def listening(sink: Sink) -> AsyncIterator[EmailAdapter]:
    adapter = EmailAdapter(AdapterContext(extra={"smtp_listen_port": 0, "smtp_max_bytes": 64_000}))
    await adapter.start_listener(sink, DIRECTORY)
    try:
        yield adapter
    finally:
        await adapter.aclose()


async def deliver(adapter: EmailAdapter, raw: bytes, recipients: Sequence[str]) -> None:
    assert adapter.listener_port
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=adapter.listener_port,
        local_hostname="mail-sor-f41.google.example",
        timeout=5,
    ) as client:
        await client.sendmail(CUSTOMER, list(recipients), raw)


def test_the_email_adapter_is_a_listening_adapter() -> None:
    assert isinstance(EmailAdapter(AdapterContext()), ListeningAdapter)


async def test_a_mail_for_a_configured_mailbox_reaches_the_sink_with_delivered_to(
    listening: EmailAdapter, sink: Sink
) -> None:
    await deliver(listening, fixture("encoded_headers_base64"), ["Cobranza@Financiera.example"])
    ((channel, body, headers),) = sink.accepted
    assert channel == "email"
    assert body.startswith(
        b"Delivered-To: cobranza@financiera.example\r\nReceived: from mail-sor-f41.google.example"
    )
    assert headers["x-smtp-rcpt-to"] == "cobranza@financiera.example"
    assert headers["x-smtp-mail-from"] == CUSTOMER
    (event,) = parse_email(body, received_at=datetime.now(UTC))
    assert event.business_address == "cobranza@financiera.example"


async def test_a_mail_for_two_mailboxes_reaches_the_sink_once_per_mailbox(
    listening: EmailAdapter, sink: Sink
) -> None:
    await deliver(listening, fixture("gmail_reply_alternative"), list(MAILBOXES))
    mailboxes = [
        parse_email(body, received_at=datetime.now(UTC))[0].business_address for _, body, _ in sink.accepted
    ]
    assert mailboxes == list(MAILBOXES)


async def test_an_unknown_recipient_is_refused_with_550_and_the_sink_is_not_called(
    listening: EmailAdapter, sink: Sink
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await deliver(listening, fixture("encoded_headers_base64"), ["nadie@universidad.example"])
    assert refused.value.recipients[0].code == 550
    assert "5.1.1" in refused.value.recipients[0].message
    assert sink.calls == 0


async def test_only_the_known_recipient_of_a_mixed_list_is_delivered(
    listening: EmailAdapter, sink: Sink
) -> None:
    await deliver(listening, fixture("encoded_headers_base64"), ["nadie@universidad.example", MAILBOXES[1]])
    assert [headers["x-smtp-rcpt-to"] for _, _, headers in sink.accepted] == [MAILBOXES[1]]


async def test_when_the_sink_is_down_the_sender_is_told_451_to_retry(
    listening: EmailAdapter, sink: Sink
) -> None:
    sink.error = BrokerUnavailable("broker down")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await deliver(listening, fixture("encoded_headers_base64"), [MAILBOXES[1]])
    assert refused.value.code == 451
    assert refused.value.message.startswith("4.3.0")


async def test_a_permanent_sink_refusal_is_answered_554(listening: EmailAdapter, sink: Sink) -> None:
    sink.error = InvalidInput("no")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await deliver(listening, fixture("encoded_headers_base64"), [MAILBOXES[1]])
    assert refused.value.code == 554


async def test_the_250_is_sent_only_after_the_sink_returned(listening: EmailAdapter, sink: Sink) -> None:
    sink.release = asyncio.Event()
    sending = asyncio.create_task(deliver(listening, fixture("encoded_headers_base64"), [MAILBOXES[1]]))
    await asyncio.wait_for(sink.entered.wait(), timeout=5)
    for _ in range(50):  # let the loop run the session as far as it can go
        await asyncio.sleep(0)
    assert not sending.done(), "the client got its answer before the sink returned"
    sink.release.set()
    await asyncio.wait_for(sending, timeout=5)
    assert len(sink.accepted) == 1


async def test_a_mail_over_the_size_limit_is_refused_with_552(listening: EmailAdapter, sink: Sink) -> None:
    raw = fixture("encoded_headers_base64") + b"X" * 70 + (b"\r\n" + b"Y" * 70) * 1200
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await deliver(listening, raw, [MAILBOXES[1]])
    assert refused.value.code == 552
    assert sink.calls == 0


async def test_the_listener_stops_listening(sink: Sink) -> None:
    adapter = EmailAdapter(AdapterContext(extra={"smtp_listen_port": 0}))
    await adapter.start_listener(sink, DIRECTORY)
    port = adapter.listener_port
    await adapter.stop_listener()
    assert adapter.listener_port is None
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=2).connect()
