"""The HTTP server around the app: a connection must send its request headers in time.

aiohttp has no header read timeout of its own: a client that opens a connection and trickles
its request line and headers a byte at a time holds a connection (and its memory) until the
keep-alive timer, 75 s, and a thousand such clients hold a thousand.  ``GuardedAppRunner`` serves
connections through ``HeaderTimedHandler``, which starts a timer when the connection is made and
closes the connection when no request's headers are complete by ``header_timeout_s``; the timer
stops as soon as aiohttp builds the first request (its headers parsed).  Between keep-alive
requests aiohttp's own keep-alive timeout applies; request bodies are bounded by
``centralita.web.bodies.read_body`` (``Settings.http_body_timeout_s``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from core.logging import get_logger
from core.settings import Settings

__all__ = ["GuardedAppRunner", "HeaderTimedHandler", "app_runner"]

log = get_logger("centralita.http")


class HeaderTimedHandler(RequestHandler):
    """aiohttp's connection protocol, closed when the first request's headers are late."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._header_timer = asyncio.get_running_loop().call_later(self.header_timeout_s, self._headers_late)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.headers_complete()
        super().connection_lost(exc)

    def headers_complete(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        log.info("http.header_timeout", timeout_s=self.header_timeout_s)
        self.force_close()


class _GuardedServer(web.Server):
    """``web.Server`` whose connections are ``HeaderTimedHandler``s; its request factory marks
    the headers complete (aiohttp builds a request once the headers are parsed)."""

    def __init__(self, handler: Any, *, header_timeout_s: float, **kwargs: Any) -> None:
        factory = kwargs.pop("request_factory", None)
        super().__init__(handler, **kwargs)
        inner = factory or self.request_factory
        self.header_timeout_s = header_timeout_s

        def request_factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
            if isinstance(protocol, HeaderTimedHandler):
                protocol.headers_complete()
            return inner(message, payload, protocol, writer, task)

        self.request_factory = request_factory

    def __call__(self) -> RequestHandler:
        handler = HeaderTimedHandler(self, loop=self._loop, **self._kwargs)
        handler.header_timeout_s = self.header_timeout_s
        return handler


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``_GuardedServer`` (see the module docstring)."""

    def __init__(self, app: web.Application, *, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout_s = header_timeout_s

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        # Same handler, request factory and options as the app's own server; only the
        # connection protocol differs.
        return _GuardedServer(
            plain.request_handler,
            header_timeout_s=self._header_timeout_s,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )


def app_runner(app: web.Application, settings: Settings, **kwargs: Any) -> GuardedAppRunner:
    """The runner ``centralita serve`` uses: the app, with ``Settings.http_header_timeout_s``."""
    return GuardedAppRunner(app, header_timeout_s=settings.http_header_timeout_s, **kwargs)
