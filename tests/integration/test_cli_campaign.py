"""``centralita campaign`` and ``centralita token`` as a user runs them: subprocesses on both databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from centralita.demo import DEMO_PASSWORD, DEMO_PEOPLE
from centralita.passwords import verify_password
from core.campaign import equivalent, load_manifest, parse_manifest, required_env
from storage.database import Database
from storage.signin import SignInStore

CLI = [sys.executable, "-m", "centralita.cli"]
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "campaigns" / "posgrados-universidad.yaml"
EXAMPLES = sorted((REPO / "examples" / "campaigns").glob("*.yaml"))
BROKEN = """\
apiVersion: centralita/v1
kind: Campaign
workspace: demo
campaign:
  name: ventas
  display_name: Ventas
  timezone: America/Mexico_Cty
skills:
  - name: ventas
queues:
  - name: ventas
    required_skills: {ventas: 5, cobranza: 3}
    priorty: 5
    channels: [email]
    business_hours:
      weekly:
        mon: ["09:00-14:00", "13:00-18:00"]
agents:
  - email: ana@example.com
    name: Ana
    skills: {ventas: 7}
    capacity: {email: 3}
"""


def _example_env() -> dict[str, str]:
    return {
        name: f"value-of-{name.lower()}" for name in required_env(load_manifest(EXAMPLE, check_env=False))
    }


class Cli:
    """Runs ``centralita`` in ``cwd`` against one database, with the example's variables set."""

    def __init__(self, cwd: Path, database_url: str | None):
        self.cwd = cwd
        env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
        env.update(_example_env(), CENTRALITA_LOG_FORMAT="json", CENTRALITA_LOG_LEVEL="WARNING")
        env["PYTHONPATH"] = str(REPO)
        if database_url is not None:
            env["CENTRALITA_DATABASE_URL"] = database_url
        self.env = env

    def __call__(self, *args: str, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in self.env.items() if k not in unset}
        return subprocess.run(
            [*CLI, *args], capture_output=True, text=True, timeout=120, env=env, cwd=self.cwd, check=False
        )


