"""Hostile HTTP clients: slow headers, stalled bodies, clients that vanish, absurd nesting.

The server runs as ``centralita serve`` runs it (``centralita.web.server.app_runner``) on the
embedded backend, with short timeouts so the tests stay fast; raw sockets play the clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from centralita.web.app import create_app
from centralita.web.keys import RUNTIME
from centralita.web.server import app_runner
from core.ids import WorkspaceId
from core.settings import Settings
from storage.database import Database
from storage.tokens import TokenStore
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

HEADER_TIMEOUT_S = 0.5
BODY_TIMEOUT_S = 0.5


@pytest.fixture
async def server(sqlite_url: str) -> AsyncIterator[tuple[int, str]]:
    """(port, admin token) of a running server with short header and body timeouts."""
    settings = Settings(
        database_url=sqlite_url,
        broker_url="memory://",
        http_header_timeout_s=HEADER_TIMEOUT_S,
        http_body_timeout_s=BODY_TIMEOUT_S,
    )
    await migrated(settings.database_url)
    db = Database(settings.database_url)
    try:
        seeded = await seed_workspace(db, "dura", [])
        async with db.transaction() as session:
            token = await TokenStore(session).issue(
                WorkspaceId(seeded.workspace_id), "admin", None, "root", datetime.now(UTC)
            )
    finally:
        await db.dispose()
    app = create_app(settings)
    runner = app_runner(app, settings, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert app[RUNTIME]  # the runtime is open
    try:
        yield runner.addresses[0][1], token
    finally:
        await runner.cleanup()


async def _answer_within(reader: asyncio.StreamReader, seconds: float, until: bytes) -> bytes:
    """What the server sent, once it contains ``until`` or the connection closed (or TimeoutError)."""
    received = b""
    async with asyncio.timeout(seconds):
        while until not in received:
            chunk = await reader.read(4096)
            if not chunk:
                break
            received += chunk
    return received


async def test_a_client_trickling_its_headers_is_cut_off_at_the_header_timeout(
    server: tuple[int, str],
) -> None:
    port, _ = server
    loop = asyncio.get_running_loop()
    started = loop.time()  # before the connection: the server's timer starts when it accepts
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    sent = 0
    closed = False
    # One byte every 50 ms: the pacing is a bounded wait for the server to close on us.
    for byte in request:
        writer.write(bytes([byte]))
        sent += 1
        try:
            async with asyncio.timeout(0.05):
                if await reader.read() == b"":
                    closed = True
                    break
        except TimeoutError:
            continue
        except ConnectionResetError:
            closed = True
            break
    elapsed = loop.time() - started
    writer.close()
    assert closed, f"still connected after sending all {sent} bytes over {elapsed:.1f} s"
    assert sent < len(request)
    assert HEADER_TIMEOUT_S <= elapsed < HEADER_TIMEOUT_S + 2.0


async def test_a_client_that_stalls_mid_body_gets_408_within_the_body_timeout(
    server: tuple[int, str],
) -> None:
    port, _ = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b'POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"entry":')
    await writer.drain()
    answer = await _answer_within(reader, BODY_TIMEOUT_S + 5, until=b"}}")
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert b'"request_timeout"' in answer


async def test_a_client_that_disconnects_mid_body_is_logged_at_info_without_a_traceback(
    server: tuple[int, str], caplog: pytest.LogCaptureFixture
) -> None:
    port, _ = server
    with capture_logs() as logs, caplog.at_level(logging.INFO):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"ent')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(5),
            wait=wait_fixed(0.05),
            retry=retry_if_exception_type(AssertionError),
            reraise=True,
        ):
            with attempt:
                assert any(e["event"] == "client_disconnected" for e in logs), logs
    [event] = [e for e in logs if e["event"] == "client_disconnected"]
    assert event["log_level"] == "info" and event["path"] == "/webhooks/whatsapp"
    assert not [e for e in logs if e["log_level"] in ("error", "exception", "critical")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_deeply_nested_json_to_the_api_is_a_400_naming_the_body(server: tuple[int, str]) -> None:
    port, token = server
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"http://127.0.0.1:{port}/api/campaigns/validate",
            data=b"[" * 100_000,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        body = await response.json()
    assert response.status == 400, body
    assert body["error"] == {
        "code": "invalid_input",
        "message": "the body is nested too deeply",
        "field": "body",
    }
