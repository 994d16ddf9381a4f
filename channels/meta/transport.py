"""Calling the Graph API over aiohttp: POSTing JSON and files, GETting JSON and media bytes.

The session is created on the first send (inside the running loop, never at import) and closed by
``aclose``.  Connection failures and timeouts become ``TransientChannelError``; a refused call is
translated by the channel's ``classify`` function; a success body that is not a JSON object is a
``PermanentChannelError`` (the provider may have accepted the message, so it is not retried).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp

from core.channel import AdapterContext
from core.errors import ChannelError, PermanentChannelError, TransientChannelError

__all__ = ["GraphTransport"]


class GraphTransport:
    def __init__(
        self, context: AdapterContext, *, provider: str, classify: Callable[[int, bytes], ChannelError]
    ):
        self._context = context
        self._provider = provider
        self._classify = classify
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._context.http_timeout_s),
                headers={"User-Agent": "centralita"},
            )
        return self._session

    async def _call(
        self,
        method: str,
        url: str,
        *,
        token: str | None,
        payload: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> tuple[int, bytes, str | None]:
        session = self._client()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with session.request(method, url, json=payload, data=form, headers=headers) as response:
                status = response.status
                raw = await response.read()
                kind = response.headers.get("Content-Type")
        except TimeoutError as exc:
            raise TransientChannelError(
                f"{self._provider} did not answer within {self._context.http_timeout_s} s",
                details={"url": url},
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransientChannelError(
                f"could not reach {self._provider}: {type(exc).__name__}", details={"url": url}
            ) from exc
        if status >= 400:
            raise self._classify(status, raw)
        return status, raw, kind

    def _object(self, status: int, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise PermanentChannelError(
                f"{self._provider} answered HTTP {status} with a body that is not JSON",
                details={"http_status": status},
            ) from exc
        if not isinstance(data, dict):
            raise PermanentChannelError(
                f"{self._provider} answered HTTP {status} with JSON that is not an object",
                details={"http_status": status},
            )
        return data

    async def post_json(self, url: str, *, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        status, raw, _kind = await self._call("POST", url, token=token, payload=payload)
        return self._object(status, raw)

    async def post_file(
        self, url: str, *, token: str, fields: dict[str, str], data: bytes, filename: str, mime_type: str
    ) -> dict[str, Any]:
        """A ``multipart/form-data`` POST of ``fields`` and one ``file`` part (media uploads)."""
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        form.add_field("file", data, filename=filename, content_type=mime_type)
        status, raw, _kind = await self._call("POST", url, token=token, form=form)
        return self._object(status, raw)

    async def get_json(self, url: str, *, token: str | None) -> dict[str, Any]:
        status, raw, _kind = await self._call("GET", url, token=token)
        return self._object(status, raw)

    async def get_bytes(self, url: str, *, token: str | None) -> tuple[bytes, str | None]:
        """A file's bytes and its Content-Type (media downloads)."""
        _status, raw, kind = await self._call("GET", url, token=token)
        return raw, kind

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
