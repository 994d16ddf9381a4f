"""The demo's stand-in for Meta and its customer simulator (``centralita demo`` only).

``DemoMeta`` runs the loopback Graph peer (``channels.meta.peer``) that the demo's adapters send
to instead of Meta, and plays the part of Meta's webhooks: each WhatsApp send it accepts is
followed by ``delivered`` and then ``read`` status webhooks, signed with the account's app
secret and posted to the demo server's own ``/webhooks/whatsapp`` — the path Meta's would take.

The simulator page (``/console/simulator``) lets a person write as a WhatsApp or Instagram
customer: ``POST /demo/api/messages`` builds the webhook Meta would send for the text, signs it
and posts it to the server's webhook endpoint (the real path: signature check, ingest queue,
pipeline, router); ``GET /demo/api/threads/{channel}/{customer}`` shows what the customer wrote
and what the business answered (what the peer received for that customer), with the delivery
state the simulated statuses gave each answer.  Everything listens on and talks to loopback.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from centralita.console import page
from centralita.schemas.simulator import SimulatedMessage, SimulatedThread, SimulatorSend
from centralita.web.api._json import parse_body, respond
from centralita.web.spec import documented
from channels.instagram.testing import text_webhook_body as instagram_text_webhook
from channels.meta.peer import GraphPeer
from channels.meta.signature import sign_body
from channels.whatsapp.testing import contact, text_message
from channels.whatsapp.testing import webhook_body as whatsapp_webhook
from core.channel import ChannelAccount
from core.errors import InvalidInput, NotFound
from core.logging import get_logger

__all__ = ["DemoMeta", "setup"]

log = get_logger("centralita.simulator")

_TICKS = (("delivered", 0.4), ("read", 1.2))


@dataclass
class _Written:
    text: str
    at: datetime


@dataclass
class DemoMeta:
    """The loopback Graph peer and the webhooks Meta would send about what it accepted."""

    accounts: Sequence[ChannelAccount]
    server_url: str = ""  # where the demo serves (its webhooks), set once it listens
    peer: GraphPeer = field(init=False)
    written: dict[tuple[str, str], list[_Written]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)  # provider message id → delivery state
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        tokens = {
            a.address: a.access_token or "" for a in self.accounts if a.channel in ("whatsapp", "instagram")
        }
        self.peer = GraphPeer(tokens)
        self.peer.on_accepted.append(self._accepted)

    async def start(self) -> None:
        await self.peer.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.peer.stop()

    def account(self, channel: str) -> ChannelAccount:
        found = next((a for a in self.accounts if a.channel == channel and a.app_secret), None)
        if found is None:
            raise NotFound(f"the demo has no {channel} account", field="channel")
        return found

    # -- Meta's webhooks --------------------------------------------------------------------
    async def post_webhook(self, channel: str, body: bytes) -> int:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign_body(body, self.account(channel).app_secret or ""),
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{self.server_url}/webhooks/{channel}", data=body, headers=headers
            ) as answer:
                await answer.read()
                return answer.status

    def _accepted(self, entry: dict[str, Any]) -> None:
        entry["at"] = datetime.now(UTC)
        messages = (entry.get("answer") or {}).get("messages")
        if not messages or (entry.get("json") or {}).get("messaging_product") != "whatsapp":
            return
        wamid = str(messages[0].get("id"))
        self.states[wamid] = "sent"
        task = asyncio.get_running_loop().create_task(self._tick(entry, wamid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tick(self, entry: dict[str, Any], wamid: str) -> None:
        account = self.account("whatsapp")
        for state, after_s in _TICKS:
            await asyncio.sleep(after_s)
            status = GraphPeer.whatsapp_status(entry, state, timestamp=int(datetime.now(UTC).timestamp()))
            body = whatsapp_webhook(account.address, statuses=[status])
            try:
                await self.post_webhook("whatsapp", body)
            except aiohttp.ClientError as exc:
                log.warning("simulator.status_not_posted", reason=type(exc).__name__)
                return
            self.states[wamid] = state

    # -- the customer's side ----------------------------------------------------------------
    async def customer_writes(self, send: SimulatorSend) -> int:
        account = self.account(send.channel)
        now = datetime.now(UTC)
        mid = secrets.token_hex(12)
        if send.channel == "whatsapp":
            body = whatsapp_webhook(
                account.address,
                contacts=[contact(send.customer, send.name)],
                messages=[
                    text_message(send.customer, f"wamid.{mid}", send.text, timestamp=int(now.timestamp()))
                ],
            )
        else:
            body = instagram_text_webhook(
                account.address,
                send.customer,
                f"m_{mid}",
                send.text,
                timestamp_ms=int(now.timestamp() * 1000),
            )
        status = await self.post_webhook(send.channel, body)
        if status == 200:
            self.written.setdefault((send.channel, send.customer), []).append(_Written(send.text, now))
        return status

    def thread(self, channel: str, customer: str) -> SimulatedThread:
        out = [
            SimulatedMessage(side="customer", text=w.text, at=w.at, state=None)
            for w in self.written.get((channel, customer), [])
        ]
        for entry in self.peer.received:
            sent = entry.get("json") or {}
            if entry.get("status", 500) >= 300 or _recipient(channel, sent) != customer:
                continue
            messages = (entry.get("answer") or {}).get("messages") or []
            external = (
                str(messages[0].get("id")) if messages else str((entry.get("answer") or {}).get("message_id"))
            )
            out.append(
                SimulatedMessage(
                    side="business",
                    text=_shown_text(sent),
                    at=entry.get("at") or datetime.now(UTC),
                    state=self.states.get(external, "sent") if channel == "whatsapp" else "sent",
                )
            )
        out.sort(key=lambda m: m.at)
        return SimulatedThread(channel=channel, customer=customer, messages=out)


DEMO_META = web.AppKey("demo_meta", DemoMeta)


def _recipient(channel: str, sent: dict[str, Any]) -> str | None:
    if channel == "whatsapp":
        return str(sent.get("to") or "").lstrip("+") or None
    recipient = sent.get("recipient")
    return str(recipient.get("id")) if isinstance(recipient, dict) else None


def _shown_text(sent: dict[str, Any]) -> str:
    """What the customer's phone would show of a send: its text, a template's name, a menu."""
    kind = sent.get("type")
    if kind == "text":
        return str((sent.get("text") or {}).get("body") or "")
    if kind == "template":
        return f"[plantilla {(sent.get('template') or {}).get('name')}]"
    if kind == "interactive":
        interactive = sent.get("interactive") or {}
        body = str((interactive.get("body") or {}).get("text") or "")
        action = interactive.get("action") or {}
        options = [b.get("reply", {}).get("title") for b in action.get("buttons") or []]
        for section in action.get("sections") or []:
            options += [r.get("title") for r in section.get("rows") or []]
        return "\n".join([body, *(f"• {o}" for o in options if o)])
    if kind in ("image", "video", "audio", "document"):  # an agent's file, by the media id it uploaded
        media = sent.get(kind) or {}
        return " ".join(str(p) for p in (f"[{kind}]", media.get("filename"), media.get("caption")) if p)
    message = sent.get("message")
    if isinstance(message, dict):  # Instagram
        return str(message.get("text") or "[adjunto]")
    return f"[{kind or 'mensaje'}]"


# ------------------------------------------------------------------------------ HTTP


@documented(
    None, {200: ("The customer simulator's page (demo only).", {"type": "string"})}, response_type="text/html"
)
async def simulator_page(request: web.Request) -> web.StreamResponse:
    """The demo's customer simulator."""
    return page(request, "simulator.html")


