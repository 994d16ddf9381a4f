"""Identity resolution benchmark: the pure core in memory, then the pipeline's storage path.

The traffic mixes WhatsApp senders (MX ``+521`` ids with their business-scoped ids, AR ``+549``,
BR 8-digit forms), email senders with a phone in their signature and Instagram senders stating
an email address, so normalization, extraction, channel-verified merges and suggestions all run.
Each event is one resolution; 100,000 events write about 155,000 identifiers.

**In memory**: the events through ``observe_event`` + ``resolve`` on one workspace's graph —
resolutions per second, per-resolution p50/p99, ``customer_of`` p99.

**Storage** (SQLite, a file in a temporary directory; PostgreSQL, a throwaway database created
on the loopback server ``--database-url`` names and dropped at the end): the same events through
``InboundStore.resolve_sender`` — what the pipeline calls for every inbound event (load the
working set, resolve, write the change set, retry on collisions, then the sender's identifier id
and display name).  Writes are grouped the way the pipeline groups them: up to ``--batch``
deliveries per transaction (group commit), each in its own savepoint; PostgreSQL runs
``--lanes`` lanes side by side like the ingest partitions, SQLite one (a single writer).
Then the reads of ``GET /api/customers?identifier=``: the key look-up (``customer_of_key``, one
indexed query, on an open session) and the endpoint's whole storage read (a session per
request: key → live customer → its working set → its conversations).

**Ceilings, measured in the same run on the same database** with the raw driver (asyncpg,
aiosqlite), before and after the resolutions (median of the rounds): identifier-shaped rows
inserted 100 per transaction (multi-row ``INSERT`` on PostgreSQL, ``executemany`` on SQLite) into
a scratch table with the identifier table's indexes; the least a stored resolution can do (one
indexed ``SELECT`` of the sender's key, ``INSERT`` customer + identifier when new, 100 events
per transaction, as many connections as our lanes); and, after the run, the look-up's
``SELECT customer_id FROM identifier WHERE workspace_id = ? AND key = ?`` on the same keys,
interleaved with ours.  Ratios follow ``bench.harness``: the fraction of the ceiling attained.

On a PostgreSQL server with ``autovacuum = off`` both our run and the raw one run ``ANALYZE``
where autovacuum would (``--no-analyze``: never); see :func:`run_storage`.

    python -m bench.identity_resolution [--quick] [--count N] [--seed S] [--markdown]
        [--storage both|sqlite|postgres|none] [--storage-count N] [--batch 100] [--lanes 4]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--no-analyze]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import sqlalchemy as sa

from bench.harness import Results, format_table, format_value, percentile
from core.events import Address, AddressKind, InboundMessage
from core.ids import WorkspaceId
from core.logging import configure_logging
from identity import IdentityGraph, IdentityPolicy, email_identifier, observe_event, resolve

BENCH = "identity"
BUSINESS_MAILBOX = "citas@clinica.example"
RAW_BATCH = 100
"""Rows per transaction of the raw INSERT ceiling (the pipeline's group commit is 100 too)."""

_FIRST = ["Ana", "Luis", "Marta", "José", "Lucía", "Pedro", "Sofía", "Diego", "Valeria", "Jorge"]
_LAST = ["Pérez", "Gómez", "Hernández", "López", "Díaz", "Romero", "Silva", "Torres", "Ruiz", "Castro"]


@dataclass(frozen=True, slots=True)
class Sizes:
    """The counts of one mode."""

    memory: int  # events resolved in memory
    storage: int  # events resolved through the storage layer, per database
    raw_rows: int  # rows per round of the raw INSERT ceiling
    raw_rounds_before: int
    raw_rounds_after: int
    lookups: int  # key look-ups (ours and raw, interleaved)
    gets: int  # whole GET /api/customers?identifier= storage reads


QUICK = Sizes(
    memory=5_000, storage=500, raw_rows=2_000, raw_rounds_before=1, raw_rounds_after=0, lookups=500, gets=100
)
FULL = Sizes(
    memory=100_000,
    storage=100_000,
    raw_rows=20_000,
    raw_rounds_before=2,
    raw_rounds_after=1,
    lookups=10_000,
    gets=2_000,
)


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
                business_address=BUSINESS_MAILBOX,
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


def _policy() -> IdentityPolicy:
    """The workspace's policy as the pipeline builds it: our own mailbox is nobody's address."""
    return IdentityPolicy(business_keys=frozenset({email_identifier(BUSINESS_MAILBOX).key}))


def _ms(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of latencies in seconds, in milliseconds."""
    return percentile(samples, p) * 1000.0


# ---------------------------------------------------------------------------------------------- memory


def run_in_memory(count: int, seed: int) -> dict[str, float]:
    events = _events(count, seed)
    policy = _policy()
    graph = IdentityGraph(WorkspaceId(uuid.uuid4()), policy)
    latencies: list[float] = []
    keys: list[str] = []
    matched: Counter[str] = Counter()
    began = time.perf_counter()
    for message, region in events:
        t0 = time.perf_counter()
        observation = observe_event(message, default_region=region, business_keys=policy.business_keys)
        result = resolve(graph, observation, message.timestamp)
        latencies.append(time.perf_counter() - t0)
        keys.append(result.sender.key)
        matched[result.matched_by.value] += 1
    elapsed = time.perf_counter() - began
    rng = random.Random(seed + 1)
    lookups: list[float] = []
    for key in rng.sample(keys, min(len(keys), 100_000)):
        t0 = time.perf_counter()
        graph.customer_of(key)
        lookups.append(time.perf_counter() - t0)
    return {
        "resolutions": float(count),
        "seconds": elapsed,
        "per_second": count / elapsed,
        "resolve_p50_ms": _ms(latencies, 50),
        "resolve_p99_ms": _ms(latencies, 99),
        "lookup_p99_ms": _ms(lookups, 99),
        "customers": float(len(graph.customers())),
        "identifiers": float(len(graph.rows().identifiers)),
        **{f"matched_{k}": float(v) for k, v in matched.items()},
    }


# ---------------------------------------------------------------------------------------------- databases


def _check_loopback(url: str) -> None:
    host = sa.engine.make_url(url).host or "127.0.0.1"
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing a non-loopback database server: {host}")


async def _admin(admin_url: str) -> asyncpg.Connection:
    parsed = sa.engine.make_url(admin_url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
        timeout=5,
    )


async def _throwaway_postgres(admin_url: str) -> tuple[str, str]:
    """A fresh ``centralita_bench_<hex>`` database: (its SQLAlchemy URL, its name)."""
    _check_loopback(admin_url)
    name = f"centralita_bench_{secrets.token_hex(6)}"
    conn = await _admin(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = sa.engine.make_url(admin_url).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False), name


async def _drop_postgres(admin_url: str, name: str) -> None:
    conn = await _admin(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class RawDriver:
    """The driver alone (asyncpg, aiosqlite) on the benchmark's database: the ceilings.

    The scratch tables are shaped like ``customer`` and ``identifier`` (same columns and indexes,
    no foreign keys) and dropped after each round.
    """

    _DDL = (
        "DROP TABLE IF EXISTS bench_raw_identifier",
        "DROP TABLE IF EXISTS bench_raw_customer",
        """CREATE TABLE bench_raw_customer (
            id {uuid} PRIMARY KEY, workspace_id {uuid} NOT NULL, created_at {ts} NOT NULL)""",
        "CREATE INDEX ix_bench_raw_customer_ws ON bench_raw_customer (workspace_id)",
        """CREATE TABLE bench_raw_identifier (
            id {uuid} PRIMARY KEY, workspace_id {uuid} NOT NULL, kind varchar(40) NOT NULL,
            key varchar(400) NOT NULL, value varchar(400) NOT NULL, scope varchar(200),
            customer_id {uuid} NOT NULL, home_customer_id {uuid} NOT NULL,
            display_name varchar(200), display_names {json} NOT NULL, created_at {ts} NOT NULL,
            UNIQUE (workspace_id, key))""",
        "CREATE INDEX ix_bench_raw_identifier_ws ON bench_raw_identifier (workspace_id)",
        "CREATE INDEX ix_bench_raw_identifier_cust ON bench_raw_identifier (customer_id)",
        "CREATE INDEX ix_bench_raw_identifier_home ON bench_raw_identifier (home_customer_id)",
    )
    _DROP = ("DROP TABLE bench_raw_identifier", "DROP TABLE bench_raw_customer")
    _COLUMNS = 11

    def __init__(self, url: str, connections: int = 1):
        parsed = sa.engine.make_url(url)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        self.url = url
        self.connections = 1 if self.sqlite else max(connections, 1)
        self._pg: list[asyncpg.Connection] = []
        self.emulate_autovacuum = False  # run ANALYZE where autovacuum would (set by run_storage)
        self._lite: aiosqlite.Connection | None = None

    async def open(self) -> None:
        parsed = sa.engine.make_url(self.url)
        if self.sqlite:
            self._lite = await aiosqlite.connect(parsed.database or "", timeout=30)
            await self._lite.execute("PRAGMA journal_mode=WAL")
            await self._lite.execute("PRAGMA synchronous=NORMAL")
            return
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        for _ in range(self.connections):
            self._pg.append(await asyncpg.connect(dsn, timeout=5))

    async def close(self) -> None:
        if self._lite is not None:
            await self._lite.close()
        for conn in self._pg:
            await conn.close()

    @property
    def lite(self) -> aiosqlite.Connection:
        assert self._lite is not None
        return self._lite

    async def _script(self, statements: Sequence[str]) -> None:
        types = (
            {"uuid": "char(32)", "json": "text", "ts": "text"}
            if self.sqlite
            else {"uuid": "uuid", "json": "jsonb", "ts": "timestamptz"}
        )
        for statement in statements:
            if self.sqlite:
                await self.lite.execute(statement.format(**types))
            else:
                await self._pg[0].execute(statement.format(**types))
        if self.sqlite:
            await self.lite.commit()

    def _id(self, value: uuid.UUID) -> Any:
        return value.hex if self.sqlite else value

    def _row(self, workspace: uuid.UUID, customer: uuid.UUID, n: int, now: datetime) -> tuple[Any, ...]:
        """An identifier row like the ones ``resolve`` writes for a WhatsApp sender."""
        return (
            self._id(uuid.uuid4()),
            self._id(workspace),
            "phone",
            f"phone:+52155{n:08d}",
            f"+52155{n:08d}",
            None,
            self._id(customer),
            self._id(customer),
            f"Persona {n}",
            json.dumps([f"persona {n}"]),
            now.isoformat() if self.sqlite else now,
        )

    def _placeholders(self, rows: int, width: int) -> str:
        if self.sqlite:
            return ", ".join("(" + ", ".join("?" * width) + ")" for _ in range(rows))
        return ", ".join(
            "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(rows)
        )

    async def insert_rate(self, count: int) -> float:
        """Identifier rows per second: ``count`` rows, ``RAW_BATCH`` per transaction, one
        connection (a multi-row ``INSERT`` on PostgreSQL, ``executemany`` on SQLite)."""
        workspace, now = uuid.uuid4(), datetime.now(UTC)
        rows = [self._row(workspace, uuid.uuid4(), n, now) for n in range(count)]
        batches = [rows[i : i + RAW_BATCH] for i in range(0, len(rows), RAW_BATCH)]
        await self._script(self._DDL)
        one = f"INSERT INTO bench_raw_identifier VALUES {self._placeholders(1, self._COLUMNS)}"
        began = time.perf_counter()
        if self.sqlite:
            for batch in batches:
                await self.lite.executemany(one, batch)
                await self.lite.commit()
        else:
            pg = self._pg[0]
            for batch in batches:
                sql = (
                    f"INSERT INTO bench_raw_identifier VALUES {self._placeholders(len(batch), self._COLUMNS)}"
                )
                async with pg.transaction():
                    await pg.execute(sql, *(v for row in batch for v in row))
        elapsed = time.perf_counter() - began
        await self._script(self._DROP)
        return count / elapsed

    async def resolve_rate(self, count: int, seed: int) -> float:
        """The least a stored resolution can do, in events per second: look the sender's key up
        (one indexed ``SELECT``) and, when it is new, ``INSERT`` a customer and its identifier;
        ``RAW_BATCH`` events per transaction, on as many connections as our lanes, a fifth of
        the senders writing again (as in the traffic)."""
        rng = random.Random(seed)
        senders = [rng.randrange(n) if n and rng.random() < 0.2 else n for n in range(count)]
        workspace, now = uuid.uuid4(), datetime.now(UTC)
        await self._script(self._DDL)
        if self.sqlite:
            select = "SELECT customer_id FROM bench_raw_identifier WHERE workspace_id = ? AND key = ?"
            customer_sql = "INSERT INTO bench_raw_customer VALUES (?, ?, ?)"
        else:
            select = "SELECT customer_id FROM bench_raw_identifier WHERE workspace_id = $1 AND key = $2"
            customer_sql = "INSERT INTO bench_raw_customer VALUES ($1, $2, $3)"
        identifier_sql = f"INSERT INTO bench_raw_identifier VALUES {self._placeholders(1, self._COLUMNS)}"
        lanes: list[list[int]] = [[] for _ in range(self.connections)]
        for n in senders:
            lanes[n % self.connections].append(n)

        async def lite_lane(mine: list[int]) -> None:
            lite = self.lite
            for start in range(0, len(mine), RAW_BATCH):
                for n in mine[start : start + RAW_BATCH]:
                    async with lite.execute(select, (self._id(workspace), f"phone:+52155{n:08d}")) as cur:
                        found = await cur.fetchone()
                    if found is None:
                        customer = uuid.uuid4()
                        await lite.execute(customer_sql, (customer.hex, workspace.hex, now.isoformat()))
                        await lite.execute(identifier_sql, self._row(workspace, customer, n, now))
                await lite.commit()

        done, next_analyze, analyzing = 0, 50, False

        async def pg_lane(conn: asyncpg.Connection, mine: list[int]) -> None:
            nonlocal done, next_analyze, analyzing
            for start in range(0, len(mine), RAW_BATCH):
                async with conn.transaction():
                    for n in mine[start : start + RAW_BATCH]:
                        if await conn.fetchval(select, workspace, f"phone:+52155{n:08d}") is None:
                            customer = uuid.uuid4()
                            await conn.execute(customer_sql, customer, workspace, now)
                            await conn.execute(identifier_sql, *self._row(workspace, customer, n, now))
                done += len(mine[start : start + RAW_BATCH])
                if self.emulate_autovacuum and not analyzing and done >= next_analyze:
                    analyzing = True  # as our run does (see run_storage): the same plans, the same help
                    await conn.execute("ANALYZE bench_raw_identifier, bench_raw_customer")
                    next_analyze = int(done * 1.1) + 50
                    analyzing = False

        began = time.perf_counter()
        if self.sqlite:
            await lite_lane(lanes[0])
        else:
            await asyncio.gather(*(pg_lane(c, mine) for c, mine in zip(self._pg, lanes, strict=True)))
        elapsed = time.perf_counter() - began
        await self._script(self._DROP)
        return count / elapsed

    # -- what autovacuum would do

    async def autovacuum_on(self) -> bool:
        """Whether the server analyzes tables by itself (SQLite has no such thing: True)."""
        if self.sqlite:
            return True
        return str(await self._pg[0].fetchval("SHOW autovacuum")) == "on"

    async def analyze(self) -> None:
        await self._pg[0].execute("ANALYZE")

    # -- the look-up ceiling: the same query on the same keys

    async def workspace_param(self) -> Any:
        """The workspace id as the database stores it (one workspace in the benchmark)."""
        if self.sqlite:
            async with self.lite.execute("SELECT id FROM workspace") as cursor:
                row = await cursor.fetchone()
            assert row is not None
            return row[0]
        return await self._pg[0].fetchval("SELECT id FROM workspace")

    async def customer_of_key(self, workspace: Any, key: str) -> Any:
        if self.sqlite:
            async with self.lite.execute(
                "SELECT customer_id FROM identifier WHERE workspace_id = ? AND key = ?", (workspace, key)
            ) as cursor:
                row = await cursor.fetchone()
            return row[0] if row else None
        return await self._pg[0].fetchval(
            "SELECT customer_id FROM identifier WHERE workspace_id = $1 AND key = $2", workspace, key
        )


# ---------------------------------------------------------------------------------------------- storage


@dataclass(slots=True)
class StorageFigures:
    backend: str
    lanes: int
    batch: int
    resolutions: int = 0
    seconds: float = 0.0
    identifiers: int = 0
    customers: int = 0
    resolve: list[float] = field(default_factory=list)  # seconds per resolve_sender, savepoint included
    raw_insert: list[float] = field(default_factory=list)  # rows/s, one per round
    raw_resolve: list[float] = field(default_factory=list)  # events/s, one per round
    lookup: list[float] = field(default_factory=list)  # customer_of_key on an open session
    raw_lookup: list[float] = field(default_factory=list)  # the same query through the driver alone
    get: list[float] = field(default_factory=list)  # GET /api/customers?identifier=, storage reads
    analyzes: int = 0  # ANALYZE runs standing in for autovacuum (PostgreSQL with autovacuum off)
    analyze_seconds: float = 0.0
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()

    @property
    def per_second(self) -> float:
        return self.resolutions / self.seconds if self.seconds > 0 else 0.0


def _load() -> tuple[float, ...]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return ()


async def _timed(samples: list[float], call: Callable[[], Awaitable[Any]]) -> Any:
    t0 = time.perf_counter()
    outcome = await call()
    samples.append(time.perf_counter() - t0)
    return outcome


async def run_storage(
    url: str,
    sizes: Sizes,
    seed: int,
    *,
    batch: int = 100,
    lanes: int = 1,
    analyze: bool = True,
    say: Callable[[str], None] = print,
) -> StorageFigures:
    """Resolve ``sizes.storage`` events on ``url`` (an empty database) the way the pipeline does,
    with the raw driver's ceilings measured on the same database around it.

    ``analyze``: on a PostgreSQL server running with ``autovacuum = off``, run ``ANALYZE`` when
    autovacuum would (``autovacuum_analyze_threshold`` 50 + ``autovacuum_analyze_scale_factor``
    10 %, counted in resolutions).  Without statistics the plans cached while the tables were
    empty stay in use and read the workspace's whole index range: the rate falls as the graph
    grows (68/s for the first 10,000 events, 36/s for the next 10,000, on this machine).
    """
    from storage.database import Database, upgrade_schema
    from storage.identity_store import IdentityStore
    from storage.inbound import InboundStore
    from storage.tables import CustomerRow, IdentifierRow, WorkspaceRow

    await asyncio.to_thread(upgrade_schema, url)
    database = Database(url)
    raw = RawDriver(url, lanes)
    await raw.open()
    backend = "sqlite" if raw.sqlite else "postgres"
    figures = StorageFigures(backend, lanes, batch, load_before=_load())
    policy = _policy()
    try:
        raw.emulate_autovacuum = emulate = analyze and not await raw.autovacuum_on()
        for r in range(sizes.raw_rounds_before):
            figures.raw_insert.append(await raw.insert_rate(sizes.raw_rows))
            figures.raw_resolve.append(await raw.resolve_rate(sizes.raw_rows, seed + r))
        workspace = WorkspaceId(uuid.uuid4())
        async with database.transaction() as session:
            session.add(WorkspaceRow(id=workspace, slug=f"bench-{workspace.hex[:8]}", name="Bench"))
        events = _events(sizes.storage, seed)
        keys: list[str] = []
        by_lane: list[list[tuple[InboundMessage, str]]] = [[] for _ in range(lanes)]
        for message, region in events:  # a sender always goes to the same lane, like a partition
            by_lane[zlib.crc32(message.sender.value.encode()) % lanes].append((message, region))
        done = 0
        step = max(len(events) // 10, batch)
        next_analyze = 50
        analyzing = False

        async def autovacuum() -> None:
            nonlocal next_analyze, analyzing
            if not emulate or analyzing or done < next_analyze:
                return
            analyzing = True
            t0 = time.perf_counter()
            await raw.analyze()
            figures.analyzes += 1
            figures.analyze_seconds += time.perf_counter() - t0
            next_analyze = int(done * 1.1) + 50
            analyzing = False

        async def lane(mine: list[tuple[InboundMessage, str]]) -> None:
            nonlocal done
            for start in range(0, len(mine), batch):
                async with database.transaction() as session:  # group commit: one per batch
                    store = InboundStore(session)
                    for message, region in mine[start : start + batch]:
                        t0 = time.perf_counter()
                        async with session.begin_nested():  # the pipeline's per-delivery savepoint
                            observation = observe_event(
                                message, default_region=region, business_keys=policy.business_keys
                            )
                            await store.resolve_sender(
                                workspace,
                                observation,
                                message.timestamp,
                                policy=policy,
                                display_name=message.sender.display_name,
                            )
                        figures.resolve.append(time.perf_counter() - t0)
                        keys.append(observation.sender.key)
                before, done = done, done + len(mine[start : start + batch])
                await autovacuum()
                if done // step > before // step:
                    elapsed = time.perf_counter() - began
                    say(f"  {backend}: {done:,}/{len(events):,} resolved ({elapsed:.0f} s)")

        began = time.perf_counter()
        await asyncio.gather(*(lane(mine) for mine in by_lane))
        figures.seconds = time.perf_counter() - began
        figures.resolutions = len(events)
        for r in range(sizes.raw_rounds_after):
            figures.raw_insert.append(await raw.insert_rate(sizes.raw_rows))
            figures.raw_resolve.append(await raw.resolve_rate(sizes.raw_rows, seed + 100 + r))

        # the reads of GET /api/customers?identifier=
        rng = random.Random(seed + 1)
        sample = rng.sample(keys, min(len(keys), sizes.lookups))
        raw_workspace = await raw.workspace_param()
        async with database.session() as session:
            store = IdentityStore(session)
            for key in sample:
                ours = await _timed(figures.lookup, partial(store.customer_of_key, workspace, key))
                theirs = await _timed(figures.raw_lookup, partial(raw.customer_of_key, raw_workspace, key))
                if ours is None or theirs is None:
                    raise RuntimeError(f"identifier {key!r} was not stored")

        async def get(key: str) -> None:
            """The storage reads of ``find_customers`` + ``_detail`` (centralita.web.api.customers)."""
            async with database.session() as session:
                store = IdentityStore(session)
                customer = await store.customer_of_key(workspace, key)
                if customer is None:
                    return
                live = await store.live_customer(workspace, customer)
                graph = await store.graph_of(workspace, live.id, policy)
                await store.conversations_of(workspace, live.id)
                graph.identifiers_of(live.id)
                graph.shared_contacts(live.id)
                graph.suggestions_for(live.id)

        for key in sample[: sizes.gets]:
            await _timed(figures.get, partial(get, key))

        async with database.session() as session:
            ident = IdentifierRow.__table__  # type: ignore[attr-defined]
            cust = CustomerRow.__table__  # type: ignore[attr-defined]
            figures.identifiers = (
                await session.execute(
                    sa.select(sa.func.count()).select_from(ident).where(ident.c.workspace_id == workspace)
                )
            ).scalar_one()
            figures.customers = (
                await session.execute(
                    sa.select(sa.func.count())
                    .select_from(cust)
                    .where(cust.c.workspace_id == workspace, cust.c.merged_into.is_(None))
                )
            ).scalar_one()
        figures.load_after = _load()
        return figures
    finally:
        await raw.close()
        await database.dispose()


def record(results: Results, f: StorageFigures) -> None:
    """The figures of one database, each with the ceiling it is read against."""
    db = "PostgreSQL" if f.backend == "postgres" else "SQLite"
    k = f"{BENCH}.{f.backend}"
    lanes = f"{f.lanes} connection{'s' if f.lanes > 1 else ''}"
    ceilings = [
        (
            "raw.insert",
            f"{db} raw: INSERT identifier rows, {RAW_BATCH}/transaction, 1 connection",
            statistics.median(f.raw_insert),
            "rows/s",
            "raw INSERT",
            f.raw_insert,
        ),
        (
            "raw.resolve",
            f"{db} raw: SELECT key, INSERT if new, {RAW_BATCH}/transaction, {lanes}",
            statistics.median(f.raw_resolve),
            "res/s",
            "raw resolve",
            f.raw_resolve,
        ),
        ("raw.lookup.p50", f"{db} raw: look-up by key p50", _ms(f.raw_lookup, 50), "ms", "raw p50", []),
        ("raw.lookup.p99", f"{db} raw: look-up by key p99", _ms(f.raw_lookup, 99), "ms", "raw p99", []),
    ]
    for key, label, value, unit, short, rounds in ceilings:
        results.add(
            BENCH,
            f"{k}.{key}",
            label,
            value,
            unit,
            higher_is_better=unit != "ms",
            details={"short": short, "rounds": rounds},
        )
    lanes = f"{f.lanes} lane{'s' if f.lanes > 1 else ''}"
    figures: list[tuple[str, str, float, str, str | None]] = [
        (
            "rate",
            f"{db} resolve_sender, batches of {f.batch}, {lanes}",
            f.per_second,
            "res/s",
            "raw.resolve",
        ),
        (
            "identifiers",
            f"{db} identifier rows they wrote",
            f.identifiers / f.seconds if f.seconds > 0 else 0.0,
            "rows/s",
            "raw.insert",
        ),
        ("resolve.p50", f"{db} one resolve_sender p50 (in its batch)", _ms(f.resolve, 50), "ms", None),
        ("resolve.p99", f"{db} one resolve_sender p99 (in its batch)", _ms(f.resolve, 99), "ms", None),
        (
            "lookup.p50",
            f"{db} look-up by key p50 (customer_of_key)",
            _ms(f.lookup, 50),
            "ms",
            "raw.lookup.p50",
        ),
        (
            "lookup.p99",
            f"{db} look-up by key p99 (customer_of_key)",
            _ms(f.lookup, 99),
            "ms",
            "raw.lookup.p99",
        ),
        ("get.p50", f"{db} GET ?identifier= storage reads p50", _ms(f.get, 50), "ms", "raw.lookup.p50"),
        ("get.p99", f"{db} GET ?identifier= storage reads p99", _ms(f.get, 99), "ms", "raw.lookup.p99"),
    ]
    for key, label, value, unit, ceiling in figures:
        results.add(
            BENCH,
            f"{k}.{key}",
            label,
            value,
            unit,
            ceiling=f"{k}.{ceiling}" if ceiling else None,
            higher_is_better=unit != "ms",
            details={
                "resolutions": f.resolutions,
                "seconds": round(f.seconds, 1),
                "identifiers": f.identifiers,
                "customers": f.customers,
            }
            if key == "rate"
            else {},
        )


def table(results: Results, *, markdown: bool = False) -> str:
    """The benchmark's figures with their ceilings; ratios to three significant digits (a
    resolution is far from a raw INSERT, and two decimals would print 0.00)."""
    rows: list[list[str]] = []
    for result in results.for_benchmark(BENCH):
        ceiling = results.get(result.ceiling) if result.ceiling else None
        ratio = results.ratio(result)
        rows.append(
            [
                result.label,
                format_value(result.value, result.unit),
                f"{format_value(ceiling.value, ceiling.unit)} ({ceiling.details.get('short', ceiling.label)})"
                if ceiling
                else "",
                f"{ratio:.3g}" if ratio is not None else "",
            ]
        )
    return format_table(["measure", "figure", "ceiling (same run)", "ratio"], rows, markdown=markdown)


async def _storage_figures(
    backends: Sequence[str],
    sizes: Sizes,
    seed: int,
    batch: int,
    admin_url: str,
    lanes: int,
    analyze: bool,
    say: Callable[[str], None],
) -> list[StorageFigures]:
    figures: list[StorageFigures] = []
    for backend in backends:
        began = time.perf_counter()
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="centralita-bench-identity-") as tmp:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                figures.append(await run_storage(url, sizes, seed, batch=batch, lanes=1, say=say))
        else:
            url, name = await _throwaway_postgres(admin_url)
            try:
                figures.append(
                    await run_storage(url, sizes, seed, batch=batch, lanes=lanes, analyze=analyze, say=say)
                )
            finally:
                await _drop_postgres(admin_url, name)
        say(f"  {backend}: done in {time.perf_counter() - began:.1f} s")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.identity_resolution",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="5,000 events in memory and 500 per database (a smoke test)"
    )
    parser.add_argument("--count", type=int, default=None, help="events in memory (default 100,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--storage", choices=("both", "sqlite", "postgres", "none"), default="both")
    parser.add_argument(
        "--storage-count", type=int, default=None, help="events per database (default 100,000)"
    )
    parser.add_argument("--batch", type=int, default=100, help="deliveries per transaction, as the pipeline")
    parser.add_argument(
        "--lanes", type=int, default=4, help="PostgreSQL: parallel lanes, like the ingest partitions"
    )
    parser.add_argument("--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="PostgreSQL with autovacuum off: do not run ANALYZE where autovacuum would",
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # the store logs every merge and block at info
    sizes = QUICK if args.quick else FULL
    if args.count or args.storage_count:
        sizes = Sizes(
            memory=args.count or sizes.memory,
            storage=args.storage_count or sizes.storage,
            raw_rows=sizes.raw_rows,
            raw_rounds_before=sizes.raw_rounds_before,
            raw_rounds_after=sizes.raw_rounds_after,
            lookups=sizes.lookups,
            gets=sizes.gets,
        )
    started = time.perf_counter()

    def say(line: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    say(f"identity: {sizes.memory:,} events in memory; load average {_load()}")
    memory = run_in_memory(sizes.memory, args.seed)
    print(f"identity resolution, in memory: {int(memory['resolutions']):,} events")
    print(f"  identifiers      {int(memory['identifiers']):,}")
    print(f"  customers        {int(memory['customers']):,}")
    for kind in ("same_identifier", "channel_verified", "new"):
        print(f"  matched {kind:<17}{int(memory.get(f'matched_{kind}', 0)):,}")
    print(f"  resolutions/s    {memory['per_second']:,.0f}")
    print(f"  resolve p50      {memory['resolve_p50_ms'] * 1000:.1f} µs")
    print(f"  resolve p99      {memory['resolve_p99_ms'] * 1000:.1f} µs")
    print(f"  lookup p99       {memory['lookup_p99_ms'] * 1000:.2f} µs  (customer_of)", flush=True)
    backends = {"both": ["sqlite", "postgres"], "none": []}.get(args.storage, [args.storage])
    if not backends:
        return 0
    say(f"identity: {sizes.storage:,} events per database through resolve_sender ({', '.join(backends)})")
    try:
        stored = asyncio.run(
            _storage_figures(
                backends,
                sizes,
                args.seed,
                args.batch,
                args.database_url,
                args.lanes,
                not args.no_analyze,
                say,
            )
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"bench.identity_resolution: a database did not answer: {exc}", file=sys.stderr)
        return 2
    results = Results()
    results.add(
        BENCH,
        f"{BENCH}.memory.rate",
        "pure core in memory (observe_event + resolve)",
        memory["per_second"],
        "res/s",
    )
    for f in stored:
        record(results, f)
    for f in stored:
        print(
            f"identity resolution, storage on {f.backend}: {f.resolutions:,} events in {f.seconds:.1f} s, "
            f"batches of {f.batch}, {f.lanes} lane{'s' if f.lanes > 1 else ''}; "
            f"{f.identifiers:,} identifiers, {f.customers:,} customers; "
            f"{len(f.lookup):,} look-ups, {len(f.get):,} GETs; "
            + (
                f"autovacuum off on the server: ANALYZE run {f.analyzes} times where it would "
                f"({f.analyze_seconds:.1f} s); "
                if f.analyzes
                else ""
            )
            + f"load average {list(f.load_before)} → {list(f.load_after)}"
        )
    print()
    print(table(results, markdown=args.markdown))
    print(f"\nfinished in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
