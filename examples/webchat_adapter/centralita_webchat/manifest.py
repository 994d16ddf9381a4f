"""A web-chat site in a campaign manifest (``channels.webchat``): how the plugin is declared.

::

    channels:
      webchat:
        - name: sitio
          site_id: site-posgrados
          callback_url: https://chat.example.edu.mx/centralita/replies
          secret_env: POSGRADOS_WEBCHAT_SECRET
          default_queue: informes
"""

from __future__ import annotations

from pydantic import Field

from core.campaign.fields import EnvVarName, Slug
from core.campaign.model import ManifestModel
from core.channel import AccountEntry, ManifestSection

__all__ = ["MANIFEST", "WebChatSite"]


class WebChatSite(ManifestModel):
    """One site whose chat widget talks to the campaign."""

    name: Slug = Field(description="How other parts of the manifest refer to this site.")
    site_id: str = Field(
        min_length=1, max_length=200, description="The widget's site_id; deliveries find the campaign by it."
    )
    callback_url: str = Field(
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="Where replies are posted (signed with the site's secret).",
        examples=["https://chat.example.edu.mx/centralita/replies"],
    )
    secret_env: EnvVarName = Field(description="Env var with the shared secret (X-Webchat-Signature).")
    default_queue: Slug | None = None
    welcome_reply: Slug | None = None

    def entry(self) -> AccountEntry:
        settings = {
            "callback_url": self.callback_url,
            "default_queue": self.default_queue,
            "welcome_reply": self.welcome_reply,
        }
        return AccountEntry(
            address=self.site_id,
            app_secret_env=self.secret_env,
            settings={k: v for k, v in settings.items() if v is not None},
        )


MANIFEST = ManifestSection(
    account_model=WebChatSite,
    address_field="site_id",
    secret_fields=("secret_env",),
    address_label="web-chat site_id",
    owner_label="web-chat site",
    plan_kind="webchat_site",
    plan_label="webchat",
    order=50,
)
