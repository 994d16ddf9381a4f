"""``centralita dlq list|show|replay``: the deliveries parked in the dead-letter queues.

- ``list [--queue Q] [--limit N]``: one JSON object per parked delivery — ``id``, ``queue`` (the
  original), ``reason``, ``parked_at``, ``size``, ``routing_key``, ``message_id``; never the body.
- ``show ID [--queue Q]``: the same plus ``headers`` and ``body`` (which may hold personal data).
- ``replay ID|--all [--queue Q]``: publish back to the original queue (confirmed), then remove
  from the dead-letter queue; one line per replayed delivery, and a count on stderr.

Listing does not consume: the deliveries stay parked.  RabbitMQ only: the embedded broker lives
inside ``centralita serve`` (use ``GET /api/admin/dlq`` there).  Without ``--queue`` the queues
are the application's and each workspace's (read from the database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from broker.factory import open_transport
from centralita.commands.ingest import _settings
from centralita.deadletters import (
    find_parked,
    list_parked,
    replay_parked,
    source_queues,
    working,
)
from centralita.schemas.dlq import DeadLetter, DeadLetterDetail
from core.errors import InvalidInput
from core.settings import Settings
from core.transport.deadletters import DeadLetters
from storage.database import Database

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("dlq", help="list, read and replay parked (dead-lettered) deliveries")
    actions = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="one JSON line per parked delivery (no bodies)")
    listing.add_argument("--queue", default=None, metavar="Q", help="only this queue's DLQ (e.g. ingest.0)")
    listing.add_argument("--limit", type=int, default=1000, metavar="N")
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser(
        "show",
        help="one parked delivery with its headers and body (the body may contain personal data)",
        description="Print one parked delivery with its headers and body.  The body is the "
        "customer's message as received: it may contain personal data.",
    )
    show.add_argument("id", metavar="ID")
    show.add_argument("--queue", default=None, metavar="Q")
    show.set_defaults(func=cmd_show)

    replay = actions.add_parser("replay", help="publish parked deliveries back to their queue, then unpark")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", default=None, metavar="ID")
    which.add_argument("--all", action="store_true", help="every parked delivery (of --queue)")
    replay.add_argument("--queue", default=None, metavar="Q")
    replay.set_defaults(func=cmd_replay)


async def _with_dead_letters(
    settings: Settings, queue: str | None, work: Callable[[DeadLetters, list[str]], Awaitable[int]]
) -> int:
    if settings.uses_memory_broker:
        raise InvalidInput(
            "the embedded broker lives inside `centralita serve`: use GET /api/admin/dlq there, "
            "or set CENTRALITA_BROKER_URL to the RabbitMQ the engine uses",
            field="broker_url",
        )
    database = None if queue is not None else Database(settings.database_url)
    try:
        if database is not None:
            await database.ping()
        queues = await source_queues(settings, database, queue)
        transport = await open_transport(settings)
        try:
            return await work(working(transport), queues)
        finally:
            await transport.close()
    finally:
        if database is not None:
            await database.dispose()


def _print(item: BaseModel) -> None:
    """One JSON line: the admin API's shape (``centralita.schemas.dlq``)."""
    print(json.dumps(item.model_dump(mode="json"), ensure_ascii=False))


def cmd_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InvalidInput("--limit must be at least 1", field="limit")

    async def work(dead_letters: DeadLetters, queues: list[str]) -> int:
        for entry in await list_parked(dead_letters, queues, limit=args.limit):
            _print(DeadLetter.of(entry))
        return 0

    return asyncio.run(_with_dead_letters(_settings(), args.queue, work))


def cmd_show(args: argparse.Namespace) -> int:
    async def work(dead_letters: DeadLetters, queues: list[str]) -> int:
        _print(DeadLetterDetail.of(await find_parked(dead_letters, queues, args.id)))
        return 0

    return asyncio.run(_with_dead_letters(_settings(), args.queue, work))


def cmd_replay(args: argparse.Namespace) -> int:
    async def work(dead_letters: DeadLetters, queues: list[str]) -> int:
        replayed = await replay_parked(dead_letters, queues, None if args.all else args.id)
        for entry in replayed:
            _print(DeadLetter.of(entry))
        print(f"replayed {len(replayed)} parked deliveries", file=sys.stderr)
        return 0

    return asyncio.run(_with_dead_letters(_settings(), args.queue, work))
