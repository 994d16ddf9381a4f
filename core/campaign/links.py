"""Customer-facing texts of a campaign: auto-replies and their hub links.

The hub strategy: an auto-reply on one channel invites the customer to continue on another (the
``hub_link_target`` channels: WhatsApp's wa.me link).  The account the reply names makes the link
(``HubLinkTarget.hub_link``); ``{wa_link}`` in the text is where it goes.
"""

from __future__ import annotations

import string
from typing import cast

from core.campaign.fields import Language
from core.campaign.model import AutoReply, Manifest
from core.channel import HubLinkTarget
from core.errors import NotFound

__all__ = ["PLACEHOLDERS", "auto_reply_text", "hub_link", "placeholders", "render_auto_reply"]

PLACEHOLDERS = frozenset({"wa_link"})
"""Fields an auto-reply text may contain."""


def placeholders(text: str) -> list[str]:
    """The ``{field}`` names in ``text`` (``{{`` is a literal brace); ValueError on unbalanced braces."""
    return [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]


def hub_link(manifest: Manifest, reply: AutoReply) -> str | None:
    """The wa.me link of a hub auto-reply, or None when the reply is not a hub reply."""
    if reply.hub is None:
        return None
    hubs = [spec for spec in manifest.channels.catalog if spec.capabilities.hub_link_target]
    for spec in hubs:
        for account in manifest.channels.accounts(spec.name):
            if account.name == reply.hub.whatsapp_account:
                return cast(HubLinkTarget, account).hub_link(reply.hub.prefill)
    label = " or ".join(spec.display_name for spec in hubs) or "hub"
    raise NotFound(f"hub reply links to undeclared {label} account {reply.hub.whatsapp_account!r}")


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
