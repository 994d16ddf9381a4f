"""The workers of one process, wired in one place.

``start_workers(runtime, roles)`` starts, on an open runtime, the workers of the process's roles
— the pipeline, the follow-up scheduler and the survey sender, the config watcher, the outbound
workers (replies and the customers' media), the router supervisor and the retention job, in that
order — then the listening adapters, and stops them in reverse order.
``serve`` and ``demo`` (through ``create_app``) and ``ingest`` all start their workers here.

``router_deps(runtime)`` gives the router service (``router.service``) what it needs from this
process as narrow ports; the router never imports ``centralita``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from centralita.config_watch import ConfigWatcher, register_reload_hook
from centralita.followups import FollowUpScheduler
from centralita.ingress import Ingress
from centralita.integrations import EventDelivery
from centralita.media import MediaWorker
from centralita.outbound import OutboundWorker, nudge_outbound, queue_auto_reply
from centralita.pipeline.worker import Pipeline
from centralita.retention import RetentionJob
from centralita.runtime import Runtime
from centralita.surveys import SurveySender
from core.channel import ListeningAdapter
from core.ids import ConversationId, MessageId, WorkspaceId
from core.settings import ROLES, Settings
from router.service import RouterDeps, RouterSupervisor
from router.service.deps import ConfigHook
from storage.outbound import OutboundStore

__all__ = ["Workers", "process_roles", "router_deps", "start_workers"]


@dataclass
class Workers:
    """What ``start_workers`` runs in this process; a role's worker is None when it runs elsewhere."""

    roles: frozenset[str]
    ingress: Ingress
    # Always built: ``process`` serves ``centralita ingest``; it consumes the ingest partitions
    # only with the ``pipeline`` role.
    pipeline: Pipeline
    followups: FollowUpScheduler | None = None
    surveys: SurveySender | None = None  # with the follow-ups: due work any server claims
    config_watcher: ConfigWatcher | None = None
    outbound: OutboundWorker | None = None
    media: MediaWorker | None = None
    events: EventDelivery | None = None  # webhooks out, with the outbound role
    routers: RouterSupervisor | None = None
    retention: RetentionJob | None = None

    def runs(self, role: str) -> bool:
        return role in self.roles


def process_roles(settings: Settings) -> frozenset[str]:
    """The roles this process runs (``CENTRALITA_ROLES``; none when ``run_workers`` is off)."""
    return frozenset(role for role in ROLES if settings.runs(role))


class _Worker(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


W = TypeVar("W", bound=_Worker)


async def _started(stack: AsyncExitStack, worker: W) -> W:
    await worker.start()
    stack.push_async_callback(worker.stop)
    return worker


@asynccontextmanager
async def start_workers(
    runtime: Runtime, roles: Iterable[str], *, listen: bool = True
) -> AsyncIterator[Workers]:
    """Run the workers of ``roles`` (see ``core.settings.ROLES``) and, with ``listen``, the
    adapters that listen for traffic themselves (the SMTP server), until the block exits."""
    chosen = frozenset(roles)
    if unknown := chosen - set(ROLES):
        raise ValueError(f"unknown role(s) {', '.join(sorted(unknown))}")
    ingress = Ingress(
        runtime.adapters,
        runtime.directory,
        runtime.transport,
        runtime.settings.ingest_partitions,
        runtime.clock,
    )
    workers = Workers(chosen, ingress, Pipeline(runtime))
    async with AsyncExitStack() as stack:
        if workers.runs("pipeline"):
            await _started(stack, workers.pipeline)
        if workers.runs("followups"):
            workers.followups = await _started(stack, FollowUpScheduler(runtime))
            workers.surveys = await _started(stack, SurveySender(runtime))
        if workers.runs("config"):
            workers.config_watcher = await _started(stack, ConfigWatcher(runtime))
            runtime.config_watcher = workers.config_watcher  # ``announce`` converges through it
            stack.callback(setattr, runtime, "config_watcher", None)  # cleared before it stops
        if workers.runs("outbound"):
            workers.outbound = await _started(stack, OutboundWorker(runtime))
            media = workers.media = await _started(stack, MediaWorker(runtime))
            workers.events = await _started(stack, EventDelivery(runtime))
            workers.pipeline.observers.append(
                lambda _envelope, outcome: media.poke() if outcome.media else None
            )
        if workers.runs("router"):
            workers.routers = await _started(stack, RouterSupervisor(router_deps(runtime)))
            workers.routers.observers.append(runtime.metrics.router_report)
            runtime.routers = workers.routers
            stack.callback(setattr, runtime, "routers", None)
        if workers.runs("retention"):
            workers.retention = await _started(stack, RetentionJob(runtime))
        if listen:
            for _name, adapter in runtime.adapters.items():
                if isinstance(adapter, ListeningAdapter):
                    await adapter.start_listener(ingress, runtime.directory)
                    stack.push_async_callback(adapter.stop_listener)
        yield workers


def router_deps(runtime: Runtime) -> RouterDeps:
    """The router's ports, served by this runtime."""

    async def write_auto_reply(
        session: AsyncSession,
        *,
        workspace_id: WorkspaceId,
        conversation_id: ConversationId,
        text: str,
        reason: str,
    ) -> MessageId | None:
        return await queue_auto_reply(
            runtime,
            OutboundStore(session),
            workspace_id=workspace_id,
            conversation_id=conversation_id,
            text=text,
            reason=reason,
        )

    async def nudge(message_ids: Sequence[MessageId]) -> None:
        await nudge_outbound(runtime, message_ids)

    def subscribe(hook: ConfigHook) -> None:
        register_reload_hook(runtime, hook)

    return RouterDeps(
        settings=runtime.settings,
        database=runtime.database,
        transport=runtime.transport,
        clock=runtime.clock,
        workers=runtime.workers,
        reply_window_of=runtime.reply_window_of,
        queue_auto_reply=write_auto_reply,
        nudge_outbound=nudge,
        subscribe_config=subscribe,
    )
