"""A generic web-chat widget channel for Centralita (out of tree, found through its entry point)."""

from __future__ import annotations

from centralita_webchat.adapter import CAPABILITIES, CHANNEL, WebChatAdapter
from centralita_webchat.manifest import MANIFEST, WebChatSite
from centralita_webchat.parse import parse_delivery
from centralita_webchat.signature import SIGNATURE_HEADER, sign_body

__all__ = [
    "CAPABILITIES",
    "CHANNEL",
    "MANIFEST",
    "SIGNATURE_HEADER",
    "WebChatAdapter",
    "WebChatSite",
    "parse_delivery",
    "sign_body",
]
