"""Graph API error bodies → the error tree.

Meta answers a refused call with ``{"error": {"message", "type", "code", "error_subcode",
"error_data": {"details"}, "fbtrace_id"}}``.  Each channel names which codes are worth retrying
(rate limits, service hiccups) and which are final (window closed, unknown template, bad token);
an unknown code falls back on the HTTP status: 429 and 5xx are transient, the rest permanent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import ChannelError, PermanentChannelError, TransientChannelError

__all__ = ["GraphError", "GraphErrorTable", "classify_graph_error", "read_graph_error"]


@dataclass(frozen=True, slots=True)
class GraphError:
    """The fields of a Graph error body that decide what to do."""

    code: int | None
    subcode: int | None = None
    message: str | None = None
    type: str | None = None
    details: str | None = None
    fbtrace_id: str | None = None


@dataclass(frozen=True, slots=True)
class GraphErrorTable:
    """A channel's reading of Graph error codes: ``code → title``, plus ``(code, subcode)`` pairs."""

    provider: str  # "WhatsApp", "Instagram": how messages name the provider
    transient: Mapping[int, str]
    permanent: Mapping[int, str]
    transient_subcodes: Mapping[tuple[int, int], str] = field(default_factory=dict)
    permanent_subcodes: Mapping[tuple[int, int], str] = field(default_factory=dict)

    def is_transient(self, error: GraphError, http_status: int) -> tuple[bool, str | None]:
        if error.code is not None and error.subcode is not None:
            pair = (error.code, error.subcode)
            if pair in self.permanent_subcodes:
                return False, self.permanent_subcodes[pair]
            if pair in self.transient_subcodes:
                return True, self.transient_subcodes[pair]
        if error.code is not None:
            if error.code in self.permanent:
                return False, self.permanent[error.code]
            if error.code in self.transient:
                return True, self.transient[error.code]
        return http_status == 429 or http_status >= 500, None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def read_graph_error(body: bytes) -> GraphError | None:
    """The error object of a Graph error body, or ``None`` when the body is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    return GraphError(
        code=_int(error.get("code")),
        subcode=_int(error.get("error_subcode")),
        message=error.get("message") if isinstance(error.get("message"), str) else None,
        type=error.get("type") if isinstance(error.get("type"), str) else None,
        details=details if isinstance(details, str) else None,
        fbtrace_id=error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None,
    )


def classify_graph_error(http_status: int, body: bytes, table: GraphErrorTable) -> ChannelError:
    """The ``TransientChannelError`` or ``PermanentChannelError`` a refused call stands for."""
    error = read_graph_error(body) or GraphError(code=None)
    transient, title = table.is_transient(error, http_status)
    what = title or error.message or f"HTTP {http_status}"
    code_text = f" (code {error.code})" if error.code is not None else ""
    message = f"{table.provider} refused the send{code_text}: {what}"
    if error.details and error.details != what:
        message += f" — {error.details}"
    details: dict[str, Any] = {"http_status": http_status}
    for key in ("subcode", "type", "fbtrace_id", "message", "details"):
        value = getattr(error, key)
        if value is not None:
            details[key] = value
    cls = TransientChannelError if transient else PermanentChannelError
    return cls(message, provider_code=error.code if error.code is not None else http_status, details=details)
