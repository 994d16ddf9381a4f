"""A campaign launch: the delivery statuses of 10,000 reminder templates and the answers to them.

A collections campaign sends 10,000 reminder templates at 9:00; within minutes WhatsApp posts
three statuses for each (``sent``, ``delivered``, ``read``) and customers start answering.
``python -m bench --only launch`` (PostgreSQL + RabbitMQ) and ``--only launch-embedded`` (SQLite
+ the in-process broker) play that against a running engine, set up as ``bench.engine`` sets it
up (same campaign, agents on WebSockets accepting every offer and closing each conversation
``HOLD_S`` after it was assigned, the same processes):

1. **The campaign's sends.**  Before the engine starts, 10,000 customers (phones
   ``+52 55 5000 0000`` …) each get a conversation holding one outbound template message in
   the state the outbound worker leaves a template in once WhatsApp accepted it: ``sent``, with
   its provider id (``wamid.launch.<run>.<n>``).  The product has no broadcast path — a
   template goes out as a reply in an open conversation (``centralita.outbound.queue_reply``) —
   so the set-up writes each send through the storage calls that path and the worker make, in
   batches: the customer resolved by the identity graph (``InboundStore.resolve_sender``), a
   conversation opened (``InboundStore.open_conversation``), the outbox row queued
   (``OutboundStore.add_outbound``, the template in its payload), claimed (``claim_due``) and
   recorded as sent (``mark_sent``, ``first_response``); then the conversation is closed
   (``WorkStore.close``), as after an outreach nobody is holding it.  No SQL of its own.
2. **The step**, open loop through the one webhook endpoint: 3,000 status webhooks/s for 10 s
   (every message gets ``sent``, then ``delivered``, then ``read``; a message's ``delivered``
   comes a tenth of the campaign later than its ``sent``, its ``read`` as much later again, so
   the three kinds interleave across messages) mixed with 300 customer answers/s (one request in
   eleven: a text replying to the reminder, with WhatsApp's ``context`` naming it).  Two answers
   in three are a customer's first (all of them in the first second); the third is a customer
   who answered a second earlier writing again.  A first answer lands on a closed
   conversation, so the pipeline opens a new one and the router offers it: each answering
   customer must be offered once.
3. **After the step**: how long until every accepted status is applied (the database polled
   every ``POLL_S``: every message in the state of the latest status accepted for it; a state
   seen to go back is counted as a regression) and until every answering customer is offered
   (the offer frame at the agent's socket), both from the step's scheduled end; the target is
   both within ``TARGET_S``.  Lost: a status accepted (200) but never applied, or a customer whose
   answer was accepted but who was never offered, within ``DRAIN_LIMIT_S``.

``--quick`` scales it down: 300 templates, 300 statuses/s and 30 answers/s for 3 s, 20 agents.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import sqlalchemy as sa

from bench.engine import (
    APP_SECRET,
    DRAIN_LIMIT_S,
    ENV,
    FOLLOW_UP_LAG_S,
    HOLD_S,
    PHONE_NUMBER_ID,
    Agents,
    Engine,
    Traffic,
    _engine_env,
    analyze,
    index_of,
    prepare,
    start_deployment,
    stop_engine,
    wa_id,
)
from bench.harness import Context, clock, format_value, percentile, summarize
from bench.loadgen import LoadResult, LoadSpec, hub_signature_headers, run_load

if TYPE_CHECKING:
    from storage.database import Database

__all__ = ["LaunchTraffic", "run", "run_embedded", "status_schedule"]

FIRST_CUSTOMER = 50_000_000  # campaign customer n is wa_id(FIRST_CUSTOMER + n)
TEMPLATE = "recordatorio_pago"
STATUSES = ("sent", "delivered", "read")
RANK = {"queued": 0, "sending": 0, "unknown": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
TARGET_S = 5.0
POLL_S = 0.2
SEED_BATCH = 250
SEED_LANES = 4
SIZES = {  # quick, full: templates, statuses/s, answers/s, seconds, agents
    True: (300, 300.0, 30.0, 3.0, 20),
    False: (10_000, 3000.0, 300.0, 10.0, 100),
}
TEMPLATES_MANIFEST = f"""\
templates:
  - name: {TEMPLATE}
    language: es_MX
    purpose: recordatorio
    category: utility
    parameters: [nombre, monto, fecha]
    body: >-
      Hola {{{{1}}}}, le recordamos que su pago de {{{{2}}}} vence el {{{{3}}}}.
      Responda para conocer sus opciones.
