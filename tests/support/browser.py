"""One real headless Chromium (Debian's ``chromium``) for the whole test session, driven by
Playwright for Python.

Each test runs on its own event loop while the browser must outlive them all, so the browser
lives on a thread of its own with its own loop: ``await browser.run(coro)`` runs a Playwright
coroutine there and hands back its result on the test's loop.  The server under test runs on
the test's loop and the two meet over loopback TCP, as a real browser and server do.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Awaitable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

__all__ = ["ChromiumThread", "chromium_path"]

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "var" / "screenshots"


def chromium_path() -> str | None:
    return (
        os.environ.get("CENTRALITA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


class ChromiumThread:
    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="chromium", daemon=True)
        self.thread.start()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._submit(self._launch()).result(timeout=60)

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _launch(self) -> None:
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=self.executable, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )

    async def run(self, work: Awaitable[T]) -> T:
        """Run a Playwright coroutine on the browser's loop; await its result here."""

        async def wrapped() -> T:
            return await work

        return await asyncio.wrap_future(self._submit(wrapped()))

    async def new_page(
        self, *, width: int = 1366, height: int = 768, locale: str = "es-MX", timezone: str | None = None
    ) -> Page:
        """A page in a fresh context (cookies of its own); ``timezone``: the browser's zone (an IANA
        name), the machine's by default."""

        async def make() -> Page:
            assert self._browser is not None
            context: BrowserContext = await self._browser.new_context(
                viewport={"width": width, "height": height}, locale=locale, timezone_id=timezone
            )
            context.set_default_timeout(10_000)
            return await context.new_page()

        return await self.run(make())

    async def close_page(self, page: Page) -> None:
        await self.run(page.context.close())

    async def screenshot(self, page: Page, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        await self.run(page.screenshot(path=str(path), full_page=False))
        return path

    def close(self) -> None:
        async def stop() -> None:
            if self._browser is not None:
                await self._browser.close()
            if self._playwright is not None:
                await self._playwright.stop()

        self._submit(stop()).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
