"""The engine end to end: signed WhatsApp webhooks at fixed offered rates into a running server.

``python -m bench --only stripped,engine`` (PostgreSQL + RabbitMQ) and ``--only engine-embedded``
(SQLite + the in-process broker, what ``make demo`` runs).  Per run:

1. a fresh database is migrated and a campaign applied (one WhatsApp number, one queue, agents
   with 100 WhatsApp chats each), and the engine is started as its own processes
   (``centralita serve``; on PostgreSQL + RabbitMQ a front process for webhooks and agents, one
   for the pipeline and outbound workers and one for the router; embedded, one process);
2. agents connect on ``/ws/agent``, go available, accept every offer and close each
   conversation over the HTTP API a few seconds after it was assigned;
3. an open-loop generator (``bench.loadgen``) posts correctly signed webhooks at each offered
   rate — one in ten the first message of a new customer, seven in ten follow-ups in a
   conversation opened a second earlier, two in ten delivery statuses — and after each step the
   run waits for the
   engine to drain: every message stored, every new conversation offered.

Per rate it reports the webhook answer latency (from when each request was due: no coordinated
omission), the message-to-offer latency (the request's due time to the offer frame arriving at
the agent's socket, same clock), messages lost (accepted with 200 but not stored, or a new
customer never offered), the engine's CPU, and the sustained throughput as a ratio of the
stripped pipeline's ceiling measured in the same run.

``BENCH_PROFILE=DIR`` also records each of the engine's processes with py-spy during the step
nearest 250/s and writes their collapsed stacks and top functions there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from bench.harness import Context, clock, format_value, percentile, stop_process
from bench.loadgen import LoadResult, LoadSpec, hub_signature_headers, run_load

__all__ = ["run", "run_embedded"]

PHONE_NUMBER_ID = "106540352299001"
APP_SECRET = "bench-whatsapp-app-secret"
ENV = {"BENCH_WA_SECRET": APP_SECRET, "BENCH_WA_TOKEN": "bench-token", "BENCH_WA_VERIFY": "bench-verify"}
FULL_RATES = (100.0, 250.0, 500.0, 1000.0, 2000.0)
QUICK_RATES = (100.0, 250.0)
HOLD_S = 4.0  # an agent closes a conversation this long after it was assigned
FOLLOW_UP_LAG_S = 1.0  # a follow-up writes in the conversation opened this long before
DRAIN_LIMIT_S = 60.0
MAX_WEBHOOK_P99_S = 0.5
PROFILE_RATE = 250.0  # BENCH_PROFILE records the step nearest this rate
ROLES = (("router", "router,config"), ("pipeline", "pipeline,outbound,followups,config"))


def _manifest(agents: int) -> str:
    return f"""\
apiVersion: centralita/v1
kind: Campaign
workspace: banco
campaign: {{name: carga, display_name: Carga, timezone: America/Mexico_City}}
channels:
  whatsapp:
    - name: principal
      phone_number_id: "{PHONE_NUMBER_ID}"
      display_phone: "+52 55 4170 2099"
      waba_id: "300000000000099"
      app_id: "400000000000099"
      app_secret_env: BENCH_WA_SECRET
      access_token_env: BENCH_WA_TOKEN
      verify_token_env: BENCH_WA_VERIFY
      default_queue: atencion
skills:
  - name: atencion
queues:
  - name: atencion
    required_skills: {{atencion: 3}}
    channels: [whatsapp]
    sla: {{answer_within_s: 30, target_pct: 80}}
agents:
  - group: asesores
    count: {agents}
    name_pattern: "Asesor {{n}}"
    email_pattern: "asesor{{n}}@banco.example"
    skills: {{atencion: 6}}
    capacity: {{whatsapp: 100}}
