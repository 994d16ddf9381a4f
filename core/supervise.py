"""Supervised long-running tasks, and the registry of their health.

``supervise(registry, name, run)`` runs ``run()`` as a task that is never silently gone: when it
raises (or returns, which a long-running loop never should) the failure is logged
(``worker.crashed`` with the worker's name and the error's type) and ``run()`` is started again
after a backoff with jitter that grows with consecutive failures.  Each worker's state —
``running``, ``restarting`` (crashed, waiting to start again) or ``failed`` (crashed past its
``max_restarts``, not started again) — with its last error type and the time it entered that
state is kept in a ``WorkerRegistry`` (one per process, ``Runtime.workers``), which ``/readyz``
reads.  Cancelling the task stops the worker and takes it out of the registry.

Pure asyncio: the router service, the pipeline and the transport's users all import it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from core.logging import get_logger

__all__ = ["WorkerHealth", "WorkerRegistry", "WorkerState", "supervise"]

log = get_logger("core.supervise")


class WorkerState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    name: str
    state: WorkerState
    since: datetime
    last_error: str | None = None  # the type of the last exception (never its text)
    restarts: int = 0

    @property
    def healthy(self) -> bool:
        return self.state is WorkerState.RUNNING


class WorkerRegistry:
    """The supervised workers of this process and their current health."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._workers: dict[str, WorkerHealth] = {}

    def record(
        self, name: str, state: WorkerState, *, error: str | None = None, restarts: int | None = None
    ) -> WorkerHealth:
        previous = self._workers.get(name)
        health = WorkerHealth(
            name=name,
            state=state,
            since=previous.since if previous is not None and previous.state is state else self._clock(),
            last_error=error if error is not None else (previous.last_error if previous else None),
            restarts=restarts if restarts is not None else (previous.restarts if previous else 0),
        )
        self._workers[name] = health
        return health

    def forget(self, name: str) -> None:
        self._workers.pop(name, None)

    def get(self, name: str) -> WorkerHealth | None:
        return self._workers.get(name)

    def all(self) -> list[WorkerHealth]:
        return sorted(self._workers.values(), key=lambda h: h.name)

    def unhealthy(self) -> list[WorkerHealth]:
        return [h for h in self.all() if not h.healthy]


def supervise(
    registry: WorkerRegistry,
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    backoff_initial_s: float = 0.2,
    backoff_max_s: float = 5.0,
    max_restarts: int | None = None,
) -> asyncio.Task[None]:
    """Start ``run()`` under supervision; cancel the returned task to stop it."""
    return asyncio.get_running_loop().create_task(
        _supervised(registry, name, run, backoff_initial_s, backoff_max_s, max_restarts), name=name
    )


async def _supervised(
    registry: WorkerRegistry,
    name: str,
    run: Callable[[], Awaitable[None]],
    backoff_initial_s: float,
    backoff_max_s: float,
    max_restarts: int | None,
) -> None:
    restarts = 0
    consecutive = 0
    try:
        while True:
            registry.record(name, WorkerState.RUNNING, restarts=restarts)
            started = asyncio.get_running_loop().time()
            try:
                await run()
                error = "returned"  # a long-running worker that ends on its own is a failure too
                log.error("worker.crashed", worker=name, error=error, restarts=restarts)
            except Exception as exc:
                error = type(exc).__name__
                # The exception's text may quote customer data: its type only, the traceback at DEBUG.
                log.error("worker.crashed", worker=name, error=error, restarts=restarts)
                log.debug("worker.traceback", worker=name, exc_info=exc)
            if asyncio.get_running_loop().time() - started > backoff_max_s * 4:
                consecutive = 0  # it ran a good while: start the backoff over
            consecutive += 1
            if max_restarts is not None and restarts >= max_restarts:
                registry.record(name, WorkerState.FAILED, error=error, restarts=restarts)
                log.error("worker.given_up", worker=name, error=error, restarts=restarts)
                return
            registry.record(name, WorkerState.RESTARTING, error=error, restarts=restarts)
            delay = min(backoff_max_s, backoff_initial_s * 2 ** (consecutive - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            restarts += 1
            log.info("worker.restarted", worker=name, restarts=restarts)
    finally:
        health = registry.get(name)
        if health is None or health.state is not WorkerState.FAILED:
            registry.forget(name)
