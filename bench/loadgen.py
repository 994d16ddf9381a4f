"""An open-loop HTTP load generator: a fixed offered rate, bounded in count and time.

Open loop means request ``i`` is due at ``t0 + i / rate`` whether or not earlier requests have
been answered, as real webhook traffic arrives; a request's latency is measured from the moment
it was *due*, not from when it was sent, so a generator that falls behind (or a server that
stalls it) shows up in the latency instead of silently lowering the load (no coordinated
omission).  At most ``max_in_flight`` requests are outstanding; a request due while that many are
in flight is not sent and counted as ``dropped`` (the server is not keeping up).

Bodies and headers come from factories, so the same generator posts small JSON documents at the
stripped pipeline or correctly signed WhatsApp webhooks at the real engine::

    spec = LoadSpec(
        url="http://127.0.0.1:8080/webhooks/whatsapp",
        rate=500,
        count=5000,
        duration_s=10,
        body=my_webhook_body,  # (i) -> bytes, unique per request
        headers=hub_signature_headers(app_secret),  # (i, body) -> headers
    )
    result = await run_load(spec)
    print(result.achieved_rate, result.latency.p99)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from bench.harness import LatencySummary, clock, rate, summarize

__all__ = [
    "BodyFactory",
    "HeadersFactory",
    "LoadResult",
    "LoadSpec",
    "ResultHook",
    "hub_signature_headers",
    "json_body",
    "json_headers",
    "run_load",
    "step_load",
]

BodyFactory = Callable[[int], bytes]
"""``(i) -> body`` for the ``i``-th request (0-based); make it unique if the server dedupes."""

HeadersFactory = Callable[[int, bytes], Mapping[str, str]]
"""``(i, body) -> headers``; it sees the body so that it can sign it."""

ResultHook = Callable[[int, int | None, float], None]
"""``(i, status, latency)`` once request ``i`` is answered: its HTTP status (None: not answered,
a timeout or a connection error) and its latency from when it was due, in seconds."""


def json_body(i: int) -> bytes:
    """A small JSON document (~200 bytes), unique per request."""
    return json.dumps(
        {
            "id": f"bench-{i}",
            "seq": i,
            "kind": "message",
            "text": "hola, quisiera saber el estado de mi pedido",
        },
        separators=(",", ":"),
    ).encode()


def json_headers(_i: int, _body: bytes) -> Mapping[str, str]:
    return {"Content-Type": "application/json"}


def hub_signature_headers(app_secret: str) -> HeadersFactory:
    """Headers Meta sends with a webhook: ``X-Hub-Signature-256: sha256=<hmac of the raw body>``."""
    key = app_secret.encode()

    def headers(_i: int, body: bytes) -> Mapping[str, str]:
        digest = hmac.new(key, body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}

    return headers


@dataclass(frozen=True, slots=True)
class LoadSpec:
    url: str
    rate: float
    """Offered requests per second."""
    count: int
    """At most this many requests are due."""
    duration_s: float
    """No request is due later than this after the start."""
    body: BodyFactory = json_body
    headers: HeadersFactory = json_headers
    method: str = "POST"
    max_in_flight: int = 1000
    timeout_s: float = 10.0
    ok_statuses: frozenset[int] = frozenset({200})
    first_index: int = 0
    """Index of the first request (keeps bodies unique across successive steps)."""
    on_result: ResultHook | None = None
    """Told each request's outcome (which requests were accepted, the latency of each kind)."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    offered_rate: float
    due: int
    sent: int
    ok: int
    failed: int
    """Answered with a status not in ``ok_statuses``, or not answered (timeout, connection)."""
    dropped: int
    """Due while ``max_in_flight`` requests were outstanding: never sent."""
    elapsed_s: float
    """From the start until the last answer."""
    latency: LatencySummary | None
    """Of the ``ok`` requests, measured from when each was due."""
    statuses: Mapping[str, int] = field(default_factory=dict)
    client_cpu_s: float = 0.0
    """CPU time the generator's own process spent during the step (is the client the limit?)."""
    started_at: float = 0.0
    """``clock()`` at the start: request ``first_index + k`` was due at ``started_at + k / rate``."""

    @property
    def client_cpu_share(self) -> float:
        """Client CPU seconds per wall-clock second (1.0 = one core busy)."""
        return self.client_cpu_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def achieved_rate(self) -> float:
        """Answered-ok requests per second over the whole step."""
        return rate(self.ok, self.elapsed_s)

    def sustained(self, *, min_fraction: float = 0.95, max_p99_s: float = 0.5) -> bool:
        """Kept up: every request answered ok, the rate held, and p99 stayed under ``max_p99_s``."""
        return (
            self.latency is not None
            and self.failed == 0
            and self.dropped == 0
            and self.ok == self.due
            and self.achieved_rate >= min_fraction * self.offered_rate
            and self.latency.p99 <= max_p99_s
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "offered_rate": self.offered_rate,
            "achieved_rate": round(self.achieved_rate, 1),
            "due": self.due,
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "dropped": self.dropped,
            "elapsed_s": round(self.elapsed_s, 3),
            "latency": self.latency.as_ms() if self.latency else None,
            "statuses": dict(self.statuses),
            "client_cpu_share": round(self.client_cpu_share, 2),
        }