"""


# -- the traffic -----------------------------------------------------------------------------


def status_schedule(messages: int, lag: int) -> list[tuple[int, str]]:
    """The campaign's statuses in the order they arrive: ``(message, status)``, three per
    message.  Message ``m``'s ``sent`` is at position ``m``, its ``delivered`` at ``m + lag``,
    its ``read`` at ``m + 2 * lag`` (on one scale): each message's statuses in order, the
    kinds interleaved across messages."""
    events = [(m + k * lag, k, m) for m in range(messages) for k in range(len(STATUSES))]
    events.sort()
    return [(m, STATUSES[k]) for _, k, m in events]


@dataclass
class LaunchTraffic:
    """Request ``i`` of the step: one in ``statuses_per_answer + 1`` a customer's answer, the
    others the campaign's statuses in ``status_schedule`` order."""

    run: str
    messages: int
    statuses_per_answer: int
    answers_per_s: float
    kinds: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.schedule = status_schedule(self.messages, max(1, self.messages // 10))
        answers = max(1, len(self.schedule) // self.statuses_per_answer)
        self.stride = max(1, self.messages // answers)  # answering customers spread over the list
        self.lag = 3 * max(1, int(self.answers_per_s * FOLLOW_UP_LAG_S / 3))

    @property
    def count(self) -> int:
        """Requests in the step: every status once, and the answers mixed among them."""
        return len(self.schedule) + len(self.schedule) // self.statuses_per_answer

    def kind(self, i: int) -> tuple[str, int]:
        """``("status", n)``: the ``n``-th of the schedule; ``("answer", n)``: the ``n``-th answer."""
        period = self.statuses_per_answer + 1
        q, r = divmod(i, period)
        if r == self.statuses_per_answer:
            return "answer", q
        return "status", q * self.statuses_per_answer + r

    def answer(self, n: int) -> tuple[int, bool]:
        """The customer of answer ``n`` and whether it is their first: answers ``3k + 2`` come from
        the customer of answer ``n - lag - 1`` (a first answer about a second earlier)."""
        if n % 3 == 2 and n > self.lag:
            return self._customer(n - self.lag - 1), False
        return self._customer(n), True

    def _customer(self, n: int) -> int:
        return (n * self.stride) % self.messages

    def wamid(self, message: int) -> str:
        return f"wamid.launch.{self.run}.{message}"

    def body(self, i: int) -> bytes:
        kind, n = self.kind(i)
        now = str(int(time.time()))
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "525541702099", "phone_number_id": PHONE_NUMBER_ID},
        }
        if kind == "status":
            message, status = self.schedule[n]
            self.kinds[status] += 1
            entry: dict[str, Any] = {
                "id": self.wamid(message),
                "status": status,
                "timestamp": now,
                "recipient_id": wa_id(FIRST_CUSTOMER + message),
            }
            if status != "read":  # as the Cloud API sends them: the billing facts with sent/delivered
                entry["conversation"] = {"id": f"conv.{self.run}.{message}", "origin": {"type": "utility"}}
                entry["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "utility"}
            value["statuses"] = [entry]
        else:
            customer, first = self.answer(n)
            self.kinds["first_answer" if first else "answer_again"] += 1
            phone = wa_id(FIRST_CUSTOMER + customer)
            value["contacts"] = [{"profile": {"name": f"Cliente {customer}"}, "wa_id": phone}]
            value["messages"] = [
                {
                    "context": {"from": "525541702099", "id": self.wamid(customer)},
                    "from": phone,
                    "id": f"wamid.in.launch.{self.run}.{n}",
                    "timestamp": now,
                    "type": "text",
                    "text": {"body": "Ya pagué, ¿me confirman?" if first else "¿Siguen ahí?"},
                }
            ]
        envelope = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "300000000000099", "changes": [{"field": "messages", "value": value}]}],
        }
        return json.dumps(envelope, separators=(",", ":")).encode()


# -- the campaign's sends --------------------------------------------------------------------


