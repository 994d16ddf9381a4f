"""Outbound replies through the loopback SMTP peer: headers, threading, retries and errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email import policy
from email.parser import BytesParser
from uuid import UUID

import pytest

from channels.email.adapter import EmailAdapter
from channels.email.testing import SmtpPeer, smtp_peer
from core.channel import AdapterContext, ChannelAccount
from core.errors import InvalidInput, PermanentChannelError, TransientChannelError
from core.events import Address, AddressKind, Attachment, AttachmentKind, OutboundMessage
from core.ids import ChannelAccountId, MessageId, WorkspaceId

ACCOUNT = ChannelAccount(
    id=ChannelAccountId(UUID("0198f000-0000-7000-8000-0000000000b1")),
    workspace_id=WorkspaceId(UUID("0198f000-0000-7000-8000-0000000000b2")),
    campaign_id=None,
    channel="email",
    address="admisiones@universidad.example",
    settings={"display_name": "Admisiones Universidad"},
)
MESSAGE_ID = MessageId(UUID("0198f100-0000-7000-8000-0000000000c1"))
CUSTOMER_MESSAGE = "CAJx9kR2mPq7+Hn4sVbT1Z0yW3xQ8uE5fLgK6oNdA-Gh2Yc7pSw@mail.gmail.com"
TEXT = (
    "Hola María:\n\nSí, la maestría tiene modalidad en línea. Las clases inician el 6 de abril.\n\nSaludos."
)


def reply(**changes: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "message_id": MESSAGE_ID,
        "workspace_id": ACCOUNT.workspace_id,
        "channel": "email",
        "business_address": ACCOUNT.address,
        "recipient": Address(
            kind=AddressKind.EMAIL, value="Maria.Lopez@correo.example", display_name="María López"
        ),
        "text": TEXT,
        "subject": "Información sobre la Maestría en Finanzas",
        "reply_to": CUSTOMER_MESSAGE,
        "references": ("0198f0e2-7c1a-7d3e-9b2a-5e4f3a2b1c0d@universidad.example",),
    }
    fields.update(changes)
    return OutboundMessage.model_validate(fields)


@pytest.fixture
async def peer() -> AsyncIterator[SmtpPeer]:
    async with smtp_peer(send_retries=3) as running:
        yield running


@pytest.fixture
async def adapter(peer: SmtpPeer) -> AsyncIterator[EmailAdapter]:
    built = EmailAdapter(peer.context)
    try:
        yield built
    finally:
        await built.aclose()


async def test_a_reply_threads_into_the_customers_conversation(adapter: EmailAdapter, peer: SmtpPeer) -> None:
    await adapter.send(reply(), ACCOUNT)
    (mail,) = peer.delivered
    assert mail["in_reply_to"] == f"<{CUSTOMER_MESSAGE}>"
    assert mail["references"] == (
        f"<0198f0e2-7c1a-7d3e-9b2a-5e4f3a2b1c0d@universidad.example> <{CUSTOMER_MESSAGE}>"
    )
    assert mail["subject"] == "Re: Información sobre la Maestría en Finanzas"


async def test_the_receipt_carries_the_fresh_message_id_on_the_mailbox_domain(
    adapter: EmailAdapter, peer: SmtpPeer
) -> None:
    receipt = await adapter.send(reply(), ACCOUNT)
    assert receipt.external_id == f"{MESSAGE_ID}@universidad.example"
    assert peer.delivered[0]["message_id"] == f"<{receipt.external_id}>"
    assert receipt.message_id == MESSAGE_ID
    assert receipt.channel == "email"


async def test_from_is_the_mailbox_and_to_is_the_customer(adapter: EmailAdapter, peer: SmtpPeer) -> None:
    await adapter.send(reply(), ACCOUNT)
    (mail,) = peer.delivered
    assert mail["from"] == "Admisiones Universidad <admisiones@universidad.example>"
    assert mail["to"] == "María López <maria.lopez@correo.example>"
    assert mail["mail_from"] == "admisiones@universidad.example"
    assert mail["rcpt_tos"] == ["maria.lopez@correo.example"]


async def test_the_body_is_utf8_quoted_printable_with_accents_intact(
    adapter: EmailAdapter, peer: SmtpPeer
) -> None:
    await adapter.send(reply(), ACCOUNT)
    (mail,) = peer.delivered
    assert mail["text"] == TEXT + "\n"
    assert mail["content_type"] == 'text/plain; charset="utf-8"'
    assert mail["content_transfer_encoding"] == "quoted-printable"
    assert b"Mar=C3=ADa" in mail["raw"]


async def test_a_subject_that_already_says_re_is_not_prefixed_twice(
    adapter: EmailAdapter, peer: SmtpPeer
) -> None:
    await adapter.send(reply(subject="RE: Solicitud de beca"), ACCOUNT)
    assert peer.delivered[0]["subject"] == "RE: Solicitud de beca"


async def test_a_new_message_has_no_thread_headers_and_keeps_its_subject(
    adapter: EmailAdapter, peer: SmtpPeer
) -> None:
    await adapter.send(reply(reply_to=None, references=(), subject="Seguimiento a su solicitud"), ACCOUNT)
    (mail,) = peer.delivered
    assert (mail["subject"], mail["in_reply_to"], mail["references"]) == (
        "Seguimiento a su solicitud",
        "",
        "",
    )


async def test_an_auto_reply_says_auto_submitted(adapter: EmailAdapter, peer: SmtpPeer) -> None:
    await adapter.send(reply(auto_reply=True), ACCOUNT)
    raw = peer.delivered[0]["raw"]
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"


async def test_a_person_reply_does_not_say_auto_submitted(adapter: EmailAdapter, peer: SmtpPeer) -> None:
    await adapter.send(reply(), ACCOUNT)
    assert peer.delivered[0]["auto_submitted"] == ""


async def test_a_4xx_answer_is_retried_until_it_goes_through(adapter: EmailAdapter, peer: SmtpPeer) -> None:
    peer.fail_next(2, 451, "4.3.0 Try again later")
    await adapter.send(reply(), ACCOUNT)
    assert [entry["code"] for entry in peer.received] == [451, 451, 250]
    assert len(peer.delivered) == 1


async def test_a_4xx_answer_on_every_attempt_raises_a_transient_error(
    adapter: EmailAdapter, peer: SmtpPeer
) -> None:
    peer.fail_next(3, 421, "4.7.0 Too many connections", stage="mail")
    with pytest.raises(TransientChannelError) as failed:
        await adapter.send(reply(), ACCOUNT)
    assert failed.value.provider_code == "421"
    assert len(peer.received) == 3
    assert peer.delivered == []


@pytest.mark.parametrize(
    ("code", "stage"),
    [(550, "rcpt"), (553, "rcpt"), (554, "data"), (552, "data")],
)
async def test_a_5xx_answer_is_permanent_and_not_retried(
    adapter: EmailAdapter, peer: SmtpPeer, code: int, stage: str
) -> None:
    peer.fail_next(1, code, "5.1.1 Mailbox unavailable", stage=stage)
    with pytest.raises(PermanentChannelError) as failed:
        await adapter.send(reply(), ACCOUNT)
    assert failed.value.provider_code == str(code)
    assert peer.attempts == 1


async def test_a_refused_connection_is_transient_after_the_configured_attempts(peer: SmtpPeer) -> None:
    closed_port = AdapterContext(smtp_host="127.0.0.1", smtp_port=1, send_retries=2, extra=peer.context.extra)
    adapter = EmailAdapter(closed_port)
    with pytest.raises(TransientChannelError) as failed:
        await adapter.send(reply(), ACCOUNT)
    assert failed.value.provider_code == "connect"


async def test_account_settings_choose_the_smtp_server(peer: SmtpPeer) -> None:
    adapter = EmailAdapter(AdapterContext(smtp_host="127.0.0.1", smtp_port=1, extra=peer.context.extra))
    account = ChannelAccount(
        id=ACCOUNT.id,
        workspace_id=ACCOUNT.workspace_id,
        campaign_id=None,
        channel="email",
        address=ACCOUNT.address,
        settings={"smtp_host": "127.0.0.1", "smtp_port": peer.port},
    )
    await adapter.send(reply(), account)
    assert peer.delivered[0]["from"] == "admisiones@universidad.example"


async def test_a_message_without_text_is_invalid_input(adapter: EmailAdapter, peer: SmtpPeer) -> None:
    with pytest.raises(InvalidInput):
        await adapter.send(reply(text="  "), ACCOUNT)
    assert peer.received == []


async def test_a_non_email_recipient_is_invalid_input(adapter: EmailAdapter) -> None:
    with pytest.raises(InvalidInput):
        await adapter.send(reply(recipient=Address(kind=AddressKind.PHONE, value="+5215512345678")), ACCOUNT)


async def test_a_server_that_never_answers_is_a_transient_timeout(peer: SmtpPeer) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection, never greets
        writer.close()

    server = await asyncio.start_server(silent, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    context = AdapterContext(
        smtp_host="127.0.0.1",
        smtp_port=port,
        send_retries=1,
        extra={**peer.context.extra, "smtp_timeout_s": 0.2},
    )
    adapter = EmailAdapter(context)
    try:
        with pytest.raises(TransientChannelError) as failed:
            await adapter.send(reply(), ACCOUNT)
        assert failed.value.provider_code == "timeout"
    finally:
        server.close()
        await server.wait_closed()


async def test_an_agents_file_goes_as_a_mime_attachment_beside_the_text(
    adapter: EmailAdapter, peer: SmtpPeer
) -> None:
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    document = Attachment(
        kind=AttachmentKind.DOCUMENT,
        mime_type="application/pdf",
        filename="estado-de-cuenta.pdf",
        upload_id="0198f100-0000-7000-8000-0000000000d1",
        content=pdf,
    )
    await adapter.send(reply(attachments=(document,)), ACCOUNT)
    (mail,) = peer.delivered
    parsed = BytesParser(policy=policy.default).parsebytes(mail["raw"])
    assert parsed.get_content_type() == "multipart/mixed"
    body, attached = parsed.iter_parts()
    assert body.get_content().replace("\r\n", "\n") == TEXT + "\n"
    assert (attached.get_content_type(), attached.get_filename()) == (
        "application/pdf",
        "estado-de-cuenta.pdf",
    )
    assert attached.get_content() == pdf
