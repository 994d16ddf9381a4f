"""The running configuration's channel accounts, in memory, refreshed from the database.

Secrets are resolved from the environment variables the manifest names, at load time; a
missing variable leaves the secret unset (that account then cannot verify or send, and says so
in the logs) rather than failing every other account.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from sqlalchemy import select

from core.channel import ChannelAccount
from core.ids import CampaignId, ChannelAccountId, WorkspaceId
from core.logging import get_logger
from storage.database import Database
from storage.tables import ChannelAccountRow

__all__ = ["StaticDirectory", "load_directory"]

log = get_logger("centralita.directory")


class StaticDirectory:
    """An ``AccountDirectory`` over a fixed list; ``replace`` swaps it atomically on apply."""

    def __init__(self, accounts: Sequence[ChannelAccount] = ()):
        self.replace(accounts)

    def replace(self, accounts: Sequence[ChannelAccount]) -> None:
        by_channel: dict[str, list[ChannelAccount]] = {}
        by_address: dict[tuple[str, str], ChannelAccount] = {}
        for account in accounts:
            by_channel.setdefault(account.channel, []).append(account)
            by_address[(account.channel, account.address.lower())] = account
        self._by_channel = by_channel
        self._by_address = by_address
        self._by_id = {a.id: a for a in accounts}

    def accounts(self, channel: str) -> Sequence[ChannelAccount]:
        return self._by_channel.get(channel, [])

    def find(self, channel: str, address: str) -> ChannelAccount | None:
        return self._by_address.get((channel, address.lower()))

    def by_id(self, account_id: ChannelAccountId) -> ChannelAccount | None:
        return self._by_id.get(account_id)

    def all(self) -> list[ChannelAccount]:
        return list(self._by_id.values())


def account_from_row(row: ChannelAccountRow, env: Mapping[str, str]) -> ChannelAccount:
    def secret(name: str | None) -> str | None:
        return env.get(name) if name else None

    settings = dict(row.settings or {})
    # A mailbox's SMTP login is named by variables too; the client reads smtp_username/password.
    for key, variable in (("smtp_username", "username_env"), ("smtp_password", "password_env")):
        value = secret(settings.get(variable))
        if value is not None:
            settings[key] = value
    return ChannelAccount(
        id=ChannelAccountId(row.id),
        workspace_id=WorkspaceId(row.workspace_id),
        campaign_id=CampaignId(row.campaign_id) if row.campaign_id else None,
        channel=row.channel,
        address=row.address,
        app_id=row.app_id,
        app_secret=secret(row.app_secret_env),
        access_token=secret(row.access_token_env),
        verify_token=secret(row.verify_token_env),
        settings=settings,
        name=row.name,
    )


async def load_directory(db: Database, env: Mapping[str, str] | None = None) -> list[ChannelAccount]:
    env = os.environ if env is None else env
    async with db.session() as session:
        query = select(ChannelAccountRow).where(ChannelAccountRow.__table__.c.active.is_(True))  # type: ignore[attr-defined]
        rows = (await session.execute(query)).scalars().all()
    accounts = [account_from_row(row, env) for row in rows]
    for row, account in zip(rows, accounts, strict=True):
        if row.app_secret_env and account.app_secret is None:
            log.warning("channel_account_secret_missing", account_id=str(row.id), variable=row.app_secret_env)
        for variable in ((row.settings or {}).get(k) for k in ("username_env", "password_env")):
            if variable and variable not in env:
                log.warning("channel_account_secret_missing", account_id=str(row.id), variable=variable)
    return accounts
