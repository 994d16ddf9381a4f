"""The widget's HTTP answers → the error tree: 408/429/5xx are worth retrying, other 4xx are not."""

from __future__ import annotations

import json

from core.errors import ChannelError, PermanentChannelError, TransientChannelError

__all__ = ["classify"]

_TRANSIENT = frozenset({408, 425, 429})


def classify(status: int, body: bytes) -> ChannelError:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = f"the web-chat widget answered HTTP {status}" + (f": {message}" if message else "")
    provider_code = code if isinstance(code, str | int) else status
    if status in _TRANSIENT or status >= 500:
        return TransientChannelError(text, provider_code=provider_code, details={"http_status": status})
    return PermanentChannelError(text, provider_code=provider_code, details={"http_status": status})
