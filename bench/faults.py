"""Faults under load: does a message answered 200 reach the database and an agent, whatever fails?

``python -m bench --only faults`` (full: 500 signed WhatsApp messages/s) and ``--quick``
(reduced).  Each fault runs on its own, on a PostgreSQL cluster and a RabbitMQ node the run
starts itself (``bench.private``) — never the shared servers:

1. a fresh database is migrated and the campaign of ``bench.engine`` applied (one WhatsApp
   number, one queue, agents with 100 chats each); the engine runs as its own processes
   (``centralita serve``): an active router and a standby (``CENTRALITA_ROLES=router,config``)
   and two webhook processes (``pipeline,outbound,followups,config``); every agent's socket
   is on the first webhook process, the *gateway*;
2. agents on ``/ws/agent`` accept every offer and close each conversation 4 s after it was
   assigned; an agent whose socket drops reconnects, to the other webhook process if its own
   is gone;
3. an open-loop sender posts signed webhooks (10 % new customers, 70 % follow-ups, 20 %
   statuses, as ``bench.engine``) to the webhook processes in turn and, like Meta, retries any
   answer but 200 with exponential backoff (0.5 s doubling to 8 s, jittered) on the next one;
4. ``fault_at_s`` into the load, one fault:

   ``rabbitmq``  SIGKILL of the node's ``beam.smp``, restarted ``outage_s`` later;
   ``postgres``  ``pg_ctl stop -m immediate``, restarted ``outage_s`` later;
   ``pipeline``  SIGKILL of the second webhook process (no agents on it), restarted later;
   ``router``    SIGKILL of the active router (the one holding ``router_epoch``), restarted
                 later as a standby;
   ``gateway``   SIGKILL of the process holding every agent's socket, restarted later.

Per fault it reports accepted (answered 200), stored (inbound messages in the database), lost
(accepted, not stored at the end — dead-lettered ones included), dead-lettered (messages in the
broker's ``*.dlq`` queues), duplicated (a provider id stored twice), non-200 answers (and
connection failures), conversations offered, double assignments (two assignment rows of one
conversation overlapping in time), offers withdrawn, time to recover, and whether the engine
needed a restart.  *Recovered* is the first moment after the fault's end at which both the
stored-message count and the offered-conversation count have moved past their values at the
fault's end; the fault ends when the server is back (``rabbitmq``, ``postgres``) or at the kill
(``pipeline``, ``router``, ``gateway``: the rest of the engine is expected to carry on while a
supervisor restarts the process).  An engine that has not recovered ``recover_deadline_s``
after the fault's end *needed a restart*: the benchmark then restarts every engine process, as
an operator would, so that the losses it reports are the ones a restart does not bring back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.engine import APP_SECRET, ENV, Engine, Traffic, prepare, stop_engine
from bench.harness import Context, clock, format_table, load_average
from bench.loadgen import hub_signature_headers
from bench.private import PrivatePostgres, PrivateRabbitMQ, free_port

__all__ = ["FAULTS", "FaultReport", "Plan", "run", "run_fault"]

FAULTS = ("rabbitmq", "postgres", "pipeline", "router", "gateway")
HOLD_S = 4.0  # an agent closes a conversation this long after it was assigned
SAMPLE_S = 0.5


@dataclass(frozen=True)
class Plan:
    rate: float = 500.0
    duration_s: float = 40.0
    fault_at_s: float = 10.0
    outage_s: float = 10.0
    agents: int = 40
    recover_deadline_s: float = 30.0
    """After the fault's end: not recovered by then = the engine needed a restart."""
    drain_s: float = 300.0
    """After the load: at most this long for every accepted message to be stored and offered."""
    stall_s: float = 20.0
    """The drain ends early when nothing moved for this long."""
    standby_router: bool = True
    webhook_processes: int = 2
    restart_when_stuck: bool = True
    """Restart every engine process when it did not recover (a person would); off in tests."""
    sender_give_up_s: float = 90.0
    """After the load: a message still not answered 200 by then is given up (never accepted)."""


FULL = Plan()
QUICK = Plan(rate=150.0, duration_s=25.0, fault_at_s=6.0, outage_s=6.0, agents=20, drain_s=180.0)


