"""The channel seam, proved from outside: an adapter package installed through its entry point.

``examples/webchat_adapter`` is a separate distribution (``centralita-webchat``).  This test
installs it into the running venv with pip, then — each in a fresh interpreter, as a deployment
would — runs the shared conformance suite against it, declares a site in a campaign manifest
(``examples/webchat_adapter/campaign.yaml``, its ``channels.webchat`` section validated by the
plugin's own account model) applied with ``centralita campaign apply`` as a user does, and pushes
a signed web-chat delivery through the whole engine (webhook → broker → pipeline → conversation)
and a reply back out (reply API → outbound worker → the widget's loopback peer), on both
backends.  Nothing in ``core/``, ``centralita/``, ``identity/`` or ``router/`` names the channel.

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
MANIFEST = PACKAGE / "campaign.yaml"
EXAMPLE_CALLBACK_ORIGIN = "https://chat.example.edu.mx"
SECRET_ENV = "POSGRADOS_WEBCHAT_SECRET"
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


def test_the_plugin_adds_its_section_to_the_manifest_and_its_json_schema(
    installed: None, tmp_path: Path
) -> None:
    """With the package installed, ``channels.webchat`` validates (an unset secret is a warning) and
    the generated schema lists it; a typo in the plugin's section is reported like a built-in's."""
    validated = _run(
        [sys.executable, "-m", "centralita.cli", "campaign", "validate", str(MANIFEST)], timeout=120
    )
    assert validated.returncode == 0, validated.stderr
    assert f"environment variable {SECRET_ENV} is not set" in validated.stderr
    assert "valid campaign 'informes-web' of workspace 'widget'" in validated.stdout

    broken = tmp_path / "broken.yaml"
    broken.write_text(
        MANIFEST.read_text(encoding="utf-8").replace("secret_env:", "secret:"), encoding="utf-8"
    )
    refused = _run([sys.executable, "-m", "centralita.cli", "campaign", "validate", str(broken)], timeout=120)
    assert refused.returncode == 1
    assert "channels.webchat[0].secret: unknown key 'secret'" in refused.stderr
    assert "write 'secret_env: VARIABLE_NAME'" in refused.stderr

    schema = _run([sys.executable, "-m", "centralita.cli", "campaign", "schema"], timeout=120)
    assert schema.returncode == 0, schema.stderr
    assert '"WebChatSite"' in schema.stdout and '"webchat"' in schema.stdout


def test_without_the_plugin_a_webchat_section_is_an_unknown_key(tmp_path: Path) -> None:
    from core.campaign import validate_file

    result = validate_file(MANIFEST, check_env=False)
    assert not result.ok
    assert {(p.code, ".".join(map(str, p.path))) for p in result.errors} >= {
        ("unknown_key", "channels.webchat"),
        ("invalid_choice", "queues.0.channels.0"),
        ("invalid_choice", "agents.0.capacity.webchat"),
    }


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
    from tests.e2e.conftest import StartEngine

    async def _centralita(db: Database, *args: str, env: dict[str, str]) -> str:
        """Run ``centralita …`` against the engine's database, as an operator would; its stdout."""
        import asyncio

        done = await asyncio.to_thread(
            _run,
            [sys.executable, "-m", "centralita.cli", *args],
            timeout=120,
            env={"CENTRALITA_DATABASE_URL": db.url, "CENTRALITA_BROKER_URL": "memory://", **env},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    async def test_pipeline_inside_a_fresh_interpreter(
        start_engine: StartEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        import asyncio

        from centralita_webchat.testing import SECRETS, SITE, WebChatPeer, fixture, sign_request

        monkeypatch.setenv(SECRET_ENV, SECRETS[SITE])
        async with WebChatPeer(SECRETS) as peer:
            seeded: dict[str, Any] = {}

            async def seed(db: Database) -> None:
                # The example manifest, its widget's callback aimed at the loopback peer.
                text = MANIFEST.read_text(encoding="utf-8").replace(EXAMPLE_CALLBACK_ORIGIN, peer.base_url)
                assert SITE in text
                path = tmp_path / "campaign.yaml"
                path.write_text(text, encoding="utf-8")
                env = {SECRET_ENV: SECRETS[SITE]}
                applied = await _centralita(db, "campaign", "apply", str(path), "--yes", env=env)
                assert "+ webchat sitio-posgrados" in applied, applied
                token = await _centralita(
                    db, "token", "create", "--workspace", "widget", "--role", "supervisor", env=env
                )
                seeded["token"] = token.strip().splitlines()[-1]

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
