"""An agent sends a file: uploaded to the conversation (``POST …/attachments``, multipart), named
in a reply (``attachments: [{"upload_id"}]``), uploaded by the outbound worker to WhatsApp's
media edge (the loopback Graph peer plays Meta) and sent by the media id Meta answered; the
conversation's timeline shows it like a customer's image, with its ticks.  Files the channel
does not send, too large, or uploaded by an agent the conversation is not assigned to are
refused naming the field.  A send that uploaded and then failed is retried whole.  On both
backends."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channels.meta.peer import GraphPeer, server_error
from core.settings import Settings
from router.service import ManualClock
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import apply_text, issue_token
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352266191"
SECRET = "attach-app-secret"
WA_TOKEN = "EAA-attach"
CUSTOMER = "5215512347711"
# A real 1×1 PNG (a red pixel).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 24 + b";"
MAX_UPLOAD = 4096

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: adjuntos
campaign: {{name: cobranza, display_name: Cobranza, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 9191"
      waba_id: "300000000000191"
      app_id: "400000000000191"
      app_secret_env: ATTACH_WA_SECRET
      access_token_env: ATTACH_WA_TOKEN
      verify_token_env: ATTACH_WA_VERIFY
      default_queue: cobranza
skills:
  - name: cobranza
queues:
  - name: cobranza
    required_skills: {{cobranza: 1}}
    channels: [whatsapp]
agents:
  - {{email: ana@adjuntos.example, name: Ana, skills: {{cobranza: 9}}, capacity: {{whatsapp: 3}}}}
  - {{email: beto@adjuntos.example, name: Beto, skills: {{cobranza: 9}}, capacity: {{whatsapp: 3}}}}
"""

