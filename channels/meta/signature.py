"""X-Hub-Signature-256: HMAC-SHA256 of the raw body with the app secret, ``sha256=<hex>``.

One installation may serve several Meta apps (one per client, or an Instagram-login app beside a
Facebook-login one).  A delivery is authentic when its signature matches the secret of *any*
configured app of the channel, compared in constant time for each; the accounts it addresses must
then belong to that app, so one client's app cannot speak for another client's numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence

from core.channel import ChannelAccount
from core.errors import InvalidSignature

__all__ = ["SIGNATURE_HEADER", "check_addressed", "matching_accounts", "sign_body"]

SIGNATURE_HEADER = "x-hub-signature-256"
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def sign_body(body: bytes, app_secret: str) -> str:
    """The header value Meta would send for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str]) -> str | None:
    value = headers.get(SIGNATURE_HEADER)
    if value is not None:
        return value
    for name, candidate in headers.items():
        if name.lower() == SIGNATURE_HEADER:
            return candidate
    return None


def matching_accounts(
    headers: Mapping[str, str], body: bytes, accounts: Sequence[ChannelAccount], *, channel: str
) -> list[ChannelAccount]:
    """The accounts whose app secret signed ``body``; ``InvalidSignature`` when none did."""
    header = _header(headers)
    if header is None:
        raise InvalidSignature("missing X-Hub-Signature-256 header")
    scheme, sep, hexdigest = header.strip().partition("=")
    if scheme.lower() != "sha256" or not sep or not _HEX.fullmatch(hexdigest):
        raise InvalidSignature("malformed X-Hub-Signature-256 header: expected sha256=<64 hex digits>")
    given = bytes.fromhex(hexdigest)
    by_secret: dict[str, list[ChannelAccount]] = {}
    for account in accounts:
        if account.app_secret:
            by_secret.setdefault(account.app_secret, []).append(account)
    if not by_secret:
        raise InvalidSignature(f"no app secret is configured for any {channel} account")
    matched: list[ChannelAccount] = []
    for secret, owners in by_secret.items():
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, given):
            matched.extend(owners)
    if not matched:
        raise InvalidSignature(f"X-Hub-Signature-256 matches no configured {channel} app secret")
    return matched


def check_addressed(addressed: Iterable[str], signed_by: Sequence[ChannelAccount], *, channel: str) -> None:
    """Every account a delivery addresses must belong to the app whose secret signed it."""
    allowed = {account.address for account in signed_by}
    for address in addressed:
        if address not in allowed:
            raise InvalidSignature(
                f"the delivery addresses {channel} account {address!r}, "
                "which does not belong to the app whose secret signed it"
            )
