"""A customer's image, from the webhook to the agent's screen: the signed webhook names a WhatsApp
media id; the media worker fetches it through the loopback Graph peer (id → URL → bytes, with the
account's token), checks it and keeps it; the timeline carries the attachment and its stored
copy; ``GET /api/media/{id}`` serves it to the agent whose customer it is, and to nobody else.
A file that is not what it claims is refused, the reason shown; erasure deletes the file.
On both backends."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.meta.peer import GraphPeer
from core.settings import Settings
from router.service import ManualClock
from tests.e2e.conftest import StartRoutingScene
from tests.support.campaigns import apply_text, issue_token
from tests.support.routing import RoutingScene

PHONE_NUMBER_ID = "106540352266091"
SECRET = "media-app-secret"
WA_TOKEN = "EAA-media"
CUSTOMER = "5215512347700"
# A real 1×1 PNG (a red pixel): the desk shows it.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)

MANIFEST = f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: medios
campaign: {{name: soporte, display_name: Soporte, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 9091"
      waba_id: "300000000000091"
      app_id: "400000000000091"
      app_secret_env: MEDIA_WA_SECRET
      access_token_env: MEDIA_WA_TOKEN
      verify_token_env: MEDIA_WA_VERIFY
      default_queue: soporte
skills:
  - name: soporte
queues:
  - name: soporte
    required_skills: {{soporte: 1}}
    channels: [whatsapp]
agents:
  - {{email: ana@medios.example, name: Ana, skills: {{soporte: 9}}, capacity: {{whatsapp: 3}}}}
  - {{email: beto@medios.example, name: Beto, skills: {{soporte: 9}}, capacity: {{whatsapp: 3}}}}
"""

OTHER = """\
apiVersion: centralita/v1
kind: Campaign
workspace: ajeno
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
      phone_number_id: "106540352266092"
      display_phone: "+52 55 4170 9092"
      waba_id: "300000000000092"
      app_id: "400000000000092"
      app_secret_env: MEDIA_WA_SECRET
      access_token_env: MEDIA_WA_TOKEN
      verify_token_env: MEDIA_WA_VERIFY
      default_queue: otra
agents:
  - {email: zoe@ajeno.example, name: Zoe, role: supervisor, skills: {otra: 1}, capacity: {whatsapp: 1}}
"""


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_WA_SECRET", SECRET)
    monkeypatch.setenv("MEDIA_WA_TOKEN", WA_TOKEN)
    monkeypatch.setenv("MEDIA_WA_VERIFY", "media-verify")


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
        workspace="medios",
        graph_base_url=graph.base_url,
        router_ramp_period_s=0.0,
        config_poll_s=3600.0,
        media_dir=str(tmp_path / "media"),
        media_poll_s=0.1,
        media_retry_s=0.1,
    )


def image(media_id: str, caption: str | None = None, mime: str = "image/png") -> dict[str, Any]:
    body: dict[str, Any] = {"id": media_id, "mime_type": mime, "sha256": "ignored"}
    if caption:
        body["caption"] = caption
    return {"type": "image", "image": body}


