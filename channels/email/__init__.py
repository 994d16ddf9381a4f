"""The email channel: raw-MIME webhook and aiosmtpd listener in, aiosmtplib out.

Public names: ``EmailAdapter`` (the ``centralita.channels`` entry point), ``parse_email``
(pure bytes → events), ``SmtpListener``, ``SmtpClient``/``SmtpSettings``, ``compose_reply``,
``verify_token`` and ``smtp_error``; ``Mailbox`` is its account in a campaign manifest.
Test support lives in ``channels.email.testing``.
"""

from channels.email.adapter import EMAIL_CAPABILITIES, EmailAdapter
from channels.email.client import SmtpClient, SmtpSettings
from channels.email.compose import ComposedMail, compose_reply
from channels.email.errors import channel_error_for_code, smtp_error
from channels.email.listener import SmtpListener
from channels.email.manifest import MANIFEST, Mailbox
from channels.email.parse import parse_email
from channels.email.signature import presented_token, verify_token

__all__ = [
    "EMAIL_CAPABILITIES",
    "MANIFEST",
    "ComposedMail",
    "EmailAdapter",
    "Mailbox",
    "SmtpClient",
    "SmtpListener",
    "SmtpSettings",
    "channel_error_for_code",
    "compose_reply",
    "parse_email",
    "presented_token",
    "smtp_error",
    "verify_token",
]
