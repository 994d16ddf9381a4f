"""The WhatsApp Cloud API channel: ``messages`` webhooks in, Cloud API sends out."""

from channels.whatsapp.adapter import CAPABILITIES, WhatsAppAdapter
from channels.whatsapp.client import WhatsAppClient, message_body, messages_url, template_object
from channels.whatsapp.errors import WHATSAPP_ERRORS, classify_whatsapp_error
from channels.whatsapp.manifest import MANIFEST, WhatsAppAccount, wa_me_link
from channels.whatsapp.parse import parse_webhook
from channels.whatsapp.signature import addressed_phone_number_ids, verify_request

__all__ = [
    "CAPABILITIES",
    "MANIFEST",
    "WHATSAPP_ERRORS",
    "WhatsAppAccount",
    "WhatsAppAdapter",
    "WhatsAppClient",
    "addressed_phone_number_ids",
    "classify_whatsapp_error",
    "message_body",
    "messages_url",
    "parse_webhook",
    "template_object",
    "verify_request",
    "wa_me_link",
]
