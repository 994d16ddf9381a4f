"""``centralita demo``: the main job on the embedded default (SQLite + in-process broker).

Migrate, apply ``examples/campaigns/posgrados-universidad.yaml`` with its queues open around the
clock (``demo_manifest``: a demo must answer whenever someone tries it; the file keeps the
university's office hours), its secrets' environment variables given demo values in this
process when they are not set; give one agent and one supervisor the demo password
(``DEMO_PASSWORD``, only where they have none); print the applied plan, the console's and the
customer simulator's addresses, the sign-in details, an admin token and the URLs, then serve —
with Meta played by a loopback stand-in (``centralita.simulator.DemoMeta``: the Graph peer takes
the replies and answers them with delivery and read statuses).  ``--once`` exits after applying.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from centralita.campaigns import apply_manifest
from centralita.directory import load_directory
from centralita.passwords import hash_password
from centralita.runtime import utc_now
from core.campaign import Manifest, parse_manifest, render_plan
from core.settings import Settings
from storage.campaigns import CampaignStore
from storage.database import Database
from storage.signin import SignInStore
from storage.tokens import TokenStore

__all__ = ["DEMO_ENV", "DEMO_MANIFEST", "DEMO_PASSWORD", "DEMO_PEOPLE", "demo_manifest", "run_demo"]

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


def demo_manifest() -> Manifest:
    """The example campaign with every queue open around the clock."""
    document = yaml.safe_load(DEMO_MANIFEST.read_text(encoding="utf-8"))
    for queue in document.get("queues") or []:
        queue.pop("business_hours", None)
    return parse_manifest(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))


async def _apply_example(settings: Settings) -> tuple[str, str]:
    """Apply the example; returns the rendered plan and a fresh admin token of its workspace."""
    manifest = demo_manifest()
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
            f"  Simulador de clientes / customer simulator: {base}/console/simulator",
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
    from centralita.cli import _upgrade

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
    asyncio.run(_serve_with_meta(settings))
    return 0


async def _serve_with_meta(settings: Settings) -> None:
    from centralita import simulator
    from centralita.cli import _serve

    database = Database(settings.database_url)
    try:
        accounts = await load_directory(database)
    finally:
        await database.dispose()
    meta = simulator.DemoMeta(accounts)
    await meta.start()
    try:
        served = settings.model_copy(update={"graph_base_url": meta.peer.base_url})

        def listening(url: str) -> None:
            meta.server_url = url

        await _serve(served, customize=lambda app: simulator.setup(app, meta), on_listening=listening)
    finally:
        await meta.stop()
