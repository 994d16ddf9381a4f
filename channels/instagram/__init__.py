"""The Instagram Messaging channel: webhooks in (``messaging`` and ``changes`` shapes), Send API out."""

from channels.instagram.adapter import CAPABILITIES, InstagramAdapter
from channels.instagram.client import InstagramClient, message_bodies, messages_path, messages_url
from channels.instagram.errors import INSTAGRAM_ERRORS, classify_instagram_error
from channels.instagram.manifest import MANIFEST, InstagramAccount
from channels.instagram.parse import parse_webhook
from channels.instagram.signature import addressed_account_ids, verify_request

__all__ = [
    "CAPABILITIES",
    "INSTAGRAM_ERRORS",
    "MANIFEST",
    "InstagramAccount",
    "InstagramAdapter",
    "InstagramClient",
    "addressed_account_ids",
    "classify_instagram_error",
    "message_bodies",
    "messages_path",
    "messages_url",
    "parse_webhook",
    "verify_request",
]
