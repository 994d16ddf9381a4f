"""Identity resolution benchmark: the pure core in memory, then through the storage layer.

Feeds N synthetic inbound messages through ``observe_event`` + ``resolve`` on one workspace's
graph and reports resolutions per second, the per-resolution p50/p99, and the p99 of a
``customer_of`` look-up over the resulting graph.  The traffic mixes WhatsApp senders (MX ``+521``
ids with their business-scoped ids, AR ``+549``, BR 8-digit forms), email senders with phones in
their signatures and Instagram senders stating email addresses, so normalization, extraction,
channel-verified merges and suggestions all run.

The storage part feeds the same traffic through ``IdentityStore.resolve`` (load the working set,
resolve, write the change set, retry on collisions) on SQLite and on PostgreSQL, batching writes
as the pipeline does — up to ``--batch`` deliveries per transaction, each in its own savepoint —
and reports resolutions per second and the p99 of a look-up by identifier (``customer_of_key``,
one indexed query).  PostgreSQL runs on a throwaway database created on the loopback server
``--database-url`` names, dropped at the end.

    python -m bench.identity_resolution [--quick] [--count N] [--seed S]
        [--storage both|sqlite|postgres|none] [--storage-count N] [--batch 100] [--lanes 4]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import secrets
import statistics
import tempfile
import time
import uuid
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import sqlalchemy as sa

from core.events import Address, AddressKind, InboundMessage
from core.ids import WorkspaceId
from identity import IdentityGraph, observe_event, resolve

_FIRST = ["Ana", "Luis", "Marta", "José", "Lucía", "Pedro", "Sofía", "Diego", "Valeria", "Jorge"]
_LAST = ["Pérez", "Gómez", "Hernández", "López", "Díaz", "Romero", "Silva", "Torres", "Ruiz", "Castro"]


def _phone(rng: random.Random, n: int) -> tuple[str, str]:
    """(WhatsApp id, region) for person ``n``."""
    country = rng.choice(("MX", "MX", "AR", "BR"))
    if country == "MX":
        return f"5215{5 + n % 3}{n:08d}", "MX"
    if country == "AR":
        return f"54911{n:08d}", "AR"
    return f"55119{7 + n % 3}{n % 10**7:07d}", "BR"


def _events(count: int, seed: int) -> list[tuple[InboundMessage, str]]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events: list[tuple[InboundMessage, str]] = []
    for n in range(count):
        now = start + timedelta(seconds=n)
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)} {n}"
        returning = n > 0 and rng.random() < 0.2  # a customer writing again
        wa_id, region = _phone(rng, rng.randrange(n) if returning else n)
        kind = 0.0 if returning else rng.random()
        if kind < 0.5:
            message = InboundMessage(
                channel="whatsapp",
                business_address="1055",
                external_id=f"wamid.{n}",
                timestamp=now,
                sender=Address(kind=AddressKind.PHONE, value=wa_id, display_name=name),
                sender_identities=(Address(kind=AddressKind.WHATSAPP_BSUID, value=f"X.{n}", scope="waba_1"),),
                text="Hola, quiero información",
            )
        elif kind < 0.8:
            message = InboundMessage(
                channel="email",
                business_address="citas@clinica.example",
                external_id=f"<{n}@mail.example>",
                timestamp=now,
                sender=Address(kind=AddressKind.EMAIL, value=f"persona{n}@example.com", display_name=name),
                text="Buenas tardes, les escribo por la cita",
                signature=f"{name}\nCel. +{wa_id}",
            )
        else:
            message = InboundMessage(
                channel="instagram",
                business_address="ig_1",
                external_id=f"mid.{n}",
                timestamp=now,
                sender=Address(kind=AddressKind.INSTAGRAM_ID, value=f"178{n:010d}", scope="ig_1"),
                text=f"mi correo es persona{max(n - 1, 0)}@example.com",
            )
        events.append((message, region))
    return events


def _percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def run(count: int, seed: int) -> dict[str, float]:
    events = _events(count, seed)
    graph = IdentityGraph(WorkspaceId(uuid.uuid4()))
    latencies: list[int] = []
    keys: list[str] = []
    matched: Counter[str] = Counter()
    began = time.perf_counter()
    for message, region in events:
        t0 = time.perf_counter_ns()
        result = resolve(graph, observe_event(message, default_region=region), message.timestamp)
        latencies.append(time.perf_counter_ns() - t0)
        keys.append(result.sender.key)
        matched[result.matched_by.value] += 1
    elapsed = time.perf_counter() - began
    rng = random.Random(seed + 1)
    lookups: list[int] = []
    for key in rng.sample(keys, min(len(keys), 100_000)):
        t0 = time.perf_counter_ns()
        graph.customer_of(key)
        lookups.append(time.perf_counter_ns() - t0)
    return {
        "resolutions": float(count),
        "seconds": elapsed,
        "per_second": count / elapsed,
        "resolve_p50_us": _percentile(latencies, 0.50),
        "resolve_p99_us": _percentile(latencies, 0.99),
        "resolve_mean_us": statistics.fmean(latencies) / 1000.0,
        "lookup_p99_us": _percentile(lookups, 0.99),
        "customers": float(len(graph.customers())),
        "identifiers": float(len(graph.rows().identifiers)),
        **{f"matched_{k}": float(v) for k, v in matched.items()},
    }


# ---------------------------------------------------------------------------------------------- storage


def _check_loopback(url: str) -> None:
    host = sa.engine.make_url(url).host or "127.0.0.1"
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing a non-loopback database server: {host}")


async def _throwaway_postgres(admin_url: str) -> tuple[str, str]:
    _check_loopback(admin_url)
    parsed = sa.engine.make_url(admin_url)
    name = f"centralita_bench_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
        timeout=5,
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return parsed.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    ), name


async def _drop_postgres(admin_url: str, name: str) -> None:
    parsed = sa.engine.make_url(admin_url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
        timeout=5,
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def run_storage(url: str, count: int, seed: int, batch: int = 100, lanes: int = 1) -> dict[str, float]:
    """Resolve ``count`` events through the storage layer on ``url`` (an empty database).

    ``lanes`` run side by side like the pipeline's ingest partitions: an event goes to the lane
    its sender hashes to, each lane commits its batches in order (SQLite still has one writer).
    """
    from core.storage.database import Database, upgrade_schema
    from core.storage.identity_store import IdentityStore
    from core.storage.tables import IdentifierRow, WorkspaceRow

    await asyncio.to_thread(upgrade_schema, url)
    database = Database(url)
    try:
        workspace = WorkspaceId(uuid.uuid4())
        async with database.transaction() as session:
            session.add(WorkspaceRow(id=workspace, slug=f"bench-{workspace.hex[:8]}", name="Bench"))
        events = _events(count, seed)
        keys: list[str] = []
        by_lane: list[list[tuple[InboundMessage, str]]] = [[] for _ in range(lanes)]
        for message, region in events:
            by_lane[zlib.crc32(message.sender.value.encode()) % lanes].append((message, region))

        async def lane(mine: list[tuple[InboundMessage, str]]) -> None:
            for start in range(0, len(mine), batch):
                async with database.transaction() as session:
                    store = IdentityStore(session)
                    for message, region in mine[start : start + batch]:
                        async with session.begin_nested():  # the pipeline's per-delivery savepoint
                            observation = observe_event(message, default_region=region)
                            result = await store.resolve(workspace, observation, message.timestamp)
                        keys.append(result.sender.key)

        began = time.perf_counter()
        await asyncio.gather(*(lane(mine) for mine in by_lane))
        elapsed = time.perf_counter() - began
        rng = random.Random(seed + 1)
        lookups: list[int] = []
        async with database.session() as session:
            store = IdentityStore(session)
            for key in rng.sample(keys, min(len(keys), 10_000)):
                t0 = time.perf_counter_ns()
                await store.customer_of_key(workspace, key)
                lookups.append(time.perf_counter_ns() - t0)
            table = IdentifierRow.__table__  # type: ignore[attr-defined]
            identifiers = (
                await session.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.workspace_id == workspace)
                )
            ).scalar_one()
        return {
            "resolutions": float(count),
            "seconds": elapsed,
            "per_second": count / elapsed,
            "lookup_p50_us": _percentile(lookups, 0.50),
            "lookup_p99_us": _percentile(lookups, 0.99),
            "identifiers": float(identifiers),
        }
    finally:
        await database.dispose()


async def _storage_figures(
    backends: list[str], count: int, seed: int, batch: int, admin_url: str, lanes: int
) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                figures["sqlite"] = await run_storage(
                    f"sqlite+aiosqlite:///{tmp}/bench.db", count, seed, batch
                )
        else:
            url, name = await _throwaway_postgres(admin_url)
            try:
                figures["postgres"] = await run_storage(url, count, seed, batch, lanes)
            finally:
                await _drop_postgres(admin_url, name)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.identity_resolution",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="10,000 resolutions instead of 100,000")
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--storage", choices=("both", "sqlite", "postgres", "none"), default="both")
    parser.add_argument("--storage-count", type=int, default=None, help="default 100,000 (--quick: 2,000)")
    parser.add_argument("--batch", type=int, default=100, help="deliveries per transaction, as the pipeline")
    parser.add_argument(
        "--lanes", type=int, default=4, help="PostgreSQL: parallel lanes, like the ingest partitions"
    )
    parser.add_argument("--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    count = args.count or (10_000 if args.quick else 100_000)
    figures = run(count, args.seed)
    print(f"identity resolution, in memory: {int(figures['resolutions']):,} events")
    print(f"  identifiers      {int(figures['identifiers']):,}")
    print(f"  customers        {int(figures['customers']):,}")
    for kind in ("same_identifier", "channel_verified", "new"):
        print(f"  matched {kind:<17}{int(figures.get(f'matched_{kind}', 0)):,}")
    print(f"  resolutions/s    {figures['per_second']:,.0f}")
    print(f"  resolve p50      {figures['resolve_p50_us']:.1f} µs")
    print(f"  resolve p99      {figures['resolve_p99_us']:.1f} µs")
    print(f"  lookup p99       {figures['lookup_p99_us']:.2f} µs  (customer_of)")
    backends = {"both": ["sqlite", "postgres"], "none": []}.get(args.storage, [args.storage])
    if not backends:
        return
    storage_count = args.storage_count or (2_000 if args.quick else 100_000)
    stored = asyncio.run(
        _storage_figures(backends, storage_count, args.seed, args.batch, args.database_url, args.lanes)
    )
    for backend, f in stored.items():
        lanes = 1 if backend == "sqlite" else args.lanes
        print(
            f"identity resolution, storage layer on {backend}: {int(f['resolutions']):,} events, "
            f"batches of {args.batch}, {lanes} lane{'s' if lanes > 1 else ''}"
        )
        print(f"  identifiers      {int(f['identifiers']):,}")
        print(f"  resolutions/s    {f['per_second']:,.0f}  ({f['seconds']:.1f} s)")
        print(f"  lookup p50       {f['lookup_p50_us']:.0f} µs  (customer_of_key, one indexed query)")
        print(f"  lookup p99       {f['lookup_p99_us']:.0f} µs")


if __name__ == "__main__":
    main()
