"""Customer-facing texts of a campaign: wa.me links and auto-replies.

The hub strategy: an Instagram or email auto-reply invites the customer to continue on WhatsApp
with a ``https://wa.me/<number>?text=<prefill>`` link (WhatsApp's documented click-to-chat URL:
the number in international form with digits only, the text URL-encoded).
"""

from __future__ import annotations

import string
from urllib.parse import quote

from core.campaign.fields import Language
from core.campaign.model import AutoReply, Manifest
from core.errors import InvalidInput, NotFound

__all__ = ["PLACEHOLDERS", "auto_reply_text", "hub_link", "placeholders", "render_auto_reply", "wa_me_link"]

PLACEHOLDERS = frozenset({"wa_link"})
"""Fields an auto-reply text may contain."""


def wa_me_link(phone: str, text: str | None = None) -> str:
    """``wa_me_link("+52 55 1234 5678", "Hola")`` → ``https://wa.me/525512345678?text=Hola``."""
    digits = "".join(c for c in phone if c.isdigit())
    if not 7 <= len(digits) <= 15:
        raise InvalidInput(f"not an international phone number: {len(digits)} digits", field="display_phone")
    link = f"https://wa.me/{digits}"
    if text:
        link += "?text=" + quote(text, safe="")
    return link


def placeholders(text: str) -> list[str]:
    """The ``{field}`` names in ``text`` (``{{`` is a literal brace); ValueError on unbalanced braces."""
    return [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]


def hub_link(manifest: Manifest, reply: AutoReply) -> str | None:
    """The wa.me link of a hub auto-reply, or None when the reply is not a hub reply."""
    if reply.hub is None:
        return None
    for account in manifest.channels.whatsapp:
        if account.name == reply.hub.whatsapp_account:
            return wa_me_link(account.display_phone, reply.hub.prefill)
    raise NotFound(f"hub reply links to undeclared WhatsApp account {reply.hub.whatsapp_account!r}")


def auto_reply_text(reply: AutoReply, language: Language, default_language: Language) -> str:
    """The reply's text in ``language``: its translation, else the campaign-language text."""
    if language != default_language and language in reply.translations:
        return reply.translations[language]
    return reply.text


def render_auto_reply(manifest: Manifest, key: str, language: Language | None = None) -> str:
    """The text to send for auto-reply ``key``, with ``{wa_link}`` filled in."""
    try:
        reply = manifest.auto_replies[key]
    except KeyError:
        raise NotFound(
            f"no auto-reply {key!r} in campaign {manifest.campaign.name!r}", field="auto_replies"
        ) from None
    default = manifest.campaign.language
    text = auto_reply_text(reply, language or default, default)
    return text.format(wa_link=hub_link(manifest, reply) or "")
