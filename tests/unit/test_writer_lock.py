"""SQLite's single writer, shared in one process: one transaction at a time, the router first."""

from __future__ import annotations

import asyncio

import pytest

from storage.database import WriterLock


async def _writer(lock: WriterLock, name: str, order: list[str], *, urgent: bool = False) -> None:
    async with lock.hold(urgent=urgent):
        order.append(name)
        await asyncio.sleep(0)


async def test_a_waiting_router_commit_writes_before_the_pipeline_batches_waiting_with_it() -> None:
    lock, order = WriterLock(), []
    async with lock.hold():
        tasks = [
            asyncio.create_task(_writer(lock, "batch 1", order)),
            asyncio.create_task(_writer(lock, "batch 2", order)),
            asyncio.create_task(_writer(lock, "router", order, urgent=True)),
        ]
        await asyncio.sleep(0.01)
        assert order == []  # all wait for the writer holding the lock
    await asyncio.gather(*tasks)
    assert order == ["router", "batch 1", "batch 2"]
    assert not lock.locked


async def test_a_writer_cancelled_while_waiting_gives_its_turn_to_the_next() -> None:
    lock, order = WriterLock(), []
    async with lock.hold():
        gone = asyncio.create_task(_writer(lock, "cancelled", order, urgent=True))
        waiting = asyncio.create_task(_writer(lock, "batch", order))
        await asyncio.sleep(0.01)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
    await waiting
    assert order == ["batch"]
    assert not lock.locked


async def test_a_writer_that_raises_releases_the_lock() -> None:
    lock = WriterLock()
    with pytest.raises(RuntimeError):
        async with lock.hold():
            raise RuntimeError("refused")
    assert not lock.locked
    async with asyncio.timeout(1), lock.hold(urgent=True):
        assert lock.locked
