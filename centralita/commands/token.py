"""``centralita token create|list|revoke|rotate``: API bearer tokens (only their SHA-256 is stored).

- ``create --workspace SLUG --role ROLE [--agent EMAIL] [--name N] [--expires-in DURATION]``:
  prints a new token (once); it expires after ``--expires-in`` (``12h``, ``30d``), by default
  its role's lifetime (``CENTRALITA_TOKEN_LIFETIME_<ROLE>_S``).  An agent token is tied to one
  agent of the workspace (``--agent EMAIL``).
- ``list [--workspace SLUG]``: one JSON line per token, newest first — id, workspace, name, role,
  agent, created, expires, last used, revoked, status; never the token nor its hash (the admin
  API's shape, ``centralita.schemas.tokens.Token``).
- ``revoke ID``: refused from the next request on; a server closes the sockets it authenticated
  within ``CENTRALITA_TOKEN_RECHECK_S``.  Prints the token's line.
- ``rotate ID [--expires-in DURATION]``: prints a new token with the same role, agent and name;
  the old one is revoked in the same transaction.

Each issue and revoke is in the audit trail as ``cli`` (``token.issued``, ``token.revoked``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel

from centralita.runtime import utc_now
from centralita.schemas.tokens import Token, parse_duration
from core.errors import InvalidInput, NotFound
from core.ids import AgentId, WorkspaceId
from core.settings import Settings
from storage.campaigns import CampaignStore
from storage.database import Database
from storage.tokens import ROLES, TokenStore, expiry

__all__ = ["register"]

CLI_ACTOR = "cli"  # who issued, revoked or rotated, in the audit trail

T = TypeVar("T")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("token", help="API bearer tokens: create, list, revoke, rotate")
    actions = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="print a new bearer token (only its hash is stored)")
    create.add_argument("--workspace", required=True, metavar="SLUG")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--agent", default=None, metavar="EMAIL", help="the agent (required for --role agent)"
    )
    create.add_argument("--name", default=None, metavar="N", help="a label, e.g. who or what uses it")
    create.add_argument(
        "--expires-in",
        default=None,
        metavar="DURATION",
        help="its lifetime, e.g. 12h, 30d, 2w (default: the role's, CENTRALITA_TOKEN_LIFETIME_<ROLE>_S)",
    )
    create.set_defaults(func=cmd_create)

    listing = actions.add_parser("list", help="one JSON line per token (never the token or its hash)")
    listing.add_argument("--workspace", default=None, metavar="SLUG", help="only this workspace's")
    listing.set_defaults(func=cmd_list)

    revoke = actions.add_parser("revoke", help="refuse a token from its next request on")
    revoke.add_argument("id", metavar="ID")
    revoke.set_defaults(func=cmd_revoke)

    rotate = actions.add_parser("rotate", help="print a new token like ID's and revoke ID")
    rotate.add_argument("id", metavar="ID")
    rotate.add_argument("--expires-in", default=None, metavar="DURATION", help="default: the role's lifetime")
    rotate.set_defaults(func=cmd_rotate)


def _settings() -> Settings:
    from centralita.cli import _settings as settings

    return settings()


def _lifetime(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(f"--expires-in: {exc}", field="--expires-in") from None


def _token_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise InvalidInput(
            f"ID: {text!r} is not a token id (see `centralita token list`)", field="ID"
        ) from None


def _print(item: BaseModel) -> None:
    print(json.dumps(item.model_dump(mode="json"), ensure_ascii=False))


async def _workspace(store: CampaignStore, slug: str) -> WorkspaceId:
    workspace_id = await store.workspace_id(slug)
    if workspace_id is None:
        raise NotFound(f"no workspace {slug!r} (apply a campaign manifest to create it)", field="--workspace")
    return workspace_id


def cmd_create(args: argparse.Namespace) -> int:
    if args.role == "agent" and not args.agent:
        raise InvalidInput("an agent token needs --agent EMAIL", field="--agent")
    lifetime = _lifetime(args.expires_in)
    settings = _settings()

    async def work(database: Database) -> str:
        now = utc_now()
        expires_at = expiry(settings, args.role, now, lifetime, field="--expires-in")
        async with database.transaction() as session:
            workspace_id = await _workspace(CampaignStore(session), args.workspace)
            store = TokenStore(session)
            agent_id: AgentId | None = None
            if args.agent is not None:
                agent_id = await store.agent_in(workspace_id, email=args.agent)
                if agent_id is None:
                    raise NotFound(
                        f"no agent {args.agent!r} in workspace {args.workspace!r}", field="--agent"
                    )
            return await store.issue(
                workspace_id, args.role, agent_id, args.name, now, expires_at=expires_at, actor=CLI_ACTOR
            )

    print(asyncio.run(_with_database(settings, work)))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        async with database.session() as session:
            workspace_id = None
            if args.workspace is not None:
                workspace_id = await _workspace(CampaignStore(session), args.workspace)
            records = await TokenStore(session).list(workspace_id)
        now = utc_now()
        for record in records:
            _print(Token.of(record, now))
        return len(records)

    count = asyncio.run(_with_database(_settings(), work))
    print(f"{count} tokens", file=sys.stderr)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    token_id = _token_id(args.id)

    async def work(database: Database) -> Token:
        now = utc_now()
        async with database.transaction() as session:
            record = await TokenStore(session).revoke(token_id, now, actor=CLI_ACTOR)
        if record is None:
            raise NotFound(f"no token {args.id!r} (see `centralita token list`)", field="ID")
        return Token.of(record, now)

    _print(asyncio.run(_with_database(_settings(), work)))
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    token_id = _token_id(args.id)
    lifetime = _lifetime(args.expires_in)
    settings = _settings()

    async def work(database: Database) -> str:
        now = utc_now()
        async with database.transaction() as session:
            store = TokenStore(session)
            old = await store.get(token_id)
            if old is None:
                raise NotFound(f"no token {args.id!r} (see `centralita token list`)", field="ID")
            expires_at = expiry(settings, old.role, now, lifetime, field="--expires-in")
            rotated = await store.rotate(token_id, now, expires_at=expires_at, actor=CLI_ACTOR)
        assert rotated is not None  # it was there in this transaction
        issued, revoked = rotated
        print(f"revoked {revoked.id}; the new token is {issued.record.id}", file=sys.stderr)
        return issued.token

    print(asyncio.run(_with_database(settings, work)))
    return 0


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    database = Database(settings.database_url)
    try:
        return await work(database)
    finally:
        await database.dispose()
