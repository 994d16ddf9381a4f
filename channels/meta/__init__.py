"""What the Meta channels (WhatsApp Cloud API, Instagram Messaging) share.

Webhook authenticity (X-Hub-Signature-256 across several apps), the GET ``hub.challenge``
handshake, reading payloads with JSON-path errors, Graph API error bodies → the error tree, the
aiohttp transport with retries, and the loopback Graph API peer used by tests and benchmarks.
"""

from channels.meta.errors import GraphError, GraphErrorTable, classify_graph_error, read_graph_error
from channels.meta.handshake import answer_handshake
from channels.meta.peer import GraphPeer, graph_error_body
from channels.meta.retry import send_with_retries
from channels.meta.signature import SIGNATURE_HEADER, check_addressed, matching_accounts, sign_body
from channels.meta.transport import GraphTransport

__all__ = [
    "SIGNATURE_HEADER",
    "GraphError",
    "GraphErrorTable",
    "GraphPeer",
    "GraphTransport",
    "answer_handshake",
    "check_addressed",
    "classify_graph_error",
    "graph_error_body",
    "matching_accounts",
    "read_graph_error",
    "send_with_retries",
    "sign_body",
]
