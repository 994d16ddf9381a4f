"""The composition root: builds every resource from settings, in one place.

``open_runtime(settings)`` opens the database, the transport (declaring the topology), the
channel adapters and the account directory, and closes them in reverse order.  The HTTP app,
the workers and the CLI all get their resources from here; nothing is created at import time.
``centralita.workers.start_workers`` then starts the workers of this process's roles on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from broker.factory import open_transport
from centralita.directory import StaticDirectory, load_directory
from centralita.metrics import Metrics
from core.channel import AdapterContext, ReplyWindow
from core.errors import CentralitaError
from core.ids import WorkspaceId
from core.media import MediaStore
from core.registry import AdapterRegistry, load_adapters
from core.settings import Settings
from core.supervise import WorkerRegistry
from core.transport.protocol import Transport
from core.transport.topology import app_topology
from storage.database import Database
from storage.media_files import DirectoryMediaStore, MemoryMediaStore

if TYPE_CHECKING:
    from centralita.config_watch import ConfigWatcher, ReloadHook
    from router.service import RouterSupervisor

__all__ = ["Clock", "Runtime", "adapter_context", "open_runtime", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    transport: Transport
    adapters: AdapterRegistry
    directory: StaticDirectory
    clock: Clock = utc_now
    media: MediaStore = field(default_factory=MemoryMediaStore)  # customers' attachments
    workers: WorkerRegistry = field(default_factory=WorkerRegistry)  # supervised tasks (/readyz)
    metrics: Metrics = field(default_factory=Metrics)  # this runtime's Prometheus series (/metrics)
    # Run after each new campaign version this server loads (``config_watch.register_reload_hook``).
    config_hooks: list[ReloadHook] = field(default_factory=list)
    # This server's running config watcher and router supervisor (``start_workers`` sets them).
    config_watcher: ConfigWatcher | None = None
    routers: RouterSupervisor | None = None
    # Workspaces whose routing topology this process declared (``publish_router_inputs``).
    declared_workspaces: set[WorkspaceId] = field(default_factory=set)

    async def reload_directory(self) -> None:
        self.directory.replace(await load_directory(self.database))

    def reply_window_of(self, channel: str) -> ReplyWindow | None:
        """The channel's reply window (its adapter's capabilities); None for a channel without
        one, or one no adapter serves here (no window to keep)."""
        try:
            return self.adapters.get(channel).capabilities.reply_window
        except CentralitaError:
            return None


def adapter_context(settings: Settings) -> AdapterContext:
    return AdapterContext(
        graph_base_url=settings.graph_base_url,
        graph_version=settings.graph_version,
        smtp_host=settings.smtp_relay_host,
        smtp_port=settings.smtp_relay_port,
        send_retries=settings.send_retries,
        extra={
            "retry_initial_s": settings.send_retry_initial_s,
            "retry_max_s": settings.send_retry_max_s,
            "smtp_retry_backoff_s": settings.send_retry_initial_s,
            "smtp_retry_backoff_max_s": settings.send_retry_max_s,
            "webhook_token": settings.email_webhook_token,
            "smtp_listen_host": settings.smtp_listen_host,
            "smtp_listen_port": settings.smtp_listen_port,
        },
    )


@asynccontextmanager
async def open_runtime(settings: Settings, *, clock: Clock = utc_now) -> AsyncIterator[Runtime]:
    async with AsyncExitStack() as stack:
        database = Database(settings.database_url)
        stack.push_async_callback(database.dispose)
        await database.ping()
        transport = await open_transport(settings)
        stack.push_async_callback(transport.close)
        await transport.declare(
            app_topology(settings.ingest_partitions, max_backlog=settings.ingest_max_backlog)
        )
        adapters = load_adapters(adapter_context(settings))
        stack.push_async_callback(adapters.aclose)
        directory = StaticDirectory(await load_directory(database))
        yield Runtime(
            settings,
            database,
            transport,
            adapters,
            directory,
            clock,
            media=DirectoryMediaStore(settings.media_dir),
        )
