"""``centralita invite --workspace SLUG --email EMAIL [--expires-in DURATION] [--url BASE]``.

Prints a one-time link with which the agent sets a password and signs in to the console; it
works once, within ``--expires-in`` (default ``CENTRALITA_INVITATION_LIFETIME_S``, 7 days).  The
link's address is ``--url``, else ``CENTRALITA_PUBLIC_URL``, else the server's host and port.
Only the SHA-256 of its secret is stored; the secret rides in the link's fragment (``#…``), which
browsers never send to a server, so it stays out of access logs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from centralita.runtime import utc_now
from centralita.schemas.signin import IssuedInvitation
from centralita.schemas.tokens import parse_duration
from centralita.signin import invite
from core.errors import InvalidInput
from storage.database import Database

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("invite", help="print a one-time console sign-in link for an agent")
    parser.add_argument("--workspace", required=True, metavar="SLUG")
    parser.add_argument("--email", required=True, metavar="EMAIL", help="an agent of the workspace")
    parser.add_argument("--expires-in", default=None, metavar="DURATION", help="e.g. 2d, 12h (default: 7d)")
    parser.add_argument("--url", default=None, metavar="BASE", help="the console's address in the link")
    parser.set_defaults(func=cmd_invite)


def cmd_invite(args: argparse.Namespace) -> int:
    from centralita.cli import _settings

    settings = _settings()
    try:
        lifetime = (
            parse_duration(args.expires_in)
            if args.expires_in
            else timedelta(seconds=settings.invitation_lifetime_s)
        )
    except ValueError as exc:
        raise InvalidInput(f"--expires-in: {exc}", field="--expires-in") from None

    async def work() -> IssuedInvitation:
        database = Database(settings.database_url)
        try:
            issued = await invite(
                database,
                workspace=args.workspace,
                email=args.email,
                created_by="cli",
                now=utc_now(),
                lifetime=lifetime,
            )
        finally:
            await database.dispose()
        base = args.url or settings.public_url or f"http://{settings.host}:{settings.port}"
        return IssuedInvitation.of(issued, base)

    issued = asyncio.run(work())
    print(
        f"invitation for {issued.agent.name} ({issued.workspace}), until {issued.expires_at.isoformat()}",
        file=sys.stderr,
    )
    print(issued.url)
    return 0
