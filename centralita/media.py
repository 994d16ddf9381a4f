"""The media worker: customers' attachments fetched from the provider while their links work.

The pipeline writes a ``pending`` media row per attachment that names provider media (a
WhatsApp media id, an Instagram CDN URL) with the message.  ``MediaWorker`` (run with the
``outbound`` role, beside the other worker that talks to providers) claims due rows every
``media_poll_s`` and, through the channel's adapter (``core.media.MediaFetcher``):

- fetches the bytes, checks them (``core.media.checked_media``: the allowed types, the bytes'
  own signature, ``media_max_bytes``), puts them in the media store under the row's id and
  marks the row ``stored`` with its type, size and SHA-256;
- on a transient failure (the provider or the network is down) tries again ``media_retry_s``
  later, doubling, up to ``media_attempts`` tries;
- on a permanent one (the media is gone, too big, a refused type, a channel that cannot fetch)
  marks it ``failed`` with the reason the agent sees.

The bytes are written before the row says ``stored``: a worker that dies between the two leaves
a row that is fetched again (its lease runs out), never a row that points at nothing.

Erasure and retention mark rows ``erased`` in their own transactions (from then on nothing serves
them); the worker deletes their files first thing in each pass and then clears the row's storage
key, so a file outlives its erasure by at most ``media_poll_s`` while a worker runs.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from centralita.runtime import Runtime
from core.errors import DatabaseConflict, DatabaseUnavailable, PermanentChannelError, TransientChannelError
from core.events import Attachment
from core.logging import get_logger
from core.media import MediaFetcher, MediaRefused, checked_media
from core.supervise import supervise
from storage.media import MediaItem, MediaRows

__all__ = ["MediaWorker"]

log = get_logger("centralita.media")

_LEASE = timedelta(seconds=120)
_BATCH = 8


class MediaWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self._task = supervise(self.runtime.workers, "media", self._loop)
        log.info("media_started", poll_s=self.runtime.settings.media_poll_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def poke(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                done = await self.run_due()
            except (DatabaseUnavailable, DatabaseConflict) as exc:
                log.warning("media.paused", reason=exc.message)
                done = 0
            if done:
                continue  # more may be due
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.runtime.settings.media_poll_s)
            except TimeoutError:
                pass

    async def run_due(self) -> int:
        """Delete the files of erased media, fetch what is due now; how many rows were handled.
        An idle pass only reads (one short read session): no write lock every ``media_poll_s``."""
        now = self.runtime.clock()
        async with self.runtime.database.session() as session:
            rows = MediaRows(session)
            erased = await rows.files_to_delete(limit=100)
            due = await rows.any_due(now)
        for media_id, key in erased:
            await self.runtime.media.delete(key)
            async with self.runtime.database.transaction() as session:
                await MediaRows(session).file_deleted(media_id)
        if erased:
            log.info("media.files_deleted", files=len(erased))
        if not due:
            return len(erased)
        async with self.runtime.database.transaction() as session:
            items = await MediaRows(session).claim_due(now, limit=_BATCH, lease=_LEASE)
        for item in items:
            await self._fetch(item)
        return len(items) + len(erased)

    async def _fetch(self, item: MediaItem) -> None:
        settings = self.runtime.settings
        try:
            adapter = self.runtime.adapters.get(item.channel)
            account = (
                self.runtime.directory.by_id(item.channel_account_id) if item.channel_account_id else None
            )
            if not isinstance(adapter, MediaFetcher):
                raise PermanentChannelError(f"the {item.channel} channel cannot fetch media")
            if account is None:
                raise PermanentChannelError("the channel account that received it is no longer active")
            attachment = Attachment.model_validate(item.attachment)
            fetched = await adapter.fetch_media(attachment, account)
            kept = checked_media(fetched, max_bytes=settings.media_max_bytes)
            await self.runtime.media.put(item.id.hex, kept.data)
        except TransientChannelError as exc:
            await self._retry_or_fail(item, exc.message)
            return
        except (PermanentChannelError, MediaRefused, ValueError) as exc:
            reason = exc.message if isinstance(exc, PermanentChannelError) else str(exc)
            async with self.runtime.database.transaction() as session:
                await MediaRows(session).failed(item.id, error=reason)
            log.info(
                "media.failed", media_id=str(item.id), message_id=str(item.message_id), reason=reason[:200]
            )
            return
        async with self.runtime.database.transaction() as session:
            await MediaRows(session).stored(
                item.id,
                key=item.id.hex,
                mime_type=kept.mime_type,
                size=kept.size,
                sha256=kept.sha256,
                now=self.runtime.clock(),
            )
        log.info(
            "media.stored",
            media_id=str(item.id),
            message_id=str(item.message_id),
            bytes=kept.size,
            type=kept.mime_type,
        )

    async def _retry_or_fail(self, item: MediaItem, reason: str) -> None:
        settings = self.runtime.settings
        async with self.runtime.database.transaction() as session:
            rows = MediaRows(session)
            if item.attempts >= settings.media_attempts:
                await rows.failed(item.id, error=f"gave up after {item.attempts} attempts: {reason}")
                log.info("media.failed", media_id=str(item.id), attempts=item.attempts)
                return
            delay = settings.media_retry_s * 2 ** (item.attempts - 1)
            await rows.retry(item.id, at=self.runtime.clock() + timedelta(seconds=delay), error=reason)
        log.info("media.retry", media_id=str(item.id), attempts=item.attempts, in_s=delay)
