"""Sending through the WhatsApp Cloud API, against the loopback Graph API peer."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from channels.meta.peer import GraphPeer, rate_limited, server_error, slow, template_missing, window_closed
from channels.whatsapp.adapter import WhatsAppAdapter
from channels.whatsapp.testing import accounts
from core.errors import PermanentChannelError, TransientChannelError
from core.events import (
    Address,
    AddressKind,
    Attachment,
    AttachmentKind,
    Interactive,
    InteractiveOption,
    OutboundMessage,
    Template,
)
from core.ids import MessageId

ACCOUNT = accounts()[0]


@pytest.fixture
async def peer() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({a.address: a.access_token or "" for a in accounts()}) as running:
        yield running


@pytest.fixture
async def adapter(peer: GraphPeer) -> AsyncIterator[WhatsAppAdapter]:
    built = WhatsAppAdapter(peer.context())
    yield built
    await built.aclose()


def outbound(**fields: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "message_id": MessageId(uuid.uuid4()),
        "workspace_id": ACCOUNT.workspace_id,
        "channel": "whatsapp",
        "business_address": ACCOUNT.address,
        "recipient": Address(kind=AddressKind.PHONE, value="+5215512345678"),
    }
    return OutboundMessage(**{**base, **fields})


async def test_a_text_reply_is_posted_to_the_numbers_messages_edge_with_the_bearer_token(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    message = outbound(text="Hola")
    receipt = await adapter.send(message, ACCOUNT)
    (request,) = peer.received
    assert request["path"] == f"/v21.0/{ACCOUNT.address}/messages"
    assert request["authorization"] == f"Bearer {ACCOUNT.access_token}"
    assert request["json"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5215512345678",
        "type": "text",
        "text": {"body": "Hola", "preview_url": False},
        "biz_opaque_callback_data": str(message.message_id),
    }
    assert receipt.external_id.startswith("wamid.")


async def test_the_receipt_carries_the_wamid_meta_returned(peer: GraphPeer, adapter: WhatsAppAdapter) -> None:
    message = outbound(text="Hola")
    receipt = await adapter.send(message, ACCOUNT)
    assert receipt.message_id == message.message_id
    assert receipt.channel == "whatsapp"


async def test_a_reply_carries_the_context_of_the_quoted_message(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    await adapter.send(outbound(text="Sí", reply_to="wamid.ABC"), ACCOUNT)
    assert peer.received[0]["json"]["context"] == {"message_id": "wamid.ABC"}


async def test_a_document_goes_by_media_id_with_its_filename_and_the_text_as_caption(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    doc = Attachment(kind=AttachmentKind.DOCUMENT, media_id="1003383421387299", filename="temario.pdf")
    await adapter.send(outbound(text="El temario", attachments=(doc,)), ACCOUNT)
    body = peer.received[0]["json"]
    assert body["type"] == "document"
    assert body["document"] == {"id": "1003383421387299", "caption": "El temario", "filename": "temario.pdf"}


async def test_an_image_by_url_goes_as_a_link(peer: GraphPeer, adapter: WhatsAppAdapter) -> None:
    image = Attachment(kind=AttachmentKind.IMAGE, url="https://cdn.example.com/campus.jpg")
    await adapter.send(outbound(attachments=(image,)), ACCOUNT)
    assert peer.received[0]["json"]["image"] == {"link": "https://cdn.example.com/campus.jpg"}


async def test_a_template_goes_with_its_language_and_header_body_and_button_parameters(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    template = Template(
        name="bienvenida_posgrado",
        language="es_MX",
        header_parameters=("Posgrados 2027",),
        body_parameters=("María", "MBA"),
        button_parameters=("CONFIRMAR", "url:abc123"),
    )
    await adapter.send(outbound(template=template), ACCOUNT)
    body = peer.received[0]["json"]
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "bienvenida_posgrado",
        "language": {"code": "es_MX"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Posgrados 2027"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "María"}, {"type": "text", "text": "MBA"}],
            },
            {
                "type": "button",
                "index": "0",
                "sub_type": "quick_reply",
                "parameters": [{"type": "payload", "payload": "CONFIRMAR"}],
            },
            {
                "type": "button",
                "index": "1",
                "sub_type": "url",
                "parameters": [{"type": "text", "text": "abc123"}],
            },
        ],
    }


def _options(count: int) -> tuple[InteractiveOption, ...]:
    return tuple(InteractiveOption(id=f"survey:x:{n}", title=f"{n} ⭐") for n in range(1, count + 1))


async def test_reply_buttons_go_as_an_interactive_button_message(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    interactive = Interactive(style="buttons", body="¿Te ayudamos?", options=_options(2))
    await adapter.send(outbound(text="¿Te ayudamos?\n1. 1 ⭐\n2. 2 ⭐", interactive=interactive), ACCOUNT)
    body = peer.received[0]["json"]
    assert body["type"] == "interactive" and "text" not in body
    assert body["interactive"] == {
        "type": "button",
        "body": {"text": "¿Te ayudamos?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "survey:x:1", "title": "1 ⭐"}},
                {"type": "reply", "reply": {"id": "survey:x:2", "title": "2 ⭐"}},
            ]
        },
    }


async def test_a_list_goes_as_one_section_with_its_button(peer: GraphPeer, adapter: WhatsAppAdapter) -> None:
    interactive = Interactive(style="list", body="Califica", options=_options(5), button="Calificar")
    await adapter.send(outbound(text="Califica", interactive=interactive), ACCOUNT)
    sent = peer.received[0]["json"]["interactive"]
    assert (sent["type"], sent["action"]["button"]) == ("list", "Calificar")
    assert [r["id"] for r in sent["action"]["sections"][0]["rows"]] == [f"survey:x:{n}" for n in range(1, 6)]


async def test_a_list_of_more_rows_than_meta_takes_is_refused_by_the_peer_as_permanent(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    interactive = Interactive(style="list", body="NPS", options=_options(11), button="Calificar")
    with pytest.raises(PermanentChannelError):
        await adapter.send(outbound(text="NPS", interactive=interactive), ACCOUNT)


async def test_a_bsuid_recipient_goes_in_the_recipient_field(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    bsuid = Address(kind=AddressKind.WHATSAPP_BSUID, value="MX.1410018717833190", scope="102290129340398")
    await adapter.send(outbound(text="Hola", recipient=bsuid), ACCOUNT)
    body = peer.received[0]["json"]
    assert body["recipient"] == "MX.1410018717833190"
    assert "to" not in body


async def test_a_rate_limit_is_retried_and_then_succeeds(peer: GraphPeer, adapter: WhatsAppAdapter) -> None:
    peer.failures.append(rate_limited(times=2))
    receipt = await adapter.send(outbound(text="Hola"), ACCOUNT)
    assert [r["status"] for r in peer.received] == [429, 429, 200]
    assert receipt.external_id.startswith("wamid.")


async def test_a_server_error_that_persists_surfaces_as_transient_after_every_attempt(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    peer.failures.append(server_error(times=10))
    with pytest.raises(TransientChannelError) as caught:
        await adapter.send(outbound(text="Hola"), ACCOUNT)
    assert caught.value.provider_code == 131000
    assert len(peer.received) == 3  # the peer's context allows three attempts


async def test_a_closed_customer_service_window_is_permanent_and_not_retried(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    peer.failures.append(window_closed())
    with pytest.raises(PermanentChannelError) as caught:
        await adapter.send(outbound(text="Hola"), ACCOUNT)
    assert caught.value.provider_code == 131047
    assert "24 hours" in caught.value.message
    assert len(peer.received) == 1


async def test_an_unknown_template_is_permanent_with_metas_details(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    peer.failures.append(template_missing())
    with pytest.raises(PermanentChannelError) as caught:
        await adapter.send(outbound(template=Template(name="bienvenida")), ACCOUNT)
    assert caught.value.provider_code == 132001
    assert caught.value.details["http_status"] == 404
    assert "fbtrace_id" in caught.value.details


async def test_a_wrong_access_token_is_refused_by_the_peer_with_code_190(peer: GraphPeer) -> None:
    adapter = WhatsAppAdapter(peer.context())
    try:
        with pytest.raises(PermanentChannelError) as caught:
            await adapter.send(outbound(text="Hola"), dataclasses.replace(ACCOUNT, access_token="stolen"))
    finally:
        await adapter.aclose()
    assert caught.value.provider_code == 190
    assert peer.received[0]["status"] == 401


async def test_a_slow_answer_times_out_as_transient(peer: GraphPeer) -> None:
    adapter = WhatsAppAdapter(peer.context(http_timeout_s=0.05, send_retries=2))
    peer.failures.append(slow(2.0, times=2))
    try:
        with pytest.raises(TransientChannelError, match="did not answer"):
            await adapter.send(outbound(text="Hola"), ACCOUNT)
    finally:
        await adapter.aclose()


async def test_an_unreachable_graph_api_is_transient() -> None:
    async with GraphPeer({ACCOUNT.address: "x"}) as stopped:
        context = stopped.context(send_retries=2)
    adapter = WhatsAppAdapter(context)  # the peer is gone: connection refused
    try:
        with pytest.raises(TransientChannelError, match="could not reach"):
            await adapter.send(outbound(text="Hola"), ACCOUNT)
    finally:
        await adapter.aclose()


async def test_a_message_with_nothing_to_send_is_refused_before_any_request(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    with pytest.raises(PermanentChannelError):
        await adapter.send(outbound(), ACCOUNT)
    assert peer.received == []


async def test_the_peer_answers_a_body_without_to_like_meta_does(peer: GraphPeer) -> None:
    body = {"messaging_product": "whatsapp", "type": "text", "text": {"body": "Hola"}}
    headers = {"Authorization": f"Bearer {ACCOUNT.access_token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{peer.base_url}/v21.0/{ACCOUNT.address}/messages", json=body, headers=headers
        ) as response,
    ):
        answer = await response.json()
    assert response.status == 400
    assert answer["error"]["code"] == 100
    assert answer["error"]["message"] == "(#100) The parameter to is required."
    assert answer["error"]["fbtrace_id"]


async def test_the_peer_answers_an_unknown_phone_number_id_with_subcode_33(peer: GraphPeer) -> None:
    body = {"messaging_product": "whatsapp", "to": "5215512345678", "text": {"body": "Hola"}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{peer.base_url}/v21.0/999/messages", json=body, headers={"Authorization": "Bearer x"}
        ) as r,
    ):
        answer = await r.json()
    assert (r.status, answer["error"]["code"], answer["error"]["error_subcode"]) == (400, 100, 33)


# -- an agent's file: uploaded to the media edge, then sent by the id Meta answered -----------

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


def uploaded_image(caption: str | None = None) -> Attachment:
    return Attachment(
        kind=AttachmentKind.IMAGE,
        mime_type="image/png",
        filename="recibo.png",
        caption=caption,
        upload_id=str(uuid.uuid4()),
        content=PNG,
    )


async def test_an_agents_file_is_uploaded_to_the_media_edge_and_sent_by_the_returned_id(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    await adapter.send(outbound(text="Su recibo", attachments=(uploaded_image(),)), ACCOUNT)
    (upload,) = peer.uploads
    assert upload["path"] == f"/v21.0/{ACCOUNT.address}/media"
    assert upload["authorization"] == f"Bearer {ACCOUNT.access_token}"
    assert (upload["messaging_product"], upload["type"], upload["filename"]) == (
        "whatsapp",
        "image/png",
        "recibo.png",
    )
    assert upload["data"] == PNG and upload["content_type"] == "image/png"
    (sent,) = peer.received
    assert sent["json"]["type"] == "image"
    assert sent["json"]["image"] == {"id": upload["media_id"], "caption": "Su recibo"}


async def test_a_message_post_retried_after_the_upload_does_not_upload_the_file_again(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    peer.failures.append(server_error())
    await adapter.send(outbound(attachments=(uploaded_image("Recibo"),)), ACCOUNT)
    assert len(peer.uploads) == 1
    assert [r["status"] for r in peer.received] == [500, 200]
    assert peer.received[-1]["json"]["image"]["id"] == peer.uploads[0]["media_id"]


async def test_a_refused_upload_is_permanent_and_sends_no_message(
    peer: GraphPeer, adapter: WhatsAppAdapter
) -> None:
    peer.upload_failures.append(
        {"status": 400, "body": {"error": {"message": "(#131053) Media upload error", "code": 131053}}}
    )
    with pytest.raises(PermanentChannelError, match="WhatsApp did not take the file"):
        await adapter.send(outbound(attachments=(uploaded_image(),)), ACCOUNT)
    assert peer.received == []


def test_the_files_bytes_never_leave_in_json_or_a_repr() -> None:
    attachment = uploaded_image()
    assert "content" not in attachment.model_dump(mode="json")
    assert "content=" not in repr(attachment) and "PNG" not in repr(attachment)
