"""A loopback Graph API: the messages and media edges of the WhatsApp Cloud API, the Instagram Send API.

Product code in the spirit of ``httpx.MockTransport``: tests, benchmarks and the demo point an
adapter's ``graph_base_url`` at it instead of Meta.  It listens on 127.0.0.1 (port 0, chosen by
the OS), validates bodies the way Meta does, answers with Meta's real success and error bodies,
records every request it got (refused ones too), and can be told to fail the next requests.

    async with GraphPeer({"106540352242922": "token-1"}) as peer:
        adapter = WhatsAppAdapter(peer.context())
        peer.fail_next(**rate_limited())          # or peer.failures.append({...})
        ...
        peer.received[-1]["json"]                 # what the adapter sent

A failure is a dict ``{"status": int, "body": dict, "times": int = 1, "delay_s": float = 0}``:
the next ``times`` requests are answered with it (after ``delay_s``, for timeouts).

``hold_next()`` accepts the next request (recorded in ``received`` with its ``answer``) and holds
the answer until ``release()`` or ``stop()``: the provider has the message, the sender does not
know yet — for killing a sender in between.  ``whatsapp_status(entry, "delivered")`` is the
``statuses[]`` item Meta would send later for an accepted WhatsApp send, with the send's
``biz_opaque_callback_data`` echoed back.

Media: ``add_media(media_id, data, mime_type)`` makes a customer's WhatsApp media retrievable as
the Cloud API serves it — ``GET /{version}/{media-id}`` describes it (``url``, ``mime_type``,
``sha256``, ``file_size``) and that ``url`` gives the bytes, both with a known access token —
and ``cdn_url(name)`` serves bytes without a token, like Instagram's CDN.  ``downloads`` counts
the byte downloads.  ``POST /{version}/{phone-number-id}/media`` takes a business's upload as
the Cloud API does (multipart ``file``, ``type``, ``messaging_product=whatsapp``; the node's
token), answers ``{"id": media_id}`` and records it in ``uploads`` (``data``, ``type``,
``filename``, ``content_type``, ``media_id``), apart from ``received``; the media is then
retrievable like a customer's.  ``upload_failures`` (same shape as ``failures``) fails uploads.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import BodyPartReader, web

from core.channel import AdapterContext

__all__ = [
    "GraphPeer",
    "expired_token",
    "graph_error_body",
    "instagram_window_closed",
    "rate_limited",
    "server_error",
    "slow",
    "template_missing",
    "undeliverable",
    "window_closed",
]

_WHATSAPP_TYPES = frozenset(
    {
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "template",
        "reaction",
    }
)
_MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
_INSTAGRAM_ATTACHMENTS = frozenset(
    {"image", "video", "audio", "file", "like_heart", "MEDIA_SHARE", "template"}
)


def _interactive_refusal(content: dict[str, Any]) -> str | None:
    """Why Meta would refuse an interactive reply-button or list message (None: it takes it)."""
    itype = content.get("type")
    action = content.get("action")
    if not isinstance((content.get("body") or {}).get("text"), str) or not isinstance(action, dict):
        return "(#100) The parameter interactive['body'] is required."
    if itype == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= 3:
            return "(#131009) Parameter value is not valid: buttons must be 1 to 3"
        titles = [str((b.get("reply") or {}).get("title") or "") for b in buttons]
        if any(not 1 <= len(t) <= 20 for t in titles):
            return "(#131009) Parameter value is not valid: a button title is 1 to 20 characters"
        return None
    if itype == "list":
        rows = [r for s in action.get("sections") or [] for r in s.get("rows") or []]
        if not 1 <= len(rows) <= 10:
            return "(#131009) Parameter value is not valid: a list has 1 to 10 rows"
        if any(not 1 <= len(str(r.get("title") or "")) <= 24 for r in rows):
            return "(#131009) Parameter value is not valid: a row title is 1 to 24 characters"
        if not 1 <= len(str(action.get("button") or "")) <= 20:
            return "(#131009) Parameter value is not valid: the list button is 1 to 20 characters"
        return None
    return None


def _trace_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(12)).decode().rstrip("=")


def graph_error_body(
    code: int,
    message: str,
    *,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
    whatsapp: bool = False,
) -> dict[str, Any]:
    """A Graph API error body as Meta writes it."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if details is not None or whatsapp:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details or message}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = _trace_id()
    return {"error": error}