async def seed(database_url: str, traffic: LaunchTraffic) -> set[str]:
    """One sent template per campaign customer, written as the reply path and the outbound
    worker write it (see the module's docstring); the ids of the conversations it closed."""
    from centralita.directory import load_directory
    from centralita.pipeline.identity import identity_policy, region_of
    from core.events import Address, AddressKind, Template
    from core.ids import ConversationId, MessageId, new_id
    from core.settings import Settings
    from identity.normalize import normalize_address
    from identity.resolve import Observation
    from storage.database import Database
    from storage.inbound import InboundStore
    from storage.outbound import OutboundStore
    from storage.work import WorkStore

    db = Database(database_url)
    closed: set[str] = set()
    try:
        account = next(a for a in await load_directory(db, env=ENV) if a.address == PHONE_NUMBER_ID)
        policy = identity_policy([account])
        region = region_of(account, Settings.model_fields["identity_default_region"].default)

        async def batch(start: int) -> None:
            now = datetime.now(UTC)
            async with db.transaction() as session:
                inbound, outbound = InboundStore(session), OutboundStore(session)
                conversations: dict[MessageId, tuple[ConversationId, int]] = {}
                for n in range(start, min(traffic.messages, start + SEED_BATCH)):
                    # A number from the campaign's list: no WhatsApp profile name yet (their answer
                    # brings it, as new evidence for the identity graph).
                    address = Address(kind=AddressKind.PHONE, value=f"+{wa_id(FIRST_CUSTOMER + n)}")
                    observation = Observation(sender=normalize_address(address, region))
                    sender = await inbound.resolve_sender(
                        account.workspace_id, observation, now, policy=policy
                    )
                    conversation = await inbound.open_conversation(
                        account.workspace_id,
                        account.campaign_id,
                        sender.customer_id,
                        account.channel,
                        account.id,
                        now,
                        identifier_id=sender.identifier_id,
                    )
                    message_id = MessageId(new_id())
                    template = Template(
                        name=TEMPLATE,
                        language="es_MX",
                        body_parameters=(f"Cliente {n}", "$1,250.00", "15 de enero"),
                    )
                    await outbound.add_outbound(
                        message_id=message_id,
                        workspace_id=account.workspace_id,
                        conversation_id=conversation,
                        customer_id=sender.customer_id,
                        identifier_id=sender.identifier_id,
                        channel=account.channel,
                        account_id=account.id,
                        agent_id=None,
                        text=None,
                        payload={"auto_reply": False, "template": template.model_dump(mode="json")},
                        at=now,
                        campaign_id=account.campaign_id,
                    )
                    conversations[message_id] = (conversation, n)
                await inbound.flush()
                claimed = await outbound.claim_due(now, len(conversations))
                if len(claimed) != len(conversations):
                    raise RuntimeError(f"claimed {len(claimed)} of {len(conversations)} templates")
                work = WorkStore(session)
                for item in claimed:
                    conversation, n = conversations[item.id]
                    await outbound.mark_sent(item.id, traffic.wamid(n))
                    await outbound.first_response(conversation, now)
                    await work.close(
                        account.workspace_id,
                        conversation,
                        disposition={"code": "recordatorio_enviado"},
                        closed_at=now,
                        follow_up_at=None,
                    )
                    closed.add(str(conversation))

        # PostgreSQL takes a few batches at once (distinct customers: nothing to collide on);
        # SQLite has one writer.
        lanes = asyncio.Semaphore(SEED_LANES if db.engine.dialect.name == "postgresql" else 1)

        async def lane(start: int) -> None:
            async with lanes:
                await batch(start)

        await asyncio.gather(*(lane(start) for start in range(0, traffic.messages, SEED_BATCH)))
    finally:
        await db.dispose()
    return closed


# -- what the database says ------------------------------------------------------------------


async def delivery_states(db: Database, prefix: str) -> dict[int, str]:
    """Template ``n`` → its ``delivery_state`` now."""
    from storage.tables import MessageRow

    msg = MessageRow.__table__  # type: ignore[attr-defined]
    async with db.session() as session:
        rows = (
            await session.execute(
                sa.select(msg.c.external_id, msg.c.delivery_state).where(
                    msg.c.direction == "out", msg.c.external_id.startswith(prefix)
                )
            )
        ).all()
    return {int(str(external_id).rsplit(".", 1)[1]): str(state) for external_id, state in rows}


