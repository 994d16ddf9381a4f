"""Instagram: verification across apps, and the Send API against the loopback Graph API peer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from centralita.directory import StaticDirectory
from channels.instagram.adapter import InstagramAdapter
from channels.instagram.client import messages_url
from channels.instagram.testing import (
    APP_SECRET,
    CUSTOMER,
    FACEBOOK_APP_SECRET,
    PAGE_ID,
    accounts,
    fixture,
    peer_node,
)
from channels.meta.peer import GraphPeer, graph_error_body, instagram_window_closed
from channels.meta.signature import sign_body
from core.channel import AdapterContext, WebhookRequest
from core.errors import InvalidSignature, PermanentChannelError, TransientChannelError
from core.events import Address, AddressKind, Attachment, AttachmentKind, OutboundMessage
from core.ids import MessageId

INSTAGRAM_LOGIN, _, FACEBOOK_LOGIN = accounts()


@pytest.fixture
async def peer() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({peer_node(a): a.access_token or "" for a in accounts()}) as running:
        yield running


@pytest.fixture
async def adapter(peer: GraphPeer) -> AsyncIterator[InstagramAdapter]:
    built = InstagramAdapter(peer.context())
    yield built
    await built.aclose()


def outbound(**fields: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "message_id": MessageId(uuid.uuid4()),
        "workspace_id": INSTAGRAM_LOGIN.workspace_id,
        "channel": "instagram",
        "business_address": INSTAGRAM_LOGIN.address,
        "recipient": Address(kind=AddressKind.INSTAGRAM_ID, value=CUSTOMER, scope=INSTAGRAM_LOGIN.address),
    }
    return OutboundMessage(**{**base, **fields})


def signed(body: bytes, secret: str) -> WebhookRequest:
    return WebhookRequest(
        method="POST", path="/", headers={"x-hub-signature-256": sign_body(body, secret)}, query={}, body=body
    )


def test_a_delivery_signed_by_the_instagram_login_app_verifies() -> None:
    InstagramAdapter(AdapterContext()).verify(
        signed(fixture("text"), APP_SECRET), StaticDirectory(accounts())
    )


def test_a_delivery_for_an_account_of_another_app_is_rejected() -> None:
    with pytest.raises(InvalidSignature, match="does not belong"):
        InstagramAdapter(AdapterContext()).verify(
            signed(fixture("text"), FACEBOOK_APP_SECRET), StaticDirectory(accounts())
        )


def test_instagram_login_sends_go_to_graph_instagram_com_with_the_account_id() -> None:
    assert messages_url(AdapterContext(), INSTAGRAM_LOGIN) == (
        f"https://graph.instagram.com/v21.0/{INSTAGRAM_LOGIN.address}/messages"
    )


def test_facebook_login_sends_go_to_the_page_on_graph_facebook_com() -> None:
    assert (
        messages_url(AdapterContext(), FACEBOOK_LOGIN)
        == f"https://graph.facebook.com/v21.0/{PAGE_ID}/messages"
    )


async def test_a_text_reply_is_sent_as_a_response_to_the_igsid(
    peer: GraphPeer, adapter: InstagramAdapter
) -> None:
    receipt = await adapter.send(outbound(text="¡Hola!"), INSTAGRAM_LOGIN)
    (request,) = peer.received
    assert request["path"] == f"/v21.0/{INSTAGRAM_LOGIN.address}/messages"
    assert request["authorization"] == f"Bearer {INSTAGRAM_LOGIN.access_token}"
    assert request["json"] == {
        "recipient": {"id": CUSTOMER},
        "messaging_type": "RESPONSE",
        "message": {"text": "¡Hola!"},
    }
    assert receipt.external_id
    assert receipt.channel == "instagram"


async def test_the_human_agent_tag_goes_as_a_message_tag(peer: GraphPeer, adapter: InstagramAdapter) -> None:
    await adapter.send(outbound(text="Seguimos", tag="HUMAN_AGENT"), INSTAGRAM_LOGIN)
    body = peer.received[0]["json"]
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


async def test_text_with_an_image_goes_as_two_sends_attachment_first(
    peer: GraphPeer, adapter: InstagramAdapter
) -> None:
    image = Attachment(kind=AttachmentKind.IMAGE, url="https://cdn.example.com/campus.jpg")
    receipt = await adapter.send(outbound(text="Nuestro campus", attachments=(image,)), INSTAGRAM_LOGIN)
    first, second = (r["json"]["message"] for r in peer.received)
    assert first == {
        "attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/campus.jpg"}}
    }
    assert second == {"text": "Nuestro campus"}
    assert receipt.external_id


async def test_a_facebook_login_account_sends_through_its_page(
    peer: GraphPeer, adapter: InstagramAdapter
) -> None:
    await adapter.send(outbound(text="Hola"), FACEBOOK_LOGIN)
    assert peer.received[0]["node_id"] == PAGE_ID


async def test_a_rate_limit_is_retried(peer: GraphPeer, adapter: InstagramAdapter) -> None:
    peer.fail_next(status=400, body=graph_error_body(613, "Calls to this api have exceeded the rate limit."))
    await adapter.send(outbound(text="Hola"), INSTAGRAM_LOGIN)
    assert [r["status"] for r in peer.received] == [400, 200]


async def test_a_reply_outside_the_window_is_permanent(peer: GraphPeer, adapter: InstagramAdapter) -> None:
    peer.failures.append(instagram_window_closed())
    with pytest.raises(PermanentChannelError, match="allowed window") as caught:
        await adapter.send(outbound(text="Hola"), INSTAGRAM_LOGIN)
    assert caught.value.provider_code == 10
    assert len(peer.received) == 1


async def test_a_temporary_send_failure_that_persists_is_transient(
    peer: GraphPeer, adapter: InstagramAdapter
) -> None:
    peer.fail_next(status=500, body=graph_error_body(1200, "Temporary send message failure"), times=5)
    with pytest.raises(TransientChannelError):
        await adapter.send(outbound(text="Hola"), INSTAGRAM_LOGIN)
    assert len(peer.received) == 3


async def test_a_phone_recipient_is_refused_before_any_request(
    peer: GraphPeer, adapter: InstagramAdapter
) -> None:
    with pytest.raises(PermanentChannelError):
        await adapter.send(
            outbound(text="Hola", recipient=Address(kind=AddressKind.PHONE, value="+5215512345678")),
            INSTAGRAM_LOGIN,
        )
    assert peer.received == []
