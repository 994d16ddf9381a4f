"""Every inbound type of every channel, through the real path, on both backends.

Table-driven over the fixtures each adapter ships with its conformance kit: each delivery is
posted, signed, to ``/webhooks/<channel>`` (email also over SMTP to the listener) and comes out
as the right timeline rows — kind, provider id, text, attachments and quoted message in the
stored payload — or as no row at all for what is not customer traffic (delivery statuses, our
own echoes, ignored webhook fields).  Auto-replies and bounces never open a conversation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
import sqlalchemy as sa
from pydantic import TypeAdapter

import channels.email.testing as email_kit
import channels.instagram.testing as instagram_kit
import channels.whatsapp.testing as whatsapp_kit
from centralita.web.keys import RUNTIME
from core.channel import ChannelAccount
from core.events import InboundEvent
from core.normalized import to_normalized
from storage.database import Database
from storage.tables import (
    CampaignRow,
    ChannelAccountRow,
    ConversationRow,
    IdentifierRow,
    MessageRow,
    RawDeliveryRow,
    WorkspaceRow,
)
from tests.e2e.conftest import Engine, StartEngine

RECEIVED_AT = datetime(2026, 3, 10, tzinfo=UTC)
# Timeline kinds the pipeline stores; the rest (status, echo, ignored) never become rows.
STORED_KINDS = frozenset({"message", "postback", "reaction", "deleted", "edited", "read", "system"})
_EVENTS: TypeAdapter[Any] = TypeAdapter(InboundEvent)


def _env_name(account: ChannelAccount, what: str) -> str:
    return f"KIT_{account.channel.upper()}_{account.id.hex[-6:].upper()}_{what}"


def _kit_env(monkeypatch: pytest.MonkeyPatch, accounts: Sequence[ChannelAccount]) -> None:
    for account in accounts:
        for what, value in (
            ("SECRET", account.app_secret),
            ("TOKEN", account.access_token),
            ("VERIFY", account.verify_token),
        ):
            if value:
                monkeypatch.setenv(_env_name(account, what), value)


def _seeder(accounts: Sequence[ChannelAccount]) -> Any:
    """The kit's accounts as the running configuration: their workspaces, campaigns and rows."""

    async def seed(db: Database) -> None:
        async with db.transaction() as session:
            for n, ws in enumerate(sorted({a.workspace_id for a in accounts})):
                session.add(WorkspaceRow(id=ws, slug=f"kit-{n}-{ws.hex[-4:]}", name=f"Kit {n}"))
            await session.flush()
            campaigns = {(a.workspace_id, a.campaign_id) for a in accounts if a.campaign_id}
            for ws, campaign in sorted(campaigns, key=str):
                session.add(
                    CampaignRow(
                        id=campaign, workspace_id=ws, name=f"c-{campaign.hex[-4:]}", display_name="Kit"
                    )
                )
            await session.flush()
            for a in accounts:
                session.add(
                    ChannelAccountRow(
                        id=a.id,
                        workspace_id=a.workspace_id,
                        campaign_id=a.campaign_id,
                        channel=a.channel,
                        address=a.address,
                        app_id=a.app_id,
                        app_secret_env=_env_name(a, "SECRET") if a.app_secret else None,
                        access_token_env=_env_name(a, "TOKEN") if a.access_token else None,
                        verify_token_env=_env_name(a, "VERIFY") if a.verify_token else None,
                        settings=dict(a.settings),
                    )
                )

    return seed


async def _rows_of(engine: Engine, raw_delivery_id: uuid.UUID) -> list[MessageRow]:
    async with engine.database.session() as s:
        query = sa.select(MessageRow).where(MessageRow.raw_delivery_id == raw_delivery_id)  # type: ignore[arg-type]
        return list((await s.execute(query)).scalars().all())


def _stored_view(row: MessageRow) -> dict[str, Any]:
    """The normalized view of the event the row keeps (its payload is the parsed event)."""
    return to_normalized(_EVENTS.validate_json(json.dumps(row.payload)))


def _problems(name: str, rows: list[MessageRow], expected: Sequence[dict[str, Any]]) -> list[str]:
    wanted = [e for e in expected if e["kind"] in STORED_KINDS]
    problems: list[str] = []
    if len(rows) != len(wanted):
        kinds = sorted(r.kind for r in rows)
        return [f"{name}: {len(rows)} rows {kinds}, expected {len(wanted)} ({[e['kind'] for e in wanted]})"]
    remaining = list(rows)
    for event in wanted:
        match = next(
            (
                r
                for r in remaining
                if r.kind == event["kind"]
                and ("external_id" not in event or r.external_id == event["external_id"])
            ),
            None,
        )
        if match is None:
            problems.append(f"{name}: no stored {event['kind']} row for {event.get('external_id')}")
            continue
        remaining.remove(match)
        if match.direction != "in":
            problems.append(f"{name}: direction {match.direction}")
        if "text" in event and event["kind"] in {"message", "postback"} and match.text != event["text"]:
            problems.append(f"{name}: text {match.text!r} != {event['text']!r}")
        view = _stored_view(match)
        for key, value in event.items():
            if view.get(key, "<missing>") != value:
                problems.append(f"{name}: {key} {view.get(key, '<missing>')!r} != {value!r}")
        opens = event["kind"] in {"message", "postback"} and not event.get("automated")
        if opens and match.conversation_id is None:
            problems.append(f"{name}: customer traffic stored outside a conversation")
    return problems


