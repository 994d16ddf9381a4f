"""``centralita campaign plan|apply`` with a retention, and ``centralita retention run``, as run by a user."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from storage.database import Database
from tests.integration import test_cli_campaign
from tests.integration.test_cli_campaign import EXAMPLE, Cli
from tests.integration.test_retention import seed_floor, snapshot

cli = test_cli_campaign.cli  # the same fixture: the embedded default and a fresh PostgreSQL


def _with_retention(tmp_path: Path, block: str) -> Path:
    path = tmp_path / "posgrados.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8") + block, encoding="utf-8")
    return path


def _url(cli: Cli) -> str:
    return (
        cli.env.get("CENTRALITA_DATABASE_URL") or f"sqlite+aiosqlite:///{cli.cwd / 'var' / 'centralita.db'}"
    )


async def _seed_and_snapshot(url: str) -> dict[str, object]:
    database = Database(url)
    try:
        await seed_floor(database, now=datetime.now(UTC))
        return await snapshot(database)
    finally:
        await database.dispose()


async def _snapshot(url: str) -> dict[str, object]:
    database = Database(url)
    try:
        return await snapshot(database)
    finally:
        await database.dispose()


def test_plan_shows_a_retention_added_then_changed_and_apply_keeps_it(cli: Cli, tmp_path: Path) -> None:
    assert cli("campaign", "apply", "--yes", str(EXAMPLE)).returncode == 0
    first = _with_retention(tmp_path, "retention:\n  raw_deliveries_days: 30\n")
    planned = cli("campaign", "plan", str(first))
    assert planned.returncode == 0, planned.stderr
    assert "+ retention" in planned.stdout.splitlines()
    assert cli("campaign", "apply", "--yes", str(first)).returncode == 0

    second = _with_retention(
        tmp_path, "retention:\n  raw_deliveries_days: 14\n  closed_conversations_days: 365\n"
    )
    lines = cli("campaign", "plan", str(second)).stdout.splitlines()
    assert "~ retention: raw_deliveries_days 30 → 14" in lines
    assert "~ retention: closed_conversations_days (none) → 365" in lines
    exported = cli("campaign", "export", "posgrados-2027", "--workspace", "umc")
    assert "raw_deliveries_days: 30" in exported.stdout


def test_validate_names_the_line_of_a_bad_period(cli: Cli, tmp_path: Path) -> None:
    path = _with_retention(tmp_path, "retention:\n  media_days: 30\n  closed_conversations_days: 0\n")
    result = cli("campaign", "validate", str(path))
    assert result.returncode == 1
    line = len(path.read_text(encoding="utf-8").splitlines())
    output = result.stdout + result.stderr
    assert f"{path}:{line - 1}:3: retention.media_days: unknown key 'media_days'" in output
    assert (
        f"{path}:{line}:30: retention.closed_conversations_days: a retention period is a whole number"
        in output
    )


def test_retention_run_dry_run_changes_nothing_then_run_purges_what_it_said(cli: Cli) -> None:
    url = _url(cli)
    before = asyncio.run(_seed_and_snapshot(url))

    dry = cli("retention", "run", "--workspace", "demo", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert asyncio.run(_snapshot(url)) == before
    assert (
        "demo/ventas: would purge 3 raw deliveries, 3 message contents, 1 disposition notes, 1 report texts"
        in dry.stdout.splitlines()
    )
    assert "demo (no campaign's messages): would purge 1 raw deliveries" in dry.stdout.splitlines()

    applied = cli("retention", "run", "--workspace", "demo")
    assert applied.returncode == 0, applied.stderr
    assert (
        "demo/ventas: purged 3 raw deliveries, 3 message contents, 1 disposition notes, 1 report texts"
        in applied.stdout
    )
    assert applied.stdout.splitlines()[-1] == "9 in all."
    after = asyncio.run(_snapshot(url))
    assert after["counts"] == before["counts"]
    assert cli("retention", "run", "--dry-run").stdout.splitlines()[-1] == "0 in all."


def test_retention_run_names_an_unknown_workspace(cli: Cli) -> None:
    result = cli("retention", "run", "--workspace", "nadie")
    assert result.returncode != 0
    assert "no workspace 'nadie'" in result.stderr