@dataclass
class FaultReport:
    fault: str
    plan: Plan
    sent: int = 0
    accepted: int = 0
    accepted_messages: int = 0
    stored: int = 0
    lost: int = 0
    dead_lettered: int = 0
    dead_letter_queues: dict[str, int] = field(default_factory=dict)
    duplicated: int = 0
    non_200: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    given_up: int = 0
    conversations: int = 0
    offered: int = 0
    double_assignments: int = 0
    offers_withdrawn: dict[str, int] = field(default_factory=dict)
    recovered_s: float | None = None
    needed_restart: bool = False
    drained: bool = False
    router_takeover_s: float | None = None
    agent_reconnects: int = 0
    server_deadlocks: int = 0
    load_average: list[float] | None = None
    timeline: list[tuple[float, int | None, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def withdrawn(self) -> int:
        return sum(self.offers_withdrawn.values())

    def row(self) -> list[str]:
        return [
            self.fault,
            f"{self.accepted_messages:,}",
            f"{self.stored:,}",
            f"{self.lost:,}",
            f"{self.dead_lettered:,}",
            str(self.duplicated),
            f"{self.non_200:,}",
            f"{self.offered:,} / {self.conversations:,}",
            str(self.double_assignments),
            f"{self.withdrawn:,}",
            "never" if self.recovered_s is None else f"{self.recovered_s:.1f} s",
            "yes" if self.needed_restart else "no",
        ]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["plan"] = asdict(self.plan)
        data["offers_withdrawn_total"] = self.withdrawn
        return data


HEADERS = [
    "fault",
    "accepted",
    "stored",
    "lost",
    "dead-lettered",
    "duplicated",
    "non-200",
    "offered / conversations",
    "double assignments",
    "offers withdrawn",
    "recovered after",
    "needed restart",
]


def table(reports: Sequence[FaultReport], *, markdown: bool = False) -> str:
    return format_table(HEADERS, [r.row() for r in reports], markdown=markdown)


# -- the engine's processes ------------------------------------------------------------------


@dataclass
class Slot:
    """One engine process the run can kill and start again, on the same port."""

    name: str
    roles: str
    port: int
    engine: Engine | None = None
    generation: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Cluster:
    def __init__(self, env: Mapping[str, str], workdir: Path, plan: Plan) -> None:
        self.env = dict(env)
        self.workdir = workdir
        self.slots: dict[str, Slot] = {}
        webhook = "pipeline,outbound,followups,config"
        self.slots["router-a"] = Slot("router-a", "router,config", free_port())
        if plan.standby_router:
            self.slots["router-b"] = Slot("router-b", "router,config", free_port())
        for n in range(1, plan.webhook_processes + 1):
            self.slots[f"web-{n}"] = Slot(f"web-{n}", webhook, free_port())

    @property
    def webhook_urls(self) -> list[str]:
        return [s.url for s in self.slots.values() if s.name.startswith("web-")]

    async def start(self, name: str) -> None:
        slot = self.slots[name]
        slot.generation += 1
        env = {**self.env, "CENTRALITA_ROLES": slot.roles, "CENTRALITA_PORT": str(slot.port)}
        slot.engine = await _start_engine(env, self.workdir / f"{name}.{slot.generation}.log")

    async def start_all(self) -> None:
        for name in self.slots:  # the first router started is the active one
            await self.start(name)

    async def kill(self, name: str) -> None:
        """SIGKILL that process (by its PID)."""
        slot = self.slots[name]
        if slot.engine is None:
            return
        process = slot.engine.process
        if process.returncode is None:
            process.kill()
        await process.wait()
        await stop_engine(slot.engine)
        slot.engine = None

    async def stop_all(self) -> None:
        for slot in self.slots.values():
            if slot.engine is not None:
                await stop_engine(slot.engine)
                slot.engine = None

    async def restart_all(self) -> None:
        await self.stop_all()
        await self.start_all()

    def by_pid(self, pid: int) -> str | None:
        for slot in self.slots.values():
            if slot.engine is not None and slot.engine.process.pid == pid:
                return slot.name
        return None


async def _start_engine(env: Mapping[str, str], log_path: Path) -> Engine:
    """``centralita serve`` as its own process, every line it writes kept in ``log_path``; back
    once it listens."""
    tree = os.environ.get("BENCH_ENGINE_TREE")  # another checkout's code (e.g. an older commit)
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from centralita.cli import main; sys.exit(main(['serve']))",
            env={**env, "PYTHONPATH": tree} if tree else dict(env),
            cwd=tree or None,
            stdout=log_file,
            stderr=asyncio.subprocess.PIPE,
        )
    assert process.stderr is not None
    stderr = process.stderr
    listening = asyncio.get_running_loop().create_future()

    async def drain() -> None:
        with log_path.open("ab") as out:
            while line := await stderr.readline():
                out.write(line)
                out.flush()
                text = line.decode(errors="replace")
                if "Centralita listening on " in text and not listening.done():
                    listening.set_result(text.split("Centralita listening on ", 1)[1].split()[0])
        if not listening.done():
            listening.set_exception(RuntimeError(f"the engine exited before it listened; see {log_path}"))

    task = asyncio.create_task(drain())
    try:
        url = await asyncio.wait_for(asyncio.shield(listening), timeout=60)
    except (TimeoutError, RuntimeError):
        if process.returncode is None:
            process.kill()
        await process.wait()
        await asyncio.gather(task, return_exceptions=True)
        raise RuntimeError(f"the engine did not start; see {log_path}") from None
    engine = Engine(process, url, log_path)
    engine._drain = task
    return engine


# -- the sender: Meta's retries --------------------------------------------------------------


class Sender:
    """Open loop: message ``i`` is due at ``t0 + i / rate``; any answer but 200 (or none) is
    retried with backoff on the next webhook process, until ``give_up_at``."""

    def __init__(self, urls: Sequence[str], traffic: Traffic, session: aiohttp.ClientSession) -> None:
        self.urls = list(urls)
        self.traffic = traffic
        self.session = session
        self.sign = hub_signature_headers(APP_SECRET)
        self.accepted_ids: set[str] = set()
        self.accepted = 0
        self.answers: Counter[str] = Counter()
        self.given_up = 0
        self.sent = 0
        self.give_up_at = float("inf")
        self._tasks: set[asyncio.Task[None]] = set()

    async def _one(self, i: int) -> None:
        body = self.traffic.body(i)
        headers = self.sign(i, body)
        kind = self.traffic.kind(i)
        attempt = 0
        while True:
            url = self.urls[(i + attempt) % len(self.urls)] + "/webhooks/whatsapp"
            try:
                async with self.session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = str(response.status)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                status = type(exc).__name__
            self.answers[status] += 1
            if status == "200":
                self.accepted += 1
                if kind != "status":
                    self.accepted_ids.add(f"wamid.in.{self.traffic.run}.{i}")
                return
            delay = min(8.0, 0.5 * 2**attempt) * random.uniform(0.8, 1.2)
            if clock() + delay > self.give_up_at:
                self.given_up += 1
                return
            attempt += 1
            await asyncio.sleep(delay)

    async def run(self, rate: float, duration_s: float) -> None:
        count = int(rate * duration_s)
        interval = 1.0 / rate
        start = clock()
        i = 0
        while i < count:
            now = clock()
            while i < count and start + i * interval <= now:
                task = asyncio.create_task(self._one(i))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                self.sent += 1
                i += 1
            if i < count:
                await asyncio.sleep(max(0.0, start + i * interval - clock()))

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def finish(self, give_up_at: float) -> None:
        self.give_up_at = give_up_at
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, give_up_at - clock()) + 15):
                await asyncio.gather(*self._tasks, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- the agents ------------------------------------------------------------------------------


class Floor:
    """Agents on WebSockets that accept every offer, close each conversation ``HOLD_S`` after it
    was assigned, and reconnect (to the next process in ``urls``) when their socket drops."""

    def __init__(self, urls: Sequence[str], tokens: Sequence[str], session: aiohttp.ClientSession) -> None:
        self.urls = list(urls)
        self.tokens = list(tokens)
        self.session = session
        self.offered: set[str] = set()
        self.pushes: Counter[str] = Counter()
        self.reconnects = 0
        self.close_failures: Counter[str] = Counter()
        self.connected = 0
        self._stopping = False
        self._all_connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sockets: set[aiohttp.ClientWebSocketResponse] = set()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self, within_s: float = 30.0) -> None:
        for token in self.tokens:
            self._spawn(self._agent(token))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_connected.wait(), timeout=within_s)
        if self.connected < len(self.tokens):
            raise RuntimeError(f"only {self.connected} of {len(self.tokens)} agents connected")

    async def _agent(self, token: str) -> None:
        attempt = 0
        first = True
        while not self._stopping:
            url = self.urls[attempt % len(self.urls)]
            try:
                ws = await self.session.ws_connect(
                    f"{url}/ws/agent", params={"access_token": token}, heartbeat=5.0
                )
            except (aiohttp.ClientError, TimeoutError, OSError):
                attempt += 1
                await asyncio.sleep(min(2.0, 0.2 * attempt))
                continue
            self._sockets.add(ws)
            try:
                await ws.send_json({"type": "presence", "presence": "available"})
                if first:
                    self.connected += 1
                    first = False
                    if self.connected == len(self.tokens):
                        self._all_connected.set()
                else:
                    self.reconnects += 1
                await self._read(ws, token)
            except (aiohttp.ClientError, TimeoutError, OSError, ConnectionResetError):
                pass
            finally:
                self._sockets.discard(ws)
                with contextlib.suppress(Exception):
                    await ws.close()
            attempt += 1
            if not self._stopping:
                await asyncio.sleep(0.2)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            push = json.loads(frame.data)
            kind = str(push.get("type"))
            self.pushes[kind] += 1
            if kind == "offer":
                self.offered.add(str(push["conversation_id"]))
                await ws.send_json({"type": "offer_answer", "offer_id": push["offer_id"], "accepted": True})
            elif kind == "assigned":
                self._spawn(self._close_later(str(push["conversation_id"]), token))

    async def _close_later(self, conversation: str, token: str) -> None:
        await asyncio.sleep(HOLD_S)
        for attempt in range(30):  # about 30 s: through an outage of the database
            url = self.urls[attempt % len(self.urls)]
            try:
                async with self.session.post(
                    f"{url}/api/conversations/{conversation}/close",
                    json={},
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    await response.read()
                    if response.status < 500:
                        if response.status != 200:
                            self.close_failures[str(response.status)] += 1
                        return
                    self.close_failures[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                self.close_failures[type(exc).__name__] += 1
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        self._stopping = True
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- the database's answers ------------------------------------------------------------------


STORED_SQL = "SELECT count(*) FROM message WHERE direction = 'in' AND kind = 'message'"
DUPLICATED_SQL = """
SELECT count(*) FROM (
  SELECT 1 FROM message WHERE direction = 'in' AND external_id IS NOT NULL
  GROUP BY channel, external_id HAVING count(*) > 1
) AS twice
"""
DOUBLE_ASSIGNMENTS_SQL = """
SELECT count(DISTINCT a.conversation_id) FROM assignment a JOIN assignment b
  ON a.conversation_id = b.conversation_id AND a.id < b.id
 AND a.assigned_at < COALESCE(b.ended_at, 'infinity')
 AND b.assigned_at < COALESCE(a.ended_at, 'infinity')
"""


async def _stored_count(dsn: str) -> int | None:
    try:
        connection = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return int(await connection.fetchval(STORED_SQL, timeout=5))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    finally:
        with contextlib.suppress(Exception):
            await connection.close()


async def _active_router_pid(dsn: str) -> int | None:
    try:
        connection = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        holder = await connection.fetchval("SELECT holder FROM router_epoch ORDER BY taken_at DESC LIMIT 1")
    finally:
        await connection.close()
    parts = str(holder or "").split(":")
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


async def _final_counts(dsn: str, report: FaultReport, accepted_ids: set[str]) -> None:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        stored_ids = {
            r[0]
            for r in await connection.fetch(
                "SELECT external_id FROM message WHERE direction = 'in' AND kind = 'message'"
            )
        }
        report.stored = len(stored_ids)
        report.lost = len(accepted_ids - stored_ids)
        report.duplicated = int(await connection.fetchval(DUPLICATED_SQL))
        report.conversations = int(await connection.fetchval("SELECT count(*) FROM conversation"))
        report.offered = int(await connection.fetchval("SELECT count(DISTINCT conversation_id) FROM offer"))
        report.double_assignments = int(await connection.fetchval(DOUBLE_ASSIGNMENTS_SQL))
        report.offers_withdrawn = {
            str(r["reason"]): int(r["n"])
            for r in await connection.fetch(
                "SELECT coalesce(reason, '?') AS reason, count(*) AS n FROM offer "
                "WHERE status = 'withdrawn' GROUP BY 1 ORDER BY 2 DESC"
            )
        }
    finally:
        await connection.close()


# -- one fault -------------------------------------------------------------------------------


@dataclass
class Progress:
    """Samples every ``SAMPLE_S``: (seconds since the load started, stored, offered)."""

    started: float
    dsn: str
    floor: Floor
    timeline: list[tuple[float, int | None, int]] = field(default_factory=list)
    last_stored: int = 0
    sampled: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def sample(self) -> None:
        stored = await _stored_count(self.dsn)
        if stored is not None:
            self.last_stored = max(self.last_stored, stored)
        self.timeline.append((round(clock() - self.started, 2), stored, len(self.floor.offered)))
        async with self.sampled:
            self.sampled.notify_all()

    async def loop(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(SAMPLE_S)

    def moved_since(self, at: float) -> float | None:
        """Seconds after ``at`` (since the start) until stored and offered both moved past their
        values at ``at``; None if they have not (yet)."""
        before = [s for s in self.timeline if s[0] <= at]
        base_stored = max((s[1] for s in before if s[1] is not None), default=0)
        base_offered = max((s[2] for s in before), default=0)
        stored_at = next(
            (t for t, s, _ in self.timeline if t > at and s is not None and s > base_stored), None
        )
        offered_at = next((t for t, _, o in self.timeline if t > at and o > base_offered), None)
        if stored_at is None or offered_at is None:
            return None
        return max(stored_at, offered_at) - at


async def _inject(
    fault: str,
    cluster: Cluster,
    pg: PrivatePostgres,
    mq: PrivateRabbitMQ,
    dsn: str,
    plan: Plan,
    progress: Progress,
    say: Callable[[str], None],
) -> tuple[float, str]:
    """Break what ``fault`` names, bring it back ``outage_s`` later; (the fault's end, since
    the load's start), and which process was killed."""
    victim = ""
    if fault == "rabbitmq":
        await mq.kill()
        await asyncio.sleep(plan.outage_s)
        await mq.start()
        return clock() - progress.started, victim
    if fault == "postgres":
        await pg.stop_immediately()
        await asyncio.sleep(plan.outage_s)
        await pg.start()
        return clock() - progress.started, victim
    if fault == "pipeline":
        victim = f"web-{plan.webhook_processes}"
    elif fault == "gateway":
        victim = "web-1"
    elif fault == "router":
        pid = await _active_router_pid(dsn)
        victim = (cluster.by_pid(pid) if pid is not None else None) or "router-a"
    else:
        raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
    say(f"faults: SIGKILL {victim}")
    await cluster.kill(victim)
    ended = clock() - progress.started
    await asyncio.sleep(plan.outage_s)
    await cluster.start(victim)
    return ended, victim


async def _router_takeover(dsn: str, cluster: Cluster, killed_at: float, within_s: float) -> float | None:
    deadline = clock() + within_s
    while clock() < deadline:
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            pid = await _active_router_pid(dsn)
            if pid is not None and cluster.by_pid(pid) is not None:
                return clock() - killed_at
        await asyncio.sleep(0.1)
    return None


async def run_fault(
    fault: str, plan: Plan, workdir: Path, say: Callable[[str], None] = lambda _line: None
) -> FaultReport:
    """One fault, on a PostgreSQL and a RabbitMQ of its own, started here and removed after."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
    report = FaultReport(fault, plan)
    pg = PrivatePostgres()
    mq = PrivateRabbitMQ()
    cluster: Cluster | None = None
    try:
        await asyncio.gather(pg.init(), mq.start())
        admin = await asyncpg.connect(pg.dsn, timeout=10)
        try:
            await admin.execute("CREATE DATABASE centralita")
        finally:
            await admin.close()
        database_url = pg.url("centralita")
        dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        tokens = await prepare(database_url, plan.agents)
        env = _engine_env(database_url, mq.url, f"faults{secrets.token_hex(3)}.")
        run_dir = workdir / f"faults-{fault}"
        run_dir.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(env, run_dir, plan)
        say(f"faults/{fault}: starting {len(cluster.slots)} engine processes")
        await cluster.start_all()
        report.notes.append(f"logs in {run_dir}")
        traffic = Traffic(run=f"{int(time.time())}", rate=plan.rate, step_first=0)
        connector = aiohttp.TCPConnector(limit=1000)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=10)
        ) as session:
            urls = cluster.webhook_urls
            floor = Floor(urls, tokens, session)
            await floor.start()
            sender = Sender(urls, traffic, session)
            progress = Progress(clock(), dsn, floor)
            sampler = asyncio.create_task(progress.loop())
            try:
                load = asyncio.create_task(sender.run(plan.rate, plan.duration_s))
                await asyncio.sleep(plan.fault_at_s)
                say(f"faults/{fault}: injecting at {clock() - progress.started:.1f} s")
                killed_at = clock()
                takeover: asyncio.Task[float | None] | None = None
                if fault == "router":
                    takeover = asyncio.create_task(
                        _router_takeover(dsn, cluster, killed_at, plan.recover_deadline_s)
                    )
                fault_end, _victim = await _inject(fault, cluster, pg, mq, dsn, plan, progress, say)
                if takeover is not None:
                    report.router_takeover_s = await takeover
                say(f"faults/{fault}: the fault ended at {fault_end:.1f} s")
                await load
                load_end = clock()
                # Recovery: stored and offered move again within the deadline, or a restart.
                deadline = progress.started + fault_end + plan.recover_deadline_s
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, deadline - clock())), progress.sampled:
                        await progress.sampled.wait_for(lambda: progress.moved_since(fault_end) is not None)
                report.recovered_s = progress.moved_since(fault_end)
                if report.recovered_s is None:
                    report.needed_restart = True
                    if plan.restart_when_stuck:
                        say(f"faults/{fault}: not recovered in {plan.recover_deadline_s:g} s; restarting")
                        await cluster.restart_all()
                    else:
                        sender.give_up_at = clock()
                # Drain: every accepted message stored, every conversation offered, or a stall.
                sender_give_up = max(clock(), load_end) + plan.sender_give_up_s
                sender.give_up_at = min(sender.give_up_at, sender_give_up)
                drain_deadline = clock() + plan.drain_s
                moved_at, last = clock(), (-1, -1)
                while clock() < drain_deadline and (
                    report.needed_restart is False or plan.restart_when_stuck
                ):
                    now_counts = (progress.last_stored, len(floor.offered))
                    if now_counts != last:
                        moved_at, last = clock(), now_counts
                    if sender.pending == 0 and progress.last_stored >= len(sender.accepted_ids):
                        report.drained = True
                        break
                    if clock() - moved_at > plan.stall_s:
                        break
                    await asyncio.sleep(SAMPLE_S)
                await sender.finish(clock() if not report.drained else clock() + 5)
                if report.drained:  # the last offers of the last conversations
                    await asyncio.sleep(2.0)
            finally:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
                await floor.stop()
        report.sent = sender.sent
        report.accepted = sender.accepted
        report.accepted_messages = len(sender.accepted_ids)
        report.answers = dict(sender.answers)
        report.non_200 = sum(n for status, n in sender.answers.items() if status != "200")
        report.given_up = sender.given_up
        report.agent_reconnects = floor.reconnects
        report.timeline = progress.timeline
        await _final_counts(dsn, report, sender.accepted_ids)
        depths = await mq.queue_depths()
        report.dead_letter_queues = {q: n for q, n in depths.items() if q.endswith(".dlq") and n}
        report.dead_lettered = sum(report.dead_letter_queues.values())
        report.server_deadlocks = pg.deadlocks()
        report.load_average = load_average()
        if floor.close_failures:
            report.notes.append(f"conversation closes that failed: {dict(floor.close_failures)}")
    finally:
        if cluster is not None:
            await cluster.stop_all()
        await mq.destroy()
        await pg.destroy()
    return report


def _engine_env(database_url: str, broker_url: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
    env.update(ENV)
    env.update(
        {
            "CENTRALITA_DATABASE_URL": database_url,
            "CENTRALITA_BROKER_URL": broker_url,
            "CENTRALITA_BROKER_PREFIX": prefix,
            "CENTRALITA_BROKER_QUORUM": "true",  # production's queues, delivery limit and DLQ
            "CENTRALITA_BROKER_EPHEMERAL": "false",
            "CENTRALITA_HOST": "127.0.0.1",
            "CENTRALITA_ENVIRONMENT": "production",
            "CENTRALITA_LOG_FORMAT": "json",
            "CENTRALITA_LOG_LEVEL": "INFO",
            "CENTRALITA_ROUTER_RAMP_PERIOD_S": "0",
            "CENTRALITA_GRAPH_BASE_URL": "http://127.0.0.1:9",  # nothing is sent; never off-host
            "CENTRALITA_OFFER_TIMEOUT_S": "60",
        }
    )
    return env


# -- the benchmark ---------------------------------------------------------------------------


def _faults_selected() -> tuple[str, ...]:
    chosen = os.environ.get("BENCH_FAULTS")
    if not chosen:
        return FAULTS
    names = tuple(n.strip() for n in chosen.split(",") if n.strip())
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ValueError(f"BENCH_FAULTS: unknown {', '.join(unknown)} (known: {', '.join(FAULTS)})")
    return names


async def run(ctx: Context) -> None:
    """Each fault in its own run (``BENCH_FAULTS=postgres,rabbitmq`` chooses some)."""
    plan = QUICK if ctx.quick else FULL
    reports: list[FaultReport] = []
    for fault in _faults_selected():
        ctx.progress(
            f"faults/{fault}: {plan.rate:g} msg/s for {plan.duration_s:g} s, fault at "
            f"{plan.fault_at_s:g} s for {plan.outage_s:g} s"
        )
        # BENCH_FAULT_LOGS=DIR keeps the engine's logs there (else they go with the run's workdir).
        logs = Path(os.environ.get("BENCH_FAULT_LOGS") or ctx.workdir)
        report = await run_fault(fault, plan, logs, ctx.progress)
        reports.append(report)
        ctx.progress(
            f"faults/{fault}: "
            + ", ".join(f"{h} {c}" for h, c in zip(HEADERS[1:], report.row()[1:], strict=True))
        )
        ctx.results.add(
            "faults",
            f"faults.{fault}.lost",
            f"{fault}: accepted but not stored",
            report.lost,
            "messages",
            higher_is_better=False,
            details=report.as_dict(),
        )
    ctx.results.add_table(
        "faults",
        f"Faults ({plan.rate:g} signed WhatsApp msg/s for {plan.duration_s:g} s, open loop, the sender "
        f"retrying any non-200 with backoff; {plan.agents} agents accepting every offer; each fault "
        f"{plan.fault_at_s:g} s in for {plan.outage_s:g} s, on a PostgreSQL and a RabbitMQ of its own; "
        "lost = accepted but not stored at the end; non-200 = answers other than 200 and "
        "connection failures, retries included; recovered = stored and offered counts moving again "
        f"after the fault's end; needed restart = not recovered within {plan.recover_deadline_s:g} s):",
        HEADERS,
        [r.row() for r in reports],
    )
    details = [
        [
            r.fault,
            f"{r.sent:,}",
            f"{r.given_up:,}",
            ", ".join(f"{k} {v}" for k, v in sorted(r.answers.items()) if k != "200") or "-",
            ", ".join(f"{k} {v}" for k, v in r.dead_letter_queues.items()) or "-",
            ", ".join(f"{k} {v}" for k, v in r.offers_withdrawn.items()) or "-",
            "" if r.router_takeover_s is None else f"{r.router_takeover_s:.1f} s",
            str(r.agent_reconnects),
            str(r.server_deadlocks),
            "yes" if r.drained else "no",
        ]
        for r in reports
    ]
    ctx.results.add_table(
        "faults",
        "Details (sent = messages due; given up = never answered 200 before the sender stopped; "
        "deadlocks = 'deadlock detected' in the PostgreSQL log):",
        [
            "fault",
            "sent",
            "given up",
            "non-200 by answer",
            "dead-letter queues",
            "withdrawn by reason",
            "router takeover",
            "agent reconnects",
            "deadlocks",
            "drained",
        ],
        details,
    )
