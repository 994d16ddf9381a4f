"""Instagram webhook authenticity: X-Hub-Signature-256 from some configured app (a Facebook-login
app or an Instagram-login app, each with its own secret), then every Instagram account the
delivery speaks for (``entry[].id``) must belong to that app."""

from __future__ import annotations

from collections.abc import Sequence

from channels.meta.jsonbody import try_load
from channels.meta.signature import check_addressed, matching_accounts
from core.channel import ChannelAccount, WebhookRequest
from core.errors import InvalidInput

__all__ = ["addressed_account_ids", "verify_request"]


def addressed_account_ids(body: bytes) -> list[str]:
    """The Instagram account ids a delivery speaks for (best effort: ``[]`` when unreadable)."""
    try:
        root = try_load(body)
    except InvalidInput:
        return []
    entries = root.get("entry") if isinstance(root, dict) else None
    found: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        account_id = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(account_id, str):
            found.append(account_id)
        elif isinstance(account_id, int) and not isinstance(account_id, bool):
            found.append(str(account_id))
    return found


def verify_request(request: WebhookRequest, accounts: Sequence[ChannelAccount], *, channel: str) -> None:
    signed_by = matching_accounts(request.headers, request.body, accounts, channel=channel)
    check_addressed(addressed_account_ids(request.body), signed_by, channel=channel)
