"""The channel seam, proved from outside: an adapter package installed through its entry point.

``examples/webchat_adapter`` is a separate distribution (``centralita-webchat``).  This test
installs it into the running venv with pip, then — each in a fresh interpreter, as a deployment
would — runs the shared conformance suite against it and pushes a signed web-chat delivery
through the whole engine (webhook → broker → pipeline → conversation) and a reply back out
(reply API → outbound worker → the widget's loopback peer), on both backends.  Nothing in
``core/``, ``centralita/``, ``identity/`` or ``router/`` names the channel.

The package stays installed afterwards (uninstalling while another test process may have
loaded the entry points would break that process); it is harmless — it has no channel accounts
unless configured, and the conformance suite passes with it.  Installing it again is a no-op.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.registry import ENTRY_POINT_GROUP

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "examples" / "webchat_adapter"
INNER_ENV = "CENTRALITA_WEBCHAT_PIPELINE_CHECK"
PIP_TIMEOUT_S = 300
PYTEST_TIMEOUT_S = 300


# Where the plugin is installed: a directory of its own, put on PYTHONPATH for the fresh
# interpreters only.  The project's venv — and this test process — never see it, so a plugin
# half-visible to a running process (entry point found, module not importable) cannot happen.
_SITE: list[Path] = []


def _run(
    args: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    paths = [str(p) for p in _SITE] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths), **(env or {})},
        check=False,
    )


def _passed(output: str) -> int:
    """The count on pytest's summary line (the last "N passed" of the output)."""
    found = re.findall(r"(\d+) passed", output)
    return int(found[-1]) if found else 0


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``pip install --target`` the package into a site directory of its own (bounded in time)."""
    site = tmp_path_factory.mktemp("webchat-site")
    result = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(PACKAGE),
        ],
        timeout=PIP_TIMEOUT_S,
    )
    assert result.returncode == 0, f"pip install failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    _SITE.append(site)
    yield
    _SITE.remove(site)


def test_installing_the_package_registers_its_adapter_under_the_channels_entry_point(installed: None) -> None:
    listed = _run(
        [
            sys.executable,
            "-c",
            "from importlib.metadata import entry_points; "
            f"eps = entry_points(group={ENTRY_POINT_GROUP!r}); "
            "print({ep.name: ep.value for ep in eps}.get('webchat'))",
        ],
        timeout=60,
    )
    assert listed.stdout.strip() == "centralita_webchat.adapter:WebChatAdapter", listed.stderr
    fresh = _run(
        [
            sys.executable,
            "-c",
            "from core.registry import load_adapters; from core.channel import AdapterContext; "
            "r = load_adapters(AdapterContext()); "
            "print(sorted(r.names()), r.get('webchat').capabilities.display_name)",
        ],
        timeout=60,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert "'webchat'" in fresh.stdout and "Web chat" in fresh.stdout


def test_the_installed_adapter_passes_the_shared_conformance_suite(installed: None) -> None:
    result = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/contract/test_adapter_conformance.py",
            "-k",
            "webchat",
        ],
        timeout=PYTEST_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert _passed(output) >= 30, output[-2000:]  # imports, kit, samples, tampering, malformed, sends, errors


def test_the_built_in_adapters_still_pass_with_the_plugin_installed(installed: None) -> None:
    result = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/contract/test_adapter_conformance.py",
        ],
        timeout=PYTEST_TIMEOUT_S,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def _pipeline_in_a_fresh_interpreter(backend: str) -> None:
    result = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            __file__,
            "-k",
            f"inside_a_fresh_interpreter and {backend}",
        ],
        timeout=PYTEST_TIMEOUT_S,
        env={INNER_ENV: "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert _passed(output) == 1, output[-2000:]


def test_a_web_chat_delivery_goes_through_the_embedded_engine_and_the_reply_reaches_the_widget(
    installed: None,
) -> None:
    """The full pipeline, in a fresh interpreter that sees the installed package."""
    _pipeline_in_a_fresh_interpreter("embedded")


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_a_web_chat_delivery_goes_through_postgresql_and_rabbitmq_and_the_reply_reaches_the_widget(
    installed: None,
) -> None:
    _pipeline_in_a_fresh_interpreter("production")


def test_nothing_in_the_engine_names_the_plugin_channel() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("core", "centralita", "identity", "router")
        for path in (ROOT / folder).rglob("*.py")
        if "webchat" in path.read_text(encoding="utf-8").lower()
    ]
    assert offenders == []


# ------------------------------------------------------------------ run in the fresh interpreter

if os.environ.get(INNER_ENV) == "1":
    import sqlalchemy as sa

    from centralita.outbound import SendOutcome
    from centralita.web.keys import OUTBOUND
    from storage.database import Database
    from storage.tables import ConversationRow, MessageRow
    from storage.tokens import TokenStore
    from tests.e2e.conftest import StartEngine
    from tests.support.seed import seed_workspace

    async def test_pipeline_inside_a_fresh_interpreter(
        start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import asyncio
        from datetime import UTC, datetime

        from centralita_webchat.testing import SECRETS, SITE, WebChatPeer, fixture, sign_request

        monkeypatch.setenv("WEBCHAT_SITE_SECRET", SECRETS[SITE])
        async with WebChatPeer(SECRETS) as peer:
            seeded: dict[str, Any] = {}

            async def seed(db: Database) -> None:
                ws = await seed_workspace(
                    db,
                    "widget",
                    [
                        {
                            "channel": "webchat",
                            "address": SITE,
                            "app_secret_env": "WEBCHAT_SITE_SECRET",
                            "settings": {"callback_url": f"{peer.base_url}/centralita/replies"},
                        }
                    ],
                )
                async with db.transaction() as session:
                    seeded["token"] = await TokenStore(session).issue(
                        ws.workspace_id, "supervisor", None, "sup", datetime.now(UTC)
                    )

            engine = await start_engine(seed=seed)
            sent: asyncio.Queue[SendOutcome] = asyncio.Queue()
            engine.client.server.app[OUTBOUND].observers.append(sent.put_nowait)

            request = sign_request(fixture("text"), SECRETS[SITE])
            response = await engine.client.post(
                "/webhooks/webchat", data=request.body, headers=dict(request.headers)
            )
            assert response.status == 200, await response.text()
            assert (await engine.next_outcome()).stored_messages == 1
            async with engine.database.session() as s:
                inbound = (await s.execute(sa.select(MessageRow))).scalars().one()
                conversation = (await s.execute(sa.select(ConversationRow))).scalars().one()
            assert inbound.channel == "webchat" and inbound.external_id == "wc-msg-0001"
            assert inbound.text == "Hola, ¿cuándo cierran las inscripciones?"
            assert inbound.conversation_id == conversation.id and conversation.channel == "webchat"

            forged = await engine.client.post(
                "/webhooks/webchat", data=request.body + b" ", headers=dict(request.headers)
            )
            assert forged.status == 401

            reply = await engine.client.post(
                f"/api/conversations/{conversation.id}/messages",
                json={"text": "Cierran el 15 de marzo."},
                headers={"Authorization": f"Bearer {seeded['token']}"},
            )
            assert reply.status == 202, await reply.text()
            async with asyncio.timeout(15):
                outcome = await sent.get()
            assert outcome.state == "sent"
            got = peer.received[-1]
            assert got["signature_ok"] and got["path"] == "/centralita/replies"
            assert (
                got["json"]["session_id"] == "sess-7f3a9c21d4"
                and got["json"]["text"] == "Cierran el 15 de marzo."
            )
            async with engine.database.session() as s:
                row = await s.get(MessageRow, uuid.UUID((await reply.json())["id"]))
            assert row is not None and row.direction == "out"
            assert row.delivery_state == "sent" and row.external_id == outcome.external_id