@pytest.fixture(params=["embedded-default", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Cli:
    """The embedded default (``./var/centralita.db`` in a fresh directory) or a fresh PostgreSQL."""
    url = None if request.param == "embedded-default" else str(request.getfixturevalue("postgres_url"))
    runner = Cli(tmp_path, url)
    upgraded = runner("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    return runner


def test_validate_accepts_the_example_and_names_its_campaign(cli: Cli) -> None:
    result = cli("campaign", "validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid campaign 'posgrados-2027' of workspace 'umc'" in result.stdout


def test_validate_reports_every_error_with_file_line_and_column_and_exits_1(cli: Cli) -> None:
    path = cli.cwd / "ventas.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    result = cli("campaign", "validate", str(path))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{path}:")]
    assert [line.split(":")[1] for line in lines] == ["7", "12", "13", "14", "17"]
    assert all(line.split(":")[2].isdigit() for line in lines)
    assert "(hint: did you mean 'priority'?)" in result.stderr
    assert "5 errors" in result.stderr and "Traceback" not in result.stderr


def test_validate_checks_the_file_alone_and_warns_about_an_unset_variable(cli: Cli) -> None:
    result = cli("campaign", "validate", str(EXAMPLE), unset=("UMC_WA_APP_SECRET",))
    assert result.returncode == 0, result.stderr
    assert (
        "warning: channels.whatsapp[0].app_secret_env: environment variable UMC_WA_APP_SECRET is not set"
        in (result.stderr)
    )
    assert "0 errors, 1 warning" in result.stderr
    assert "valid campaign 'posgrados-2027' of workspace 'umc'" in result.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_shipped_example_validates_without_any_secret_set(tmp_path: Path, example: Path) -> None:
    variables = required_env(load_manifest(example, check_env=False))
    runner = Cli(tmp_path, None)
    result = runner("campaign", "validate", str(example), unset=tuple(variables))
    assert result.returncode == 0, result.stderr
    assert all(f"environment variable {name} is not set" in result.stderr for name in variables)
    assert "valid campaign" in result.stdout


def test_plan_refuses_a_manifest_whose_secret_variable_is_not_set(cli: Cli) -> None:
    result = cli("campaign", "plan", str(EXAMPLE), unset=("UMC_WA_APP_SECRET",))
    assert result.returncode == 1
    line = next(line for line in result.stderr.splitlines() if "UMC_WA_APP_SECRET" in line)
    assert line.endswith(
        "environment variable UMC_WA_APP_SECRET is not set (hint: export UMC_WA_APP_SECRET=… "
        "where the campaign is validated and applied, and where the server runs)"
    )
    assert "warning:" not in line and "1 error" in result.stderr
    assert "Plan for" not in result.stdout


def test_apply_refuses_a_manifest_whose_secret_variable_is_not_set(cli: Cli) -> None:
    result = cli("campaign", "apply", str(EXAMPLE), "--yes", unset=("UMC_WA_APP_SECRET",))
    assert result.returncode == 1
    assert "environment variable UMC_WA_APP_SECRET is not set" in result.stderr
    assert "Applied" not in result.stdout
    assert cli("campaign", "plan", str(EXAMPLE)).stdout.startswith("Plan for")  # nothing was written


def test_schema_prints_the_manifest_json_schema_of_the_installed_channels(tmp_path: Path) -> None:
    result = Cli(tmp_path, None)("campaign", "schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (REPO / "docs" / "campaign.schema.json").read_text(encoding="utf-8")


def test_plan_apply_plan_export_round_trip(cli: Cli) -> None:
    planned = cli("campaign", "plan", str(EXAMPLE))
    assert planned.returncode == 0, planned.stderr
    assert "+ queue maestrias" in planned.stdout and "0 to change, 0 to remove" in planned.stdout

    applied = cli("campaign", "apply", str(EXAMPLE), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "+ whatsapp admisiones" in applied.stdout
    assert "Applied: campaign 'posgrados-2027' of workspace 'umc' is at version 1." in applied.stdout

    again = cli("campaign", "plan", str(EXAMPLE))
    assert again.returncode == 0 and again.stdout.startswith("No changes")

    exported = cli("campaign", "export", "posgrados-2027")
    assert exported.returncode == 0, exported.stderr
    assert equivalent(parse_manifest(exported.stdout), load_manifest(EXAMPLE, check_env=False))
    exported_file = cli.cwd / "exported.yaml"
    exported_file.write_text(exported.stdout, encoding="utf-8")
    replanned = cli("campaign", "plan", str(exported_file))
    assert replanned.stdout.startswith("No changes"), replanned.stdout + replanned.stderr


def test_apply_without_yes_and_without_a_terminal_applies_nothing(cli: Cli) -> None:
    result = cli("campaign", "apply", str(EXAMPLE))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "centralita: error: not applied: no terminal to confirm on; pass --yes to apply"
    )
    assert cli("campaign", "plan", str(EXAMPLE)).stdout.startswith("Plan for")


def test_export_of_an_unknown_campaign_is_one_line(cli: Cli) -> None:
    result = cli("campaign", "export", "no-existe")
    assert result.returncode == 1
    assert result.stderr.strip() == "centralita: error: no campaign named 'no-existe'"


def test_token_create_prints_a_bearer_token_for_a_workspace_and_agent(cli: Cli) -> None:
    assert cli("campaign", "apply", str(EXAMPLE), "--yes").returncode == 0
    admin = cli("token", "create", "--workspace", "umc", "--role", "admin", "--name", "ci")
    assert admin.returncode == 0, admin.stderr
    assert admin.stdout.strip().startswith("ctl_") and len(admin.stdout.strip()) > 30
    agent = cli(
        "token",
        "create",
        "--workspace",
        "umc",
        "--role",
        "agent",
        "--agent",
        "mariana.soto@bpo-contacto.example.mx",
    )
    assert agent.returncode == 0, agent.stderr
    missing = cli("token", "create", "--workspace", "nadie", "--role", "admin")
    assert missing.returncode == 1 and "no workspace 'nadie'" in missing.stderr
    no_agent = cli("token", "create", "--workspace", "umc", "--role", "agent")
    assert no_agent.returncode == 2 and "needs --agent EMAIL" in no_agent.stderr


def test_campaign_commands_on_a_database_without_schema_say_to_upgrade(tmp_path: Path) -> None:
    runner = Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    result = runner("campaign", "plan", str(EXAMPLE))
    assert result.returncode == 1
    assert "run `centralita db upgrade`" in result.stderr and "Traceback" not in result.stderr


def test_demo_once_migrates_applies_the_example_and_exits(tmp_path: Path) -> None:
    runner = Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    env_free = tuple(_example_env())  # the demo sets its own demo values
    result = runner("demo", "--once", unset=env_free)
    assert result.returncode == 0, result.stderr
    assert "Plan for campaign 'posgrados-2027' in workspace 'umc'" in result.stdout
    assert "Bienvenido a Centralita / Welcome to Centralita" in result.stdout
    assert "/webhooks/whatsapp" in result.stdout
    assert "/console/" in result.stdout
    assert f"{DEMO_PEOPLE['agent']}  /  {DEMO_PASSWORD}" in result.stdout
    assert f"{DEMO_PEOPLE['supervisor']}  /  {DEMO_PASSWORD}" in result.stdout

    async def passwords_work() -> list[bool]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path}/demo.db")
        try:
            async with database.session() as session:
                store = SignInStore(session)
                found = [a for email in DEMO_PEOPLE.values() for a in await store.accounts(email, "umc")]
        finally:
            await database.dispose()
        return [await verify_password(a.password_hash, DEMO_PASSWORD) for a in found]

    assert asyncio.run(passwords_work()) == [True, True]  # what the banner prints signs in
    assert "/console/simulator" in result.stdout
    # The demo opens the queues around the clock; the file keeps the university's office hours,
    # and that is all a plan of the file would change.
    again = runner("campaign", "plan", str(EXAMPLE))
    changes = [line for line in again.stdout.splitlines() if line.startswith("~")]
    assert changes and all("business_hours" in line for line in changes), again.stdout
    assert "0 to add, 5 to change, 0 to remove." in again.stdout  # the five queues