@documented(
    None,
    {202: ("Signed and posted to the server's own webhook, as Meta would.", SimulatedThread)},
    body=SimulatorSend,
    extra_errors={404: "The demo has no account on that channel."},
)
async def simulator_send(request: web.Request) -> web.Response:
    """Write as a customer (demo only)."""
    send = await parse_body(request, SimulatorSend)
    meta = request.app[DEMO_META]
    status = await meta.customer_writes(send)
    if status != 200:
        raise InvalidInput(f"the webhook endpoint answered {status}", field="text")
    return respond(meta.thread(send.channel, send.customer), status=202)


@documented(None, {200: ("What the customer wrote and what the business answered.", SimulatedThread)})
async def simulator_thread(request: web.Request) -> web.Response:
    """A simulated customer's thread (demo only)."""
    channel = request.match_info["channel"]
    if channel not in ("whatsapp", "instagram"):
        raise InvalidInput("channel is whatsapp or instagram", field="channel")
    return respond(request.app[DEMO_META].thread(channel, request.match_info["customer"]))


def setup(app: web.Application, meta: DemoMeta) -> None:
    """Serve the simulator on ``app`` (the demo's); ``meta`` is started and stopped with it."""
    app[DEMO_META] = meta
    app.router.add_get("/console/simulator", simulator_page)
    app.router.add_post("/demo/api/messages", simulator_send)
    app.router.add_get("/demo/api/threads/{channel}/{customer}", simulator_thread)
