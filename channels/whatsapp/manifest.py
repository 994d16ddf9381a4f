"""A WhatsApp Business number in a campaign manifest (``channels.whatsapp``), and its wa.me link.

The hub strategy: an Instagram or email auto-reply invites the customer to continue on WhatsApp
with a ``https://wa.me/<number>?text=<prefill>`` link (WhatsApp's documented click-to-chat URL:
the number in international form with digits only, the text URL-encoded).
"""

from __future__ import annotations

from urllib.parse import quote

from pydantic import Field

from core.campaign.fields import EnvVarName, NumericId, PhoneE164, Slug
from core.campaign.model import ManifestModel
from core.channel import AccountEntry, ManifestSection
from core.errors import InvalidInput

__all__ = ["MANIFEST", "WhatsAppAccount", "wa_me_link"]


def wa_me_link(phone: str, text: str | None = None) -> str:
    """``wa_me_link("+52 55 1234 5678", "Hola")`` → ``https://wa.me/525512345678?text=Hola``."""
    digits = "".join(c for c in phone if c.isdigit())
    if not 7 <= len(digits) <= 15:
        raise InvalidInput(f"not an international phone number: {len(digits)} digits", field="display_phone")
    link = f"https://wa.me/{digits}"
    if text:
        link += "?text=" + quote(text, safe="")
    return link


class WhatsAppAccount(ManifestModel):
    """One WhatsApp Business phone number (Cloud API)."""

    name: Slug = Field(description="How other parts of the manifest refer to this number.")
    phone_number_id: NumericId = Field(
        description="Meta's phone_number_id; inbound traffic finds the campaign by it."
    )
    display_phone: PhoneE164 = Field(description="The number customers see; used for wa.me links.")
    waba_id: NumericId = Field(description="WhatsApp Business Account id.")
    app_id: NumericId = Field(description="Meta app that owns the webhook subscription.")
    app_secret_env: EnvVarName = Field(description="Env var with the app secret (X-Hub-Signature-256).")
    access_token_env: EnvVarName = Field(description="Env var with the system-user access token.")
    verify_token_env: EnvVarName = Field(description="Env var with the webhook verify token.")
    default_queue: Slug | None = Field(
        default=None, description="Queue for conversations the triage menu does not place."
    )
    welcome_reply: Slug | None = Field(
        default=None, description="Key of the auto-reply sent to a new conversation."
    )

    def entry(self) -> AccountEntry:
        settings = {
            "waba_id": self.waba_id,
            "display_phone": self.display_phone,
            "default_queue": self.default_queue,
            "welcome_reply": self.welcome_reply,
        }
        return AccountEntry(
            address=self.phone_number_id,
            app_id=self.app_id,
            app_secret_env=self.app_secret_env,
            access_token_env=self.access_token_env,
            verify_token_env=self.verify_token_env,
            settings={k: v for k, v in settings.items() if v is not None},
        )

    def hub_link(self, prefill: str | None) -> str:
        """The wa.me link that opens a chat with this number, ``prefill`` pre-typed."""
        return wa_me_link(self.display_phone, prefill)


MANIFEST = ManifestSection(
    account_model=WhatsAppAccount,
    address_field="phone_number_id",
    secret_fields=("app_secret_env", "access_token_env", "verify_token_env"),
    address_label="phone_number_id",
    owner_label="WhatsApp phone_number_id",
    plan_kind="whatsapp_account",
    plan_label="whatsapp",
    order=10,
)
