"""What the live router needs from the process that runs it — and nothing more.

The router service never sees the composition root: ``centralita.workers.router_deps(runtime)``
builds a ``RouterDeps`` and hands it to ``RouterSupervisor`` (or a test hands one to a single
``RouterService``).  The ports are callables, so a fake is a function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core.channel import ReplyWindow
from core.ids import ConversationId, MessageId, WorkspaceId
from core.settings import Settings
from core.supervise import WorkerRegistry
from core.transport.protocol import Transport
from storage.database import Database

__all__ = [
    "AutoReplyWriter",
    "Clock",
    "ConfigChangeEvent",
    "ConfigHook",
    "OutboundNudge",
    "ReplyWindowOf",
    "RouterDeps",
    "SubscribeConfig",
]

Clock = Callable[[], datetime]
"""Now, timezone-aware (``AdvancingClock`` also wakes the router when it moves)."""

ReplyWindowOf = Callable[[str], ReplyWindow | None]
"""A channel's customer-service window; None when replies are always allowed or it is unknown."""

OutboundNudge = Callable[[Sequence[MessageId]], Awaitable[None]]
"""After the commit: tell the outbound workers that these outbox rows are due."""


class AutoReplyWriter(Protocol):
    """Writes an auto-reply's outbox row in ``session`` (the router's round transaction); None
    (logged by the writer) when the channel refuses it — nothing is written then."""

    def __call__(
        self,
        session: AsyncSession,
        *,
        workspace_id: WorkspaceId,
        conversation_id: ConversationId,
        text: str,
        reason: str,
    ) -> Awaitable[MessageId | None]: ...


class ConfigChangeEvent(Protocol):
    """A campaign of a workspace reached a new version (what the router reads of it)."""

    @property
    def workspace_id(self) -> WorkspaceId: ...

    @property
    def version(self) -> int: ...


ConfigHook = Callable[[ConfigChangeEvent], Awaitable[None]]
SubscribeConfig = Callable[[ConfigHook], None]
"""Run the hook on this server after each new campaign version it loads."""


@dataclass(frozen=True, slots=True)
class RouterDeps:
    settings: Settings
    database: Database
    transport: Transport
    clock: Clock
    workers: WorkerRegistry  # the router's loops run supervised (``/readyz``)
    reply_window_of: ReplyWindowOf
    queue_auto_reply: AutoReplyWriter
    nudge_outbound: OutboundNudge
    subscribe_config: SubscribeConfig
