"""Supervised tasks: a worker that dies is logged, recorded and started again, never silently gone."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from core.supervise import WorkerRegistry, WorkerState, supervise


async def _until(predicate: object, within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - the registry has no event to wait on
            await asyncio.sleep(0.005)


async def test_a_worker_that_raises_is_logged_by_name_and_error_type_and_started_again() -> None:
    registry = WorkerRegistry()
    runs: list[int] = []
    release = asyncio.Event()

    async def worker() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("customer +52 55 1234 5678 broke it")
        await release.wait()
        await asyncio.Event().wait()

    with capture_logs() as logs:
        task = supervise(registry, "lane.0", worker, backoff_initial_s=0.001, backoff_max_s=0.01)
        await _until(lambda: len(runs) == 3)
    crashed = [e for e in logs if e["event"] == "worker.crashed"]
    assert [(e["worker"], e["error"], e["log_level"]) for e in crashed] == [
        ("lane.0", "RuntimeError", "error"),
        ("lane.0", "RuntimeError", "error"),
    ]
    above_debug = [e for e in logs if e["log_level"] != "debug"]
    assert all("5678" not in str(e) for e in above_debug)  # the type only: the text may quote a customer
    health = registry.get("lane.0")
    assert health is not None
    assert (health.state, health.last_error, health.restarts) == (WorkerState.RUNNING, "RuntimeError", 2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert registry.get("lane.0") is None  # stopped on purpose: no longer a worker of the process


async def test_a_crashed_worker_is_unhealthy_while_it_waits_to_start_again() -> None:
    registry = WorkerRegistry()
    broken = True

    async def worker() -> None:
        if broken:
            raise KeyError("x")
        await asyncio.Event().wait()

    task = supervise(registry, "router.ws", worker, backoff_initial_s=0.05, backoff_max_s=0.05)
    await _until(lambda: registry.unhealthy() != [])
    [sick] = registry.unhealthy()
    assert (sick.name, sick.state, sick.last_error) == ("router.ws", WorkerState.RESTARTING, "KeyError")
    broken = False
    await _until(lambda: registry.unhealthy() == [] and registry.get("router.ws") is not None)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_worker_that_returns_on_its_own_counts_as_crashed_and_is_started_again() -> None:
    registry = WorkerRegistry()
    runs = 0

    async def worker() -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            await asyncio.Event().wait()

    with capture_logs() as logs:
        task = supervise(registry, "beat", worker, backoff_initial_s=0.001)
        await _until(lambda: runs == 2)
    assert [e["error"] for e in logs if e["event"] == "worker.crashed"] == ["returned"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_worker_past_its_restart_budget_stays_failed_in_the_registry() -> None:
    registry = WorkerRegistry()

    async def worker() -> None:
        raise ValueError("always")

    task = supervise(registry, "once", worker, backoff_initial_s=0.001, max_restarts=1)
    await asyncio.wait_for(task, 5.0)
    health = registry.get("once")
    assert health is not None and (health.state, health.restarts) == (WorkerState.FAILED, 1)
    assert not health.healthy