def rate_limited(times: int = 1) -> dict[str, Any]:
    """WhatsApp throughput reached (130429), HTTP 429."""
    body = graph_error_body(
        130429,
        "(#130429) Rate limit hit",
        details="Message failed to send because there were too many messages sent from this phone number "
        "in a short period of time",
        whatsapp=True,
    )
    return {"status": 429, "body": body, "times": times}


def server_error(times: int = 1) -> dict[str, Any]:
    """An unknown server-side failure (131000), HTTP 500."""
    body = graph_error_body(
        131000, "(#131000) Something went wrong", details="Message failed to send due to an unknown error."
    )
    return {"status": 500, "body": body, "times": times}


def window_closed(times: int = 1) -> dict[str, Any]:
    """WhatsApp re-engagement: more than 24 hours since the customer last replied (131047)."""
    body = graph_error_body(
        131047,
        "(#131047) Re-engagement message",
        details="Message failed to send because more than 24 hours have passed since the customer last "
        "replied to this number.",
        whatsapp=True,
    )
    return {"status": 400, "body": body, "times": times}


def undeliverable(times: int = 1) -> dict[str, Any]:
    body = graph_error_body(
        131026, "(#131026) Message Undeliverable", details="Message failed to send.", whatsapp=True
    )
    return {"status": 400, "body": body, "times": times}


def template_missing(times: int = 1) -> dict[str, Any]:
    body = graph_error_body(
        132001,
        "(#132001) Template name does not exist in the translation",
        details="template name (bienvenida) does not exist in es",
        whatsapp=True,
    )
    return {"status": 404, "body": body, "times": times}


def expired_token(times: int = 1) -> dict[str, Any]:
    body = graph_error_body(190, "Error validating access token: Session has expired.", subcode=463)
    return {"status": 401, "body": body, "times": times}


def instagram_window_closed(times: int = 1) -> dict[str, Any]:
    """Instagram: the reply is outside the allowed window (code 10, subcode 2534022)."""
    body = graph_error_body(
        10,
        "(#10) This message is sent outside of allowed window.",
        subcode=2534022,
        error_type="OAuthException",
    )
    return {"status": 400, "body": body, "times": times}


def slow(delay_s: float, times: int = 1) -> dict[str, Any]:
    """Answer normally, but only after ``delay_s`` (to exercise client timeouts)."""
    return {"delay_s": delay_s, "times": times}


def _bad(message: str, *, status: int = 400, code: int = 100, **kw: Any) -> tuple[int, dict[str, Any]]:
    return status, graph_error_body(code, message, **kw)


def _wamid() -> str:
    return "wamid." + base64.b64encode(b"HBgM" + os.urandom(24)).decode()


def _instagram_mid(node: str) -> str:
    raw = f"ig_message_item:1:IGMessageThread:{node}:{int.from_bytes(os.urandom(8), 'big')}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