async def run_load(spec: LoadSpec, session: aiohttp.ClientSession | None = None) -> LoadResult:
    """Offer ``spec.rate`` requests/s until ``count`` or ``duration_s``; wait for every answer."""
    if spec.rate <= 0 or spec.count <= 0 or spec.duration_s <= 0:
        raise ValueError("rate, count and duration_s must be positive")
    own_session = session is None
    if session is None:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=spec.max_in_flight),
            timeout=aiohttp.ClientTimeout(total=spec.timeout_s),
        )
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    in_flight: set[asyncio.Task[None]] = set()
    counts = {"ok": 0, "failed": 0, "dropped": 0, "sent": 0}
    last_answer = [0.0]

    async def one(index: int, due_at: float) -> None:
        body = spec.body(index)
        headers = spec.headers(index, body)
        try:
            async with session.request(spec.method, spec.url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            statuses[type(exc).__name__] += 1
            counts["failed"] += 1
            last_answer[0] = clock()
            if spec.on_result is not None:
                spec.on_result(index, None, last_answer[0] - due_at)
            return
        now = clock()
        last_answer[0] = now
        if spec.on_result is not None:
            spec.on_result(index, status, now - due_at)
        statuses[str(status)] += 1
        if status in spec.ok_statuses:
            counts["ok"] += 1
            latencies.append(now - due_at)
        else:
            counts["failed"] += 1

    interval = 1.0 / spec.rate
    due = min(spec.count, int(spec.duration_s * spec.rate) or 1)
    cpu_start = time.process_time()
    start = clock()
    try:
        i = 0
        while i < due:
            now = clock()
            # Launch every request that is due by now (the event loop cannot wake every 0.5 ms).
            while i < due and start + i * interval <= now:
                if len(in_flight) >= spec.max_in_flight:
                    counts["dropped"] += 1
                else:
                    counts["sent"] += 1
                    task = asyncio.create_task(one(spec.first_index + i, start + i * interval))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                i += 1
            if i < due:
                await asyncio.sleep(max(0.0, start + i * interval - clock()))
        if in_flight:
            await asyncio.gather(*in_flight)
    finally:
        for task in in_flight:
            task.cancel()
        if own_session:
            await session.close()
    end = max(last_answer[0], start)
    cpu = time.process_time() - cpu_start
    return LoadResult(
        offered_rate=spec.rate,
        due=due,
        sent=counts["sent"],
        ok=counts["ok"],
        failed=counts["failed"],
        dropped=counts["dropped"],
        elapsed_s=end - start,
        latency=summarize(latencies) if latencies else None,
        statuses=dict(statuses),
        client_cpu_s=cpu,
        started_at=start,
    )


async def step_load(
    spec: LoadSpec,
    rates: Sequence[float],
    *,
    step_s: float,
    max_count: int | None = None,
    stop_when_unsustained: bool = True,
    max_p99_s: float = 0.5,
    on_step: Callable[[LoadResult], None] | None = None,
) -> list[LoadResult]:
    """Run one step per offered rate (``step_s`` seconds each), stopping after the first that
    does not hold (``LoadResult.sustained``).  Request indexes keep counting across steps."""
    results: list[LoadResult] = []
    first = spec.first_index
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=spec.max_in_flight),
        timeout=aiohttp.ClientTimeout(total=spec.timeout_s),
    ) as session:
        for offered in rates:
            count = int(offered * step_s)
            if max_count is not None:
                count = min(count, max_count)
            step = replace(spec, rate=offered, count=max(1, count), duration_s=step_s, first_index=first)
            result = await run_load(step, session)
            first += result.due
            results.append(result)
            if on_step is not None:
                on_step(result)
            if stop_when_unsustained and not result.sustained(max_p99_s=max_p99_s):
                break
    return results