async def _post_samples(engine: Engine, kit: Any) -> list[str]:
    problems: list[str] = []
    for sample in kit.samples():
        headers = {k: v for k, v in sample.request.headers.items()}
        response = await engine.client.post(sample.request.path, data=sample.request.body, headers=headers)
        if response.status != 200:
            problems.append(f"{sample.name}: HTTP {response.status} {await response.text()}")
            continue
        raw_id = uuid.UUID((await response.json())["raw_delivery_id"])
        await engine.next_outcome()
        problems += _problems(sample.name, await _rows_of(engine, raw_id), sample.expected)
    return problems


@pytest.mark.parametrize("channel", ["whatsapp", "instagram"])
async def test_every_meta_fixture_becomes_its_timeline_rows(
    channel: str, start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = {"whatsapp": whatsapp_kit, "instagram": instagram_kit}[channel].conformance_kit()
    _kit_env(monkeypatch, kit.accounts())
    engine = await start_engine(seed=_seeder(kit.accounts()))
    assert len(kit.samples()) >= 20
    problems = await _post_samples(engine, kit)
    assert not problems, "\n".join(problems)
    stored = [e for sample in kit.samples() for e in sample.expected if e["kind"] in STORED_KINDS]
    inbound = await _count(engine, MessageRow, MessageRow.direction == "in")  # type: ignore[arg-type]
    assert inbound == len(stored) >= 20


async def _count(engine: Engine, table: type, *where: Any) -> int:
    async with engine.database.session() as s:
        query = sa.select(sa.func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        return int((await s.execute(query)).scalar_one())


async def _post_meta(engine: Engine, kit: Any, sample_name: str) -> uuid.UUID:
    sample = next(s for s in kit.samples() if s.name == sample_name)
    response = await engine.client.post(
        sample.request.path, data=sample.request.body, headers=dict(sample.request.headers)
    )
    assert response.status == 200, await response.text()
    await engine.next_outcome()
    return uuid.UUID((await response.json())["raw_delivery_id"])


async def test_status_webhooks_create_no_messages(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = whatsapp_kit.conformance_kit()
    _kit_env(monkeypatch, kit.accounts())
    engine = await start_engine(seed=_seeder(kit.accounts()))
    for name in ("statuses_sent_delivered_read", "status_failed"):
        raw_id = await _post_meta(engine, kit, name)
        assert await _count(engine, RawDeliveryRow, RawDeliveryRow.id == raw_id) == 1  # type: ignore[arg-type]
    assert await _count(engine, MessageRow) == 0  # not even a note
    assert await _count(engine, ConversationRow) == 0


async def test_a_template_status_update_is_answered_200_and_stores_no_message(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = whatsapp_kit.conformance_kit()
    _kit_env(monkeypatch, kit.accounts())
    engine = await start_engine(seed=_seeder(kit.accounts()))
    await _post_meta(engine, kit, "template_status_update_is_ignored")
    assert await _count(engine, MessageRow) == 0


async def test_an_instagram_echo_of_our_own_message_is_never_an_inbound_message(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit = instagram_kit.conformance_kit()
    _kit_env(monkeypatch, kit.accounts())
    engine = await start_engine(seed=_seeder(kit.accounts()))
    await _post_meta(engine, kit, "echo_of_our_own_message")
    assert await _count(engine, MessageRow) == 0
    assert await _count(engine, ConversationRow) == 0


# ------------------------------------------------------------------ email


EMAIL_FIXTURES = sorted(p.stem for p in email_kit.FIXTURES.glob("*.eml"))
AUTOMATED = {"exchange_out_of_office", "postfix_bounce", "cpanel_autoresponder"}


def _email_expectations() -> dict[str, dict[str, Any]]:
    return {sample.name: dict(sample.expected[0]) for sample in email_kit.conformance_kit().samples()}


async def _email_engine(start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    kit = email_kit.conformance_kit()
    _kit_env(monkeypatch, kit.accounts())
    return await start_engine(seed=_seeder(kit.accounts()), smtp_listen_port=0)


async def _customer_conversations(engine: Engine, address: str) -> int:
    async with engine.database.session() as s:
        customer = (
            await s.execute(sa.select(IdentifierRow.customer_id).where(IdentifierRow.value == address))  # type: ignore[call-overload,arg-type]
        ).scalar_one_or_none()
    if customer is None:
        return 0
    return await _count(engine, ConversationRow, ConversationRow.customer_id == customer)  # type: ignore[arg-type]


def _expected_from_parse(body: bytes) -> dict[str, Any]:
    """What the adapter makes of the mail, as the stored row must show it (time aside)."""
    from channels.email.adapter import EmailAdapter
    from core.channel import AdapterContext

    (event,) = EmailAdapter(AdapterContext()).parse(body, received_at=RECEIVED_AT)
    view = to_normalized(event)
    keep = ("kind", "external_id", "sender", "business_address", "text", "attachments", "reply_to", "subject")
    return {k: view[k] for k in (*keep, "automated") if k in view}


async def test_every_email_fixture_posted_to_the_webhook_becomes_its_message(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await _email_engine(start_engine, monkeypatch)
    kit = email_kit.conformance_kit()
    expectations = _email_expectations()
    assert len(EMAIL_FIXTURES) >= 15
    problems: list[str] = []
    for name in EMAIL_FIXTURES:
        body = email_kit.fixture(name)
        response = await engine.client.post(
            "/webhooks/email", data=body, headers=dict(kit.sign(body).headers)
        )
        assert response.status == 200, f"{name}: {await response.text()}"
        raw_id = uuid.UUID((await response.json())["raw_delivery_id"])
        await engine.next_outcome()
        expected = {**_expected_from_parse(body), **expectations.get(name, {})}
        problems += _problems(name, await _rows_of(engine, raw_id), [expected])
    assert not problems, "\n".join(problems)


async def test_auto_replies_and_bounces_never_open_a_conversation(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await _email_engine(start_engine, monkeypatch)
    kit = email_kit.conformance_kit()
    for name in sorted(AUTOMATED):
        body = email_kit.fixture(name)
        response = await engine.client.post(
            "/webhooks/email", data=body, headers=dict(kit.sign(body).headers)
        )
        assert response.status == 200
        await engine.next_outcome()
        expected = _expected_from_parse(body)
        assert expected["automated"] in {"auto_reply", "bounce"}
        assert await _customer_conversations(engine, expected["sender"]) == 0, name
    assert await _count(engine, ConversationRow) == 0
    assert await _count(engine, MessageRow, MessageRow.conversation_id.is_not(None)) == 0  # type: ignore[union-attr]
    assert await _count(engine, MessageRow) == len(AUTOMATED)


async def test_an_email_webhook_without_the_token_is_refused_and_stores_nothing(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await _email_engine(start_engine, monkeypatch)
    body = email_kit.fixture("gmail_reply_alternative")
    response = await engine.client.post(
        "/webhooks/email", data=body, headers={"Authorization": "Bearer nope"}
    )
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_signature"
    assert await _count(engine, RawDeliveryRow) == 0


def _listener_port(engine: Engine) -> int:
    port = engine.client.server.app[RUNTIME].adapters.get("email").listener_port  # type: ignore[attr-defined]
    assert isinstance(port, int) and port > 0
    return port


async def test_a_mail_over_smtp_to_a_configured_mailbox_becomes_a_message_in_a_conversation(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await _email_engine(start_engine, monkeypatch)
    mail = EmailMessage()
    mail["From"] = "Sofía Ramírez <Sofia.Ramirez@correo.example>"
    mail["To"] = "admisiones@universidad.example"
    mail["Subject"] = "Becas para el doctorado"
    mail["Message-ID"] = "<smtp-e2e-1@correo.example>"
    mail["Date"] = "Tue, 03 Mar 2026 10:15:28 -0600"
    mail.set_content("Hola, ¿hay becas para el doctorado?\n\nSaludos,\nSofía\n")
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=_listener_port(engine), timeout=10)
    outcome = await engine.next_outcome()
    assert outcome.stored_messages == 1
    async with engine.database.session() as s:
        row = (await s.execute(sa.select(MessageRow))).scalars().one()
    assert row.channel == "email" and row.kind == "message" and row.direction == "in"
    assert row.external_id == "smtp-e2e-1@correo.example"
    assert row.text is not None and row.text.startswith("Hola, ¿hay becas para el doctorado?")
    assert row.conversation_id is not None
    view = _stored_view(row)
    assert view["sender"] == "sofia.ramirez@correo.example"
    assert view["business_address"] == "admisiones@universidad.example"
    assert view["subject"] == "Becas para el doctorado"


async def test_smtp_refuses_an_unknown_mailbox_with_550_and_stores_nothing(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await _email_engine(start_engine, monkeypatch)
    mail = EmailMessage()
    mail["From"] = "alguien@correo.example"
    mail["To"] = "nadie@universidad.example"
    mail["Subject"] = "Hola"
    mail.set_content("Hola")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=_listener_port(engine), timeout=10)
    assert refused.value.recipients[0].code == 550
    assert await _count(engine, RawDeliveryRow) == 0


async def test_a_bounce_over_smtp_opens_no_conversation(
    start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await _email_engine(start_engine, monkeypatch)
    await aiosmtplib.send(
        email_kit.fixture("postfix_bounce"),
        sender="MAILER-DAEMON@mx.universidad.example",
        recipients=["admisiones@universidad.example"],
        hostname="127.0.0.1",
        port=_listener_port(engine),
        timeout=10,
    )
    await engine.next_outcome()
    async with engine.database.session() as s:
        row = (await s.execute(sa.select(MessageRow))).scalars().one()
    assert _stored_view(row)["automated"] == "bounce"
    assert row.conversation_id is None
    assert await _count(engine, ConversationRow) == 0
