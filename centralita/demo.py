"""``centralita demo``: the main job on the embedded default (SQLite + in-process broker).

Migrate, apply ``examples/campaigns/posgrados-universidad.yaml`` (its secrets' environment
variables get demo values in this process when they are not set), give one agent and one
supervisor of it the demo password (``DEMO_PASSWORD``, only where they have none), print the
applied plan, the console's address and sign-in details, an admin token and the URLs, then
serve.  ``--once`` exits after applying.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from centralita.campaigns import apply_manifest
from centralita.passwords import hash_password
from centralita.runtime import utc_now
from core.campaign import load_manifest, render_plan
from core.settings import Settings
from storage.campaigns import CampaignStore
from storage.database import Database
from storage.signin import SignInStore
from storage.tokens import TokenStore

__all__ = ["DEMO_ENV", "DEMO_MANIFEST", "DEMO_PASSWORD", "DEMO_PEOPLE", "run_demo"]

DEMO_MANIFEST = Path(__file__).resolve().parents[1] / "examples" / "campaigns" / "posgrados-universidad.yaml"

# Who signs in to the demo's console, and with what (a demo's, never a real password).
DEMO_PASSWORD = "centralita-demo"
DEMO_PEOPLE: Mapping[str, str] = {
    "agent": "mariana.soto@bpo-contacto.example.mx",
    "supervisor": "ricardo.nunez@bpo-contacto.example.mx",
}

# Demo values for the variables the example manifest names (never real secrets).
DEMO_ENV: Mapping[str, str] = {
    "UMC_WA_APP_SECRET": "demo-whatsapp-app-secret",
    "UMC_WA_ACCESS_TOKEN": "demo-whatsapp-access-token",
    "UMC_WA_VERIFY_TOKEN": "demo-whatsapp-verify-token",
    "UMC_IG_APP_SECRET": "demo-instagram-app-secret",
    "UMC_IG_ACCESS_TOKEN": "demo-instagram-access-token",
    "UMC_IG_VERIFY_TOKEN": "demo-instagram-verify-token",
    "UMC_SMTP_USERNAME": "demo",
    "UMC_SMTP_PASSWORD": "demo",
}


async def _apply_example(settings: Settings) -> tuple[str, str]:
    """Apply the example; returns the rendered plan and a fresh admin token of its workspace."""
    manifest = load_manifest(DEMO_MANIFEST)
    database = Database(settings.database_url)
    try:
        result = await apply_manifest(database, manifest, actor="demo", now=utc_now())
        async with database.transaction() as session:
            workspace_id = await CampaignStore(session).workspace_id(manifest.workspace)
            assert workspace_id is not None
            token = await TokenStore(session).issue(workspace_id, "admin", None, "demo", utc_now())
            store = SignInStore(session)
            for email in DEMO_PEOPLE.values():
                for account in await store.accounts(email, manifest.workspace):
                    if account.password_hash is None:
                        await store.set_password(
                            account.agent_id, await hash_password(DEMO_PASSWORD), utc_now()
                        )
    finally:
        await database.dispose()
    return render_plan(result.plan), token


def _welcome(settings: Settings, token: str) -> str:
    base = f"http://{settings.host}:{settings.port}"
    return "\n".join(
        [
            "",
            "Bienvenido a Centralita / Welcome to Centralita",
            "  Campaña de ejemplo / example campaign: Admisiones Posgrado 2027 (workspace 'umc')",
            f"  Consola / console:         {base}/console/",
            f"    agente / agent:          {DEMO_PEOPLE['agent']}  /  {DEMO_PASSWORD}",
            f"    supervisor:              {DEMO_PEOPLE['supervisor']}  /  {DEMO_PASSWORD}",
            f"  Salud / health:            {base}/healthz",
            f"  Webhook WhatsApp:          {base}/webhooks/whatsapp",
            f"  Webhook Instagram:         {base}/webhooks/instagram",
            f"  Exportar / export:         curl -H 'Authorization: Bearer {token}' "
            f"{base}/api/campaigns/posgrados-2027/export",
            "  Token admin / admin token: " + token,
            "",
        ]
    )


def run_demo(settings: Settings, *, once: bool = False, port: int | None = None) -> int:
    from centralita.cli import _serve, _upgrade

    _upgrade(settings)
    for name, value in DEMO_ENV.items():
        os.environ.setdefault(name, value)
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    plan_text, token = asyncio.run(_apply_example(settings))
    print(plan_text)
    print(_welcome(settings, token))
    if once:
        return 0
    asyncio.run(_serve(settings))
    return 0