OTHER = """\
apiVersion: centralita/v1
kind: Campaign
workspace: vecino
campaign: {name: otra, display_name: Otra, timezone: America/Mexico_City}
skills:
  - name: otra
queues:
  - name: otra
    required_skills: {otra: 1}
    channels: [whatsapp]
channels:
  whatsapp:
    - name: otra
      phone_number_id: "106540352266192"
      display_phone: "+52 55 4170 9192"
      waba_id: "300000000000192"
      app_id: "400000000000192"
      app_secret_env: ATTACH_WA_SECRET
      access_token_env: ATTACH_WA_TOKEN
      verify_token_env: ATTACH_WA_VERIFY
      default_queue: otra
agents:
  - {email: zoe@vecino.example, name: Zoe, role: supervisor, skills: {otra: 1}, capacity: {whatsapp: 1}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTACH_WA_SECRET", SECRET)
    monkeypatch.setenv("ATTACH_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("ATTACH_WA_VERIFY", "attach-verify")


@pytest.fixture
async def graph() -> AsyncIterator[GraphPeer]:
    async with GraphPeer({PHONE_NUMBER_ID: WA_TOKEN}) as peer:
        yield peer


@pytest.fixture
async def scene(
    backend_settings: Settings, graph: GraphPeer, start_routing_scene: StartRoutingScene, tmp_path: Path
) -> RoutingScene:
    return await start_routing_scene(
        backend_settings,
        MANIFEST,
        ManualClock(datetime.now(UTC)),
        workspace="adjuntos",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        media_dir=str(tmp_path / "media"),
        media_upload_max_bytes=MAX_UPLOAD,
        send_retries=1,
        send_retry_initial_s=0.0,
        outbound_poll_s=0.1,
        outbound_retry_s=0.05,
    )


async def _assigned_to_ana(scene: RoutingScene) -> tuple[object, str]:
    ana = await scene.connect("ana@adjuntos.example")
    conversation = await scene.customer_writes(
        SECRET, PHONE_NUMBER_ID, CUSTOMER, "¿Me manda el recibo?", name="Marta Gómez"
    )
    offer = await ana.next("offer", conversation_id=conversation)
    await ana.answer(offer)
    await ana.next("assigned", conversation_id=conversation)
    return conversation, await issue_token(
        scene.database, "adjuntos", "agent", scene.agents["ana@adjuntos.example"]
    )


def _form(data: bytes, filename: str, content_type: str, *, name: str = "file") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(name, data, filename=filename, content_type=content_type)
    return form


async def _upload(
    scene: RoutingScene, conversation: object, token: str, form: aiohttp.FormData
) -> tuple[int, dict[str, Any]]:
    response = await scene.client.post(
        f"/api/conversations/{conversation}/attachments",
        data=form,
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status, await response.json()


async def _reply(scene: RoutingScene, conversation: object, token: str, body: dict[str, Any]) -> Any:
    return await scene.client.post(
        f"/api/conversations/{conversation}/messages", json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def _message(scene: RoutingScene, conversation: object, token: str, message_id: str) -> Any:
    response = await scene.client.get(
        f"/api/conversations/{conversation}/messages/{message_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def _timeline_entry(scene: RoutingScene, conversation: object, token: str, message_id: str) -> Any:
    async with asyncio.timeout(10):
        while True:
            response = await scene.client.get(
                f"/api/conversations/{conversation}", headers={"Authorization": f"Bearer {token}"}
            )
            entry = next(e for e in (await response.json())["timeline"] if e["id"] == message_id)
            if entry["delivery_state"] in ("sent", "failed"):
                return entry
            await asyncio.sleep(0.05)


async def test_an_agents_image_reaches_meta_through_its_media_api_and_shows_in_the_timeline(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    conversation, ana = await _assigned_to_ana(scene)
    status, upload = await _upload(scene, conversation, ana, _form(PNG, "recibo.png", "image/png"))
    assert status == 201, upload
    assert (upload["kind"], upload["mime_type"], upload["filename"], upload["size"]) == (
        "image",
        "image/png",
        "recibo.png",
        len(PNG),
    )
    assert upload["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert graph.uploads == []  # kept here until a reply sends it

    body = {"text": "Aquí está su recibo", "attachments": [{"upload_id": upload["id"]}]}
    replied = await _reply(scene, conversation, ana, body)
    assert replied.status == 202, await replied.text()
    message = await replied.json()
    entry = await _timeline_entry(scene, conversation, ana, message["id"])
    assert entry["delivery_state"] == "sent", entry

    (sent_file,) = graph.uploads
    assert sent_file["path"] == f"/v21.0/{PHONE_NUMBER_ID}/media"
    assert sent_file["authorization"] == f"Bearer {WA_TOKEN}"
    assert sent_file["data"] == PNG
    assert (sent_file["type"], sent_file["messaging_product"]) == ("image/png", "whatsapp")
    (sent,) = graph.received
    assert sent["json"]["to"] == CUSTOMER and sent["json"]["type"] == "image"
    assert sent["json"]["image"] == {"id": sent_file["media_id"], "caption": "Aquí está su recibo"}

    (attachment,) = entry["attachments"]
    assert (attachment["kind"], attachment["mime_type"], attachment["filename"]) == (
        "image",
        "image/png",
        "recibo.png",
    )
    assert attachment["media"]["id"] == upload["id"] and attachment["media"]["status"] == "stored"
    served = await scene.client.get(attachment["media"]["url"], headers={"Authorization": f"Bearer {ana}"})
    assert served.status == 200 and await served.read() == PNG


async def test_files_the_channel_does_not_send_are_refused_naming_the_file(scene: RoutingScene) -> None:
    conversation, ana = await _assigned_to_ana(scene)
    cases = [
        (_form(GIF, "saludo.gif", "image/gif"), 415, "WhatsApp does not send image/gif"),
        (_form(b"<html>x</html>", "recibo.png", "image/png"), 415, "the bytes are not image/png"),
        (_form(PNG + b"\0" * MAX_UPLOAD, "grande.png", "image/png"), 413, f"exceeds {MAX_UPLOAD} bytes"),
        (_form(b"", "vacio.pdf", "application/pdf"), 400, "empty"),
        (_form(PNG, "recibo.png", "image/png", name="foto"), 400, "named file"),
    ]
    for form, status, says in cases:
        got, body = await _upload(scene, conversation, ana, form)
        assert (got, body["error"]["field"]) == (status, "file"), body
        assert says in body["error"]["message"], body
    not_a_form = await scene.client.post(
        f"/api/conversations/{conversation}/attachments",
        json={"file": "recibo.png"},
        headers={"Authorization": f"Bearer {ana}"},
    )
    assert not_a_form.status == 415 and (await not_a_form.json())["error"]["field"] == "Content-Type"


async def test_only_the_conversations_agent_and_supervisors_upload_and_an_upload_is_sent_once(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    conversation, ana = await _assigned_to_ana(scene)
    beto = await issue_token(scene.database, "adjuntos", "agent", scene.agents["beto@adjuntos.example"])
    got, body = await _upload(scene, conversation, beto, _form(PNG, "recibo.png", "image/png"))
    assert got == 403 and body["error"]["code"] == "forbidden"
    await apply_text(scene.database, OTHER)
    stranger = await issue_token(scene.database, "vecino", "supervisor")
    got, body = await _upload(scene, conversation, stranger, _form(PNG, "recibo.png", "image/png"))
    assert got == 404  # another workspace's conversation: as if it did not exist

    supervisor = await issue_token(scene.database, "adjuntos", "supervisor")
    got, upload = await _upload(scene, conversation, supervisor, _form(PNG, "recibo.png", "image/png"))
    assert got == 201
    first = await _reply(scene, conversation, ana, {"attachments": [{"upload_id": upload["id"]}]})
    assert first.status == 202, await first.text()
    again = await _reply(scene, conversation, ana, {"attachments": [{"upload_id": upload["id"]}]})
    assert again.status == 409
    assert (await again.json())["error"]["field"] == "attachments[0].upload_id"
    unknown = await _reply(
        scene, conversation, ana, {"attachments": [{"upload_id": "01a1fccc-bc55-72e1-8259-a26d585c88f7"}]}
    )
    assert unknown.status == 404 and (await unknown.json())["error"]["field"] == "attachments[0].upload_id"


async def test_a_send_that_uploaded_and_then_failed_is_retried_whole(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    conversation, ana = await _assigned_to_ana(scene)
    _status, upload = await _upload(scene, conversation, ana, _form(PNG, "recibo.png", "image/png"))
    graph.failures.append(server_error())  # the message post after the first upload
    replied = await _reply(scene, conversation, ana, {"attachments": [{"upload_id": upload["id"]}]})
    await graph.wait_for(1)
    message_id = (await replied.json())["id"]
    async with asyncio.timeout(10):
        while (await _message(scene, conversation, ana, message_id))["delivery_state"] != "queued":  # noqa: ASYNC110 - the worker moves it
            await asyncio.sleep(0.02)
    await scene.advance(1.0)  # the retry is due
    entry = await _timeline_entry(scene, conversation, ana, message_id)
    assert entry["delivery_state"] == "sent", entry
    assert [r["status"] for r in graph.received] == [500, 200]
    assert [u["status"] for u in graph.uploads] == [200, 200]  # the retry uploads again
    assert graph.received[-1]["json"]["image"]["id"] == graph.uploads[-1]["media_id"]
    message = await _message(scene, conversation, ana, message_id)
    assert message["attempts"] == 2
    assert message["attachments"] == [
        {
            "kind": "image",
            "mime_type": "image/png",
            "filename": "recibo.png",
            "size": len(PNG),
            "sha256": hashlib.sha256(PNG).hexdigest(),
            "upload_id": upload["id"],
        }
    ]


async def test_a_reply_whose_file_meta_refused_is_resent_with_the_file_and_shows_it_again(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    conversation, ana = await _assigned_to_ana(scene)
    _status, upload = await _upload(scene, conversation, ana, _form(PNG, "recibo.png", "image/png"))
    refusal = {"error": {"message": "(#131053) Media upload error", "type": "OAuthException", "code": 131053}}
    graph.upload_failures.append({"status": 400, "body": refusal})
    replied = await _reply(scene, conversation, ana, {"attachments": [{"upload_id": upload["id"]}]})
    failed = await _timeline_entry(scene, conversation, ana, (await replied.json())["id"])
    assert failed["delivery_state"] == "failed" and graph.received == []
    assert "WhatsApp did not take the file" in failed["delivery_error"]["message"]

    resent = await scene.client.post(
        f"/api/conversations/{conversation}/messages/{failed['id']}/resend",
        headers={"Authorization": f"Bearer {ana}"},
    )
    assert resent.status == 202, await resent.text()
    entry = await _timeline_entry(scene, conversation, ana, (await resent.json())["id"])
    assert entry["delivery_state"] == "sent"
    assert graph.received[-1]["json"]["image"]["id"] == graph.uploads[-1]["media_id"]
    assert graph.uploads[-1]["data"] == PNG
    (shown,) = entry["attachments"]
    assert shown["media"]["status"] == "stored" and shown["media"]["sha256"] == upload["sha256"]
    served = await scene.client.get(shown["media"]["url"], headers={"Authorization": f"Bearer {ana}"})
    assert await served.read() == PNG
