"""Erased customers through the API, on the embedded backend and on PostgreSQL + RabbitMQ: no merge
or confirmed suggestion reaches one (409 ``customer_erased``, nothing written), no suggestion
towards one is offered, and a customer's record shows its legal hold and when it was erased."""

from __future__ import annotations

from typing import Any

from router.service import ManualClock
from tests.e2e.conftest import Engine, StartWorkspaces
from tests.e2e.test_customer_erasure import (
    ALFA_NUMBER,
    LUCIA,
    LUCIA_NAME,
    MARTA,
    NOW,
    call,
    customer_of,
    deliver,
    message_body,
    ok,
)
from tests.support.work import Workspace

CLOSED = {"disposition": {"code": "pago_realizado", "amount": "100"}}


async def lucia_erased_after_marta_stated_her_number(
    start_workspaces: StartWorkspaces,
) -> tuple[Engine, Workspace, dict[str, Any], dict[str, Any], str]:
    """Marta writes Lucía's number (a suggestion between the two customers); Lucía is erased.
    Returns the engine, the workspace, both records as they are then, and the suggestion's id."""
    engine, seeded = await start_workspaces({"alfa": ALFA_NUMBER}, clock=ManualClock(NOW))
    alfa = seeded["alfa"]
    assert await deliver(engine, message_body(ALFA_NUMBER, (LUCIA, LUCIA_NAME, "wamid.l.1", "Hola"))) == 1
    stated = "Mi vecina les escribe desde +52 55 1234 5678"
    assert await deliver(engine, message_body(ALFA_NUMBER, (MARTA, "Marta", "wamid.m.1", stated))) == 1
    lucia, marta = await customer_of(engine, alfa, LUCIA), await customer_of(engine, alfa, MARTA)
    assert lucia is not None and marta is not None
    [suggestion] = marta["suggestions"]
    assert suggestion["other_customer_id"] == lucia["id"]
    await ok(
        engine, alfa, "carla", "POST", f"/api/conversations/{lucia['conversations'][0]['id']}/close", CLOSED
    )
    await ok(engine, alfa, "admin", "POST", f"/api/customers/{lucia['id']}/erase", {"reason": "ARCO-9"})
    lucia = await ok(engine, alfa, "carla", "GET", f"/api/customers/{lucia['id']}")
    marta = await ok(engine, alfa, "carla", "GET", f"/api/customers/{marta['id']}")
    return engine, alfa, lucia, marta, suggestion["id"]


async def test_merging_with_an_erased_customer_either_way_is_refused_and_changes_neither_record(
    start_workspaces: StartWorkspaces,
) -> None:
    engine, alfa, lucia, marta, _ = await lucia_erased_after_marta_stated_her_number(start_workspaces)
    audits = [
        await ok(engine, alfa, "carla", "GET", f"/api/customers/{c['id']}/audit") for c in (lucia, marta)
    ]

    for who, pair in (("ana", [marta["id"], lucia["id"]]), ("carla", [lucia["id"], marta["id"]])):
        status, refused = await call(
            engine, alfa, who, "POST", "/api/customers/merge", {"customer_ids": pair}
        )
        assert status == 409 and refused["error"]["code"] == "customer_erased", (who, refused)
        assert refused["error"]["details"]["customer_id"] == lucia["id"]

    for before, audit in zip((lucia, marta), audits, strict=True):
        assert await ok(engine, alfa, "carla", "GET", f"/api/customers/{before['id']}") == before
        assert await ok(engine, alfa, "carla", "GET", f"/api/customers/{before['id']}/audit") == audit


async def test_a_suggestion_towards_an_erased_customer_is_not_offered_and_confirming_it_is_refused(
    start_workspaces: StartWorkspaces,
) -> None:
    engine, alfa, lucia, marta, suggestion = await lucia_erased_after_marta_stated_her_number(
        start_workspaces
    )
    assert marta["suggestions"] == [] and lucia["suggestions"] == []

    status, refused = await call(engine, alfa, "ana", "POST", f"/api/suggestions/{suggestion}/confirm")
    assert status == 409 and refused["error"]["code"] == "customer_erased", refused
    assert refused["error"]["details"]["customer_id"] == lucia["id"]
    assert await ok(engine, alfa, "carla", "GET", f"/api/customers/{marta['id']}") == marta
    assert await ok(engine, alfa, "carla", "GET", f"/api/customers/{lucia['id']}") == lucia


async def test_the_customer_record_shows_its_legal_hold_and_when_it_was_erased(
    start_workspaces: StartWorkspaces,
) -> None:
    engine, seeded = await start_workspaces({"alfa": ALFA_NUMBER}, clock=ManualClock(NOW))
    alfa = seeded["alfa"]
    assert await deliver(engine, message_body(ALFA_NUMBER, (LUCIA, LUCIA_NAME, "wamid.h.1", "Hola"))) == 1
    lucia = await customer_of(engine, alfa, LUCIA)
    assert lucia is not None and lucia["legal_hold"] is None and lucia["erased_at"] is None
    record, hold = f"/api/customers/{lucia['id']}", f"/api/customers/{lucia['id']}/legal-hold"

    await ok(engine, alfa, "admin", "POST", hold, {"reason": "Litigio 2026-114"})
    held = await ok(engine, alfa, "ana", "GET", record)
    assert held["legal_hold"] == "Litigio 2026-114" and held["erased_at"] is None

    await ok(engine, alfa, "admin", "DELETE", hold)
    await ok(
        engine, alfa, "carla", "POST", f"/api/conversations/{lucia['conversations'][0]['id']}/close", CLOSED
    )
    erased = await ok(engine, alfa, "admin", "POST", f"{record}/erase", {"reason": "ARCO-9"})
    after = await ok(engine, alfa, "ana", "GET", record)
    assert after["legal_hold"] is None and after["erased_at"] == erased["erased_at"]
