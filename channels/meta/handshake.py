"""Meta's endpoint verification: ``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from core.channel import ChannelAccount
from core.errors import Forbidden, InvalidInput

__all__ = ["answer_handshake"]


def answer_handshake(query: Mapping[str, str], accounts: Sequence[ChannelAccount], *, channel: str) -> str:
    """``hub.challenge`` verbatim when the verify token is some account's; ``Forbidden`` otherwise."""
    if query.get("hub.mode") != "subscribe":
        raise Forbidden("hub.mode must be 'subscribe'")
    token = query.get("hub.verify_token")
    if not token:
        raise Forbidden("missing hub.verify_token")
    challenge = query.get("hub.challenge")
    if challenge is None:
        raise InvalidInput("missing hub.challenge", field="hub.challenge")
    given = token.encode()
    matched = False
    for account in accounts:  # no early exit: the time taken does not tell which account matched
        if account.verify_token and hmac.compare_digest(account.verify_token.encode(), given):
            matched = True
    if not matched:
        raise Forbidden(f"hub.verify_token matches no configured {channel} account")
    return challenge
