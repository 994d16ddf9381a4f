"""Working the dead-letter queues: which queues have one; find, list and replay what they hold.

Shared by ``centralita dlq`` (``centralita.commands.dlq``) and the admin API
(``centralita.web.api.dlq``).  The queues with a dead-letter queue are the application's
(``ingest.<p>``, ``outbound``) and each workspace's ``route.<workspace_id>``; ``--queue`` /
``?queue=`` narrows to one.  An entry is addressed by its id (the message id); copies of one
message share it and are replayed together (the consumers dedupe).

The queues are the engine's (an ingest partition carries every workspace's deliveries), so the
admin API shows a workspace only the entries it can prove are that workspace's
(``workspace_of``): a ``route.<workspace_id>`` queue's, an ingest delivery whose business
address is one of the workspace's channel accounts, an outbound job whose message row is the
workspace's.  Everything else (a body that names no known account) is for the operator's
``centralita dlq``, which reads the broker with its own credentials.  Both show an entry as
``centralita.schemas.dlq`` models it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from centralita.directory import StaticDirectory
from core.errors import CentralitaError, InvalidInput, NotFound
from core.ids import WorkspaceId
from core.registry import AdapterRegistry
from core.settings import Settings
from core.transport.deadletters import DeadLetters, Parked
from core.transport.protocol import Transport
from core.transport.topology import OUTBOUND_QUEUE, app_topology, route_queue, workspace_topology
from storage.database import Database
from storage.tables import MessageRow, WorkspaceRow

__all__ = [
    "Owner",
    "find_parked",
    "list_parked",
    "replay_parked",
    "source_queues",
    "working",
    "workspace_of",
]

_WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]
_MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Owner:
    """What it takes to tell whose a parked delivery is."""

    database: Database
    directory: StaticDirectory
    adapters: AdapterRegistry


async def workspace_of(entry: Parked, owner: Owner) -> WorkspaceId | None:
    """The workspace a parked delivery provably belongs to, or None when nothing in it says."""
    if entry.queue.startswith(route_queue("")):
        try:
            return WorkspaceId(uuid.UUID(entry.queue.removeprefix(route_queue(""))))
        except ValueError:
            return None
    if entry.queue == OUTBOUND_QUEUE:
        try:
            message_id = uuid.UUID(str(json.loads(entry.body)["message_id"]))
        except (ValueError, KeyError, TypeError):
            return None
        async with owner.database.session() as session:
            found = await session.execute(
                sa.select(_MESSAGE.c.workspace_id).where(_MESSAGE.c.id == message_id)
            )
            workspace = found.scalar_one_or_none()
        return WorkspaceId(workspace) if workspace is not None else None
    channel = entry.headers.get("channel")
    if not isinstance(channel, str):
        return None
    received_at = entry.parked_at or datetime.now(UTC)
    try:
        events = owner.adapters.get(channel).parse(entry.body, received_at=received_at)
    except CentralitaError:
        return None
    workspaces = {
        account.workspace_id
        for event in events
        if (account := owner.directory.find(channel, event.business_address)) is not None
    }
    return workspaces.pop() if len(workspaces) == 1 else None


def working(transport: Transport) -> DeadLetters:
    """The transport as ``DeadLetters``, or ``InvalidInput`` when it cannot list its DLQs."""
    if not isinstance(transport, DeadLetters):
        raise InvalidInput(f"the {type(transport).__name__} transport cannot list dead letters")
    return transport


async def source_queues(settings: Settings, database: Database | None, queue: str | None = None) -> list[str]:
    """``[queue]`` when given, else every queue of the application that has a dead-letter queue."""
    if queue is not None:
        if not queue or queue.endswith(".dlq"):
            raise InvalidInput("name the original queue (e.g. ingest.0), not its .dlq", field="queue")
        return [queue]
    topology = app_topology(settings.ingest_partitions)
    if database is not None:
        async with database.session() as session:
            ids = (await session.execute(sa.select(_WORKSPACE.c.id).order_by(_WORKSPACE.c.id))).scalars()
            for workspace_id in ids:
                topology = topology + workspace_topology(str(workspace_id))
    return [q.name for q in topology.queues if q.dead_letter]


async def list_parked(dead_letters: DeadLetters, queues: Sequence[str], *, limit: int = 1000) -> list[Parked]:
    found: list[Parked] = []
    for queue in queues:
        if len(found) >= limit:
            break
        found.extend(await dead_letters.parked(queue, limit=limit - len(found)))
    return found


async def find_parked(dead_letters: DeadLetters, queues: Sequence[str], entry_id: str) -> Parked:
    for queue in queues:
        for entry in await dead_letters.parked(queue, limit=100_000):
            if entry.id == entry_id:
                return entry
    raise NotFound(f"no parked delivery {entry_id!r}", field="id")


async def replay_parked(
    dead_letters: DeadLetters, queues: Sequence[str], entry_id: str | None
) -> list[Parked]:
    """Replay ``entry_id`` (every copy of it), or everything when it is None."""
    replayed: list[Parked] = []
    for queue in queues:
        replayed.extend(await dead_letters.replay(queue, None if entry_id is None else {entry_id}))
    if entry_id is not None and not replayed:
        raise NotFound(f"no parked delivery {entry_id!r}", field="id")
    return replayed
