"""One router service per active workspace on this server.

``RouterSupervisor.start()`` looks for workspaces with an active queue and starts a
``RouterService`` for each; new workspaces are found by a periodic scan (``router_scan_s``) and at
once when a campaign is applied (a hook given to ``RouterDeps.subscribe_config``, which also tells
the workspace's active router — wherever it runs — to reload its queues and agents).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.errors import BrokerUnavailable, CentralitaError
from core.ids import WorkspaceId
from core.logging import get_logger
from core.transport.protocol import Message
from core.transport.topology import ROUTE_EXCHANGE, route_queue, workspace_topology
from router.service.deps import ConfigChangeEvent, RouterDeps
from router.service.service import BatchReport, RouterService
from router.wire import ConfigChanged
from storage.routing import RoutingStore

__all__ = ["RouterSupervisor"]

log = get_logger("router.supervisor")


class RouterSupervisor:
    def __init__(self, deps: RouterDeps) -> None:
        self.deps = deps
        self.services: dict[WorkspaceId, RouterService] = {}
        self.observers: list[Callable[[BatchReport], None]] = []
        self._lock = asyncio.Lock()
        self._scanner: asyncio.Task[None] | None = None
        self._running = False

    async def start(self) -> None:
        self._running = True
        self.deps.subscribe_config(self._on_config_change)
        await self.scan()
        self._scanner = asyncio.create_task(self._scan_loop(), name="router-scan")

    async def stop(self) -> None:
        self._running = False
        if self._scanner is not None:
            self._scanner.cancel()
            await asyncio.gather(self._scanner, return_exceptions=True)
        async with self._lock:
            services, self.services = list(self.services.values()), {}
        for service in services:
            await service.stop()

    async def scan(self) -> list[WorkspaceId]:
        """Start a router for every active workspace that has none here; returns the new ones."""
        async with self.deps.database.session() as session:
            workspaces = await RoutingStore(session).active_workspaces()
        started = []
        for workspace_id in workspaces:
            if await self.ensure(workspace_id):
                started.append(workspace_id)
        return started

    async def ensure(self, workspace_id: WorkspaceId) -> bool:
        """Start the workspace's router on this server unless it runs already."""
        async with self._lock:
            if not self._running or workspace_id in self.services:
                return False
            service = RouterService(self.deps, workspace_id)
            service.observers.append(self._report)
            await service.start()
            self.services[workspace_id] = service
            return True

    def _report(self, report: BatchReport) -> None:
        for observer in list(self.observers):
            observer(report)

    async def _on_config_change(self, change: ConfigChangeEvent) -> None:
        if not self._running:
            return
        await self.ensure(change.workspace_id)
        ws = str(change.workspace_id)
        try:
            await self.deps.transport.declare(workspace_topology(ws))
            await self.deps.transport.publish(
                [
                    Message(
                        body=ConfigChanged(version=change.version).model_dump_json().encode(),
                        exchange=ROUTE_EXCHANGE,
                        routing_key=route_queue(ws),
                    )
                ]
            )
        except BrokerUnavailable as exc:
            # The active router catches up on its next resync of agents and queues.
            log.warning("router.config_change_not_published", workspace_id=ws, reason=exc.message)

    async def _scan_loop(self) -> None:
        while True:
            await asyncio.sleep(self.deps.settings.router_scan_s)
            try:
                await self.scan()
            except CentralitaError as exc:
                log.warning("router.scan_failed", code=exc.code, reason=exc.message)
