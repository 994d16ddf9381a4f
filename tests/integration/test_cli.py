"""The command line: schema upgrades on both databases, one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa

CLI = [sys.executable, "-m", "centralita.cli"]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CENTRALITA_LOG_FORMAT": "json", **env},
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_lists_the_commands() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for command in ("serve", "db", "normalize", "campaign", "token", "customers", "simulate"):
        assert command in result.stdout


def test_a_command_imports_only_its_own_module() -> None:
    """``centralita db upgrade`` starts without importing the engine; ``centralita token …`` imports
    the token commands and no other group's."""
    probe = (
        "import sys; from centralita.cli import build_parser; build_parser(sys.argv[1:]); "
        "print(sorted(m for m in sys.modules if m.startswith('centralita.commands.')))"
    )

    def imported(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout.strip()

    assert imported("db", "upgrade") == "[]"
    assert imported("token", "list") == "['centralita.commands.token']"
    assert "centralita.commands.campaign" in imported("--help")


@pytest.mark.parametrize(
    "url_fixture", ["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)]
)
def test_db_upgrade_builds_the_schema(url_fixture: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(url_fixture)
    result = _run("db", "upgrade", CENTRALITA_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert "latest schema" in result.stderr
    sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg") if "sqlite" in url else None
    if sync_url:
        engine = sa.create_engine(sync_url)
        with engine.connect() as conn:
            assert "conversation" in sa.inspect(conn).get_table_names()
        engine.dispose()


def test_serve_with_rabbitmq_down_prints_one_line_naming_it(sqlite_url: str) -> None:
    port = _free_port()
    result = _run(
        "serve",
        "--migrate",
        "--port",
        "0",
        CENTRALITA_DATABASE_URL=sqlite_url,
        CENTRALITA_BROKER_URL=f"amqp://guest:secret@127.0.0.1:{port}/",
        CENTRALITA_BROKER_CONNECT_ATTEMPTS="1",
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("centralita: error: cannot reach RabbitMQ at amqp://guest@127.0.0.1:")
    assert "secret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_with_postgres_unreachable_prints_one_line() -> None:
    port = _free_port()
    result = _run("db", "upgrade", CENTRALITA_DATABASE_URL=f"postgresql+asyncpg://u:pw@127.0.0.1:{port}/x")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("centralita: error: cannot reach the database")
    assert "Traceback" not in result.stderr and ":pw@" not in result.stderr


def test_normalize_reports_an_unreadable_file_and_goes_on(tmp_path: object) -> None:
    result = _run("normalize", "/nonexistent/file.json")
    assert result.returncode == 1
    assert "/nonexistent/file.json: error: cannot read" in result.stderr
