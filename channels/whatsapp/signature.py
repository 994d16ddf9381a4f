"""WhatsApp webhook authenticity: Meta's X-Hub-Signature-256, then the business numbers check.

The signature must match some configured WhatsApp app's secret, and every ``phone_number_id`` the
delivery speaks for must belong to that app's accounts.
"""

from __future__ import annotations

from collections.abc import Sequence

from channels.meta.jsonbody import try_load
from channels.meta.signature import check_addressed, matching_accounts
from core.channel import ChannelAccount, WebhookRequest
from core.errors import InvalidInput

__all__ = ["addressed_phone_number_ids", "verify_request"]


def addressed_phone_number_ids(body: bytes) -> list[str]:
    """The business numbers a delivery speaks for (best effort: ``[]`` when the body is unreadable,
    which ``parse`` then rejects on its own)."""
    try:
        root = try_load(body)
    except InvalidInput:
        return []
    found: list[str] = []
    entries = root.get("entry") if isinstance(root, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            metadata = value.get("metadata") if isinstance(value, dict) else None
            number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if isinstance(number, str):
                found.append(number)
    return found


def verify_request(request: WebhookRequest, accounts: Sequence[ChannelAccount], *, channel: str) -> None:
    signed_by = matching_accounts(request.headers, request.body, accounts, channel=channel)
    check_addressed(addressed_phone_number_ids(request.body), signed_by, channel=channel)
