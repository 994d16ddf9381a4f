"""The raw-MIME webhook's authentication: a shared token, compared in constant time.

``POST /webhooks/email`` carries the token as ``Authorization: Bearer <token>`` or
``X-Centralita-Token: <token>``.  Valid tokens: ``AdapterContext.extra["webhook_token"]`` and
the ``verify_token`` of every configured email account.  Every candidate is compared (no early
exit), so the time taken does not tell which token came close.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from core.errors import InvalidSignature

__all__ = ["presented_token", "verify_token"]


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token a request presents (header names lower-cased), or None."""
    authorization = headers.get("authorization", "").strip()
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = headers.get("x-centralita-token", "").strip()
    return token or None


def verify_token(headers: Mapping[str, str], valid_tokens: Iterable[str | None]) -> None:
    """Raise ``InvalidSignature`` unless the request presents one of ``valid_tokens``."""
    candidates = [t.encode() for t in valid_tokens if t]
    if not candidates:
        raise InvalidSignature("no email webhook token is configured")
    token = presented_token(headers)
    if token is None:
        raise InvalidSignature("missing email webhook token", field="authorization")
    presented = token.encode("utf-8", "surrogateescape")
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(presented, candidate)
    if not matched:
        raise InvalidSignature("invalid email webhook token", field="authorization")
