"""``X-Webchat-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body with the site's shared secret.

Every configured site's secret is compared (constant time, no early exit), then the body must
name a site whose secret matched: one site's secret cannot sign another site's traffic.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

from core.channel import ChannelAccount, WebhookRequest
from core.errors import InvalidSignature

__all__ = ["SIGNATURE_HEADER", "sign_body", "verify_request"]

SIGNATURE_HEADER = "x-webchat-signature"


def sign_body(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _site_of(body: bytes) -> str | None:
    """The ``site_id`` the body names, or None when it cannot be read (the parser will refuse it)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    site = data.get("site_id") if isinstance(data, dict) else None
    return site if isinstance(site, str) else None


def verify_request(request: WebhookRequest, accounts: Sequence[ChannelAccount]) -> None:
    presented = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not presented:
        raise InvalidSignature("missing X-Webchat-Signature header", field=SIGNATURE_HEADER)
    with_secret = [a for a in accounts if a.app_secret]
    if not with_secret:
        raise InvalidSignature("no web-chat site is configured", field=SIGNATURE_HEADER)
    matched = [
        account
        for account in with_secret
        if hmac.compare_digest(presented.encode(), sign_body(request.body, account.app_secret or "").encode())
    ]
    if not matched:
        raise InvalidSignature(
            "X-Webchat-Signature matches no configured site secret", field=SIGNATURE_HEADER
        )
    site = _site_of(request.body)
    if site is not None and site not in {a.address for a in matched}:
        raise InvalidSignature("the delivery names a site its secret does not belong to", field="site_id")
