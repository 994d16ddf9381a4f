"""Working the dead-letter queues: which queues have one, and their parked deliveries as JSON.

Shared by ``centralita dlq`` (``centralita.commands.dlq``) and the admin API
(``centralita.web.api.dlq``).  The queues with a dead-letter queue are the application's
(``ingest.<p>``, ``outbound``) and each workspace's ``route.<workspace_id>``; ``--queue`` /
``?queue=`` narrows to one.  An entry is addressed by its id (the message id); copies of one
message share it and are replayed together (the consumers dedupe).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from core.errors import InvalidInput, NotFound
from core.settings import Settings
from core.storage.database import Database
from core.storage.tables import WorkspaceRow
from core.transport.deadletters import DeadLetters, Parked
from core.transport.protocol import Transport
from core.transport.topology import app_topology, workspace_topology

__all__ = ["detail", "find_parked", "list_parked", "replay_parked", "source_queues", "summary", "working"]

_WORKSPACE = WorkspaceRow.__table__  # type: ignore[attr-defined]


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


def summary(entry: Parked) -> dict[str, Any]:
    """What a list shows: never the body or the headers (they may hold personal data)."""
    return {
        "id": entry.id,
        "queue": entry.queue,
        "reason": entry.reason,
        "parked_at": entry.parked_at.isoformat() if entry.parked_at else None,
        "size": entry.size,
        "routing_key": entry.routing_key,
        "message_id": entry.message_id,
    }


def detail(entry: Parked) -> dict[str, Any]:
    """One entry in full: headers and body (UTF-8 text, else base64)."""
    try:
        body, encoding = entry.body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(entry.body).decode("ascii"), "base64"
    return {
        **summary(entry),
        "content_type": entry.content_type,
        "headers": dict(entry.headers),
        "body": body,
        "body_encoding": encoding,
    }
