"""``centralita token create|list|revoke|rotate`` as an operator types them (the CLI's ``main``,
in this process to keep it quick; ``tests/e2e/test_token_lifecycle.py`` runs it as a separate
process against a live server), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from centralita.cli import main
from core.campaign import load_manifest, required_env

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "campaigns" / "posgrados-universidad.yaml"
AGENT = "mariana.soto@bpo-contacto.example.mx"
UNKNOWN = "01a1fccc-bc55-72e1-8259-a26d585c88f1"


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> Ran:
        self.capsys.readouterr()
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return Ran(code, out, err)

    def listed(self, *args: str) -> list[dict[str, Any]]:
        ran = self("token", "list", *args)
        assert ran.code == 0, ran.err
        return [json.loads(line) for line in ran.out.splitlines()]


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """A migrated database on each backend with the example campaign applied (workspace umc)."""
    for name in list(os.environ):
        if name.startswith("CENTRALITA_") and name != "CENTRALITA_CHECK_RESPONSES":
            monkeypatch.delenv(name)
    monkeypatch.setenv("CENTRALITA_DATABASE_URL", database_url)
    monkeypatch.setenv("CENTRALITA_LOG_LEVEL", "WARNING")
    for name in required_env(load_manifest(EXAMPLE, check_env=False)):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")
    runner = Cli(capsys)
    assert runner("db", "upgrade").code == 0
    applied = runner("campaign", "apply", str(EXAMPLE), "--yes")
    assert applied.code == 0, applied.err
    return runner


def _near(iso: str, expected: datetime) -> bool:
    return abs(datetime.fromisoformat(iso) - expected) < timedelta(minutes=2)


def test_create_list_revoke_and_rotate(cli: Cli) -> None:
    created = cli(
        "token", "create", "--workspace", "umc", "--role", "agent", "--agent", AGENT,
        "--name", "desk", "--expires-in", "12h",
    )  # fmt: skip
    assert created.code == 0, created.err
    token = created.out.strip()
    assert token.startswith("ctl_")
    admin = cli("token", "create", "--workspace", "umc", "--role", "admin")
    assert admin.code == 0, admin.err

    items = cli.listed("--workspace", "umc")
    assert [item["role"] for item in items] == ["admin", "agent"]  # newest first
    desk = items[1]
    assert desk["name"] == "desk" and desk["agent_email"] == AGENT and desk["status"] == "active"
    assert desk["last_used_at"] is None and desk["revoked_at"] is None
    assert desk["kind"] == "api"
    now = datetime.now(UTC)
    assert _near(desk["expires_at"], now + timedelta(hours=12))
    assert _near(items[0]["expires_at"], now + timedelta(days=7))  # the admin role's default
    assert set(desk) == {
        "id", "workspace", "name", "role", "agent_id", "agent_email", "created_at",
        "expires_at", "last_used_at", "revoked_at", "status", "kind",
    }  # fmt: skip
    everything = cli("token", "list")
    assert token not in everything.out and admin.out.strip() not in everything.out
    assert everything.err.strip().endswith("2 tokens")

    rotated = cli("token", "rotate", desk["id"])
    assert rotated.code == 0, rotated.err
    new = rotated.out.strip()
    assert new.startswith("ctl_") and new != token
    assert f"revoked {desk['id']}" in rotated.err
    after = {item["id"]: item for item in cli.listed()}
    assert after[desk["id"]]["status"] == "revoked"
    (fresh,) = [item for item in after.values() if item["id"] not in (desk["id"], items[0]["id"])]
    assert (fresh["name"], fresh["role"], fresh["agent_email"]) == ("desk", "agent", AGENT)
    assert _near(fresh["expires_at"], now + timedelta(days=30))  # the agent role's default

    revoked = cli("token", "revoke", fresh["id"])
    assert revoked.code == 0, revoked.err
    assert json.loads(revoked.out)["status"] == "revoked"
    again = cli("token", "rotate", fresh["id"])
    assert again.code == 1 and "was revoked" in again.err and "create a new one" in again.err


ERRORS = [
    (("create", "--workspace", "umc", "--role", "admin", "--expires-in", "12x"), 2,
     "--expires-in: '12x' is not a duration: a duration is a number and a unit"),
    (("create", "--workspace", "umc", "--role", "admin", "--expires-in", "2y"), 2, "'2y' is not a duration"),
    (("create", "--workspace", "umc", "--role", "admin", "--expires-in", "400d"), 2,
     "--expires-in: at most 366 days"),
    (("rotate", UNKNOWN, "--expires-in", "0d"), 2,
     "--expires-in: '0d' is not a duration"),
    (("create", "--workspace", "umc", "--role", "agent"), 2, "needs --agent EMAIL"),
    (("create", "--workspace", "umc", "--role", "agent", "--agent", "nadie@x.example"), 1,
     "no agent 'nadie@x.example' in workspace 'umc'"),
    (("create", "--workspace", "nadie", "--role", "admin"), 1, "no workspace 'nadie'"),
    (("list", "--workspace", "nadie"), 1, "no workspace 'nadie'"),
    (("revoke", "not-an-id"), 2, "ID: 'not-an-id' is not a token id"),
    (("revoke", UNKNOWN), 1, f"no token {UNKNOWN!r} (see `centralita token list`)"),
    (("rotate", UNKNOWN), 1, f"no token {UNKNOWN!r}"),
]  # fmt: skip


def test_errors_are_one_line_naming_the_argument_at_fault(cli: Cli) -> None:
    for args, code, message in ERRORS:
        ran = cli("token", *args)
        assert ran.code == code, (args, ran.err)
        assert message in ran.err and ran.err.startswith("centralita: error: "), (args, ran.err)
        assert len(ran.err.strip().splitlines()) == 1, (args, ran.err)


def test_invite_prints_a_one_time_console_link_for_an_agent(cli: Cli) -> None:
    ran = cli(
        "invite",
        "--workspace",
        "umc",
        "--email",
        AGENT.upper(),
        "--expires-in",
        "2d",
        "--url",
        "https://centralita.example",
    )
    assert ran.code == 0, ran.err
    assert ran.out.startswith("https://centralita.example/console/invitation#inv_")
    assert "Mariana" in ran.err and "(umc)" in ran.err
    unknown = cli("invite", "--workspace", "umc", "--email", "nadie@ejemplo.mx")
    assert unknown.code == 1 and "no agent with that email in workspace 'umc'" in unknown.err
    bad = cli("invite", "--workspace", "umc", "--email", AGENT, "--expires-in", "pronto")
    assert bad.code == 2 and "--expires-in" in bad.err
