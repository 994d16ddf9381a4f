"""A mailbox in a campaign manifest (``channels.email``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from core.campaign.fields import Email, EnvVarName, Slug
from core.campaign.model import ManifestModel
from core.channel import AccountEntry, ManifestSection

__all__ = ["MANIFEST", "Mailbox"]


class Mailbox(ManifestModel):
    """One email address the campaign answers from."""

    name: Slug
    address: Email = Field(examples=["admisiones.posgrado@example.edu.mx"])
    display_name: str | None = Field(default=None, examples=["Admisiones Posgrado"])
    smtp_host: str = Field(min_length=1, description="Outbound SMTP server.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    username_env: EnvVarName | None = None
    password_env: EnvVarName | None = None
    default_queue: Slug | None = None
    welcome_reply: Slug | None = None

    def entry(self) -> AccountEntry:
        settings: dict[str, Any] = {
            "display_name": self.display_name,
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port,
            "smtp_security": self.smtp_security,
            # The SMTP client's own keys (channels/email/client.py).
            "smtp_tls": self.smtp_security == "tls",
            "smtp_starttls": {"starttls": True, "tls": None, "none": False}[self.smtp_security],
            "username_env": self.username_env,
            "password_env": self.password_env,
            "default_queue": self.default_queue,
            "welcome_reply": self.welcome_reply,
        }
        return AccountEntry(
            address=self.address, settings={k: v for k, v in settings.items() if v is not None}
        )


MANIFEST = ManifestSection(
    account_model=Mailbox,
    address_field="address",
    secret_fields=("username_env", "password_env"),
    address_label="mailbox address",
    owner_label="mailbox",
    plan_kind="mailbox",
    plan_label="mailbox",
    order=30,
)
