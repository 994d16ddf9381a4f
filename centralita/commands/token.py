"""``centralita token create``: issue an API bearer token (only its SHA-256 is stored).

Admins apply campaigns through the API; supervisors and agents need a token to use it at all.
An agent token is tied to one agent of the workspace (``--agent EMAIL``).
"""

from __future__ import annotations

import argparse
import asyncio

import sqlalchemy as sa

from centralita.runtime import utc_now
from core.errors import InvalidInput, NotFound
from core.ids import AgentId
from core.settings import Settings
from storage.campaigns import CampaignStore
from storage.database import Database
from storage.tables import AgentRow
from storage.tokens import ROLES, TokenStore

__all__ = ["register"]

AGENT = AgentRow.__table__  # type: ignore[attr-defined]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("token", help="API bearer tokens")
    actions = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="print a new bearer token (only its hash is stored)")
    create.add_argument("--workspace", required=True, metavar="SLUG")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--agent", default=None, metavar="EMAIL", help="the agent (required for --role agent)"
    )
    create.add_argument("--name", default=None, metavar="N", help="a label, e.g. who or what uses it")
    create.set_defaults(func=cmd_create)


def cmd_create(args: argparse.Namespace) -> int:
    from centralita.cli import _settings

    if args.role == "agent" and not args.agent:
        raise InvalidInput("an agent token needs --agent EMAIL", field="--agent")
    token = asyncio.run(_create(_settings(), args.workspace, args.role, args.agent, args.name))
    print(token)
    return 0


async def _create(settings: Settings, workspace: str, role: str, agent: str | None, name: str | None) -> str:
    database = Database(settings.database_url)
    try:
        async with database.transaction() as session:
            workspace_id = await CampaignStore(session).workspace_id(workspace)
            if workspace_id is None:
                raise NotFound(f"no workspace {workspace!r} (apply a campaign manifest to create it)")
            agent_id: AgentId | None = None
            if agent is not None:
                query = sa.select(AGENT.c.id).where(
                    AGENT.c.workspace_id == workspace_id, AGENT.c.email == agent.strip().lower()
                )
                found = (await session.execute(query)).scalar()
                if found is None:
                    raise NotFound(f"no agent {agent!r} in workspace {workspace!r}", field="--agent")
                agent_id = AgentId(found)
            return await TokenStore(session).issue(workspace_id, role, agent_id, name, utc_now())
    finally:
        await database.dispose()
