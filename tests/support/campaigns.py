"""Campaign pieces the end-to-end tests share: apply a manifest, issue tokens, signed WhatsApp traffic."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from centralita.campaigns import ApplyResult, apply_manifest
from channels.whatsapp.testing import text_webhook_body
from core.campaign import parse_manifest
from core.ids import AgentId
from storage.campaigns import CampaignStore
from storage.database import Database
from storage.tokens import TokenStore

__all__ = ["apply_text", "issue_token", "signed", "whatsapp_text"]


async def apply_text(
    db: Database, text: str, *, actor: str = "test", allow_private: bool = True
) -> ApplyResult:
    """Apply manifest YAML (secrets' variables unchecked) as the CLI would, with
    ``CENTRALITA_WEBHOOKS_ALLOW_PRIVATE`` on by default (tests' receivers are on loopback)."""
    return await apply_manifest(
        db, parse_manifest(text), actor=actor, now=datetime.now(UTC), allow_private=allow_private
    )


async def issue_token(db: Database, workspace: str, role: str, agent_id: AgentId | None = None) -> str:
    async with db.transaction() as session:
        workspace_id = await CampaignStore(session).workspace_id(workspace)
        assert workspace_id is not None, workspace
        return await TokenStore(session).issue(
            workspace_id, role, agent_id, f"test {role}", datetime.now(UTC)
        )


def whatsapp_text(phone_number_id: str, wa_id: str, wamid: str, text: str, name: str = "Ana Pérez") -> bytes:
    """A WhatsApp Cloud API webhook body carrying one text message to ``phone_number_id``."""
    return text_webhook_body(phone_number_id, wa_id, wamid, text, name=name)


def signed(body: bytes, secret: str) -> dict[str, str]:
    """Headers of a delivery signed as Meta signs it (X-Hub-Signature-256)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}
