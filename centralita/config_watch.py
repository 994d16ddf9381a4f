"""Live reload: every running server picks up an applied campaign within seconds, without a restart.

After an apply commits, the process that applied calls ``announce(runtime, change)``: it reloads
its own channel directory, runs the reload hooks, and publishes ``config.changed`` on the
``events`` topic exchange (routing key ``config.<workspace_id>``).  Every server runs a
``ConfigWatcher``: an exclusive queue bound to ``ws.*.config.changed`` delivers the announcement, and the
watcher reloads the directory and runs the hooks.  As a safety net (a lost event, an apply from a
process with the embedded in-process broker) the watcher also compares campaign versions with the
database every ``Settings.config_poll_s`` seconds, so every server converges either way.

Reload hooks are the one public seam for other services::

    register_reload_hook(runtime, hook)   # hook: async (ConfigChange) -> None

A hook runs once per new campaign version a server sees, after the directory was reloaded, in
the order hooks were registered (the router reloads its queues and agents from one).  A version
is seen once per server: the event and the poll never both run the hooks for it.  A hook that
fails is logged and does not stop the others; it is not retried for that version.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from centralita.runtime import Runtime
from core.errors import BrokerUnavailable, CentralitaError, InvalidInput
from core.ids import CampaignId, WorkspaceId
from core.logging import get_logger
from core.transport.protocol import Consumer, Delivery, Message, Transport
from core.transport.topology import (
    ALL_CONFIG_CHANGES,
    EVENTS_EXCHANGE,
    config_changed_key,
    events_subscription,
)
from storage.campaigns import CampaignStore, CampaignVersion

__all__ = [
    "CONFIG_CHANGED",
    "ConfigChange",
    "ConfigWatcher",
    "ReloadHook",
    "announce",
    "publish_change",
    "register_reload_hook",
]

log = get_logger("centralita.config_watch")

CONFIG_CHANGED = "config.changed"


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """A campaign reached a new version (wire body of ``config.changed``)."""

    workspace_id: WorkspaceId
    campaign_id: CampaignId
    campaign: str
    version: int

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "type": CONFIG_CHANGED,
                "workspace_id": str(self.workspace_id),
                "campaign_id": str(self.campaign_id),
                "campaign": self.campaign,
                "version": self.version,
            }
        ).encode()

    @classmethod
    def from_json(cls, body: bytes) -> ConfigChange:
        try:
            data = json.loads(body)
            return cls(
                WorkspaceId(uuid.UUID(data["workspace_id"])),
                CampaignId(uuid.UUID(data["campaign_id"])),
                str(data["campaign"]),
                int(data["version"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"not a {CONFIG_CHANGED} event") from exc


ReloadHook = Callable[[ConfigChange], Awaitable[None]]


def register_reload_hook(runtime: Runtime, hook: ReloadHook) -> None:
    """Run ``hook(change)`` on this server after each new campaign version is loaded."""
    runtime.config_hooks.append(hook)


async def _run_hooks(runtime: Runtime, changes: Iterable[ConfigChange]) -> None:
    for change in changes:
        for hook in list(runtime.config_hooks):
            try:
                await hook(change)
            # A hook is another service's code: its failure must not stop the other hooks or the
            # watcher, which is what keeps every server converging.  Logged with its traceback.
            except Exception:
                log.exception(
                    "config_reload_hook_failed",
                    hook=getattr(hook, "__qualname__", repr(hook)),
                    campaign_id=str(change.campaign_id),
                    version=change.version,
                )


async def announce(runtime: Runtime, change: ConfigChange) -> bool:
    """After an apply committed: reload here, then tell every server.  False if the broker was down
    (the others then converge by polling within ``config_poll_s``)."""
    watcher = runtime.config_watcher
    try:
        if watcher is not None:
            await watcher.converge([change])
        else:
            await runtime.reload_directory()
            await _run_hooks(runtime, [change])
    except CentralitaError as exc:
        # The apply is committed; this server catches up on its next poll like any other.
        log.warning("config_local_reload_failed", error=type(exc).__name__, version=change.version)
    return await publish_change(runtime.transport, change)


async def publish_change(transport: Transport, change: ConfigChange) -> bool:
    """Publish ``config.changed``; False (logged) when the broker is down: servers then poll."""
    message = Message(
        body=change.to_json(),
        routing_key=config_changed_key(str(change.workspace_id)),
        exchange=EVENTS_EXCHANGE,
        message_id=f"{change.campaign_id}:{change.version}",
    )
    try:
        await transport.publish([message])
    except BrokerUnavailable as exc:
        log.warning("config_change_not_announced", reason=exc.message, version=change.version)
        return False
    return True


class ConfigWatcher:
    """Keeps one server's running configuration in step with the applied campaigns."""

    def __init__(self, runtime: Runtime, *, poll_interval_s: float | None = None):
        self.runtime = runtime
        self.poll_interval_s = poll_interval_s or runtime.settings.config_poll_s
        self.queue_name = f"config-watch.{uuid.uuid4().hex}"
        self._seen: dict[CampaignId, int] = {}
        self._lock = asyncio.Lock()
        self._consumer: Consumer | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe to ``ws.*.config.changed``, load the current versions and configuration, poll."""
        async with self._lock:
            for row in await self._versions():
                self._seen[row.campaign_id] = row.version
            await self.runtime.reload_directory()
        await self.runtime.transport.declare(events_subscription(self.queue_name, [ALL_CONFIG_CHANGES]))
        self._consumer = await self.runtime.transport.consume(self.queue_name, self._on_event, prefetch=16)
        self._poller = asyncio.create_task(self._poll_loop(), name="config-watch-poll")
        log.info("config_watch_started", poll_interval_s=self.poll_interval_s)

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._consumer is not None:
            await self._consumer.cancel()
            self._consumer = None

    def seen_version(self, campaign_id: CampaignId) -> int | None:
        return self._seen.get(campaign_id)

    async def converge(self, changes: Iterable[ConfigChange]) -> list[ConfigChange]:
        """Reload once for the changes newer than what this server has; returns those."""
        async with self._lock:
            fresh = [c for c in changes if c.version > self._seen.get(c.campaign_id, 0)]
            if not fresh:
                return []
            await self.runtime.reload_directory()
            for change in fresh:
                self._seen[change.campaign_id] = max(change.version, self._seen.get(change.campaign_id, 0))
        log.info("config_reloaded", changes=[f"{c.campaign}@{c.version}" for c in fresh])
        await _run_hooks(self.runtime, fresh)
        return fresh

    async def poll_once(self) -> list[ConfigChange]:
        """Compare versions with the database; converge on any campaign that moved."""
        rows = await self._versions()
        return await self.converge(
            ConfigChange(r.workspace_id, r.campaign_id, r.name, r.version)
            for r in rows
            if r.version > self._seen.get(r.campaign_id, 0)
        )

    async def _versions(self) -> list[CampaignVersion]:
        async with self.runtime.database.session() as session:
            return await CampaignStore(session).versions()

    async def _on_event(self, delivery: Delivery) -> None:
        try:
            change = ConfigChange.from_json(delivery.body)
        except InvalidInput:
            log.warning("config_event_malformed", routing_key=delivery.routing_key)
            await delivery.reject()
            return
        # Settled first: a reload that fails here is retried by the poll, not by redelivery.
        await delivery.ack()
        try:
            await self.converge([change])
        except CentralitaError as exc:
            log.warning("config_reload_failed", code=exc.code, reason=exc.message)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.poll_once()
            except CentralitaError as exc:
                log.warning("config_poll_failed", code=exc.code, reason=exc.message)
