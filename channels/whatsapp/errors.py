"""WhatsApp Cloud API error codes → ``TransientChannelError`` / ``PermanentChannelError``.

From Meta's Cloud API error-code reference: throughput and pair rate limits, service hiccups and
"something went wrong" are retried with backoff; a closed customer-service window, an
undeliverable number, a missing template, a bad token or an invalid parameter are final and go
back to the agent with ``provider_code``.  Codes not listed follow the HTTP status.
"""

from __future__ import annotations

from channels.meta.errors import GraphErrorTable, classify_graph_error
from core.errors import ChannelError

__all__ = ["WHATSAPP_ERRORS", "classify_whatsapp_error"]

WHATSAPP_ERRORS = GraphErrorTable(
    provider="WhatsApp",
    transient={
        2: "API service temporarily unavailable",
        4: "API too many calls",
        80007: "rate limit reached for the WhatsApp Business Account",
        130429: "rate limit hit (Cloud API throughput reached)",
        131000: "something went wrong",
        131016: "service unavailable",
        131056: "pair rate limit hit: too many messages to this customer in a short time",
        131057: "business account in maintenance mode",
        133004: "server temporarily unavailable",
    },
    permanent={
        0: "unable to authenticate the app user",
        3: "capability or permissions issue",
        10: "permission denied",
        100: "invalid parameter",
        190: "access token expired or invalid",
        200: "permission not granted",
        368: "temporarily blocked for policy violations",
        130472: "the customer's number is part of an experiment",
        131005: "access denied",
        131008: "required parameter is missing",
        131009: "parameter value is not valid",
        131021: "recipient cannot be the sender",
        131026: "message undeliverable",
        131031: "business account locked",
        131042: "business eligibility or payment issue",
        131045: "incorrect certificate",
        131047: "re-engagement message: more than 24 hours since the customer last wrote; use a template",
        131048: "spam rate limit hit: the number's quality restricts sending",
        131049: "Meta chose not to deliver this marketing message",
        131051: "unsupported message type",
        131052: "media download error",
        131053: "media upload error",
        132000: "template parameter count mismatch",
        132001: "template does not exist in this language",
        132005: "template text too long once filled in",
        132007: "template format character policy violated",
        132012: "template parameter format mismatch",
        132015: "template is paused",
        132016: "template is disabled",
        133010: "business phone number not registered",
    },
)


def classify_whatsapp_error(http_status: int, body: bytes) -> ChannelError:
    return classify_graph_error(http_status, body, WHATSAPP_ERRORS)
