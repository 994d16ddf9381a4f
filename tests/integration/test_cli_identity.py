"""``centralita ingest`` and ``centralita customers export`` on the embedded default and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.database import Database, upgrade_schema
from tests.e2e.test_identity_story import (
    IG_ACCOUNT,
    PATIENT_IGSID,
    T0,
    Clinic,
    clinic_seed,
    email_body,
    instagram_body,
    whatsapp_body,
)

CLI = [sys.executable, "-m", "centralita.cli"]


def _run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CENTRALITA_LOG_FORMAT": "json", "CENTRALITA_DATABASE_URL": url},
        check=False,
    )


async def _seed(url: str) -> None:
    db = Database(url)
    try:
        await clinic_seed(Clinic())(db)
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.postgres)])
def clinic_url(request: pytest.FixtureRequest) -> str:
    url = str(request.getfixturevalue(request.param))
    upgrade_schema(url)
    asyncio.run(_seed(url))
    return url


def _story_files(tmp_path: Path) -> list[Path]:
    files = {
        "wa.json": whatsapp_body("wamid.cli.1", "Hola, quiero una cita"),
        "cita.eml": email_body(
            "cita-cli@mail.gmail.com",
            "Fri, 21 Nov 2025 10:14:20 +0000",
            "Les escribo por la cita.",
            "Ana Pérez\nCel. 55 1234 5678",
            "Ana Pérez <ana.perez@gmail.com>",
        ),
        "dm.json": instagram_body("mid.cli.1", "mi correo es ana.perez@gmail.com", at_ms=(T0 + 120) * 1000),
    }
    paths = []
    for name, body in files.items():
        path = tmp_path / name
        path.write_bytes(body)
        paths.append(path)
    return paths


def test_ingest_feeds_each_file_through_the_pipeline_and_names_the_one_that_fails(
    clinic_url: str, tmp_path: Path
) -> None:
    wa, mail, dm = _story_files(tmp_path)
    broken = tmp_path / "roto.json"
    broken.write_bytes(b"{ no es json")
    result = _run(clinic_url, "ingest", str(wa), str(broken), str(mail), str(dm), "--workspace", "clinica")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["whatsapp", "email", "instagram"]
    assert all("stored=1" in line for line in lines)
    errors = [line for line in result.stderr.splitlines() if line.startswith(str(broken))]
    assert len(errors) == 1 and ": error: " in errors[0]

    again = _run(clinic_url, "ingest", str(wa), "--channel", "whatsapp")
    assert again.returncode == 0 and "already ingested" in again.stdout


def test_customers_export_prints_each_customer_with_identifiers_conversations_and_pending_suggestions(
    clinic_url: str, tmp_path: Path
) -> None:
    assert _run(clinic_url, "ingest", *map(str, _story_files(tmp_path))).returncode == 0
    result = _run(clinic_url, "customers", "export", "--workspace", "clinica")
    assert result.returncode == 0, result.stderr
    customers = [json.loads(line) for line in result.stdout.splitlines()]
    by_kind = {c["identifiers"][0]["kind"]: c for c in customers}
    assert sorted(by_kind) == ["email", "instagram_id", "phone"]
    assert by_kind["phone"]["identifiers"] == [{"kind": "phone", "value": "+5215512345678"}]
    assert all(c["conversations"] == 1 for c in customers)
    mail = by_kind["email"]
    assert sorted((s["evidence"]["source"], s["other_customer_id"]) for s in mail["suggestions"]) == [
        ("customer_stated", by_kind["instagram_id"]["id"]),
        ("email_signature", by_kind["phone"]["id"]),
    ]
    [dm] = by_kind["instagram_id"]["suggestions"]
    assert dm["other"] == {"kind": "email", "value": "ana.perez@gmail.com"}
    assert dm["evidence"]["from"] == {"kind": "instagram_id", "value": PATIENT_IGSID}
    assert IG_ACCOUNT not in json.dumps(dm["other"])


def test_customers_export_of_an_unknown_workspace_is_one_line(clinic_url: str) -> None:
    result = _run(clinic_url, "customers", "export", "--workspace", "no-existe")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "centralita: error: no workspace 'no-existe'"
