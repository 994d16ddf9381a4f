"""The identity graph in the database: loads, writes, retries — and holds under parallel workers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.events import Address, AddressKind, InboundMessage
from core.ids import WorkspaceId
from identity import (
    AuditEntry,
    IdentityGraph,
    Observation,
    email_identifier,
    observe_event,
    phone_identifier,
)
from storage.database import Database
from storage.identity_store import IdentityStore
from storage.tables import AuditRow, CustomerRow, EvidenceRow, IdentifierRow, SuggestionRow
from tests.support.schema import migrated
from tests.support.seed import seed_workspace

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
WORKERS = 8


def whatsapp(text: str = "Hola", *, phone: str = "5215512345678", bsuid: str = "MX.ana") -> Observation:
    message = InboundMessage(
        channel="whatsapp",
        business_address="1055",
        external_id=f"wamid.{uuid.uuid4().hex}",
        timestamp=NOW,
        sender=Address(kind=AddressKind.PHONE, value=phone, display_name="Ana Pérez"),
        sender_identities=(Address(kind=AddressKind.WHATSAPP_BSUID, value=bsuid, scope="waba_1"),),
        text=text,
    )
    return observe_event(message, default_region="MX")


async def workspace_of(db: Database) -> WorkspaceId:
    return WorkspaceId((await seed_workspace(db, f"ws-{uuid.uuid4().hex[:8]}", [])).workspace_id)


async def count(db: Database, query: sa.Select[Any]) -> int:
    async with db.session() as s:
        return int((await s.execute(query)).scalar_one())


async def test_a_resolution_is_stored_and_resolving_it_again_changes_nothing(database: Database) -> None:
    ws = await workspace_of(database)
    observation = whatsapp("mi correo es ana.perez@gmail.com")
    async with database.transaction() as session:
        first = await IdentityStore(session).resolve(ws, observation, NOW)
    async with database.transaction() as session:
        again = await IdentityStore(session).resolve(ws, observation, NOW + timedelta(minutes=1))
    assert first.created_customer and again.customer_id == first.customer_id and again.changes.empty
    assert await count(database, sa.select(sa.func.count()).select_from(IdentifierRow)) == 2
    assert await count(database, sa.select(sa.func.count()).select_from(EvidenceRow)) == 1
    assert await count(database, sa.select(sa.func.count()).select_from(SuggestionRow)) == 1


async def test_the_stored_graph_reloads_as_it_was_decided(database: Database) -> None:
    ws = await workspace_of(database)
    async with database.transaction() as session:
        resolution = await IdentityStore(session).resolve(
            ws, whatsapp("mi correo es ana.perez@gmail.com"), NOW
        )
    async with database.session() as session:
        rows = await IdentityStore(session).load_workspace(ws)
    graph = IdentityGraph.from_rows(ws, rows)
    assert graph.customers() == (resolution.customer_id,)
    assert [v.other.key for v in graph.suggestions_for(resolution.customer_id)] == [
        "email:ana.perez@gmail.com"
    ]


async def test_a_merge_and_its_unmerge_are_in_the_audit_log_and_restore_the_records(
    database: Database,
) -> None:
    ws = await workspace_of(database)
    phone, mail = phone_identifier("+5215512345678"), email_identifier("ana.perez@gmail.com")
    async with database.transaction() as session:
        store = IdentityStore(session)
        a = (await store.resolve(ws, Observation(sender=phone), NOW)).customer_id
        b = (await store.resolve(ws, Observation(sender=mail), NOW + timedelta(seconds=1))).customer_id
    async with database.transaction() as session:
        merge, _ = await IdentityStore(session).run(
            ws, [phone.key, mail.key], lambda g: g.link(phone, mail, NOW, actor="agent-1"), now=NOW
        )
    async with database.transaction() as session:
        undo, _ = await IdentityStore(session).run(
            ws, [], lambda g: g.unmerge(merge.id, NOW, actor="supervisor-1"), now=NOW, audit_ids=[merge.id]
        )
    assert merge.after == (a,) and undo.after == (a, b)
    async with database.session() as session:
        store = IdentityStore(session)
        assert [await store.customer_of_key(ws, k) for k in (phone.key, mail.key)] == [a, b]
        audit = AuditRow.__table__  # type: ignore[attr-defined]
        actions = (await session.execute(sa.select(audit.c.action).order_by(audit.c.at))).scalars().all()
        assert [e.action.value for e in await store.audit_of(ws, b)] == ["merge", "unmerge"]
    assert list(actions) == ["identity.merge", "identity.unmerge"]


@pytest.mark.postgres
async def test_parallel_workers_meeting_the_same_new_identifier_create_one_customer(
    postgres_url: str,
) -> None:
    await migrated(postgres_url)
    db = Database(postgres_url, pool_size=WORKERS)
    try:
        ws = await workspace_of(db)
        observation = whatsapp()
        barrier = asyncio.Barrier(WORKERS)

        async def worker() -> uuid.UUID:
            async with db.transaction() as session:
                store = IdentityStore(session)
                await barrier.wait()  # every worker holds an open transaction, then all resolve at once
                return (await store.resolve(ws, observation, NOW)).customer_id

        customers = await asyncio.gather(*(worker() for _ in range(WORKERS)))
        assert len(set(customers)) == 1
        assert await count(db, sa.select(sa.func.count()).select_from(CustomerRow)) == 1
        assert await count(db, sa.select(sa.func.count()).select_from(IdentifierRow)) == 2
        assert await count(db, sa.select(sa.func.count()).select_from(EvidenceRow)) == 1
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_overlapping_parallel_merges_end_in_one_customer_and_lose_no_evidence(
    postgres_url: str,
) -> None:
    await migrated(postgres_url)
    db = Database(postgres_url, pool_size=WORKERS)
    try:
        ws = await workspace_of(db)
        people = [phone_identifier(f"+52551234{n:04d}") for n in range(WORKERS + 1)]
        async with db.transaction() as session:
            store = IdentityStore(session)
            for n, person in enumerate(people):
                await store.resolve(ws, Observation(sender=person), NOW + timedelta(seconds=n))
        barrier = asyncio.Barrier(WORKERS)

        async def link(n: int) -> AuditEntry:
            a, b = people[n], people[n + 1]
            async with db.transaction() as session:
                store = IdentityStore(session)
                await barrier.wait()
                entry, _ = await store.run(
                    ws, [a.key, b.key], lambda g: g.link(a, b, NOW, actor=f"agent-{n}"), now=NOW
                )
                return entry

        entries = await asyncio.gather(*(link(n) for n in range(WORKERS)))
        async with db.session() as session:
            store = IdentityStore(session)
            owners = {await store.customer_of_key(ws, p.key) for p in people}
            rows = await store.load_workspace(ws)
        assert len(owners) == 1
        graph = IdentityGraph.from_rows(ws, rows)
        [survivor] = graph.customers()
        assert {n.key for n in graph.identifiers_of(survivor)} == {p.key for p in people}
        assert len([e for e in graph.edges(active_only=True) if e.source.value == "agent_link"]) == WORKERS
        assert all(c.merged_into == survivor for c in rows.customers if c.id != survivor)
        assert (
            survivor == min(rows.customers, key=lambda c: (c.created_at, str(c.id))).id
        )  # the oldest survives
        assert len({e.id for e in entries}) == WORKERS
    finally:
        await db.dispose()
