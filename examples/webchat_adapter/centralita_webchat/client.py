"""Replies: a signed JSON POST to the site's ``callback_url``, retried on transient failures.

``AdapterContext.extra`` keys: ``webchat_callback_origin`` (send every callback to this
scheme://host:port instead, keeping the path — how tests aim the adapter at the loopback peer),
``webchat_retry_initial_s`` (first backoff, default 0.5 s).  ``send_retries`` attempts in all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from centralita_webchat.errors import classify
from centralita_webchat.signature import SIGNATURE_HEADER, sign_body
from core.channel import AdapterContext, ChannelAccount
from core.errors import PermanentChannelError, TransientChannelError
from core.events import DeliveryReceipt, OutboundMessage

__all__ = ["WebChatClient", "callback_url", "reply_body"]


def callback_url(account: ChannelAccount, context: AdapterContext) -> str:
    url = account.settings.get("callback_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise PermanentChannelError(
            f"web-chat site {account.address} has no callback_url configured", field="callback_url"
        )
    origin = context.extra.get("webchat_callback_origin")
    if origin:
        target, base = urlsplit(url), urlsplit(str(origin))
        url = urlunsplit((base.scheme, base.netloc, target.path, target.query, ""))
    return url


def reply_body(message: OutboundMessage, now: datetime) -> dict[str, Any]:
    if message.template is not None:
        raise PermanentChannelError("web chat has no templates; send text", field="template")
    if not message.text:
        raise PermanentChannelError("a web-chat reply needs text", field="text")
    body: dict[str, Any] = {
        "site_id": message.business_address,
        "session_id": message.recipient.value,
        "message_id": str(message.message_id),
        "text": message.text,
        "sent_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if message.reply_to:
        body["reply_to"] = message.reply_to
    return body


class WebChatClient:
    def __init__(self, context: AdapterContext):
        self._context = context
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self._context.http_timeout_s)
            self._session = aiohttp.ClientSession(
                timeout=timeout, headers={"User-Agent": "centralita-webchat"}
            )
        return self._session

    async def _post_once(self, url: str, raw: bytes, secret: str) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_body(raw, secret)}
        try:
            async with self._client().post(url, data=raw, headers=headers) as response:
                status, answer = response.status, await response.read()
        except TimeoutError as exc:
            raise TransientChannelError("the web-chat widget did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise TransientChannelError(f"could not reach the web-chat widget: {type(exc).__name__}") from exc
        if status >= 400:
            raise classify(status, answer)
        try:
            data = json.loads(answer)
        except ValueError as exc:
            raise PermanentChannelError(
                f"the widget answered HTTP {status} with a body that is not JSON"
            ) from exc
        return data if isinstance(data, dict) else {}

    async def send(self, message: OutboundMessage, account: ChannelAccount) -> DeliveryReceipt:
        if not account.app_secret:
            raise PermanentChannelError(
                f"web-chat site {account.address} has no shared secret", field="app_secret"
            )
        url = callback_url(account, self._context)
        raw = json.dumps(reply_body(message, datetime.now(UTC))).encode()
        initial = float(self._context.extra.get("webchat_retry_initial_s", 0.5))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self._context.send_retries)),
            wait=wait_exponential(multiplier=initial, min=initial, max=max(initial, 8.0)),
            retry=retry_if_exception_type(TransientChannelError),
            reraise=True,
        )
        answer: dict[str, Any] = {}
        async for attempt in retrying:
            with attempt:
                answer = await self._post_once(url, raw, account.app_secret)
        external_id = answer.get("id")
        return DeliveryReceipt(
            message_id=message.message_id,
            external_id=str(external_id) if external_id else f"webchat:{message.message_id}",
            channel="webchat",
            accepted_at=datetime.now(UTC),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