"""


# -- the traffic -----------------------------------------------------------------------------


def wa_id(i: int) -> str:
    """A Mexican mobile (WhatsApp's ``521`` form) whose last eight digits are ``i``."""
    return f"52155{i:08d}"


def index_of(identifier_value: str) -> int:
    return int("".join(c for c in identifier_value if c.isdigit())[-8:])


@dataclass
class Traffic:
    """Request ``i``: ``i % 10`` 0 a new customer's first message, 1–7 follow-ups (the customer
    who opened a conversation a second earlier writes again), 8–9 a delivery status.  A contact
    center's traffic is mostly conversations going on, not conversations starting."""

    run: str
    rate: float = 1.0
    step_first: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def kind(self, i: int) -> str:
        slot = i % 10
        if slot == 0:
            return "new"
        if slot < 8:
            return "follow_up" if self.target(i) is not None else "new"
        return "status"

    def target(self, i: int) -> int | None:
        """The new customer (an earlier request of this step) a follow-up comes from."""
        j = (i - int(self.rate * FOLLOW_UP_LAG_S)) // 10 * 10
        return j if j >= self.step_first else None

    def body(self, i: int) -> bytes:
        kind = self.kind(i)
        self.kinds[kind] += 1
        now = str(int(time.time()))
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "525541702099", "phone_number_id": PHONE_NUMBER_ID},
        }
        if kind == "status":
            value["statuses"] = [
                {
                    "id": f"wamid.out.{self.run}.{i}",
                    "status": "delivered",
                    "timestamp": now,
                    "recipient_id": wa_id(i - 8),
                }
            ]
        else:
            customer = i if kind == "new" else self.target(i)
            assert customer is not None
            value["contacts"] = [{"profile": {"name": f"Cliente {customer}"}, "wa_id": wa_id(customer)}]
            text = "Hola, quisiera saber el saldo de mi cuenta" if kind == "new" else "¿Siguen ahí?"
            value["messages"] = [
                {
                    "from": wa_id(customer),
                    "id": f"wamid.in.{self.run}.{i}",
                    "timestamp": now,
                    "type": "text",
                    "text": {"body": text},
                }
            ]
        envelope = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "300000000000099", "changes": [{"field": "messages", "value": value}]}],
        }
        return json.dumps(envelope, separators=(",", ":")).encode()


# -- the agents ------------------------------------------------------------------------------


