"""``python -m bench --only reports``: the reports over a month of a busy campaign on PostgreSQL.

A fresh database gets a month (March 2026, America/Bogota) of one campaign bulk-loaded with
``COPY``: 100,000 ``conversation_report`` rows (three queues with SLAs, three channels, 60
agents, 60,000 customers so that repeat contacts happen, dispositions with promises, CSAT and
NPS answers, first messages from a small Spanish vocabulary), the ``traffic_hour`` counters of
1,000,000 messages (six in and four out per conversation, in the hours they were opened) and
1,000,000 ``audit_log`` rows (ten facts per conversation) — the table the reports do not read,
there so that the report rows sit in a database of realistic size.  Quick: a tenth of each.

Each report is timed as the API computes it — ``centralita.reports.read_report``: on
PostgreSQL the aggregates in SQL (``storage.reports_pg``) finished by the core — median of three
warm runs, next to a raw SQL aggregate over the same rows (the ceiling: what the database alone
takes to scan them once); the summary and topics also the pure-core path (every row to Python,
what SQLite runs).  Target: under 1 s per report.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import asyncpg

from bench.harness import Context, format_value, load_average
from core.reports import Dimension

__all__ = ["MonthOfTraffic", "load_month", "run"]

START: Final = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)  # 1 March, 00:00 in Bogotá
DAYS: Final = 31
CHANNELS: Final = (("whatsapp", 0.7), ("instagram", 0.2), ("email", 0.1))
IN_PER_CONVERSATION: Final = 6
OUT_PER_CONVERSATION: Final = 4
FACTS_PER_CONVERSATION: Final = 10
CODES: Final = ("promesa_de_pago", "pago_realizado", "negociacion", "no_contesta", "numero_errado")
PHRASES: Final = (
    "Hola, quiero pagar mi deuda",
    "Buenas tardes, necesito un acuerdo de pago",
    "¿Dónde pago la cuota de marzo?",
    "Ya pagué, envío el comprobante",
    "No reconozco esta deuda",
    "Quiero información sobre mi saldo",
    "Me llegó un mensaje de cobranza",
    "Necesito el certificado de paz y salvo",
)
EXTRA: Final = tuple(
    """banco tarjeta crédito cuenta préstamo cuota interés mora saldo factura recibo transferencia
    consignación sucursal asesor llamada correo dirección teléfono contraseña aplicación clave
    embargo abogado reporte datacrédito descuento plazo refinanciación extracto certificado
    Pagó PAGO pago pagó urgente ayuda reclamo queja""".split()
)
REPORT_COLUMNS: Final = (
    "conversation_id",
    "workspace_id",
    "campaign_id",
    "customer_id",
    "channel",
    "opened_at",
    "triage",
    "triage_option",
    "queue_id",
    "answered_queue_id",
    "enqueued_at",
    "first_offered_at",
    "assigned_at",
    "waited_s",
    "agent_id",
    "last_agent_id",
    "first_response_at",
    "first_response_agent_id",
    "closed_at",
    "close_reason",
    "disposition_code",
    "disposition_amount",
    "disposition_date",
    "reopened_at",
    "first_text",
    "offers",
    "declines",
    "timeouts",
    "assignments",
    "agent_replies",
    "notes",
    "transfers",
    "requeues",
    "active_s",
    "survey_kind",
    "survey_sent_at",
    "survey_score",
    "survey_answered_at",
)


@dataclass(frozen=True, slots=True)
class MonthOfTraffic:
    """The month's rows, generated the same for a seed: ``conversations`` report rows and the
    hourly counters of their messages."""

    workspace_id: uuid.UUID
    campaign_id: uuid.UUID
    queues: Sequence[uuid.UUID]
    agents: Sequence[uuid.UUID]
    conversations: int
    seed: int = 16

    @property
    def customers(self) -> int:
        return max(1, self.conversations * 3 // 5)

    def _opened(self, rng: random.Random) -> datetime:
        day = rng.randrange(DAYS)
        hour = min(23, max(0, int(rng.gauss(13, 3.5))))  # local hours, busiest after noon
        return START + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))

    def _first_text(self, rng: random.Random) -> str:
        extra = " ".join(rng.choice(EXTRA) for _ in range(rng.randrange(1, 4)))
        number = f" {rng.randrange(10, 99999)}" if rng.random() < 0.3 else ""
        return f"{rng.choice(PHRASES)} {extra}{number}"

    def report_rows(self) -> Iterator[tuple[Any, ...]]:
        rng = random.Random(self.seed)
        customers = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(self.customers)]
        for _ in range(self.conversations):
            opened = self._opened(rng)
            channel = rng.choices([c for c, _ in CHANNELS], [w for _, w in CHANNELS])[0]
            queue = rng.choice(self.queues)
            triage = rng.random() < 0.3
            enqueued: datetime | None = opened + timedelta(seconds=rng.randrange(5, 60)) if triage else opened
            if rng.random() < 0.03:
                enqueued = None  # still in the menu, or left it
            assigned: datetime | None = None
            first_response: datetime | None = None
            closed: datetime | None = None
            waited: float | None = None
            agent: uuid.UUID | None = None
            reason: str | None = None
            if enqueued is not None and rng.random() < 0.85:
                waited = rng.expovariate(1 / 45)
                assigned = enqueued + timedelta(seconds=waited * (1.2 if rng.random() < 0.1 else 1.0))
                agent = rng.choice(self.agents)
                if rng.random() < 0.95:
                    first_response = assigned + timedelta(seconds=rng.expovariate(1 / 40))
            if rng.random() < 0.96:
                base = first_response or assigned or enqueued or opened
                closed = base + timedelta(seconds=rng.expovariate(1 / 420))
                reason = "agent" if assigned is not None else "abandoned"
            code: str | None = None
            amount: str | None = None
            promised: str | None = None
            if reason == "agent":
                code = rng.choice(CODES)
                if code in ("promesa_de_pago", "pago_realizado"):
                    amount = str(rng.randrange(10, 500) * 1000)
                if code == "promesa_de_pago":
                    promised = (opened.date() + timedelta(days=rng.randrange(1, 15))).isoformat()
            survey_kind: str | None = None
            survey_sent: datetime | None = None
            answered_at: datetime | None = None
            score: int | None = None
            if closed is not None and assigned is not None and rng.random() < 0.5:
                survey_kind = "csat" if rng.random() < 0.7 else "nps"
                survey_sent = closed + timedelta(minutes=5)
                if rng.random() < 0.6:
                    score = rng.randint(1, 5) if survey_kind == "csat" else rng.randint(0, 10)
                    answered_at = survey_sent + timedelta(minutes=2)
            active = (
                (closed - assigned).total_seconds() if closed is not None and assigned is not None else 0.0
            )
            yield (
                uuid.UUID(int=rng.getrandbits(128)),
                self.workspace_id,
                self.campaign_id,
                rng.choice(customers),
                channel,
                opened,
                triage,
                rng.choice(("pagos", "saldo", "otro")) if triage else None,
                queue,
                queue if assigned is not None else None,
                enqueued,
                assigned,
                assigned,
                waited,
                agent,
                agent,
                first_response,
                agent if first_response is not None else None,
                closed,
                reason,
                code,
                amount,
                promised,
                closed + timedelta(days=1) if closed is not None and rng.random() < 0.05 else None,
                self._first_text(rng),
                1 if assigned is not None else 0,
                0,
                0,
                1 if assigned is not None else 0,
                rng.randrange(1, 8) if first_response is not None else 0,
                0,
                1 if rng.random() < 0.05 else 0,
                1 if rng.random() < 0.03 else 0,
                active,
                survey_kind,
                survey_sent,
                score,
                answered_at,
            )

    def traffic_rows(self) -> list[tuple[Any, ...]]:
        """The counters: each conversation's messages in the UTC hour it was opened."""
        counts: Counter[tuple[str, str, datetime]] = Counter()
        for row in self.report_rows():
            hour = row[5].replace(minute=0, second=0, microsecond=0)
            counts[(row[4], "in", hour)] += IN_PER_CONVERSATION
            counts[(row[4], "out", hour)] += OUT_PER_CONVERSATION
        return [
            (
                f"{self.workspace_id}|{self.campaign_id}|{channel}|{direction}|{hour:%Y%m%d%H}",
                self.workspace_id,
                self.campaign_id,
                channel,
                direction,
                hour,
                n,
            )
            for (channel, direction, hour), n in sorted(counts.items())
        ]

    @property
    def messages(self) -> int:
        return self.conversations * (IN_PER_CONVERSATION + OUT_PER_CONVERSATION)


