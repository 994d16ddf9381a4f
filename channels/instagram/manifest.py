"""An Instagram professional account in a campaign manifest (``channels.instagram``)."""

from __future__ import annotations

from pydantic import Field

from core.campaign.fields import EnvVarName, NumericId, Slug
from core.campaign.model import ManifestModel
from core.channel import AccountEntry, ManifestSection

__all__ = ["MANIFEST", "InstagramAccount"]


class InstagramAccount(ManifestModel):
    """One Instagram professional account (Instagram messaging)."""

    name: Slug
    account_id: NumericId = Field(description="Instagram account id (the recipient id in webhooks).")
    username: str | None = Field(
        default=None, description="Public handle, for reference.", examples=["@posgrados"]
    )
    app_id: NumericId
    app_secret_env: EnvVarName
    access_token_env: EnvVarName
    verify_token_env: EnvVarName
    default_queue: Slug | None = None
    welcome_reply: Slug | None = Field(
        default=None, description="Auto-reply key; a hub reply invites the customer to continue on WhatsApp."
    )

    def entry(self) -> AccountEntry:
        settings = {
            "username": self.username,
            "default_queue": self.default_queue,
            "welcome_reply": self.welcome_reply,
        }
        return AccountEntry(
            address=self.account_id,
            app_id=self.app_id,
            app_secret_env=self.app_secret_env,
            access_token_env=self.access_token_env,
            verify_token_env=self.verify_token_env,
            settings={k: v for k, v in settings.items() if v is not None},
        )


MANIFEST = ManifestSection(
    account_model=InstagramAccount,
    address_field="account_id",
    secret_fields=("app_secret_env", "access_token_env", "verify_token_env"),
    address_label="Instagram account_id",
    owner_label="Instagram account_id",
    plan_kind="instagram_account",
    plan_label="instagram",
    order=20,
)