@dataclass
class Agents:
    """Agents on WebSockets: accept every offer, close each conversation ``HOLD_S`` later."""

    base_url: str
    tokens: list[str]
    session: aiohttp.ClientSession
    offered_at: dict[str, float] = field(default_factory=dict)  # conversation id → first offer
    closed: int = 0
    close_failures: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _offers_changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def connect(self) -> None:
        for token in self.tokens:
            ws = await self.session.ws_connect(
                f"{self.base_url}/ws/agent", params={"access_token": token}, heartbeat=None
            )
            self._sockets.append(ws)
            await ws.send_json({"type": "presence", "presence": "available"})
            self._spawn(self._read(ws, token))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            push = json.loads(frame.data)
            kind = push.get("type")
            if kind == "offer":
                conversation = str(push["conversation_id"])
                self.offered_at.setdefault(conversation, clock())
                await ws.send_json({"type": "offer_answer", "offer_id": push["offer_id"], "accepted": True})
                async with self._offers_changed:
                    self._offers_changed.notify_all()
            elif kind == "assigned":
                self._spawn(self._close_later(str(push["conversation_id"]), token))
            elif kind == "error":
                self.errors.append(str(push.get("error")))

    async def _close_later(self, conversation: str, token: str) -> None:
        await asyncio.sleep(HOLD_S)
        try:
            async with self.session.post(
                f"{self.base_url}/api/conversations/{conversation}/close",
                json={},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                await response.read()
                if response.status == 200:
                    self.closed += 1
                else:
                    self.close_failures[str(response.status)] += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.close_failures[type(exc).__name__] += 1

    async def offers_reach(self, count: int, within_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s), self._offers_changed:
                await self._offers_changed.wait_for(lambda: len(self.offered_at) >= count)
        return len(self.offered_at) >= count

    async def close(self) -> None:
        for ws in self._sockets:
            await ws.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- the engine process ----------------------------------------------------------------------


@dataclass
class Engine:
    process: asyncio.subprocess.Process
    url: str
    log_path: Path
    _drain: asyncio.Task[None] | None = None

    def cpu_s(self) -> float:
        """User + system CPU seconds of the engine process so far."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def _engine_env(database_url: str, broker_url: str, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ENV)
    env.update(
        {
            "CENTRALITA_DATABASE_URL": database_url,
            "CENTRALITA_BROKER_URL": broker_url,
            "CENTRALITA_BROKER_PREFIX": prefix,
            "CENTRALITA_HOST": "127.0.0.1",
            "CENTRALITA_PORT": "0",
            "CENTRALITA_ENVIRONMENT": "production",
            "CENTRALITA_LOG_FORMAT": "json",
            "CENTRALITA_LOG_LEVEL": "INFO",
            "CENTRALITA_ROUTER_RAMP_PERIOD_S": "0",
            "CENTRALITA_GRAPH_BASE_URL": "http://127.0.0.1:9",  # nothing is sent; never off-host
            "CENTRALITA_OFFER_TIMEOUT_S": "60",
        }
    )
    return env


async def start_engine(env: Mapping[str, str], workdir: Path, name: str = "engine") -> Engine:
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from centralita.cli import main; sys.exit(main(['serve']))",
        env=dict(env),
        stdout=log_file,
        stderr=asyncio.subprocess.PIPE,
    )
    log_file.close()
    assert process.stderr is not None
    url = None
    try:
        async with asyncio.timeout(60):
            while url is None:
                line = await process.stderr.readline()
                if not line:
                    break
                text = line.decode(errors="replace")
                if "Centralita listening on " in text:
                    url = text.split("Centralita listening on ", 1)[1].split()[0]
    except TimeoutError:
        pass
    if url is None:
        process.kill()
        await process.wait()
        raise RuntimeError(f"the engine did not start; see {log_path}")
    engine = Engine(process, url, log_path)

    async def drain_stderr() -> None:
        assert process.stderr is not None
        with log_path.open("ab") as out:
            while line := await process.stderr.readline():
                out.write(line)

    engine._drain = asyncio.create_task(drain_stderr())
    return engine


async def start_deployment(env: Mapping[str, str], workdir: Path, backend: str) -> list[Engine]:
    """The engine's processes, the front one (webhooks, agents) first.

    On PostgreSQL + RabbitMQ the engine runs as a deployment on more than one core would
    (``CENTRALITA_ROLES``): the router in a process of its own, the pipeline and outbound workers
    in another, and the front one (webhooks, the agents' sockets and API) runs no worker.  The
    embedded broker lives in one process, so does the whole embedded engine."""
    processes: list[Engine] = []
    try:
        if backend == "production":
            for name, roles in ROLES:
                processes.append(await start_engine({**env, "CENTRALITA_ROLES": roles}, workdir, name))
            env = {**env, "CENTRALITA_ROLES": "config"}
        processes.insert(0, await start_engine(env, workdir, "front" if processes else "engine"))
    except BaseException:
        for process in processes:
            await stop_engine(process)
        raise
    return processes


async def stop_engine(engine: Engine) -> None:
    await stop_process(engine.process, timeout_s=20)
    if engine._drain is not None:
        engine._drain.cancel()
        await asyncio.gather(engine._drain, return_exceptions=True)


# -- setting up the database -----------------------------------------------------------------


async def prepare(database_url: str, agents: int, extra_manifest: str = "") -> list[str]:
    """Migrate, apply the campaign (``extra_manifest``: more of its sections, in YAML), issue one
    token per agent."""
    from centralita.campaigns import apply_manifest
    from core.campaign import parse_manifest
    from storage.database import Database, upgrade_schema
    from storage.tables import AgentRow, WorkspaceRow
    from storage.tokens import TokenStore

    await asyncio.to_thread(upgrade_schema, database_url)
    db = Database(database_url)
    try:
        now = datetime.now(UTC)
        await apply_manifest(db, parse_manifest(_manifest(agents) + extra_manifest), actor="bench", now=now)
        async with db.transaction() as session:
            workspace_id = (
                await session.execute(sa.select(WorkspaceRow.id).where(WorkspaceRow.slug == "banco"))
            ).scalar_one()
            rows = (await session.execute(sa.select(AgentRow.id).order_by(AgentRow.email))).scalars().all()
            tokens = TokenStore(session)
            return [await tokens.issue(workspace_id, "agent", agent, "bench", now) for agent in rows]
    finally:
        await db.dispose()


@dataclass(frozen=True)
class Stored:
    messages: int
    origins: dict[str, int]  # conversation id → request index of the customer who opened it


async def analyze(database_url: str) -> None:
    """What autovacuum does on a real server (this one runs with it off): fresh statistics, so
    plans chosen on empty tables do not outlive them."""
    if not database_url.startswith("postgresql"):
        return
    from storage.database import Database

    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:  # committed: a rolled-back ANALYZE keeps nothing
            await conn.execute(sa.text("ANALYZE"))
    finally:
        await db.dispose()


async def stored(database_url: str) -> Stored:
    from storage.database import Database
    from storage.tables import ConversationRow, IdentifierRow, MessageRow

    db = Database(database_url)
    try:
        async with db.session() as session:
            messages = (
                await session.execute(
                    sa.select(sa.func.count()).where(
                        MessageRow.direction == "in", MessageRow.kind == "message"
                    )
                )
            ).scalar_one()
            rows = (
                await session.execute(
                    sa.select(ConversationRow.id, IdentifierRow.value).join(
                        IdentifierRow, IdentifierRow.id == ConversationRow.origin_identifier_id
                    )
                )
            ).all()
    finally:
        await db.dispose()
    return Stored(int(messages), {str(cid): index_of(value) for cid, value in rows})


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Step:
    load: LoadResult
    kinds: Counter[str]
    drained_s: float
    lost_messages: int
    never_offered: int
    to_offer: list[float]
    cpu_share: float
    rss_mb: float
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds of each engine process
    client_cpu_share: float = 0.0  # cores busy in the load generator

    @property
    def cpu_ms_per_message(self) -> float:
        """Engine CPU (all its processes, the drain included) per webhook answered 200."""
        return 1000 * sum(self.cpu_s.values()) / self.load.ok if self.load.ok else float("nan")

    def cpu_split(self) -> str:
        total = sum(self.cpu_s.values())
        if len(self.cpu_s) < 2 or total <= 0:
            return f"{self.cpu_share:.2f}"
        parts = ", ".join(f"{name} {self.cpu_share * cpu / total:.2f}" for name, cpu in self.cpu_s.items())
        return f"{self.cpu_share:.2f} ({parts})"

    @property
    def sustained(self) -> bool:
        return (
            self.load.sustained(max_p99_s=MAX_WEBHOOK_P99_S)
            and self.lost_messages == 0
            and self.never_offered == 0
            and bool(self.to_offer)
            and percentile(self.to_offer, 99) <= 1.0
        )

    def row(self, ceiling: float | None) -> list[str]:
        latency = self.load.latency
        p50 = percentile(self.to_offer, 50) * 1000 if self.to_offer else float("nan")
        p99 = percentile(self.to_offer, 99) * 1000 if self.to_offer else float("nan")
        ratio = f"{self.load.achieved_rate / ceiling:.2f}" if ceiling else ""
        return [
            format_value(self.load.offered_rate, "msg/s"),
            format_value(self.load.achieved_rate, "msg/s"),
            format_value(latency.p50 * 1000, "ms") if latency else "",
            format_value(latency.p99 * 1000, "ms") if latency else "",
            format_value(p50, "ms"),
            format_value(p99, "ms"),
            str(self.load.failed + self.load.dropped),
            str(self.lost_messages + self.never_offered),
            f"{self.drained_s:.1f} s",
            self.cpu_split(),
            f"{self.cpu_ms_per_message:.1f} ms",
            f"{self.client_cpu_share:.2f}",
            f"{self.rss_mb:.0f} MB",
            "yes" if self.sustained else "no",
            ratio,
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "load": self.load.as_dict(),
            "kinds": dict(self.kinds),
            "drained_s": round(self.drained_s, 2),
            "lost_messages": self.lost_messages,
            "never_offered": self.never_offered,
            "to_offer_ms": {
                "count": len(self.to_offer),
                "p50": round(percentile(self.to_offer, 50) * 1000, 1) if self.to_offer else None,
                "p99": round(percentile(self.to_offer, 99) * 1000, 1) if self.to_offer else None,
            },
            "engine_cpu_share": round(self.cpu_share, 2),
            "engine_cpu_s": {name: round(cpu, 2) for name, cpu in self.cpu_s.items()},
            "engine_cpu_ms_per_message": round(self.cpu_ms_per_message, 2) if self.load.ok else None,
            "client_cpu_share": round(self.client_cpu_share, 2),
            "engine_rss_mb": round(self.rss_mb, 1),
            "sustained": self.sustained,
        }


def _keep_log(log_path: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(log_path, out_dir / log_path.name)


def _py_spy(out_dir: Path) -> str | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    return spy


async def _profile(engine: Engine, seconds: float, out_dir: Path) -> asyncio.subprocess.Process | None:
    spy = _py_spy(out_dir)
    if spy is None:
        return None
    return await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(engine.process.pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(out_dir / f"{engine.log_path.stem}.collapsed"),
        "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def _frame(frame: str) -> str:
    """``handle (centralita/pipeline/worker.py:123)`` → ``handle (centralita/pipeline/worker.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if where else name


def top_functions(collapsed: Path, limit: int = 20) -> list[tuple[str, float, float]]:
    """``(function, self share, inclusive share)`` of the samples in a py-spy collapsed file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return []
    return [(name, n / total, inclusive[name] / total) for name, n in own.most_common(limit)]


async def run_engine(ctx: Context, backend: str, database_url: str, broker_url: str) -> None:
    quick = ctx.quick
    rates = QUICK_RATES if quick else FULL_RATES
    step_s = 3.0 if quick else 10.0
    agents = 20 if quick else 100
    bench_name = "engine" if backend == "production" else "engine-embedded"
    ctx.progress(f"{bench_name}: migrating and applying the campaign ({agents} agents)")
    tokens = await prepare(database_url, agents)
    run_id = f"{int(time.time())}"
    traffic = Traffic(run=run_id)
    env = _engine_env(database_url, broker_url, f"{ctx.prefix}engine.")
    processes = await start_deployment(env, ctx.workdir, backend)
    engine = processes[0]
    profile_dir = os.environ.get("BENCH_PROFILE")
    steps: list[Step] = []
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=2000), timeout=aiohttp.ClientTimeout(total=30)
        ) as session:
            floor = Agents(engine.url, tokens, session)
            await floor.connect()
            url = f"{engine.url}/webhooks/whatsapp"
            headers = hub_signature_headers(APP_SECRET)
            first = 0
            expected_messages = 0
            ctx.progress(f"{bench_name}: warm-up")
            for offered in (50.0, *rates):
                warm_up = offered == 50.0
                duration = 2.0 if warm_up else step_s
                traffic.rate, traffic.step_first = offered, first
                traffic.kinds = Counter()
                offers_before = len(floor.offered_at)
                cpu_before, started = [p.cpu_s() for p in processes], clock()
                spies: list[asyncio.subprocess.Process] = []
                if profile_dir and not warm_up and offered == min(rates, key=lambda r: abs(r - PROFILE_RATE)):
                    for process in processes:
                        spy = await _profile(process, duration, Path(profile_dir) / backend)
                        if spy is not None:
                            spies.append(spy)
                spec = LoadSpec(
                    url=url,
                    rate=offered,
                    count=int(offered * duration),
                    duration_s=duration,
                    body=traffic.body,
                    headers=headers,
                    first_index=first,
                    max_in_flight=1500,
                )
                load = await run_load(spec, session)
                kinds = Counter(traffic.kinds)
                expected_messages += kinds["new"] + kinds["follow_up"]
                # Drain: every new customer offered, every message stored.
                await floor.offers_reach(offers_before + kinds["new"], DRAIN_LIMIT_S)
                found = await stored(database_url)
                deadline = clock() + DRAIN_LIMIT_S
                while found.messages < expected_messages and clock() < deadline:
                    await asyncio.sleep(0.5)
                    found = await stored(database_url)
                drained_s = clock() - started - load.elapsed_s
                cpu_s = {p.log_path.stem: p.cpu_s() - b for p, b in zip(processes, cpu_before, strict=True)}
                cpu_share = sum(cpu_s.values()) / max(1e-9, clock() - started)
                for spy in spies:
                    await spy.wait()
                new_indexes = {first + k for k in range(load.due) if traffic.kind(first + k) == "new"}
                interval = 1.0 / offered
                to_offer: list[float] = []
                offered_new = 0
                for conversation, index in found.origins.items():
                    if index in new_indexes and conversation in floor.offered_at:
                        offered_new += 1
                        due = load.started_at + (index - first) * interval
                        to_offer.append(floor.offered_at[conversation] - due)
                first += load.due
                await analyze(database_url)
                if warm_up:
                    continue
                step = Step(
                    load=load,
                    kinds=kinds,
                    drained_s=max(0.0, drained_s),
                    lost_messages=max(0, expected_messages - found.messages),
                    never_offered=max(0, kinds["new"] - offered_new),
                    to_offer=to_offer,
                    cpu_share=cpu_share,
                    rss_mb=sum(p.rss_mb() for p in processes),
                    cpu_s=cpu_s,
                    client_cpu_share=load.client_cpu_share,
                )
                steps.append(step)
                p99 = percentile(to_offer, 99) * 1000 if to_offer else float("nan")
                ctx.progress(
                    f"{bench_name}: offered {offered:g}/s → {load.achieved_rate:,.0f}/s, "
                    f"message→offer p99 {p99:.0f} ms, lost {step.lost_messages + step.never_offered}"
                )
                if not step.sustained and offered >= 500:  # 500/s is where the targets are read
                    break
            await floor.close()
            close_failures = dict(floor.close_failures)
            socket_errors = floor.errors[:5]
    finally:
        for process in processes:
            await stop_engine(process)
            if profile_dir:
                _keep_log(process.log_path, Path(profile_dir) / backend)

    _record(ctx, bench_name, backend, steps, step_s, agents, close_failures, socket_errors, profile_dir)


def _record(
    ctx: Context,
    bench_name: str,
    backend: str,
    steps: Sequence[Step],
    step_s: float,
    agents: int,
    close_failures: Mapping[str, int],
    socket_errors: Sequence[str],
    profile_dir: str | None,
) -> None:
    results = ctx.results
    stripped = results.get("stripped.max_sustained")
    ceiling = stripped.value if stripped is not None and stripped.value > 0 else None
    sustained = [s for s in steps if s.sustained]
    best = max(sustained, key=lambda s: s.load.achieved_rate) if sustained else None
    details: dict[str, Any] = {
        "backend": backend,
        "agents": agents,
        "step_s": step_s,
        "hold_s": HOLD_S,
        "mix": "10% new customers, 70% follow-ups (from customers who wrote 1 s earlier), 20% statuses",
        "criterion": (
            "every webhook answered 200 at ≥95% of the offered rate with p99 ≤ "
            f"{MAX_WEBHOOK_P99_S * 1000:g} ms, "
            "nothing lost, every new customer offered, message→offer p99 ≤ 1 s"
        ),
        "steps": [s.as_dict() for s in steps],
        "close_failures": dict(close_failures),
        "socket_errors": list(socket_errors),
    }
    results.add(
        bench_name,
        f"{bench_name}.max_sustained",
        f"engine end to end ({backend}), max sustained inbound messages",
        best.load.achieved_rate if best else 0.0,
        "msg/s",
        ceiling="stripped.max_sustained" if stripped is not None and backend == "production" else None,
        details=details,
    )
    at_500 = next((s for s in steps if s.load.offered_rate == 500.0), None)
    if at_500 is not None and at_500.load.latency is not None:
        results.add(
            bench_name,
            f"{bench_name}.webhook_p99_at_500",
            "webhook answer p99 at 500 msg/s offered",
            at_500.load.latency.p99 * 1000,
            "ms",
            higher_is_better=False,
        )
        if at_500.to_offer:
            results.add(
                bench_name,
                f"{bench_name}.to_offer_p99_at_500",
                "message-to-offer p99 at 500 msg/s offered",
                percentile(at_500.to_offer, 99) * 1000,
                "ms",
                higher_is_better=False,
            )
    results.add_table(
        bench_name,
        f"Steps ({backend}; open loop, {step_s:g} s each, {agents} agents accepting every offer and "
        f"closing {HOLD_S:g} s after assignment; latency from when each request was due; "
        "failed = not answered 200 or not sent; lost = accepted but not stored, or a new customer "
        "never offered; drain = time after the last answer until all was stored and offered; "
        "CPU = cores busy in the engine's processes (on PostgreSQL + RabbitMQ: a front one for "
        "webhooks and agents, one for the pipeline and outbound, one for the router); "
        "CPU/msg = the engine's CPU per webhook answered; client CPU = cores busy in the load "
        "generator; ratio = achieved / stripped ceiling):",
        [
            "offered",
            "achieved",
            "webhook p50",
            "webhook p99",
            "msg→offer p50",
            "msg→offer p99",
            "failed",
            "lost",
            "drain",
            "engine CPU",
            "CPU/msg",
            "client CPU",
            "engine RSS",
            "sustained",
            "ratio",
        ],
        [s.row(ceiling) for s in steps],
    )
    if profile_dir:
        for collapsed in sorted((Path(profile_dir) / backend).glob("*.collapsed")):
            top = top_functions(collapsed)
            if not top:
                continue
            (collapsed.parent / f"{collapsed.stem}.top.txt").write_text(
                "\n".join(f"{own:6.1%} {incl:6.1%}  {name}" for name, own, incl in top) + "\n"
            )
            results.add_table(
                bench_name,
                f"Where the {collapsed.stem} process's time goes (py-spy, the step nearest 250 msg/s; "
                "self and inclusive share of samples):",
                ["function", "self", "inclusive"],
                [[name, f"{own:.1%}", f"{incl:.1%}"] for name, own, incl in top],
            )


async def run(ctx: Context) -> None:
    """PostgreSQL + RabbitMQ, the production path."""
    await run_engine(ctx, "production", ctx.database_url, ctx.broker_url)


async def run_embedded(ctx: Context) -> None:
    """SQLite + the in-process broker, the embedded default."""
    path = ctx.workdir / "engine-embedded.db"
    await run_engine(ctx, "embedded", f"sqlite+aiosqlite:///{path}", "memory://")
