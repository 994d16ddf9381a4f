"""Instagram Send API error codes → ``TransientChannelError`` / ``PermanentChannelError``.

Request limits (4, 17, 32, 613), temporary send failures (1200) and service hiccups (1, 2) are
retried; a reply outside the allowed window (10 / 2534022), an unavailable or unknown user
(551, 100 / 2018001), a bad token (190) or a missing permission (10, 200) are final.
"""

from __future__ import annotations

from channels.meta.errors import GraphErrorTable, classify_graph_error
from core.errors import ChannelError

__all__ = ["INSTAGRAM_ERRORS", "classify_instagram_error"]

INSTAGRAM_ERRORS = GraphErrorTable(
    provider="Instagram",
    transient={
        1: "an unknown error occurred",
        2: "service temporarily unavailable",
        4: "application request limit reached",
        17: "user request limit reached",
        32: "page request limit reached",
        613: "calls to this API have exceeded the rate limit",
        1200: "temporary send message failure",
    },
    permanent={
        10: "permission denied",
        100: "invalid parameter",
        190: "access token expired or invalid",
        200: "permission not granted",
        551: "this person isn't available right now",
    },
    permanent_subcodes={
        (10, 2534022): "outside the allowed window: more than 24 hours (7 days with HUMAN_AGENT) "
        "since the customer last wrote",
        (100, 2018001): "no matching user found",
        (100, 2534014): "no matching user found",
    },
)


def classify_instagram_error(http_status: int, body: bytes) -> ChannelError:
    return classify_graph_error(http_status, body, INSTAGRAM_ERRORS)