class GraphPeer:
    """The loopback Graph API.  ``tokens`` maps each node id (phone_number_id, Instagram account
    id, Page id) to the access token it accepts; ``me`` resolves to the node whose token is given."""

    def __init__(self, tokens: Mapping[str, str], *, version: str = "v21.0", host: str = "127.0.0.1"):
        self.tokens = dict(tokens)
        self.version = version
        self.host = host
        self.received: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._arrived = asyncio.Condition()
        self._closing = asyncio.Event()
        self._released = asyncio.Event()
        self.media: dict[str, tuple[bytes, str]] = {}
        self.uploads: list[dict[str, Any]] = []
        self.upload_failures: list[dict[str, Any]] = []
        # Called with each accepted send's entry (the demo answers with delivery statuses).
        self.on_accepted: list[Callable[[dict[str, Any]], None]] = []
        self.downloads = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{version}/{node}/messages", self._messages)
        app.router.add_post("/{version}/{node}/media", self._upload)
        app.router.add_get("/media-download/{media_id}", self._download)
        app.router.add_get("/cdn/{media_id}", self._cdn)
        app.router.add_get("/{version}/{media_id}", self._describe)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GraphPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the peer is not started")
        return f"http://{self.host}:{self._port}"

    def context(self, *, send_retries: int = 3, http_timeout_s: float = 2.0, **extra: Any) -> AdapterContext:
        """An ``AdapterContext`` aimed at this peer, with millisecond backoff between retries."""
        merged = {"retry_initial_s": 0.001, "retry_max_s": 0.005, **extra}
        return AdapterContext(
            graph_base_url=self.base_url,
            graph_version=self.version,
            http_timeout_s=http_timeout_s,
            send_retries=send_retries,
            extra=merged,
        )

    # -- steering ------------------------------------------------------------------------------
    def fail_next(
        self, *, status: int = 500, body: dict[str, Any] | None = None, times: int = 1, delay_s: float = 0.0
    ) -> None:
        """Answer the next ``times`` requests with ``status``/``body`` (Graph error bodies)."""
        failure: dict[str, Any] = {"status": status, "times": times, "delay_s": delay_s}
        failure["body"] = body if body is not None else graph_error_body(1, "An unknown error occurred")
        self.failures.append(failure)

    def hold_next(self) -> None:
        """Accept the next request but hold its answer until ``release()`` (or ``stop()``)."""
        self._released.clear()
        self.failures.append({"hold": True, "times": 1})

    def release(self) -> None:
        self._released.set()

    @staticmethod
    def whatsapp_status(entry: Mapping[str, Any], status: str, *, timestamp: int = 0) -> dict[str, Any]:
        """The ``statuses[]`` item of a webhook about an accepted WhatsApp send (``entry``)."""
        item: dict[str, Any] = {
            "id": entry["answer"]["messages"][0]["id"],
            "status": status,
            "timestamp": str(timestamp),
            "recipient_id": entry["json"]["to"],
        }
        callback = entry["json"].get("biz_opaque_callback_data")
        if callback is not None:
            item["biz_opaque_callback_data"] = callback
        return item

    def requests_to(self, node_id: str) -> list[dict[str, Any]]:
        return [entry for entry in self.received if entry["node_id"] == node_id]

    async def wait_for(self, count: int, within_s: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` requests have arrived."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.received) >= count), within_s)
        return list(self.received)

    # -- the messages edge ---------------------------------------------------------------------
    def _take_failure(self, failures: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        failures = self.failures if failures is None else failures
        if not failures:
            return None
        failure = failures[0]
        times = int(failure.get("times", 1))
        if times <= 1:
            failures.pop(0)
        else:
            failure["times"] = times - 1
        return failure

    # -- the media upload edge (WhatsApp) ------------------------------------------------------
    def _node_refusal(self, node: str, authorization: str | None) -> tuple[int, dict[str, Any]] | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _bad(
                "An active access token must be used to query information about the current user.",
                code=2500,
            )
        if node not in self.tokens:
            return _bad(
                f"Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded due to "
                "missing permissions, or does not support this operation.",
                subcode=33,
                error_type="GraphMethodException",
            )
        if self.tokens[node] != token:
            return _bad("Invalid OAuth access token - Cannot parse access token", status=401, code=190)
        return None

    async def _upload(self, request: web.Request) -> web.Response:
        node = request.match_info["node"]
        entry: dict[str, Any] = {
            "path": request.path,
            "node_id": node,
            "authorization": request.headers.get("Authorization"),
        }
        fields: dict[str, str] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "file":
                    entry["data"] = await part.read()
                    entry["filename"] = part.filename
                    entry["content_type"] = part.headers.get("Content-Type")
                elif part.name:
                    fields[part.name] = await part.text()
        entry["messaging_product"] = fields.get("messaging_product")
        entry["type"] = fields.get("type")
        failure = self._take_failure(self.upload_failures)
        refused = self._node_refusal(node, entry["authorization"])
        if failure is not None and "status" in failure:
            status, body = int(failure["status"]), dict(failure.get("body") or {})
        elif refused is not None:
            status, body = refused
        elif entry["messaging_product"] != "whatsapp":
            status, body = _bad("(#100) The parameter messaging_product is required.")
        elif not entry.get("data"):
            status, body = _bad("(#100) The parameter file is required.")
        elif not entry["type"]:
            status, body = _bad("(#100) The parameter type is required.")
        else:
            media_id = str(int.from_bytes(os.urandom(7), "big"))
            self.media[media_id] = (entry["data"], entry["type"])
            entry["media_id"] = media_id
            status, body = 200, {"id": media_id}
        entry["status"] = status
        entry["answer"] = body
        self.uploads.append(entry)
        return web.json_response(body, status=status)

    # -- the media edge ------------------------------------------------------------------------
    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        self.media[media_id] = (data, mime_type)

    def cdn_url(self, media_id: str) -> str:
        return f"{self.base_url}/cdn/{media_id}"

    def _token_known(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in self.tokens.values()

    async def _describe(self, request: web.Request) -> web.Response:
        if not self._token_known(request):
            status, body = _bad(
                "Invalid OAuth access token - Cannot parse access token", status=401, code=190
            )
            return web.json_response(body, status=status)
        media_id = request.match_info["media_id"]
        found = self.media.get(media_id)
        if found is None:
            status, body = _bad(
                f"Unsupported get request. Object with ID '{media_id}' does not exist", code=100
            )
            return web.json_response(body, status=status)
        data, kind = found
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/media-download/{media_id}",
                "mime_type": kind,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        if not self._token_known(request):
            return web.Response(status=401, text="unauthorized")
        found = self.media.get(request.match_info["media_id"])
        if found is None:
            return web.Response(status=404, text="not found")
        self.downloads += 1
        return web.Response(body=found[0], content_type=found[1])

    async def _cdn(self, request: web.Request) -> web.Response:
        found = self.media.get(request.match_info["media_id"])
        if found is None:
            return web.Response(status=404, text="not found")
        self.downloads += 1
        return web.Response(body=found[0], content_type=found[1])

    async def _messages(self, request: web.Request) -> web.Response:
        version = request.match_info["version"]
        node = request.match_info["node"]
        raw = await request.read()
        try:
            payload: Any = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "version": version,
            "node_id": node,
            "authorization": request.headers.get("Authorization"),
            "json": payload,
        }
        failure = self._take_failure()
        if failure is not None and failure.get("delay_s"):
            try:
                await asyncio.wait_for(self._closing.wait(), float(failure["delay_s"]))
            except TimeoutError:
                pass
        if failure is not None and "status" in failure:
            status, body = int(failure["status"]), dict(failure.get("body") or {})
        else:
            status, body = self._answer(version, node, entry["authorization"], payload)
        entry["status"] = status
        entry["answer"] = body
        async with self._arrived:
            self.received.append(entry)
            self._arrived.notify_all()
        if status < 300:
            for hook in self.on_accepted:
                hook(entry)
        if failure is not None and failure.get("hold"):
            closing = asyncio.ensure_future(self._closing.wait())
            released = asyncio.ensure_future(self._released.wait())
            _done, pending = await asyncio.wait({closing, released}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
        return web.json_response(body, status=status)

    def _answer(
        self, version: str, node: str, authorization: str | None, payload: Any
    ) -> tuple[int, dict[str, Any]]:
        if not (version.startswith("v") and version[1:].replace(".", "", 1).isdigit()):
            return _bad(f"Unknown path components: /{version}/{node}/messages", error_type="OAuthException")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _bad(
                "An active access token must be used to query information about the current user.",
                status=400,
                code=2500,
            )
        if node == "me":
            owners = [owner for owner, expected in self.tokens.items() if expected == token]
            if not owners:
                return _bad("Invalid OAuth access token - Cannot parse access token", status=401, code=190)
            node = owners[0]
        elif node not in self.tokens:
            return _bad(
                f"Unsupported post request. Object with ID '{node}' does not exist, cannot be loaded due to "
                "missing permissions, or does not support this operation.",
                subcode=33,
                error_type="GraphMethodException",
            )
        elif self.tokens[node] != token:
            return _bad("Invalid OAuth access token - Cannot parse access token", status=401, code=190)
        if not isinstance(payload, dict):
            return _bad("(#100) The request body must be a JSON object")
        if any(key in payload for key in ("messaging_product", "to", "type", "recipient_type", "template")):
            return self._whatsapp(payload)
        return self._instagram(node, payload)

    def _whatsapp(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if payload.get("messaging_product") != "whatsapp":
            return _bad("(#100) The parameter messaging_product is required.")
        to = payload.get("to")
        recipient = payload.get("recipient")  # a business-scoped user id
        if not (isinstance(to, str) and to) and not (isinstance(recipient, str) and recipient):
            return _bad("(#100) The parameter to is required.")
        kind = payload.get("type", "text")
        if kind not in _WHATSAPP_TYPES:
            return _bad(f"(#100) Param type must be one of {{{', '.join(sorted(_WHATSAPP_TYPES))}}}")
        content = payload.get(kind)
        if not isinstance(content, dict):
            return _bad(f"(#100) The parameter {kind} is required.")
        if kind == "text" and not (isinstance(content.get("body"), str) and content["body"]):
            return _bad("(#100) The parameter text['body'] is required.")
        if kind in _MEDIA_TYPES and not (content.get("id") or content.get("link")):
            return _bad(f"(#100) Param {kind} must contain either id or link")
        if kind == "template":
            language = content.get("language")
            if not content.get("name"):
                return _bad("(#100) The parameter template['name'] is required.")
            if not isinstance(language, dict) or not language.get("code"):
                return _bad("(#100) The parameter template['language'] is required.")
        if kind == "interactive" and (refused := _interactive_refusal(content)) is not None:
            return _bad(refused)
        context = payload.get("context")
        if context is not None and not (isinstance(context, dict) and context.get("message_id")):
            return _bad("(#100) The parameter context['message_id'] is required.")
        if isinstance(to, str) and to:
            contact: dict[str, Any] = {"input": to, "wa_id": to.lstrip("+")}
        else:
            contact = {"input": recipient, "user_id": recipient}
        message: dict[str, Any] = {"id": _wamid()}
        if kind == "template":
            message["message_status"] = "accepted"
        return 200, {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}

    def _instagram(self, node: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        recipient = payload.get("recipient")
        if not isinstance(recipient, dict) or not isinstance(recipient.get("id"), str) or not recipient["id"]:
            return _bad("(#100) The parameter recipient is required")
        message = payload.get("message")
        if not isinstance(message, dict):
            return _bad("(#100) The parameter message is required")
        text = message.get("text")
        attachment = message.get("attachment")
        if text is None and attachment is None:
            return _bad("(#100) Message cannot be empty, must provide valid attachment or text")
        if text is not None and not (isinstance(text, str) and text):
            return _bad("(#100) Param message[text] must be a non-empty UTF-8 encoded string")
        if attachment is not None:
            if not isinstance(attachment, dict) or attachment.get("type") not in _INSTAGRAM_ATTACHMENTS:
                return _bad(
                    "(#100) Param message[attachment][type] must be one of {image, video, audio, file}"
                )
            content = attachment.get("payload")
            if attachment["type"] in {"image", "video", "audio", "file"} and not (
                isinstance(content, dict) and (content.get("url") or content.get("attachment_id"))
            ):
                return _bad("(#100) Param message[attachment][payload] must contain url or attachment_id")
        messaging_type = payload.get("messaging_type", "RESPONSE")
        if messaging_type not in {"RESPONSE", "UPDATE", "MESSAGE_TAG"}:
            return _bad("(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        if messaging_type == "MESSAGE_TAG" and not payload.get("tag"):
            return _bad("(#100) The parameter tag is required when messaging_type is MESSAGE_TAG")
        return 200, {"recipient_id": recipient["id"], "message_id": _instagram_mid(node)}