async def answer_conversations(db: Database, seeded: set[str]) -> dict[str, int]:
    """Conversation id → campaign customer, for the conversations the answers opened."""
    from storage.tables import ConversationRow, IdentifierRow

    conv = ConversationRow.__table__  # type: ignore[attr-defined]
    ident = IdentifierRow.__table__  # type: ignore[attr-defined]
    async with db.session() as session:
        rows = (
            await session.execute(
                sa.select(conv.c.id, ident.c.value).join(ident, ident.c.id == conv.c.origin_identifier_id)
            )
        ).all()
    out: dict[str, int] = {}
    for cid, value in rows:
        index = index_of(value)
        if str(cid) not in seeded and index >= FIRST_CUSTOMER:
            out[str(cid)] = index - FIRST_CUSTOMER
    return out


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    load: LoadResult
    duration_s: float
    status_rate: float
    answer_rate: float
    kinds: Counter[str]
    latency: dict[str, list[float]]  # webhook answer latency by kind (status, answer)
    accepted: dict[str, int]  # 200s by kind
    statuses_applied_s: float | None  # after the step's end; None: not within the drain limit
    answers_offered_s: float | None
    statuses_lost: int
    answers_lost: int
    regressions: int
    answering_customers: int
    to_offer: list[float]  # a customer's first accepted answer (due time) → their offer
    final_states: dict[str, int]
    cpu_s: dict[str, float]
    cpu_share: float
    client_cpu_share: float
    rss_mb: float

    @property
    def webhooks_ok(self) -> int:
        return self.load.ok

    @property
    def cpu_ms_per_webhook(self) -> float:
        return 1000 * sum(self.cpu_s.values()) / self.load.ok if self.load.ok else float("nan")

    @property
    def met(self) -> bool:
        """Every status applied and every answer offered within ``TARGET_S`` of the step's end,
        with every webhook accepted and nothing lost."""
        return (
            self.load.failed == 0
            and self.load.dropped == 0
            and self.statuses_lost == 0
            and self.answers_lost == 0
            and self.regressions == 0
            and self.statuses_applied_s is not None
            and self.statuses_applied_s <= TARGET_S
            and self.answers_offered_s is not None
            and self.answers_offered_s <= TARGET_S
        )

    def cpu_split(self) -> str:
        total = sum(self.cpu_s.values())
        if len(self.cpu_s) < 2 or total <= 0:
            return f"{self.cpu_share:.2f}"
        parts = ", ".join(f"{name} {self.cpu_share * cpu / total:.2f}" for name, cpu in self.cpu_s.items())
        return f"{self.cpu_share:.2f} ({parts})"

    def as_dict(self) -> dict[str, Any]:
        def ms(values: Sequence[float]) -> dict[str, Any]:
            return summarize(values).as_ms() if values else {"count": 0}

        return {
            "load": self.load.as_dict(),
            "duration_s": self.duration_s,
            "offered_status_rate": self.status_rate,
            "offered_answer_rate": self.answer_rate,
            "kinds": dict(self.kinds),
            "accepted": dict(self.accepted),
            "webhook_latency_ms": {kind: ms(values) for kind, values in self.latency.items()},
            "statuses_applied_after_s": _round(self.statuses_applied_s),
            "answers_offered_after_s": _round(self.answers_offered_s),
            "target_s": TARGET_S,
            "target_met": self.met,
            "statuses_lost": self.statuses_lost,
            "answers_lost": self.answers_lost,
            "regressions": self.regressions,
            "answering_customers": self.answering_customers,
            "answer_to_offer_ms": ms(self.to_offer),
            "final_delivery_states": dict(self.final_states),
            "engine_cpu_s": {name: round(cpu, 2) for name, cpu in self.cpu_s.items()},
            "engine_cpu_share": round(self.cpu_share, 2),
            "engine_cpu_ms_per_webhook": round(self.cpu_ms_per_webhook, 2) if self.load.ok else None,
            "client_cpu_share": round(self.client_cpu_share, 2),
            "engine_rss_mb": round(self.rss_mb, 1),
        }


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def _after(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else f"> {DRAIN_LIMIT_S:g} s"


async def _sibling_database(ctx: Context, name: str) -> tuple[str, str]:
    """A database of its own next to the run's throwaway one (the engine bench's data stays
    out of it); dropped by ``_drop``."""
    url = sa.engine.make_url(ctx.database_url)
    database = f"{url.database}_{name}"
    connection = await asyncpg.connect(ctx.pg_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    return url.set(database=database).render_as_string(hide_password=False), database


async def _drop(ctx: Context, database: str) -> None:
    connection = await asyncpg.connect(ctx.pg_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await connection.close()


async def run_launch(ctx: Context, backend: str, database_url: str, broker_url: str) -> None:
    messages, status_rate, answer_rate, duration, agents = SIZES[ctx.quick]
    bench_name = "launch" if backend == "production" else "launch-embedded"
    run_id = f"{int(time.time())}"
    traffic = LaunchTraffic(
        run=run_id,
        messages=messages,
        statuses_per_answer=round(status_rate / answer_rate),
        answers_per_s=answer_rate,
    )
    ctx.progress(f"{bench_name}: migrating and applying the campaign ({agents} agents)")
    tokens = await prepare(database_url, agents, TEMPLATES_MANIFEST)
    ctx.progress(f"{bench_name}: the campaign sends {messages:,} templates (outbox → sent)")
    seeded_at = clock()
    seeded = await seed(database_url, traffic)
    seed_s = clock() - seeded_at
    ctx.progress(f"{bench_name}: {messages:,} templates sent in {seed_s:.0f} s; starting the engine")
    await analyze(database_url)
    env = _engine_env(database_url, broker_url, f"{ctx.prefix}launch.")
    processes = await start_deployment(env, ctx.workdir, backend)
    engine = processes[0]
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=2000), timeout=aiohttp.ClientTimeout(total=30)
        ) as session:
            floor = Agents(engine.url, tokens, session)
            await floor.connect()
            url = f"{engine.url}/webhooks/whatsapp"
            headers = hub_signature_headers(APP_SECRET)
            ctx.progress(f"{bench_name}: warm-up")
            warm = Traffic(run=run_id, rate=50.0)
            await run_load(
                LoadSpec(url=url, rate=50.0, count=100, duration_s=2.0, body=warm.body, headers=headers),
                session,
            )
            await floor.offers_reach(warm.kinds["new"], DRAIN_LIMIT_S)
            ctx.progress(
                f"{bench_name}: {status_rate:g} statuses/s + {answer_rate:g} answers/s for {duration:g} s"
            )
            from storage.database import Database

            db = Database(database_url)  # one pool for the polls
            try:
                outcome = await _step(
                    db, traffic, floor, processes, url, session, seeded, duration, status_rate
                )
            finally:
                await db.dispose()
            await floor.close()
            close_failures = dict(floor.close_failures)
            socket_errors = floor.errors[:5]
    finally:
        for process in processes:
            await stop_engine(process)
    ctx.progress(
        f"{bench_name}: statuses applied {_after(outcome.statuses_applied_s)} and answers offered "
        f"{_after(outcome.answers_offered_s)} after the step; lost {outcome.statuses_lost} statuses, "
        f"{outcome.answers_lost} answers; target {'met' if outcome.met else 'missed'}"
    )
    _record(ctx, bench_name, backend, outcome, agents, seed_s, messages, close_failures, socket_errors)


async def _step(
    db: Database,
    traffic: LaunchTraffic,
    floor: Agents,
    processes: Sequence[Engine],
    url: str,
    session: aiohttp.ClientSession,
    seeded: set[str],
    duration: float,
    status_rate: float,
) -> Outcome:
    """The step and its drain; ``db`` is polled for the templates' states and the conversations."""
    rate = traffic.count / duration
    latency: dict[str, list[float]] = {"status": [], "answer": []}
    accepted: Counter[str] = Counter()
    expected: dict[int, int] = {}  # template → rank of the latest status accepted for it
    first_answer: dict[int, int] = {}  # customer → request index of their first accepted answer

    def on_result(i: int, status: int | None, seconds: float) -> None:
        kind, n = traffic.kind(i)
        if status != 200:
            return
        accepted[kind] += 1
        latency[kind].append(seconds)
        if kind == "status":
            message, state = traffic.schedule[n]
            expected[message] = max(expected.get(message, 0), RANK[state])
        else:
            customer, _ = traffic.answer(n)
            first_answer[customer] = min(first_answer.get(customer, i), i)

    prefix = traffic.wamid(0)[:-1]
    seen: dict[int, int] = {}
    regressions = 0

    async def poll() -> dict[int, str]:
        nonlocal regressions
        states = await delivery_states(db, prefix)
        for message, state in states.items():
            rank = RANK.get(state, 0)
            if rank < seen.get(message, 0):
                regressions += 1
            seen[message] = max(seen.get(message, 0), rank)
        return states

    spec = LoadSpec(
        url=url,
        rate=rate,
        count=traffic.count,
        duration_s=duration,
        body=traffic.body,
        headers=hub_signature_headers(APP_SECRET),
        max_in_flight=1500,
        on_result=on_result,
    )
    cpu_before, t0 = [p.cpu_s() for p in processes], clock()
    load_task = asyncio.create_task(run_load(spec, session))
    while not load_task.done():  # the states during the step too: a regression shows whenever
        await asyncio.wait({load_task}, timeout=1.0)
        if not load_task.done():
            await poll()
    load = load_task.result()
    step_end = load.started_at + traffic.count / rate
    # Drain: every accepted status applied, every answering customer offered.
    statuses_at: float | None = None
    answers_at: float | None = None
    states: dict[int, str] = {}
    conversations: dict[str, int] = {}
    deadline = clock() + DRAIN_LIMIT_S
    while True:
        states = await poll()
        if statuses_at is None and all(seen.get(m, 0) >= rank for m, rank in expected.items()):
            statuses_at = clock()
        conversations = await answer_conversations(db, seeded)
        first_offer = _first_offers(conversations, floor.offered_at)
        if answers_at is None and all(c in first_offer for c in first_answer):
            answers_at = max((first_offer[c] for c in first_answer), default=step_end)
        if (statuses_at is not None and answers_at is not None) or clock() > deadline:
            break
        await asyncio.sleep(POLL_S)
    elapsed = clock() - t0
    cpu_s = {p.log_path.stem: p.cpu_s() - b for p, b in zip(processes, cpu_before, strict=True)}
    first_offer = _first_offers(conversations, floor.offered_at)
    to_offer = [
        first_offer[c] - (load.started_at + i / rate) for c, i in first_answer.items() if c in first_offer
    ]
    final = Counter(states.values())
    return Outcome(
        load=load,
        duration_s=duration,
        status_rate=status_rate,
        answer_rate=rate - status_rate,
        kinds=Counter(traffic.kinds),
        latency=latency,
        accepted=dict(accepted),
        statuses_applied_s=statuses_at - step_end if statuses_at is not None else None,
        answers_offered_s=answers_at - step_end if answers_at is not None else None,
        statuses_lost=sum(1 for m, rank in expected.items() if RANK.get(states.get(m, ""), 0) < rank),
        answers_lost=sum(1 for c in first_answer if c not in first_offer),
        regressions=regressions,
        answering_customers=len(first_answer),
        to_offer=to_offer,
        final_states=dict(final),
        cpu_s=cpu_s,
        cpu_share=sum(cpu_s.values()) / max(1e-9, elapsed),
        client_cpu_share=load.client_cpu_share,
        rss_mb=sum(p.rss_mb() for p in processes),
    )


def _first_offers(conversations: Mapping[str, int], offered_at: Mapping[str, float]) -> dict[int, float]:
    """Customer → when they were first offered (``clock()``)."""
    first: dict[int, float] = {}
    for cid, customer in conversations.items():
        if cid in offered_at:
            first[customer] = min(first.get(customer, offered_at[cid]), offered_at[cid])
    return first


def _ms(values: Sequence[float], p: float) -> str:
    return format_value(percentile(values, p) * 1000, "ms") if values else ""


def _record(
    ctx: Context,
    bench_name: str,
    backend: str,
    outcome: Outcome,
    agents: int,
    seed_s: float,
    messages: int,
    close_failures: Mapping[str, int],
    socket_errors: Sequence[str],
) -> None:
    results = ctx.results
    load = outcome.load
    details: dict[str, Any] = {
        "backend": backend,
        "agents": agents,
        "hold_s": HOLD_S,
        "templates": messages,
        "seed_s": round(seed_s, 1),
        "mix": (
            f"{outcome.status_rate:g} statuses/s (sent, delivered, read per template, interleaved) + "
            f"{outcome.answer_rate:g} answers/s (2 in 3 a customer's first, 1 in 3 the same "
            "customer a second later)"
        ),
        "target": (
            f"every status applied and every answer offered within {TARGET_S:g} s of the step's "
            "end, every webhook answered 200, nothing lost"
        ),
        "outcome": outcome.as_dict(),
        "close_failures": dict(close_failures),
        "socket_errors": list(socket_errors),
    }
    results.add(
        bench_name,
        f"{bench_name}.achieved_rate",
        f"campaign launch ({backend}): webhooks answered per second",
        load.achieved_rate,
        "req/s",
        details=details,
    )
    if load.latency is not None:
        results.add(
            bench_name,
            f"{bench_name}.webhook_p99",
            f"webhook answer p99 at {load.offered_rate:,.0f} req/s offered",
            load.latency.p99 * 1000,
            "ms",
            higher_is_better=False,
        )
    for key, label, value in (
        ("statuses_applied_s", "every status applied, after the step's end", outcome.statuses_applied_s),
        (
            "answers_offered_s",
            "every answering customer offered, after the step's end",
            outcome.answers_offered_s,
        ),
    ):
        results.add(
            bench_name,
            f"{bench_name}.{key}",
            f"{label} (target ≤ {TARGET_S:g} s)",
            value if value is not None else DRAIN_LIMIT_S,
            "s",
            higher_is_better=False,
        )
    results.add(
        bench_name,
        f"{bench_name}.target_met",
        "target met (1 yes, 0 no)",
        1.0 if outcome.met else 0.0,
        "",
    )
    latency = outcome.latency
    results.add_table(
        bench_name,
        f"The step ({backend}; open loop, {outcome.duration_s:g} s; {messages:,} templates already "
        f"sent; {agents} agents accepting every offer and closing {HOLD_S:g} s after assignment; "
        "latency from when each request was due; failed = not answered 200; not sent = due while "
        "1,500 requests were in flight (the engine not keeping up); "
        "CPU = cores busy in the engine's processes over the step and its drain; CPU/webhook = "
        "the engine's CPU per webhook answered; client CPU = cores busy in the load generator):",
        [
            "offered",
            "achieved",
            "webhook p50",
            "webhook p99",
            "status p99",
            "answer p99",
            "failed",
            "not sent",
            "engine CPU",
            "CPU/webhook",
            "client CPU",
            "engine RSS",
        ],
        [
            [
                f"{format_value(outcome.status_rate, '')} + {format_value(outcome.answer_rate, 'req/s')}",
                format_value(load.achieved_rate, "req/s"),
                format_value(load.latency.p50 * 1000, "ms") if load.latency else "",
                format_value(load.latency.p99 * 1000, "ms") if load.latency else "",
                _ms(latency["status"], 99),
                _ms(latency["answer"], 99),
                str(load.failed),
                f"{load.dropped:,}",
                outcome.cpu_split(),
                f"{outcome.cpu_ms_per_webhook:.1f} ms",
                f"{outcome.client_cpu_share:.2f}",
                f"{outcome.rss_mb:.0f} MB",
            ]
        ],
    )
    results.add_table(
        bench_name,
        f"After the step ({backend}; times from the step's scheduled end, statuses polled every "
        f"{POLL_S:g} s, drain limit {DRAIN_LIMIT_S:g} s; lost = a status accepted but its template "
        "never in that state, or a customer whose answer was accepted never offered; regressions "
        "= a template seen in an earlier state than before; answer→offer = a customer's first "
        "answer (due time) to the offer frame at the agent's socket):",
        [
            "statuses applied",
            "answers offered",
            f"within {TARGET_S:g} s",
            "statuses lost",
            "answers lost",
            "regressions",
            "customers offered",
            "answer→offer p50",
            "answer→offer p99",
            "final states",
        ],
        [
            [
                _after(outcome.statuses_applied_s),
                _after(outcome.answers_offered_s),
                "yes" if outcome.met else "no",
                str(outcome.statuses_lost),
                str(outcome.answers_lost),
                str(outcome.regressions),
                f"{outcome.answering_customers - outcome.answers_lost:,}/{outcome.answering_customers:,}",
                _ms(outcome.to_offer, 50),
                _ms(outcome.to_offer, 99),
                ", ".join(f"{state} {n:,}" for state, n in sorted(outcome.final_states.items())),
            ]
        ],
    )


async def run(ctx: Context) -> None:
    """PostgreSQL + RabbitMQ, in a database of its own next to the run's."""
    url, database = await _sibling_database(ctx, "launch")
    try:
        await run_launch(ctx, "production", url, ctx.broker_url)
    finally:
        await _drop(ctx, database)


async def run_embedded(ctx: Context) -> None:
    """SQLite + the in-process broker."""
    path = ctx.workdir / "launch-embedded.db"
    await run_launch(ctx, "embedded", f"sqlite+aiosqlite:///{path}", "memory://")