async def _timeline(
    scene: RoutingScene, conversation: object, token: str, *, until: str
) -> list[dict[str, Any]]:
    """The conversation's timeline once its last attachment is no longer pending."""
    async with asyncio.timeout(10):
        while True:
            response = await scene.client.get(
                f"/api/conversations/{conversation}", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status == 200, await response.text()
            timeline = (await response.json())["timeline"]
            media = timeline[-1]["attachments"][0]["media"]
            if media["status"] == until:
                return list(timeline)
            await asyncio.sleep(0.05)


async def _assigned_to_ana(scene: RoutingScene, content: dict[str, Any]) -> tuple[object, str]:
    ana = await scene.connect("ana@medios.example")
    conversation = await scene.customer_sends(SECRET, PHONE_NUMBER_ID, CUSTOMER, content, name="Marta Gómez")
    offer = await ana.next("offer", conversation_id=conversation)
    assert offer["preview"]["attachments"] == ["image"]
    await ana.answer(offer)
    await ana.next("assigned", conversation_id=conversation)
    return conversation, await issue_token(
        scene.database, "medios", "agent", scene.agents["ana@medios.example"]
    )


async def test_a_customers_image_is_fetched_kept_and_served_to_their_agent_only(
    scene: RoutingScene, graph: GraphPeer, tmp_path: Path
) -> None:
    graph.add_media("1479537139650973", PNG, "image/png")
    conversation, ana = await _assigned_to_ana(scene, image("1479537139650973", "La factura"))
    timeline = await _timeline(scene, conversation, ana, until="stored")
    (attachment,) = timeline[-1]["attachments"]
    assert (attachment["kind"], attachment["caption"], attachment["mime_type"]) == (
        "image",
        "La factura",
        "image/png",
    )
    media = attachment["media"]
    assert media["sha256"] == hashlib.sha256(PNG).hexdigest() and media["size"] == len(PNG)
    assert graph.downloads == 1

    served = await scene.client.get(media["url"], headers={"Authorization": f"Bearer {ana}"})
    assert served.status == 200 and await served.read() == PNG
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Disposition"].startswith("inline")

    beto = await issue_token(scene.database, "medios", "agent", scene.agents["beto@medios.example"])
    refused = await scene.client.get(media["url"], headers={"Authorization": f"Bearer {beto}"})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "forbidden"
    supervisor = await issue_token(scene.database, "medios", "supervisor")
    assert (
        await scene.client.get(media["url"], headers={"Authorization": f"Bearer {supervisor}"})
    ).status == 200
    await apply_text(scene.database, OTHER)
    stranger = await issue_token(scene.database, "ajeno", "supervisor")
    elsewhere = await scene.client.get(media["url"], headers={"Authorization": f"Bearer {stranger}"})
    assert elsewhere.status == 404  # another workspace: as if it did not exist
    assert len(list((tmp_path / "media").rglob("*"))) == 2  # one directory, one file

    customer = timeline[-1]
    detail = await (
        await scene.client.get(
            f"/api/conversations/{conversation}", headers={"Authorization": f"Bearer {ana}"}
        )
    ).json()
    bundle = await (
        await scene.client.get(
            f"/api/customers/{detail['customer']['id']}/export",
            headers={"Authorization": f"Bearer {supervisor}"},
        )
    ).json()
    (exported,) = bundle["media"]
    assert exported["message_id"] == customer["id"] and exported["url"] == media["url"]
    assert (exported["kind"], exported["status"], exported["sha256"]) == ("image", "stored", media["sha256"])


async def test_a_file_that_is_not_what_it_claims_is_refused_and_the_agent_sees_why(
    scene: RoutingScene, graph: GraphPeer
) -> None:
    graph.add_media("990001", b"<html><script>alert(1)</script></html>", "image/png")
    conversation, ana = await _assigned_to_ana(scene, image("990001"))
    timeline = await _timeline(scene, conversation, ana, until="failed")
    media = timeline[-1]["attachments"][0]["media"]
    assert media["url"] is None and "the bytes are not image/png" in media["error"]
    refused = await scene.client.get(f"/api/media/{media['id']}", headers={"Authorization": f"Bearer {ana}"})
    assert refused.status == 404 and "failed" in (await refused.json())["error"]["message"]


async def test_media_the_provider_lost_is_failed_with_the_providers_reason(scene: RoutingScene) -> None:
    conversation, ana = await _assigned_to_ana(scene, image("000404"))  # the peer has no such media
    timeline = await _timeline(scene, conversation, ana, until="failed")
    assert "does not exist" in timeline[-1]["attachments"][0]["media"]["error"]


async def test_erasing_the_customer_deletes_the_file(
    scene: RoutingScene, graph: GraphPeer, tmp_path: Path
) -> None:
    graph.add_media("1479537139650973", PNG, "image/png")
    conversation, ana = await _assigned_to_ana(scene, image("1479537139650973"))
    timeline = await _timeline(scene, conversation, ana, until="stored")
    url = timeline[-1]["attachments"][0]["media"]["url"]
    admin = await issue_token(scene.database, "medios", "admin")
    await scene.close(conversation)  # type: ignore[arg-type]  # a person is erased once their conversations are closed
    detail = await (
        await scene.client.get(
            f"/api/conversations/{conversation}", headers={"Authorization": f"Bearer {ana}"}
        )
    ).json()
    erased = await scene.client.post(
        f"/api/customers/{detail['customer']['id']}/erase",
        json={"reason": "solicitud ARCO del titular"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert erased.status == 200, await erased.text()
    assert (await erased.json())["counts"]["media"] == 1
    assert (await scene.client.get(url, headers={"Authorization": f"Bearer {admin}"})).status == 404
    async with asyncio.timeout(5):
        while [p for p in (tmp_path / "media").rglob("*") if p.is_file()]:  # noqa: ASYNC110 - the worker deletes it
            await asyncio.sleep(0.05)
