"""``centralita customers erase`` and ``customers legal-hold`` on the embedded default and on
PostgreSQL: the refusals are one line naming the reason, the erasure prints its counts, and the
address is gone from every column."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from storage.database import Database
from storage.tables import ConversationRow
from tests.e2e.test_customer_erasure import values_in_database
from tests.integration.test_cli_identity import _run, _story_files
from tests.integration.test_cli_identity import clinic_url as clinic_url

EMAIL = "ana.perez@gmail.com"
CONV = ConversationRow.__table__  # type: ignore[attr-defined]


def _customers(url: str) -> dict[str, dict[str, Any]]:
    result = _run(url, "customers", "export", "--workspace", "clinica")
    assert result.returncode == 0, result.stderr
    return {c["identifiers"][0]["kind"]: c for c in map(json.loads, result.stdout.splitlines())}


def _error(result: Any) -> str:
    return str(result.stderr.strip().splitlines()[-1])


async def _close_every_conversation(url: str) -> None:
    """As a supervisor closing them would (the API's close is tested end to end)."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(sa.update(CONV).values(status="closed", disposition={"code": "cerrada"}))
    finally:
        await db.dispose()


async def _left(url: str, values: list[str]) -> list[str]:
    db = Database(url)
    try:
        return await values_in_database(db, values)
    finally:
        await db.dispose()


def test_customers_erase_refuses_with_the_reason_then_erases_and_prints_the_counts(
    clinic_url: str,
    tmp_path: Path,
) -> None:
    assert _run(clinic_url, "ingest", *map(str, _story_files(tmp_path))).returncode == 0
    mail = _customers(clinic_url)["email"]
    erase = ("customers", "erase", "--workspace", "clinica", "--customer", mail["id"], "--reason", "ARCO-9")
    hold = ("customers", "legal-hold", "--workspace", "clinica", "--customer", mail["id"])

    refused = _run(clinic_url, *erase)
    assert refused.returncode == 1
    assert _error(refused).startswith("centralita: error: close the customer's open conversations first:")
    asyncio.run(_close_every_conversation(clinic_url))

    held = _run(clinic_url, *hold, "--reason", "Litigio 9")
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout)["legal_hold"] == "Litigio 9"
    refused = _run(clinic_url, *erase)
    assert refused.returncode == 1 and "legal hold (Litigio 9)" in _error(refused)
    cleared = _run(clinic_url, *hold, "--clear")
    assert cleared.returncode == 0 and json.loads(cleared.stdout)["legal_hold"] is None

    erased = _run(clinic_url, *erase)
    assert erased.returncode == 0, erased.stderr
    body = json.loads(erased.stdout)
    assert body["customer_id"] == mail["id"] and body["counts"]["identifiers"] == 1
    # the mail itself and the Instagram message that stated the address
    assert body["counts"]["raw_deliveries"] == 2 and body["counts"]["other_messages_scrubbed"] == 1
    assert asyncio.run(_left(clinic_url, [EMAIL])) == []
    assert asyncio.run(_left(clinic_url, ["+5215512345678"]))  # the other customers keep theirs


def test_customers_erase_names_a_bad_customer_id_and_an_unknown_one(clinic_url: str) -> None:
    bad = _run(clinic_url, "customers", "erase", "--workspace", "clinica", "--customer", "x", "--reason", "r")
    assert bad.returncode == 2 and _error(bad) == "centralita: error: not a customer id: 'x'"
    unknown = "0198f000-0000-7000-8000-000000000001"
    missing = _run(
        clinic_url, "customers", "erase", "--workspace", "clinica", "--customer", unknown, "--reason", "r"
    )
    assert missing.returncode == 1 and _error(missing) == "centralita: error: no such customer"
