"""An in-memory ``AccountDirectory`` over a fixed list of channel accounts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.channel import ChannelAccount

__all__ = ["StaticDirectory"]


class StaticDirectory:
    def __init__(self, accounts: Iterable[ChannelAccount]):
        self._accounts = tuple(accounts)

    def accounts(self, channel: str) -> Sequence[ChannelAccount]:
        return [account for account in self._accounts if account.channel == channel]

    def find(self, channel: str, address: str) -> ChannelAccount | None:
        for account in self._accounts:
            if account.channel == channel and account.address == address:
                return account
        return None