def _audit_rows(month: MonthOfTraffic, conversations: Sequence[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    details = json.dumps({})
    for row in conversations:
        for i in range(FACTS_PER_CONVERSATION):
            yield (
                uuid.uuid4(),
                month.workspace_id,
                row[5] + timedelta(seconds=30 * i),
                "router",
                "message.replied",
                "conversation",
                str(row[0]),
                details,
                row[0],
                row[3],
                row[14],
                month.campaign_id,
                row[8],
                None,
            )


AUDIT_COLUMNS: Final = (
    "id",
    "workspace_id",
    "at",
    "actor",
    "action",
    "subject_type",
    "subject_id",
    "details",
    "conversation_id",
    "customer_id",
    "agent_id",
    "campaign_id",
    "queue_id",
    "dedupe",
)

_WHERE = "workspace_id = $1 AND campaign_id = $2 AND opened_at >= $3 AND opened_at < $4"
CEILINGS: Final = {
    "measures": f"""
        SELECT count(*), count(enqueued_at), count(assigned_at),
               count(*) FILTER (WHERE closed_at IS NOT NULL AND first_response_at IS NULL),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', first_response_at - opened_at)),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY date_part('epoch', first_response_at - opened_at)),
               avg(date_part('epoch', assigned_at - enqueued_at)), avg(waited_s),
               avg(date_part('epoch', closed_at - assigned_at)),
               avg(active_s) FILTER (WHERE assigned_at IS NOT NULL),
               count(*) FILTER (WHERE waited_s <= 60), sum(transfers), sum(requeues), count(reopened_at)
        FROM conversation_report WHERE {_WHERE}""",
    "dispositions": f"""
        SELECT disposition_code, count(*), sum(disposition_amount::numeric)
        FROM conversation_report WHERE {_WHERE} AND disposition_code IS NOT NULL GROUP BY 1""",
    "surveys": f"""
        SELECT survey_kind, count(survey_sent_at), count(survey_score), avg(survey_score)
        FROM conversation_report WHERE {_WHERE} AND survey_kind IS NOT NULL GROUP BY 1""",
    "topics": f"""
        SELECT queue_id, w, count(*) FROM (
            SELECT queue_id, regexp_split_to_table(lower(first_text), '[^[:alpha:]]+') AS w
            FROM conversation_report WHERE {_WHERE}) words
        WHERE length(w) > 2 GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 30""",
}
CEILING_OF: Final = {
    "summary": "measures",
    "queues": "measures",
    "agents": "measures",
    "channels": "measures",
    "dispositions": "dispositions",
    "surveys": "surveys",
    "topics": "topics",
}


async def _fresh_postgres(ctx: Context) -> tuple[str, str, Callable[[], Awaitable[None]]]:
    name = f"centralita_bench_reports_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(ctx.pg_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(ctx.pg_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    base_url = ctx.database_url.rsplit("/", 1)[0]
    base_dsn = ctx.pg_dsn.rsplit("/", 1)[0]
    return f"{base_url}/{name}", f"{base_dsn}/{name}", drop


async def _seed(conn: asyncpg.Connection, month: MonthOfTraffic) -> None:
    now = START
    await conn.execute(
        "INSERT INTO workspace (id, slug, name, created_at) VALUES ($1, 'banco', 'Banco', $2)",
        month.workspace_id,
        now,
    )
    await conn.execute(
        "INSERT INTO campaign (id, workspace_id, name, display_name, timezone, language, manifest, version,"
        " applied_at) VALUES ($1, $2, 'cobranzas', 'Cobranzas', 'America/Bogota', 'es', '{}', 1, $3)",
        month.campaign_id,
        month.workspace_id,
        now,
    )
    for i, queue in enumerate(month.queues):
        config = json.dumps({"sla": {"answer_within_s": 60 * (i + 1), "target_pct": 80}})
        await conn.execute(
            "INSERT INTO queue (id, workspace_id, campaign_id, name, priority, config, active)"
            " VALUES ($1, $2, $3, $4, 5, $5, true)",
            queue,
            month.workspace_id,
            month.campaign_id,
            f"cola{i}",
            config,
        )
    await conn.executemany(
        "INSERT INTO agent (id, workspace_id, email, name, role, skills, capacity, active, created_at,"
        " presence, connected) VALUES ($1, $2, $3, $4, 'agent', '{}', '{}', true, $5, 'offline', false)",
        [
            (a, month.workspace_id, f"a{i}@banco.example", f"Agente {i}", now)
            for i, a in enumerate(month.agents)
        ],
    )


async def load_month(
    dsn: str, month: MonthOfTraffic, *, audit: bool = True, progress: Callable[[str], None] = lambda _: None
) -> dict[str, float]:
    """Bulk-load the month into the migrated database at ``dsn`` (asyncpg form); seconds per table."""
    conn = await asyncpg.connect(dsn)
    took: dict[str, float] = {}
    try:
        await _seed(conn, month)
        t = time.perf_counter()
        rows = list(month.report_rows())
        await conn.copy_records_to_table("conversation_report", records=rows, columns=REPORT_COLUMNS)
        took["conversation_report"] = time.perf_counter() - t
        t = time.perf_counter()
        traffic = month.traffic_rows()
        await conn.copy_records_to_table(
            "traffic_hour",
            records=traffic,
            columns=("bucket", "workspace_id", "campaign_id", "channel", "direction", "hour", "messages"),
        )
        took["traffic_hour"] = time.perf_counter() - t
        progress(f"reports: {len(rows):,} report rows, {len(traffic):,} counters loaded")
        if audit:
            t = time.perf_counter()
            await conn.copy_records_to_table(
                "audit_log", records=_audit_rows(month, rows), columns=AUDIT_COLUMNS
            )
            took["audit_log"] = time.perf_counter() - t
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return took


async def _timed(repeats: int, call: Callable[[], Awaitable[Any]]) -> float:
    await call()  # warm: plans cached, pages in memory
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        await call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _fetching(conn: asyncpg.Connection, sql: str, args: Sequence[Any]) -> Callable[[], Awaitable[Any]]:
    return lambda: conn.fetch(sql, *args)


def _reading(
    database: Any, workspace_id: uuid.UUID, query: Any, *, in_sql: bool | None = None
) -> Callable[[], Awaitable[Any]]:
    from centralita.reports import read_report

    return lambda: read_report(database, workspace_id, query, in_sql=in_sql)


async def run(ctx: Context) -> None:
    from centralita.reports import ReportKind, ReportQuery
    from storage.database import Database, upgrade_schema

    conversations = ctx.size(quick=10_000, full=100_000)
    rng = random.Random(7)
    month = MonthOfTraffic(
        workspace_id=uuid.UUID(int=rng.getrandbits(128)),
        campaign_id=uuid.UUID(int=rng.getrandbits(128)),
        queues=[uuid.UUID(int=rng.getrandbits(128)) for _ in range(3)],
        agents=[uuid.UUID(int=rng.getrandbits(128)) for _ in range(60)],
        conversations=conversations,
    )
    url, dsn, drop = await _fresh_postgres(ctx)
    try:
        await asyncio.to_thread(upgrade_schema, url)
        ctx.progress(f"reports: loading {conversations:,} conversations, {month.messages:,} messages")
        loaded = await load_month(dsn, month, progress=ctx.progress)
        load = load_average()
        database = Database(url)
        conn = await asyncpg.connect(dsn)
        rows: list[list[str]] = []
        try:
            args = (month.workspace_id, month.campaign_id, START, START + timedelta(days=DAYS))
            ceilings = {name: await _timed(3, _fetching(conn, sql, args)) for name, sql in CEILINGS.items()}
            for kind in ReportKind:
                query = ReportQuery(kind, date(2026, 3, 1), date(2026, 3, 31), ("cobranzas",))
                ctx.progress(f"reports: {kind.value}")
                took = await _timed(3, _reading(database, month.workspace_id, query))
                ceiling = ceilings[CEILING_OF[kind.value]]
                ctx.results.add(
                    "reports",
                    f"reports.{kind.value}.s",
                    f"{kind.value} report over {conversations:,} conversations",
                    took,
                    "s",
                    higher_is_better=False,
                    details={
                        "raw_sql_s": ceiling,
                        "ratio": took / ceiling if ceiling else None,
                        "load": load,
                    },
                )
                rows.append(
                    [
                        kind.value,
                        format_value(took * 1000, "ms"),
                        format_value(ceiling * 1000, "ms"),
                        f"{took / ceiling:.1f}×" if ceiling else "-",
                        "yes" if took < 1.0 else "NO",
                    ]
                )
            for kind in (ReportKind.SUMMARY, ReportKind.TOPICS):
                query = ReportQuery(kind, date(2026, 3, 1), date(2026, 3, 31), ("cobranzas",))
                ctx.progress(f"reports: {kind.value}, added up in Python")
                took = await _timed(3, _reading(database, month.workspace_id, query, in_sql=False))
                ceiling = ceilings[CEILING_OF[kind.value]]
                rows.append(
                    [
                        f"{kind.value} (core path)",
                        format_value(took * 1000, "ms"),
                        format_value(ceiling * 1000, "ms"),
                        f"{took / ceiling:.1f}×",
                        "yes" if took < 1.0 else "NO",
                    ]
                )
            grouped = ReportQuery(
                ReportKind.QUEUES, date(2026, 3, 1), date(2026, 3, 31), ("cobranzas",), (Dimension.DAY,)
            )
            took = await _timed(3, _reading(database, month.workspace_id, grouped))
            rows.append(
                [
                    "queues by day",
                    format_value(took * 1000, "ms"),
                    format_value(ceilings["measures"] * 1000, "ms"),
                    f"{took / ceilings['measures']:.1f}×",
                    "yes" if took < 1.0 else "NO",
                ]
            )
        finally:
            await conn.close()
            await database.dispose()
        ctx.results.add_table(
            "reports",
            f"Reports over a month of one campaign on PostgreSQL: {conversations:,} conversations, "
            f"{month.messages:,} messages' counters, {conversations * FACTS_PER_CONVERSATION:,} audit rows "
            f"(loaded in {sum(loaded.values()):.0f} s; load average {load}). Median of 3 warm runs; the raw "
            "SQL is one aggregate over the same rows:",
            ["report", "read_report", "raw SQL", "ratio", "< 1 s"],
            rows,
        )
    finally:
        await drop()
