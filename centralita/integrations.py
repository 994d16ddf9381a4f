"""Webhooks out: the destinations a manifest may name, and the worker that delivers events.

``destination_problems`` refuses (when a campaign is planned or applied, and again before
every request) a webhook URL that is not https, or whose host is or resolves to a private,
link-local or loopback address, unless ``CENTRALITA_WEBHOOKS_ALLOW_PRIVATE`` allows it.

``EventDelivery`` (run by the ``outbound`` role) claims due ``event_outbox`` rows with a lease
(``storage.webhooks``), POSTs each event's body signed (``core.webhooks.sign``) with
``Centralita-Event-Id``, ``-Event-Type``, ``-Timestamp`` and ``-Signature`` headers, and records
the outcome: 2xx delivered; 4xx other than 408/429 failed for good; anything else retried after
exponential backoff with jitter, the next due time kept in the row, until 24 hours after the
event.  An endpoint failing for ``webhook_pause_after_s`` is paused with an alert.  A worker
killed mid-attempt leaves the row leased: after ``webhook_lease_s`` any worker tries it again
(delivery is at least once; the event id is the receiver's idempotency key).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from centralita.runtime import Runtime
from core.campaign import Manifest, Problem
from core.errors import InvalidInput, ServiceUnavailable
from core.logging import get_logger
from core.supervise import supervise
from core.webhooks import (
    DeliveryOutcome,
    address_refusal,
    event_schemas,
    next_attempt_in,
    outcome_of,
    schema_text,
    sign,
)
from storage.webhooks import Attempt, Claimed, WebhookStore

__all__ = ["EventDelivery", "check_destinations", "destination_problems", "refusal_of", "write_event_schemas"]

log = get_logger("centralita.integrations")


async def refusal_of(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` may not be a webhook's destination, or None."""
    if allow_private:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        return "a webhook url must be https"
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"its host {host!r} does not resolve ({exc.strerror or exc})"
    for info in infos:
        address = str(info[4][0])
        why = address_refusal(address)
        if why is not None:
            return f"its host {host!r} is a {why} address ({address})"
    return None


async def destination_problems(manifest: Manifest, *, allow_private: bool) -> list[Problem]:
    """A problem per webhook whose URL is refused, at ``integrations.webhooks[i].url``."""
    hooks = manifest.integrations.webhooks if manifest.integrations else []
    problems: list[Problem] = []
    for index, hook in enumerate(hooks):
        why = await refusal_of(hook.url, allow_private=allow_private)
        if why is not None:
            problems.append(
                Problem(
                    "webhook_destination",
                    f"webhook {hook.name!r} refused: {why}",
                    ("integrations", "webhooks", index, "url"),
                    hint="an https URL on a public address (or CENTRALITA_WEBHOOKS_ALLOW_PRIVATE=true)",
                )
            )
    return problems


async def check_destinations(manifest: Manifest, *, allow_private: bool) -> None:
    """``destination_problems`` as an ``InvalidInput`` naming the first refused field."""
    problems = await destination_problems(manifest, allow_private=allow_private)
    if problems:
        first = problems[0]
        _, _, index, _ = first.path
        raise InvalidInput(first.message, field=f"integrations.webhooks[{index}].url")


class EventDelivery:
    """Delivers the outbox's due events, up to ``batch`` at once."""

    def __init__(self, runtime: Runtime, *, batch: int = 32) -> None:
        self.runtime = runtime
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.runtime.settings.webhook_timeout_s)
        )
        self._task = supervise(self.runtime.workers, "event_delivery", self._loop)
        log.info("event_delivery_started", poll_s=self.runtime.settings.webhook_poll_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def poke(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.run_due() == self.batch:
                    pass
            except ServiceUnavailable as exc:
                log.warning("event_delivery_round_failed", code=exc.code, reason=exc.message)
            try:
                async with asyncio.timeout(self.runtime.settings.webhook_poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def run_due(self) -> int:
        """One round: claim what is due and attempt each; returns how many were attempted."""
        settings = self.runtime.settings
        now = self.runtime.clock()
        async with self.runtime.database.transaction() as session:
            claimed = await WebhookStore(session).claim(
                now, lease=timedelta(seconds=settings.webhook_lease_s), limit=self.batch
            )
        await asyncio.gather(*(self._deliver(c) for c in claimed))
        return len(claimed)

    async def _deliver(self, claimed: Claimed) -> None:
        attempt = await self._attempt(claimed)
        settings = self.runtime.settings
        now = self.runtime.clock()
        async with self.runtime.database.transaction() as session:
            outcome = await WebhookStore(session).record(
                claimed,
                attempt,
                now,
                retry_in=next_attempt_in(
                    claimed.attempts + 1,
                    initial_s=settings.webhook_retry_initial_s,
                    max_s=settings.webhook_retry_max_s,
                ),
                give_up_after=timedelta(seconds=settings.webhook_give_up_s),
                pause_after=timedelta(seconds=settings.webhook_pause_after_s),
            )
        self.runtime.metrics.event_delivery(str(outcome), attempt.status_code)
        log.info(
            "webhook_attempted",
            webhook=claimed.subscription.name,
            event_id=str(claimed.event_id),
            type=claimed.type,
            status_code=attempt.status_code,
            outcome=str(outcome),
            attempt=claimed.attempts + 1,
        )

    async def _attempt(self, claimed: Claimed) -> Attempt:
        subscription = claimed.subscription
        secret = os.environ.get(subscription.secret_env)
        if not secret:
            return Attempt(DeliveryOutcome.RETRY, None, None, f"{subscription.secret_env} is not set")
        refusal = await refusal_of(
            subscription.url, allow_private=self.runtime.settings.webhooks_allow_private
        )
        if refusal is not None:
            return Attempt(DeliveryOutcome.FAILED, None, None, refusal)
        body = json.dumps(claimed.body, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(self.runtime.clock().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Centralita-Webhooks/1",
            "Centralita-Event-Id": str(claimed.event_id),
            "Centralita-Event-Type": claimed.type,
            "Centralita-Timestamp": str(timestamp),
            "Centralita-Signature": sign(secret, timestamp, body),
        }
        assert self._http is not None
        started = time.perf_counter()
        try:
            async with self._http.post(
                subscription.url, data=body, headers=headers, allow_redirects=False
            ) as r:
                await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            latency = (time.perf_counter() - started) * 1000
            return Attempt(DeliveryOutcome.RETRY, None, latency, f"{type(exc).__name__}: {exc}"[:500])
        latency = (time.perf_counter() - started) * 1000
        outcome = outcome_of(status)
        error = None if outcome == DeliveryOutcome.DELIVERED else f"HTTP {status}"
        return Attempt(outcome, status, latency, error)


def write_event_schemas(directory: Path) -> list[Path]:
    """Write ``docs/events/<type>.schema.json`` for every emitted event (generated, never edited)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in event_schemas().items():
        path = directory / f"{event_type}.schema.json"
        path.write_text(schema_text(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m centralita.integrations docs/events
    for written in write_event_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events")):
        print(written)
